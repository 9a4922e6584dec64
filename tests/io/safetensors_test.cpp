// Pins io/safetensors.hpp: byte-identity with files written by the Python
// `safetensors` package (tests/data/safetensors, tools/gen_safetensors_golden.py),
// read-back of every dtype, and a corruption suite: every truncation, bad
// JSON, bad offsets, dtype/shape mismatches -> an error naming the file.
#include "qlora/io/safetensors.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "qlora/core/half.hpp"

#ifndef QLORA_TEST_DATA_DIR
#define QLORA_TEST_DATA_DIR "tests/data"
#endif

namespace {

using namespace qlora::io;

std::string data_path(const std::string& f) { return std::string(QLORA_TEST_DATA_DIR) + "/safetensors/" + f; }

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

template <class T>
StTensor make(std::string name, StDtype d, std::vector<std::int64_t> shape, std::vector<T> v) {
  return StTensor::from<T>(std::move(name), d, std::move(shape), std::span<const T>(v));
}

std::vector<std::uint16_t> f16(std::initializer_list<float> v) {
  std::vector<std::uint16_t> out;
  for (float f : v) out.push_back(qlora::f32_to_fp16(f));
  return out;
}

/// The same tensors tools/gen_safetensors_golden.py writes, in a different
/// (unsorted) order on purpose.
std::vector<StTensor> mixed_tensors() {
  std::vector<StTensor> t;
  t.push_back(make<float>("layer.9.w", StDtype::F32, {1}, {4.0f}));
  t.push_back(make<std::uint8_t>("z_bytes", StDtype::U8, {5}, {0, 3, 6, 9, 12}));
  t.push_back(make<float>("b.weight", StDtype::F32, {2, 3}, {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  t.push_back(make<std::uint16_t>("a", StDtype::F16, {4}, f16({1.0f, -2.0f, 0.5f, 65504.0f})));
  t.push_back(make<std::int8_t>("i8", StDtype::I8, {3}, {-128, 0, 127}));
  t.push_back(make<std::int32_t>("counts", StDtype::I32, {2, 2}, {1, -2, 3, 2147483647}));
  t.push_back(make<std::int64_t>("big", StDtype::I64, {3}, {-(std::int64_t(1) << 40), 7, std::int64_t(1) << 62}));
  t.push_back(make<float>("scalar", StDtype::F32, {}, {3.25f}));
  t.push_back(make<float>("empty", StDtype::F32, {0, 3}, {}));
  t.push_back(make<float>("layer.10.w", StDtype::F32, {1}, {2.0f}));
  return t;
}

std::vector<StTensorView> views(const std::vector<StTensor>& t) {
  std::vector<StTensorView> v;
  for (const auto& x : t) v.push_back(x.view());
  return v;
}

TEST(Safetensors, WriterMatchesPythonLibraryByteForByte) {
  const auto ts = mixed_tensors();
  auto img = serialize_safetensors(views(ts), std::map<std::string, std::string>{{"format", "np"}});
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  EXPECT_EQ(*img, read_file(data_path("numpy_mixed.safetensors")));

  StTensor only = make<float>("only", StDtype::F32, {2}, {1.5f, 2.5f});
  auto img2 = serialize_safetensors({only.view()});
  ASSERT_TRUE(img2.is_ok());
  EXPECT_EQ(*img2, read_file(data_path("numpy_nometa.safetensors")));

  std::vector<std::uint16_t> bf;
  for (float f : {1.0f, -0.5f, 3.0f}) bf.push_back(qlora::f32_to_bf16(f));
  StTensor w = make<std::uint16_t>("w", StDtype::BF16, {3}, bf);
  StTensor h = make<std::uint16_t>("h", StDtype::F16, {1}, f16({0.25f}));
  auto img3 = serialize_safetensors({h.view(), w.view()}, std::map<std::string, std::string>{{"format", "pt"}});
  ASSERT_TRUE(img3.is_ok());
  EXPECT_EQ(*img3, read_file(data_path("torch_bf16.safetensors")));
}

TEST(Safetensors, ReadsPythonFile) {
  auto f = SafetensorsFile::open(data_path("numpy_mixed.safetensors"));
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f->metadata().at("format"), "np");
  EXPECT_EQ(f->tensors().size(), 10u);
  auto w = f->read_f32("b.weight");
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ(*w, (std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  auto a = f->read_f32("a");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(*a, (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f}));
  auto big = f->get("big", StDtype::I64);
  ASSERT_TRUE(big.is_ok());
  std::int64_t b2;
  std::memcpy(&b2, big->data() + 16, 8);
  EXPECT_EQ(b2, std::int64_t(1) << 62);
  const auto* s = f->find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->numel(), 1u);
  EXPECT_EQ(f->find("empty")->numel(), 0u);
  EXPECT_FALSE(f->get("b.weight", StDtype::F16).is_ok());  // dtype mismatch named
  EXPECT_FALSE(f->get("nope", StDtype::F32).is_ok());
  auto bf = SafetensorsFile::open(data_path("torch_bf16.safetensors"));
  ASSERT_TRUE(bf.is_ok());
  EXPECT_EQ(*bf->read_f32("w"), (std::vector<float>{1.0f, -0.5f, 3.0f}));
}

TEST(Safetensors, RoundTripThroughDisk) {
  const auto ts = mixed_tensors();
  const auto path = (std::filesystem::temp_directory_path() / "qlora_st_roundtrip.safetensors").string();
  ASSERT_TRUE(save_safetensors(path, views(ts), std::map<std::string, std::string>{{"k", "v\n\"q\""}}).is_ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f->metadata().at("k"), "v\n\"q\"");
  for (const auto& t : ts) {
    const auto* info = f->find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->dtype, t.dtype);
    EXPECT_EQ(info->shape, t.shape);
    const auto d = f->data(*info);
    EXPECT_TRUE(std::equal(d.begin(), d.end(), t.bytes.begin(), t.bytes.end())) << t.name;
  }
  std::filesystem::remove(path);
}

TEST(Safetensors, WriterRejectsBadTensors) {
  StTensor t = make<float>("x", StDtype::F32, {3}, {1, 2});  // 8 bytes for 3 floats
  EXPECT_FALSE(serialize_safetensors({t.view()}).is_ok());
  StTensor u = make<float>("x", StDtype::F32, {1}, {1});
  StTensor v = make<std::uint8_t>("x", StDtype::U8, {1}, {1});
  EXPECT_FALSE(serialize_safetensors({u.view(), v.view()}).is_ok());  // duplicate name
}

// ---- corruption suite ----

qlora::Result<SafetensorsFile> parse(std::vector<std::byte> b) { return SafetensorsFile::from_bytes(std::move(b), "bad.st"); }

std::vector<std::byte> with_header(const std::string& json, std::size_t data_bytes) {
  std::vector<std::byte> out(8 + json.size() + data_bytes);
  const std::uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, json.data(), json.size());
  return out;
}

void expect_error(const std::vector<std::byte>& b, const std::string& needle) {
  auto f = parse(b);
  ASSERT_FALSE(f.is_ok()) << "accepted: " << needle;
  EXPECT_EQ(f.status().code(), qlora::ErrorCode::kCorrupt);
  EXPECT_NE(f.status().message().find("bad.st"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find(needle), std::string::npos) << f.status().message();
}

TEST(SafetensorsCorrupt, EveryTruncationIsAnError) {
  const auto full = read_file(data_path("numpy_mixed.safetensors"));
  ASSERT_TRUE(parse(full).is_ok());
  for (std::size_t len = 0; len < full.size(); ++len) {
    auto f = parse(std::vector<std::byte>(full.begin(), full.begin() + std::ptrdiff_t(len)));
    EXPECT_FALSE(f.is_ok()) << "truncated to " << len;
  }
  auto extra = full;
  extra.push_back(std::byte{0});
  expect_error(extra, "trailing");
}

TEST(SafetensorsCorrupt, HeaderLength) {
  std::vector<std::byte> b(16);
  std::uint64_t n = 1ull << 40;
  std::memcpy(b.data(), &n, 8);
  expect_error(b, "exceeds");
  n = 9;
  std::memcpy(b.data(), &n, 8);
  expect_error(b, "past the end");
  n = ~0ull;
  std::memcpy(b.data(), &n, 8);
  expect_error(b, "exceeds");
}

TEST(SafetensorsCorrupt, BadJson) {
  expect_error(with_header("{\"a\":", 0), "JSON");
  expect_error(with_header("[1,2]   ", 0), "not a JSON object");
  expect_error(with_header("{\"a\":\"\xff\"}", 0), "JSON");  // invalid UTF-8
  expect_error(with_header("{\"a\":3}", 0), "not an object");
  expect_error(with_header("{\"__metadata__\":{\"k\":1}}", 0), "__metadata__");
  expect_error(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "data_offsets");
  expect_error(with_header("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), "unsupported dtype");
  expect_error(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), "shape");
  expect_error(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4), "shape");
  expect_error(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4), "data_offsets");
}

TEST(SafetensorsCorrupt, OffsetsAndSizes) {
  const std::string t1 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
  const std::string t2 = "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":";
  expect_error(with_header("{" + t1 + "[0,8]}}", 4), "past the end");
  expect_error(with_header("{" + t1 + "[0,12]}}", 12), "hold 12 bytes");     // dtype*shape mismatch
  expect_error(with_header("{" + t1 + "[8,0]}}", 8), "end before");
  expect_error(with_header("{" + t1 + "[0,8]}," + t2 + "[4,8]}}", 8), "overlaps");
  expect_error(with_header("{" + t1 + "[0,8]}," + t2 + "[12,16]}}", 16), "gap");
  expect_error(with_header("{" + t1 + "[4,12]}}", 12), "gap");
  expect_error(with_header("{\"a\":{\"dtype\":\"I64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0),
               "overflow");
  EXPECT_TRUE(parse(with_header("{" + t1 + "[0,8]}," + t2 + "[8,12]}}", 12)).is_ok());
}

}  // namespace
