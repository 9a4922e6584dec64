// Pins io/bnb_safetensors.hpp against files bitsandbytes + safetensors wrote
// (tests/data/golden/nf4/bnb_*.safetensors, tools/gen_nf4_golden.py): load,
// decode, re-save byte-identically, quantize-and-save from the same input,
// the quant_state JSON spelling, and error paths.
#include "qlora/io/bnb_safetensors.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#ifndef QLORA_TEST_DATA_DIR
#define QLORA_TEST_DATA_DIR "tests/data"
#endif

namespace {

using namespace qlora::io;
using namespace qlora::quant;

const std::string kPrefix = "model.layers.0.mlp.down_proj.";

std::string golden(const std::string& f) { return std::string(QLORA_TEST_DATA_DIR) + "/golden/nf4/" + f; }

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

std::vector<std::byte> serialize(const BnbNf4Weight& w) {
  auto ts = bnb_nf4_tensors(kPrefix, w);
  EXPECT_TRUE(ts.is_ok()) << ts.status().message();
  std::vector<StTensorView> v;
  for (const auto& t : *ts) v.push_back(t.view());
  return *serialize_safetensors(v);
}

/// The generator's input: scaled_300x128 rounded to bf16.
std::vector<float> bf16_input() {
  const auto raw = read_bytes(golden("scaled_300x128.f32"));
  std::vector<float> x(raw.size() / 4);
  std::memcpy(x.data(), raw.data(), raw.size());
  for (auto& v : x) v = qlora::bf16_to_f32(qlora::f32_to_bf16(v));
  return x;
}

TEST(BnbSafetensors, PythonFloatRepr) {
  using detail::python_float_repr;
  EXPECT_EQ(python_float_repr(8.550464630126953), "8.550464630126953");
  EXPECT_EQ(python_float_repr(0.5), "0.5");
  EXPECT_EQ(python_float_repr(2.0), "2.0");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(0.0), "0.0");
  EXPECT_EQ(python_float_repr(1e-05), "1e-05");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(1.5e-07), "1.5e-07");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(123456789012345.0), "123456789012345.0");
  EXPECT_EQ(python_float_repr(double(0.1f)), "0.10000000149011612");
}

TEST(BnbSafetensors, LoadsAndReSavesBitsandbytesFilesIdentically) {
  for (const char* name : {"bnb_nested.safetensors", "bnb_plain.safetensors"}) {
    SCOPED_TRACE(name);
    auto f = SafetensorsFile::open(golden(name));
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    auto w = load_bnb_nf4(*f, kPrefix);
    ASSERT_TRUE(w.is_ok()) << w.status().message();
    EXPECT_EQ(w->dtype, "bfloat16");
    EXPECT_EQ(w->tensor.shape, (std::vector<std::int64_t>{300, 128}));
    EXPECT_EQ(w->tensor.blocksize, 64);
    EXPECT_EQ(w->tensor.double_quant.has_value(), std::string(name) == "bnb_nested.safetensors");
    EXPECT_EQ(serialize(*w), read_bytes(golden(name)));
  }
}

TEST(BnbSafetensors, QuantizingTheSameInputGivesBitsandbytesFile) {
  const auto x = bf16_input();
  // Without double quant everything is reproduced from scratch.
  auto plain = quantize_nf4(x, {300, 128});
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(serialize({*plain, "bfloat16"}), read_bytes(golden("bnb_plain.safetensors")));
  // With double quant, pin bnb's offset (its torch mean is not reproduced
  // bit-for-bit). Then everything but the nested codes matches exactly; the
  // codes may differ from bnb's CPU lookup-table kernel by one neighbouring
  // code (we follow the CUDA search), and only rarely.
  auto f = SafetensorsFile::open(golden("bnb_nested.safetensors"));
  ASSERT_TRUE(f.is_ok());
  auto ref = load_bnb_nf4(*f, kPrefix);
  ASSERT_TRUE(ref.is_ok());
  const auto& rdq = *ref->tensor.double_quant;
  auto dq = double_quantize(plain->absmax, 256, rdq.offset);
  ASSERT_TRUE(dq.is_ok());
  EXPECT_EQ(plain->packed, ref->tensor.packed);
  EXPECT_EQ(dq->absmax2, rdq.absmax2);
  EXPECT_EQ(0, std::memcmp(dq->code.data(), rdq.code.data(), 1024));
  int differ = 0;
  for (std::size_t b = 0; b < rdq.qabsmax.size(); ++b) {
    if (dq->qabsmax[b] == rdq.qabsmax[b]) continue;
    ++differ;
    EXPECT_EQ(std::abs(int(dq->qabsmax[b]) - int(rdq.qabsmax[b])), 1) << b;
  }
  EXPECT_LE(differ, 3) << "of " << rdq.qabsmax.size();
  // With bnb's codes in place, our writer reproduces its file byte-for-byte.
  Nf4Tensor t = *plain;
  t.absmax.clear();
  t.double_quant = *dq;
  t.double_quant->qabsmax = rdq.qabsmax;
  EXPECT_EQ(serialize({t, "bfloat16"}), read_bytes(golden("bnb_nested.safetensors")));
  // And the decoded weights stay close to the input.
  auto y = dequantize_nf4(ref->tensor);
  ASSERT_TRUE(y.is_ok());
  double se = 0, s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    se += double((*y)[i] - x[i]) * ((*y)[i] - x[i]);
    s += double(x[i]) * x[i];
  }
  EXPECT_LT(std::sqrt(se / s), 0.11);
}

TEST(BnbSafetensors, QuantStateJsonSpelling) {
  auto t = quantize_nf4(std::vector<float>(130, 1.0f), {2, 65}, {.double_quant = true});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(bnb_quant_state_json(*t, "float16"),
            "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [2, 65], "
            "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 1.0}");
}

TEST(BnbSafetensors, SaveLoadRoundTripOddTensor) {
  std::vector<float> x(3 * 33);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i)) * float(i % 7);
  auto t = quantize_nf4(x, {3, 33}, {.blocksize = 32, .double_quant = true});
  ASSERT_TRUE(t.is_ok());
  const auto path = (std::filesystem::temp_directory_path() / "qlora_bnb_rt.safetensors").string();
  ASSERT_TRUE(save_bnb_nf4(path, "lin.", {*t, "float32"}).is_ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->find("lin.weight")->shape, (std::vector<std::int64_t>{50, 1}));
  auto w = load_bnb_nf4(*f, "lin.");
  ASSERT_TRUE(w.is_ok()) << w.status().message();
  EXPECT_EQ(*dequantize_nf4(w->tensor), *dequantize_nf4(*t));
  std::filesystem::remove(path);
}

TEST(BnbSafetensors, Errors) {
  auto f = SafetensorsFile::open(golden("bnb_plain.safetensors"));
  ASSERT_TRUE(f.is_ok());
  EXPECT_FALSE(load_bnb_nf4(*f, "model.layers.1.").is_ok());  // no such layer

  auto w = load_bnb_nf4(*f, kPrefix);
  ASSERT_TRUE(w.is_ok());
  auto ts = *bnb_nf4_tensors(kPrefix, *w);
  auto rebuild = [&](auto mutate) {
    auto copy = ts;
    mutate(copy);
    std::vector<StTensorView> v;
    for (const auto& t : copy) v.push_back(t.view());
    return std::move(SafetensorsFile::from_bytes(*serialize_safetensors(v), "mut.st").value());
  };
  // A non-NF4 codebook is another format.
  auto fp4 = rebuild([](std::vector<StTensor>& c) {
    for (auto& t : c)
      if (t.name.ends_with(".quant_map")) t.bytes[3] = std::byte{0};  // -1.0f -> tiny positive
  });
  auto r = load_bnb_nf4(fp4, kPrefix);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), qlora::ErrorCode::kUnsupported);
  // A shape that disagrees with the packed bytes.
  auto badshape = rebuild([](std::vector<StTensor>& c) {
    for (auto& t : c)
      if (t.name.ends_with("bitsandbytes__nf4")) {
        std::string s(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
        s.replace(s.find("[300, 128]"), 10, "[301, 128]");
        t.bytes.assign(reinterpret_cast<const std::byte*>(s.data()), reinterpret_cast<const std::byte*>(s.data()) + s.size());
        t.shape = {std::int64_t(s.size())};
      }
  });
  r = load_bnb_nf4(badshape, kPrefix);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("mut.st"), std::string::npos) << r.status().message();
  // Broken JSON.
  auto badjson = rebuild([](std::vector<StTensor>& c) {
    for (auto& t : c)
      if (t.name.ends_with("bitsandbytes__nf4")) t.bytes[0] = std::byte{'x'};
  });
  EXPECT_FALSE(load_bnb_nf4(badjson, kPrefix).is_ok());
}

}  // namespace
