// Tests for io/mapped_file.hpp, io/gguf.hpp and io/gguf_writer.hpp:
// round trips, a hand-assembled file (the spec, byte by byte), padding
// byte-exactness, and a corruption suite that must never crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/io/gguf.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/io/mapped_file.hpp"

namespace qlora::io {
namespace {

using Bytes = std::vector<std::byte>;

// Little-endian byte assembler for hand-written files.
struct Builder {
  Bytes b;
  template <class T>
  Builder& pod(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Builder& u8(std::uint8_t v) { return pod(v); }
  Builder& u32(std::uint32_t v) { return pod(v); }
  Builder& u64(std::uint64_t v) { return pod(v); }
  Builder& str(std::string_view s) {
    u64(s.size());
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Builder& magic(std::string_view m = "GGUF") {
    for (char c : m) b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Builder& header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
    return magic().u32(version).u64(n_tensors).u64(n_kv);
  }
  Builder& kv_u32(std::string_view key, std::uint32_t v) { return str(key).u32(4).u32(v); }
  Builder& tensor(std::string_view name, std::vector<std::uint64_t> ne, std::uint32_t type, std::uint64_t offset) {
    str(name).u32(static_cast<std::uint32_t>(ne.size()));
    for (auto n : ne) u64(n);
    return u32(type).u64(offset);
  }
  Builder& pad(std::size_t align) {
    while (b.size() % align) b.push_back(std::byte{0});
    return *this;
  }
  Builder& zeros(std::size_t n) {
    b.insert(b.end(), n, std::byte{0});
    return *this;
  }
};

Result<GgufFile> parse(const Bytes& b, std::string name = "test.gguf") { return GgufFile::parse(b, std::move(name)); }

// The error must be an error, name the file and carry a byte offset.
void expect_corrupt(const Bytes& b, std::string_view needle) {
  auto r = parse(b, "bad.gguf");
  ASSERT_FALSE(r.is_ok()) << "expected failure containing: " << needle;
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg;
}

std::span<const std::byte> as_bytes_of(const std::vector<float>& v) { return std::as_bytes(std::span(v)); }

// A writer holding one key of every scalar type and an array of every element type.
GgufWriter every_type_writer() {
  GgufWriter w;
  EXPECT_TRUE(w.set_u8("s.u8", 200).is_ok());
  EXPECT_TRUE(w.set_i8("s.i8", -100).is_ok());
  EXPECT_TRUE(w.set_u16("s.u16", 60000).is_ok());
  EXPECT_TRUE(w.set_i16("s.i16", -30000).is_ok());
  EXPECT_TRUE(w.set_u32("s.u32", 4000000000u).is_ok());
  EXPECT_TRUE(w.set_i32("s.i32", -2000000000).is_ok());
  EXPECT_TRUE(w.set_f32("s.f32", 1e-5f).is_ok());
  EXPECT_TRUE(w.set_bool("s.bool", true).is_ok());
  EXPECT_TRUE(w.set_string("s.str", "héllo\n").is_ok());
  EXPECT_TRUE(w.set_u64("s.u64", 0xFEDCBA9876543210ull).is_ok());
  EXPECT_TRUE(w.set_i64("s.i64", std::numeric_limits<std::int64_t>::min()).is_ok());
  EXPECT_TRUE(w.set_f64("s.f64", -0.1).is_ok());
  EXPECT_TRUE(w.set_array<std::uint8_t>("a.u8", {0, 255}).is_ok());
  EXPECT_TRUE(w.set_array<std::int8_t>("a.i8", {-128, 127}).is_ok());
  EXPECT_TRUE(w.set_array<std::uint16_t>("a.u16", {1, 65535}).is_ok());
  EXPECT_TRUE(w.set_array<std::int16_t>("a.i16", {-32768}).is_ok());
  EXPECT_TRUE(w.set_array<std::uint32_t>("a.u32", {}).is_ok());  // empty arrays are legal
  EXPECT_TRUE(w.set_array<std::int32_t>("a.i32", {1, 2, 3, 6}).is_ok());
  EXPECT_TRUE(w.set_array<float>("a.f32", {0.5f, -1.0f, INFINITY}).is_ok());
  EXPECT_TRUE(w.set_array<bool>("a.bool", {true, false, true}).is_ok());
  EXPECT_TRUE(w.set_string_array("a.str", {"", "a b", std::string(300, 'x')}).is_ok());
  EXPECT_TRUE(w.set_array<std::uint64_t>("a.u64", {~0ull}).is_ok());
  EXPECT_TRUE(w.set_array<std::int64_t>("a.i64", {-1, 0}).is_ok());
  EXPECT_TRUE(w.set_array<double>("a.f64", {3.25}).is_ok());
  return w;
}

// ---- round trips --------------------------------------------------------------

TEST(Gguf, RoundTripsEveryValueTypeInOrder) {
  GgufWriter w = every_type_writer();
  auto bytes = w.write_buffer();
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  auto f = parse(*bytes);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f->kvs(), w.kvs());  // same keys, values and order
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_TRUE(f->tensors().empty());

  EXPECT_EQ(*f->get_u8("s.u8"), 200);
  EXPECT_EQ(*f->get_i8("s.i8"), -100);
  EXPECT_EQ(*f->get_u16("s.u16"), 60000);
  EXPECT_EQ(*f->get_i16("s.i16"), -30000);
  EXPECT_EQ(*f->get_u32("s.u32"), 4000000000u);
  EXPECT_EQ(*f->get_i32("s.i32"), -2000000000);
  EXPECT_EQ(*f->get_f32("s.f32"), 1e-5f);
  EXPECT_EQ(*f->get_bool("s.bool"), true);
  EXPECT_EQ(*f->get_string("s.str"), "héllo\n");
  EXPECT_EQ(*f->get_u64("s.u64"), 0xFEDCBA9876543210ull);
  EXPECT_EQ(*f->get_i64("s.i64"), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(*f->get_f64("s.f64"), -0.1);
  EXPECT_EQ(f->get_array<std::int8_t>("a.i8")->size(), 2u);
  EXPECT_TRUE(f->get_u32_array("a.u32")->empty());
  EXPECT_EQ((*f->get_i32_array("a.i32"))[3], 6);
  EXPECT_TRUE(std::isinf((*f->get_f32_array("a.f32"))[2]));
  EXPECT_EQ(*f->get_bool_array("a.bool"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ((*f->get_string_array("a.str"))[2].size(), 300u);
  EXPECT_EQ(f->find("a.f64")->type_string(), "arr[f64]");

  // Writing what we read gives the same bytes back.
  GgufWriter again;
  for (const auto& kv : f->kvs()) ASSERT_TRUE(again.set(kv.key, kv.value).is_ok());
  EXPECT_EQ(*again.write_buffer(), *bytes);
}

TEST(Gguf, GettersExplainMissingKeysAndTypeMismatches) {
  auto f = parse(*every_type_writer().write_buffer(), "m.gguf");
  ASSERT_TRUE(f.is_ok());
  auto missing = f->get_u32("nope");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().message(), "m.gguf: key 'nope' missing");
  auto wrong = f->get_f32("s.u32");
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().message(), "m.gguf: key 's.u32' has type u32, expected f32");
  auto wrong_arr = f->get_u32_array("a.i32");
  ASSERT_FALSE(wrong_arr.is_ok());
  EXPECT_EQ(wrong_arr.status().message(), "m.gguf: key 'a.i32' has type arr[i32], expected arr[u32]");
  EXPECT_FALSE(f->get_string_array("s.str").is_ok());  // a scalar is not an array
}

TEST(GgufWriter, SetOfExistingKeyMovesItToTheEndLikeGgml) {
  GgufWriter w;
  ASSERT_TRUE(w.set_u32("a", 1).is_ok());
  ASSERT_TRUE(w.set_u32("b", 2).is_ok());
  ASSERT_TRUE(w.set_string("a", "now a string").is_ok());
  ASSERT_EQ(w.kvs().size(), 2u);
  EXPECT_EQ(w.kvs()[0].key, "b");
  EXPECT_EQ(w.kvs()[1].key, "a");
  EXPECT_TRUE(w.remove("b"));
  EXPECT_FALSE(w.remove("b"));
  EXPECT_FALSE(w.set_u32("", 1).is_ok());
  EXPECT_FALSE(w.set_u64("general.alignment", 64).is_ok());  // must be u32
  EXPECT_FALSE(w.set_alignment(48).is_ok());                 // must be a power of two
  EXPECT_FALSE(w.set_alignment(0).is_ok());
}

// ---- the spec, byte by byte -------------------------------------------------------

// One KV of each shape and two f32 tensors, assembled by hand from
// formats.md §1.1. The writer must produce exactly these bytes.
Bytes hand_assembled_file() {
  Builder b;
  b.header(2, 3);
  b.str("general.architecture").u32(8).str("llama");
  b.kv_u32("llama.block_count", 7);
  b.str("tokenizer.ggml.scores").u32(9).u32(6).u64(2).pod(1.5f).pod(-2.0f);
  b.tensor("a", {4, 2}, 0, 0);  // 32 bytes -> padded 32
  b.tensor("b", {3}, 0, 32);    // 12 bytes -> padded 32
  b.pad(32);
  for (int i = 0; i < 8; ++i) b.pod(float(i));
  for (int i = 0; i < 3; ++i) b.pod(float(10 + i));
  b.pad(32);  // the last tensor is padded too
  return b.b;
}

TEST(Gguf, ParsesHandAssembledFile) {
  Bytes bytes = hand_assembled_file();
  auto f = parse(bytes);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  ASSERT_EQ(f->kvs().size(), 3u);
  EXPECT_EQ(f->kvs()[0].key, "general.architecture");
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_u32("llama.block_count"), 7u);
  auto scores = f->get_f32_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.is_ok());
  EXPECT_EQ(std::vector<float>(scores->begin(), scores->end()), (std::vector<float>{1.5f, -2.0f}));

  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo* a = f->find_tensor("a");
  const GgufTensorInfo* b = f->find_tensor("b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->n_dims, 2u);
  EXPECT_EQ(a->ne, (std::array<std::uint64_t, 4>{4, 2, 1, 1}));
  EXPECT_EQ(a->n_elements(), 8u);
  EXPECT_EQ(a->n_bytes, 32u);
  EXPECT_EQ(b->offset, 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_EQ(f->data_size(), 64u);
  // Zero-copy: the view points into our buffer.
  EXPECT_EQ(a->data.data(), bytes.data() + f->data_offset());
  float v = 0;
  std::memcpy(&v, b->data.data() + 8, 4);
  EXPECT_EQ(v, 12.0f);
  EXPECT_EQ(f->find_tensor("c"), nullptr);
}

TEST(GgufWriter, MatchesHandAssembledBytesExactly) {
  std::vector<float> a = {0, 1, 2, 3, 4, 5, 6, 7}, b = {10, 11, 12};
  GgufWriter w;
  ASSERT_TRUE(w.set_string("general.architecture", "llama").is_ok());
  ASSERT_TRUE(w.set_u32("llama.block_count", 7).is_ok());
  ASSERT_TRUE(w.set_array<float>("tokenizer.ggml.scores", {1.5f, -2.0f}).is_ok());
  ASSERT_TRUE(w.add_tensor("a", {4, 2}, 0, as_bytes_of(a)).is_ok());
  ASSERT_TRUE(w.add_tensor("b", {3}, 0, as_bytes_of(b)).is_ok());
  auto out = w.write_buffer();
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(*out, hand_assembled_file());
}

// Made by gguf-py (GGUFWriter, default alignment) from the same KVs and
// tensors as gguf_py_equivalent_writer() below; our writer must match it
// byte for byte. Regenerate with gguf-py if this ever needs to change.
constexpr std::string_view kGgufPyFileHex =
    "474755460300000003000000000000000a00000000000000140000000000000067656e6572616c2e6172636869746563"
    "747572650800000005000000000000006c6c616d6111000000000000006c6c616d612e626c6f636b5f636f756e740400"
    "00000700000014000000000000006c6c616d612e726f70652e667265715f626173650600000000401c461c0000000000"
    "0000746f6b656e697a65722e67676d6c2e6164645f626f735f746f6b656e07000000011400000000000000746f6b656e"
    "697a65722e67676d6c2e6d6f64656c080000000400000000000000677074321500000000000000746f6b656e697a6572"
    "2e67676d6c2e746f6b656e73090000000800000003000000000000000100000000000000610200000000000000626300"
    "000000000000001500000000000000746f6b656e697a65722e67676d6c2e73636f726573090000000600000002000000"
    "000000000000c03f000000c01900000000000000746f6b656e697a65722e67676d6c2e746f6b656e5f74797065090000"
    "000500000003000000000000000100000003000000060000000500000000000000782e7536340a000000141a99be1c00"
    "00000500000000000000782e6636340c0000009a9999999999b9bf010000000000000061020000000400000000000000"
    "020000000000000000000000000000000000000001000000000000007102000000400000000000000002000000000000"
    "0008000000200000000000000001000000000000006e01000000030000000000000000000000c0000000000000000000"
    "000000000000803f0000004000004040000080400000a0400000c0400000e040000102030405060708090a0b0c0d0e0f"
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f"
    "707172737475767778797a7b7c7d7e7f8081828384858687000000000000000000000000000000000000000000000000"
    "0000803f00000040000040400000000000000000000000000000000000000000";

Bytes from_hex(std::string_view hex) {
  Bytes out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(std::byte(nib(hex[i]) << 4 | nib(hex[i + 1])));
  return out;
}

TEST(GgufWriter, MatchesGgufPyByteForByte) {
  std::vector<float> a(8), n = {1, 2, 3};
  for (int i = 0; i < 8; ++i) a[i] = float(i);
  std::vector<std::uint8_t> q(136);
  for (int i = 0; i < 136; ++i) q[i] = std::uint8_t(i % 251);
  GgufWriter w;
  ASSERT_TRUE(w.set_string("general.architecture", "llama").is_ok());
  ASSERT_TRUE(w.set_u32("llama.block_count", 7).is_ok());
  ASSERT_TRUE(w.set_f32("llama.rope.freq_base", 10000.0f).is_ok());
  ASSERT_TRUE(w.set_bool("tokenizer.ggml.add_bos_token", true).is_ok());
  ASSERT_TRUE(w.set_string("tokenizer.ggml.model", "gpt2").is_ok());
  ASSERT_TRUE(w.set_string_array("tokenizer.ggml.tokens", {"a", "bc", ""}).is_ok());
  ASSERT_TRUE(w.set_array<float>("tokenizer.ggml.scores", {1.5f, -2.0f}).is_ok());
  ASSERT_TRUE(w.set_array<std::int32_t>("tokenizer.ggml.token_type", {1, 3, 6}).is_ok());
  ASSERT_TRUE(w.set_u64("x.u64", 123456789012ull).is_ok());
  ASSERT_TRUE(w.set_f64("x.f64", -0.1).is_ok());
  ASSERT_TRUE(w.add_tensor("a", {4, 2}, 0, as_bytes_of(a)).is_ok());
  ASSERT_TRUE(w.add_tensor("q", {64, 2}, 8, std::as_bytes(std::span(q))).is_ok());
  ASSERT_TRUE(w.add_tensor("n", {3}, 0, as_bytes_of(n)).is_ok());
  const Bytes expected = from_hex(kGgufPyFileHex);
  ASSERT_EQ(expected.size(), 800u);
  EXPECT_EQ(*w.write_buffer(), expected);
  auto f = parse(expected, "gguf-py.gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f->kvs(), w.kvs());
}

TEST(GgufWriter, PadsHeaderAndEveryTensorToCustomAlignmentWithZeros) {
  std::vector<std::uint8_t> q8(34 * 3, 0xAB);  // 3 q8_0 blocks = 102 bytes
  std::vector<float> x(5, 1.0f);
  GgufWriter w;
  ASSERT_TRUE(w.set_alignment(64).is_ok());
  ASSERT_TRUE(w.add_tensor("q", {96}, 8, std::as_bytes(std::span(q8))).is_ok());
  ASSERT_TRUE(w.add_tensor("x", {5}, 0, as_bytes_of(x)).is_ok());
  auto out = w.write_buffer();
  ASSERT_TRUE(out.is_ok());
  auto f = parse(*out);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f->alignment(), 64u);
  const std::uint64_t d = f->data_offset();
  EXPECT_EQ(d % 64, 0u);
  EXPECT_EQ(f->tensors()[1].offset, 128u);  // pad(102, 64)
  EXPECT_EQ(out->size(), d + 128 + 64);      // last tensor padded as well
  EXPECT_EQ(f->data_size(), 192u);
  // Every padding byte (after the header, after each tensor) is zero.
  auto all_zero = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i)
      if ((*out)[i] != std::byte{0}) return false;
    return true;
  };
  // 24 header + 33 alignment KV + 2 x 33 tensor infos = 123, padded to 128.
  EXPECT_EQ(d, 128u);
  EXPECT_TRUE(all_zero(123, 128));
  EXPECT_TRUE(all_zero(d + 102, d + 128));
  EXPECT_TRUE(all_zero(d + 128 + 20, d + 192));
  EXPECT_EQ(f->tensors()[0].data[101], std::byte{0xAB});
}

TEST(GgufWriter, PadsHeaderEvenWithoutTensors) {
  GgufWriter w;
  ASSERT_TRUE(w.set_u8("k", 1).is_ok());
  auto out = w.write_buffer();
  ASSERT_TRUE(out.is_ok());
  // 4+4+8+8 header, 8+1 key, 4 type, 1 value = 38 -> padded to 64.
  EXPECT_EQ(out->size(), 64u);
  // A metadata-only file without the padding is still accepted (ggml does).
  Bytes trimmed(out->begin(), out->begin() + 38);
  EXPECT_TRUE(parse(trimmed).is_ok());
}

TEST(GgufWriter, StreamsTensorsFromProducers) {
  GgufWriter w;
  auto producer = [](GgufByteSink& sink) -> Status {
    for (int chunk = 0; chunk < 4; ++chunk) {
      std::vector<float> part(16, float(chunk));
      QLORA_TRY(sink.write_values(std::span<const float>(part)));
    }
    return Status::ok();
  };
  ASSERT_TRUE(w.add_tensor("streamed", {32, 2}, 0, producer).is_ok());
  auto out = w.write_buffer();
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  auto f = parse(*out);
  ASSERT_TRUE(f.is_ok());
  float last = 0;
  std::memcpy(&last, f->tensors()[0].data.data() + 63 * 4, 4);
  EXPECT_EQ(last, 3.0f);

  GgufWriter shortw, longw;
  ASSERT_TRUE(shortw.add_tensor("t", {32}, 0, [](GgufByteSink& s) {
    std::vector<float> v(31);
    return s.write_values(std::span<const float>(v));
  }).is_ok());
  auto short_out = shortw.write_buffer();
  ASSERT_FALSE(short_out.is_ok());
  EXPECT_NE(short_out.status().message().find("wrote 124 bytes, expected 128"), std::string::npos);
  ASSERT_TRUE(longw.add_tensor("t", {32}, 0, [](GgufByteSink& s) {
    std::vector<float> v(33);
    return s.write_values(std::span<const float>(v));
  }).is_ok());
  EXPECT_FALSE(longw.write_buffer().is_ok());
}

TEST(GgufWriter, RejectsInvalidTensors) {
  std::vector<float> x(32);
  GgufWriter w;
  EXPECT_FALSE(w.add_tensor(std::string(64, 'n'), {32}, 0, as_bytes_of(x)).is_ok());
  EXPECT_TRUE(w.add_tensor(std::string(63, 'n'), {32}, 0, as_bytes_of(x)).is_ok());
  EXPECT_FALSE(w.add_tensor(std::string(63, 'n'), {32}, 0, as_bytes_of(x)).is_ok());  // duplicate
  EXPECT_FALSE(w.add_tensor("t", {16, 2}, 8, as_bytes_of(x)).is_ok());                 // q8_0 needs ne[0] % 32
  EXPECT_FALSE(w.add_tensor("t", {32}, 99, as_bytes_of(x)).is_ok());                   // unknown type
  EXPECT_FALSE(w.add_tensor("t", {1, 1, 1, 1, 32}, 0, as_bytes_of(x)).is_ok());        // 5 dims
  EXPECT_FALSE(w.add_tensor("t", {31}, 0, as_bytes_of(x)).is_ok());                    // wrong data size
  EXPECT_FALSE(w.add_tensor("t", {1ull << 40, 1ull << 40}, 0, as_bytes_of(x)).is_ok()); // overflow
  EXPECT_EQ(w.tensor_count(), 1u);
}

// ---- files ------------------------------------------------------------------------

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "qlora_gguf_XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(GgufWriter, WritesFileAtomicallyAndOpenMapsIt) {
  TempDir dir;
  const std::string path = (dir.path / "model.gguf").string();
  std::vector<float> x(64, 2.5f);
  GgufWriter w = every_type_writer();
  ASSERT_TRUE(w.add_tensor("x", {64}, 0, as_bytes_of(x)).is_ok());
  ASSERT_TRUE(w.write_file(path).is_ok());
  ASSERT_TRUE(w.write_file(path).is_ok());  // replaces the existing file
  // Only the target remains: the temporary was renamed, not left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 1);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f->name(), path);
  EXPECT_EQ(f->kvs(), w.kvs());
  float v = 0;
  std::memcpy(&v, f->tensors()[0].data.data(), 4);
  EXPECT_EQ(v, 2.5f);
  // The mapping survives moving the GgufFile.
  GgufFile moved = std::move(f).value();
  std::memcpy(&v, moved.tensors()[0].data.data() + 252, 4);
  EXPECT_EQ(v, 2.5f);
  EXPECT_EQ(std::filesystem::file_size(path), w.write_buffer()->size());

  auto bad = w.write_file((dir.path / "no/such/dir/m.gguf").string());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.code(), ErrorCode::kIo);
  EXPECT_NE(bad.message().find("no/such/dir/m.gguf"), std::string::npos) << bad.message();
}

TEST(MappedFile, HandlesEmptyMissingAndNonRegularFiles) {
  TempDir dir;
  const std::string empty = (dir.path / "empty").string();
  std::ofstream(empty).close();
  auto m = MappedFile::open(empty);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_TRUE(m->empty());
  EXPECT_TRUE(m->bytes().empty());

  auto missing = MappedFile::open((dir.path / "missing.gguf").string());
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
  EXPECT_NE(missing.status().message().find("missing.gguf"), std::string::npos);
  EXPECT_NE(missing.status().message().find("No such file"), std::string::npos);
  EXPECT_FALSE(MappedFile::open(dir.path.string()).is_ok());  // a directory

  auto g = GgufFile::open(empty);  // an empty file is a truncated GGUF
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find(empty + ": offset 0"), std::string::npos) << g.status().message();
}

// ---- corruption suite ---------------------------------------------------------------

TEST(GgufCorrupt, EveryTruncationFailsWithFileAndOffset) {
  std::vector<float> a(32, 1.0f);
  GgufWriter w = every_type_writer();
  ASSERT_TRUE(w.add_tensor("a", {32}, 0, as_bytes_of(a)).is_ok());
  ASSERT_TRUE(w.add_tensor("b", {8, 4}, 0, as_bytes_of(a)).is_ok());
  Bytes full = *w.write_buffer();
  ASSERT_TRUE(parse(full).is_ok());
  for (std::size_t n = 0; n < full.size(); ++n) {
    // A fresh exact-size allocation so ASan would flag any read past the end.
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = parse(cut, "cut.gguf");
    ASSERT_FALSE(r.is_ok()) << "truncated to " << n << " bytes was accepted";
    const std::string msg = r.status().message();
    EXPECT_EQ(msg.rfind("cut.gguf: offset ", 0), 0u) << n << ": " << msg;
  }
}

TEST(GgufCorrupt, BadMagic) { expect_corrupt(Builder().magic("GGUG").u32(3).u64(0).u64(0).b, "bad magic 'GGUG'"); }

TEST(GgufCorrupt, UnsupportedVersions) {
  expect_corrupt(Builder().header(0, 0, 2).b, "version 2 is not supported");
  expect_corrupt(Builder().header(0, 0, 4).b, "version 4 is not supported");
  expect_corrupt(Builder().header(0, 0, 0x03000000).b, "big-endian");
  EXPECT_EQ(parse(Builder().header(0, 0, 4).b).status().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(parse(Builder().header(0, 0).b).is_ok());  // an empty v3 file is fine
}

TEST(GgufCorrupt, HugeCountsFailBeforeAllocating) {
  expect_corrupt(Builder().header(0, 1ull << 60).b, "offset 16: kv count 1152921504606846976 cannot fit");
  expect_corrupt(Builder().header(1ull << 60, 0).b, "offset 8: tensor count");
  expect_corrupt(Builder().header(0, ~0ull).b, "kv count");
  // An array claiming 2^60 u64 elements.
  expect_corrupt(Builder().header(0, 1).str("k").u32(9).u32(10).u64(1ull << 60).b, "offset 41: array length of 'k'");
  // A string array: each element needs at least its 8-byte length.
  expect_corrupt(Builder().header(0, 1).str("k").u32(9).u32(8).u64(3).zeros(16).b, "array length of 'k'");
}

TEST(GgufCorrupt, StringLengthPastEnd) {
  expect_corrupt(Builder().header(0, 1).u64(1000).magic("key").zeros(20).b,
                 "offset 24: key length 1000 runs past the end of the file (23 bytes left)");
  expect_corrupt(Builder().header(0, 1).str("k").u32(8).u64(~0ull).b, "string value of 'k' length");
  expect_corrupt(Builder().header(1, 0).u64(500).zeros(30).b, "offset 24: tensor name length 500");
}

TEST(GgufCorrupt, KeysMustBeUniqueAndNonEmpty) {
  expect_corrupt(Builder().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "offset 41: duplicate key 'k'");
  expect_corrupt(Builder().header(0, 1).kv_u32("", 1).b, "offset 24: empty key");
}

TEST(GgufCorrupt, BadValueTypes) {
  expect_corrupt(Builder().header(0, 1).str("k").u32(13).u32(0).b, "offset 33: key 'k' has invalid value type 13");
  expect_corrupt(Builder().header(0, 1).str("k").u32(9).u32(9).u64(0).b, "offset 37: key 'k' is a nested array");
  expect_corrupt(Builder().header(0, 1).str("k").u32(9).u32(77).u64(0).b, "invalid array element type 77");
}

TEST(GgufCorrupt, BadAlignment) {
  expect_corrupt(Builder().header(0, 1).kv_u32("general.alignment", 48).b, "not a power of two");
  expect_corrupt(Builder().header(0, 1).kv_u32("general.alignment", 0).b, "not a power of two");
  expect_corrupt(Builder().header(0, 1).kv_u32("general.alignment", 1u << 21).b, "exceeds the maximum");
  expect_corrupt(Builder().header(0, 1).str("general.alignment").u32(10).u64(32).b, "has type u64, expected u32");
  EXPECT_TRUE(parse(Builder().header(0, 1).kv_u32("general.alignment", 1).b).is_ok());
}

// Two f32 tensors of 12 bytes (padded to 32) with the given offsets.
Bytes two_tensors(std::uint64_t off_a, std::uint64_t off_b, std::size_t data_bytes = 64) {
  Builder b;
  b.header(2, 0).tensor("a", {3}, 0, off_a).tensor("b", {3}, 0, off_b).pad(32).zeros(data_bytes);
  return b.b;
}

TEST(GgufCorrupt, TensorOffsetsMustBePackedAlignedAndInBounds) {
  ASSERT_TRUE(parse(two_tensors(0, 32)).is_ok());
  expect_corrupt(two_tensors(0, 16), "tensor 'b' data offset 16 is not a multiple of the alignment 32");
  expect_corrupt(two_tensors(0, 0), "tensor 'b' data offset 0, expected 32");    // overlaps 'a'
  expect_corrupt(two_tensors(0, 64), "tensor 'b' data offset 64, expected 32");  // a gap
  expect_corrupt(two_tensors(32, 64), "tensor 'a' data offset 32, expected 0");
  expect_corrupt(two_tensors(0, 1ull << 62), "expected 32");
  expect_corrupt(two_tensors(0, 32, 63), "tensor 'b' needs 32 bytes (with padding) but the file ends");
  auto r = parse(two_tensors(0, 16), "x.gguf");
  EXPECT_NE(r.status().message().find("x.gguf: offset 96:"), std::string::npos) << r.status().message();
}

TEST(GgufCorrupt, TensorInfoChecks) {
  auto one = [](std::vector<std::uint64_t> ne, std::uint32_t type, std::string name = "t") {
    return Builder().header(1, 0).tensor(name, ne, type, 0).pad(32).zeros(1 << 12).b;
  };
  ASSERT_TRUE(parse(one({32, 2}, 8)).is_ok());
  expect_corrupt(one({32}, 99), "tensor 't': unknown ggml type id 99");
  expect_corrupt(one({32}, 4), "unknown ggml type id 4");  // a removed ggml type (q4_2)
  expect_corrupt(one({16, 2}, 8), "tensor 't': type q8_0 needs ne[0] to be a multiple of 32, got 16");
  expect_corrupt(one({100}, 12), "multiple of 256");
  expect_corrupt(one({1, 1, 1, 1, 1}, 0), "offset 33: tensor 't' has 5 dims");
  expect_corrupt(one({1ull << 32, 1ull << 32}, 0), "element count overflows int64");
  expect_corrupt(one({1ull << 63}, 0), "element count overflows int64");
  expect_corrupt(one({32}, 0, std::string(64, 'n')), "is 64 bytes, the limit is 63");
  EXPECT_TRUE(parse(one({8}, 0, std::string(63, 'n'))).is_ok());
  expect_corrupt(Builder().header(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).pad(32).zeros(64).b,
                 "duplicate tensor name 't'");
  // Zero-sized and 0-dim tensors are legal (ggml accepts ne = 0 and scalars).
  auto zero = parse(Builder().header(2, 0).tensor("z", {0, 4}, 8, 0).tensor("s", {}, 0, 0).pad(32).zeros(32).b);
  ASSERT_TRUE(zero.is_ok()) << zero.status().message();
  EXPECT_EQ(zero->tensors()[0].n_bytes, 0u);
  EXPECT_EQ(zero->tensors()[1].n_bytes, 4u);
}

}  // namespace
}  // namespace qlora::io
