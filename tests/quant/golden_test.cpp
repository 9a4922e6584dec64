// Golden vectors from llama.cpp's ggml (tools/gen_golden.py) replayed against
// qlora: quantize_row<F> must be byte-identical to quantize_row_<f>_ref, our
// decoders must reproduce ggml's dequantize_row_<f> bit for bit, and the
// fp16/bf16 scalar conversions must match ggml_fp32_to_{fp16,bf16}_row.
//
// The data lives in QLORA_TEST_DATA_DIR "/golden" and is described by
// MANIFEST.json; each file's sha256 is verified before use so a damaged or
// LFS-pointer checkout fails loudly instead of producing confusing diffs.
#include <gtest/gtest.h>

#include "qlora/core/sha256.hpp"
#include "quant/test_data.hpp"

#include <array>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "qlora/core/half.hpp"
#include "qlora/quant/row.hpp"

#ifndef QLORA_TEST_DATA_DIR
#error "define QLORA_TEST_DATA_DIR (absolute path of tests/data)"
#endif

namespace {

using Bytes = std::vector<std::uint8_t>;
using nlohmann::json;
namespace fmt = qlora::quant::format;

const std::string kGoldenDir = std::string(QLORA_TEST_DATA_DIR) + "/golden";

// ---------------------------------------------------------------- hashing

/// Digest of a golden file, to verify it against the manifest.
std::string sha256_hex(const Bytes& msg) { return qlora::sha256_hex(std::as_bytes(std::span(msg))); }

/// FNV-1a 64: the manifest stores it for ggml's dequantization of each output.
std::string fnv1a64_hex(const void* data, std::size_t n) {
  const std::uint64_t h = qlora::test::fnv1a(data, n);
  char out[17];
  std::snprintf(out, sizeof out, "%016" PRIx64, h);
  return out;
}

// ---------------------------------------------------------------- data access

const json& manifest() {
  static const json m = [] {
    std::ifstream in(kGoldenDir + "/MANIFEST.json");
    if (!in) return json();
    return json::parse(in);
  }();
  return m;
}

/// Read a golden file named by a manifest record and check its size and sha256.
Bytes load(const json& rec) {
  const std::string name = rec.at("file").get<std::string>();
  std::ifstream in(kGoldenDir + "/" + name, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot open " << kGoldenDir << "/" << name;
    return {};
  }
  Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(b.size(), rec.at("bytes").get<std::size_t>()) << name;
  EXPECT_EQ(sha256_hex(b), rec.at("sha256").get<std::string>()) << name << ": file does not match MANIFEST.json";
  return b;
}

std::vector<float> as_floats(const Bytes& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    s += buf;
    if (i + 1 < n && (i + 1) % 32 == 0) s += "\n      ";
  }
  return s;
}

std::string float_list(const float* x, int n) {
  std::ostringstream os;
  os.precision(9);
  for (int i = 0; i < n; ++i) os << (i ? " " : "") << x[i];
  return os.str();
}

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// ---------------------------------------------------------------- format dispatch

/// Calls fn.template operator()<F>() for a manifest format name.
template <class Fn>
bool with_format(const std::string& name, Fn&& fn) {
  if (name == "q8_0") return fn.template operator()<fmt::Q8_0>(), true;
  if (name == "q5_0") return fn.template operator()<fmt::Q5_0>(), true;
  if (name == "q4_1") return fn.template operator()<fmt::Q4_1>(), true;
  if (name == "q4_K") return fn.template operator()<fmt::Q4_K>(), true;
  if (name == "q6_K") return fn.template operator()<fmt::Q6_K>(), true;
  if (name == "q8_K") return fn.template operator()<fmt::Q8_K>(), true;
  return false;
}

/// Byte comparison with a precise report: first differing block, both blocks, its input.
template <class F>
void expect_same_blocks(const Bytes& ours, const Bytes& peer, const std::vector<float>& x, const std::string& what) {
  using T = qlora::quant::FormatTraits<F>;
  ASSERT_EQ(ours.size(), peer.size()) << what;
  const std::size_t nb = peer.size() / T::kBlockBytes;
  std::size_t first = nb, count = 0;
  for (std::size_t b = 0; b < nb; ++b) {
    if (std::memcmp(ours.data() + b * T::kBlockBytes, peer.data() + b * T::kBlockBytes, T::kBlockBytes) != 0) {
      if (first == nb) first = b;
      ++count;
    }
  }
  if (count == 0) return;
  std::size_t byte = 0;
  while (ours[first * T::kBlockBytes + byte] == peer[first * T::kBlockBytes + byte]) ++byte;
  ADD_FAILURE() << what << ": " << count << " of " << nb << " blocks differ; first differing block " << first
                << " (first differing byte offset " << byte << " within the block)\n"
                << "  ggml : " << hex(peer.data() + first * T::kBlockBytes, T::kBlockBytes) << "\n"
                << "  qlora: " << hex(ours.data() + first * T::kBlockBytes, T::kBlockBytes) << "\n"
                << "  input[0..8) of that block: " << float_list(x.data() + first * T::kBlockElems, 8);
}

/// Bit-exact float comparison (NaN payloads included) with the first difference reported.
void expect_same_floats(const std::vector<float>& ours, const std::vector<float>& peer, const std::string& what) {
  ASSERT_EQ(ours.size(), peer.size()) << what;
  std::size_t count = 0, first = 0;
  for (std::size_t i = 0; i < peer.size(); ++i)
    if (bits_of(ours[i]) != bits_of(peer[i]) && count++ == 0) first = i;
  if (count == 0) return;
  char buf[160];
  std::snprintf(buf, sizeof buf, "index %zu: ggml %.9g (0x%08x), qlora %.9g (0x%08x)", first, peer[first],
                bits_of(peer[first]), ours[first], bits_of(ours[first]));
  ADD_FAILURE() << what << ": " << count << " of " << peer.size() << " values differ; first at " << buf;
}

// ---------------------------------------------------------------- parameterised cases

struct QuantParam {
  std::string case_name, format;
};
std::ostream& operator<<(std::ostream& os, const QuantParam& p) { return os << p.case_name << "/" << p.format; }

std::vector<QuantParam> quant_params(const char* section) {
  std::vector<QuantParam> out;
  const json& m = manifest();
  if (!m.is_object()) return out;
  for (const auto& [name, c] : m.at("cases").items())
    for (const auto& [f, rec] : c.at(section).items()) out.push_back({name, f});
  return out;
}

std::string param_name(const testing::TestParamInfo<QuantParam>& info) {
  return info.param.case_name + "_" + info.param.format;
}

TEST(Golden, ManifestPresent) {
  ASSERT_TRUE(manifest().is_object()) << "missing or invalid " << kGoldenDir
                                      << "/MANIFEST.json (regenerate with python3 tools/gen_golden.py)";
  EXPECT_FALSE(manifest().at("cases").empty());
  EXPECT_TRUE(manifest().contains("floats"));
}

class GoldenQuantize : public testing::TestWithParam<QuantParam> {};

// quantize_row<F>(input) == quantize_row_<f>_ref(input), and our dequantize of
// those peer bytes == ggml's dequantize (by hash).
TEST_P(GoldenQuantize, MatchesGgmlReference) {
  const auto& [case_name, format] = GetParam();
  const json& c = manifest().at("cases").at(case_name);
  const json& rec = c.at("quant").at(format);
  const std::vector<float> x = as_floats(load(c.at("input")));
  const Bytes peer = load(rec);
  ASSERT_EQ(std::int64_t(x.size()), c.at("n").get<std::int64_t>());
  const bool known = with_format(format, [&]<class F>() {
    using T = qlora::quant::FormatTraits<F>;
    const std::int64_t n = std::int64_t(x.size());
    if constexpr (qlora::quant::QuantizableFormat<F>) {
      Bytes ours(std::size_t(n / T::kBlockElems) * T::kBlockBytes, 0);
      qlora::quant::quantize_row<F>(x.data(), ours.data(), n);
      expect_same_blocks<F>(ours, peer, x, case_name + " " + format + " quantize");
    } else {
      ADD_FAILURE() << format << " has no qlora quantizer but the manifest lists reference bytes for it";
    }

    std::vector<float> y(std::size_t(n), 0.0f);
    qlora::quant::dequantize_row<F>(peer.data(), y.data(), n);
    EXPECT_EQ(fnv1a64_hex(y.data(), y.size() * 4), rec.at("dequant_fnv1a64").get<std::string>())
        << case_name << " " << format << ": dequantize of ggml's bytes differs from ggml's dequantize_row_" << format;
  });
  EXPECT_TRUE(known) << "unknown format " << format;
}
INSTANTIATE_TEST_SUITE_P(Golden, GoldenQuantize, testing::ValuesIn(quant_params("quant")), param_name);

class GoldenDecode : public testing::TestWithParam<QuantParam> {};

// dequantize_row<F>(blocks) == ggml dequantize_row_<f>(blocks), bit for bit.
TEST_P(GoldenDecode, MatchesGgmlDequantize) {
  const auto& [case_name, format] = GetParam();
  const json& rec = manifest().at("cases").at(case_name).at("decode").at(format);
  const Bytes blocks = load(rec.at("blocks"));
  const std::vector<float> peer = as_floats(load(rec.at("dequant")));
  const bool known = with_format(format, [&]<class F>() {
    using T = qlora::quant::FormatTraits<F>;
    ASSERT_EQ(blocks.size() / T::kBlockBytes * T::kBlockElems, peer.size());
    std::vector<float> ours(peer.size(), 0.0f);
    qlora::quant::dequantize_row<F>(blocks.data(), ours.data(), std::int64_t(ours.size()));
    expect_same_floats(ours, peer, case_name + " " + format + " dequantize");
  });
  EXPECT_TRUE(known) << "unknown format " << format;
}
INSTANTIATE_TEST_SUITE_P(Golden, GoldenDecode, testing::ValuesIn(quant_params("decode")), param_name);

// ---------------------------------------------------------------- fp16 / bf16

struct FloatGolden {
  std::vector<std::uint32_t> in;
  std::vector<std::uint16_t> f16, bf16;
};

FloatGolden load_floats() {
  const json& f = manifest().at("floats");
  auto u32 = [](const Bytes& b) {
    std::vector<std::uint32_t> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), v.size() * 4);
    return v;
  };
  auto u16 = [](const Bytes& b) {
    std::vector<std::uint16_t> v(b.size() / 2);
    std::memcpy(v.data(), b.data(), v.size() * 2);
    return v;
  };
  return {u32(load(f.at("input"))), u16(load(f.at("f16"))), u16(load(f.at("bf16")))};
}

void expect_same_halves(const FloatGolden& g, const std::vector<std::uint16_t>& peer,
                        const std::function<std::uint16_t(float)>& conv, const char* what) {
  ASSERT_EQ(peer.size(), g.in.size());
  int failures = 0;
  for (std::size_t i = 0; i < g.in.size(); ++i) {
    float x;
    std::memcpy(&x, &g.in[i], 4);
    const std::uint16_t ours = conv(x);
    if (ours != peer[i] && failures++ < 10)
      ADD_FAILURE() << what << " of fp32 0x" << std::hex << g.in[i] << " (" << std::dec << x << ", index " << i
                    << "): ggml 0x" << std::hex << peer[i] << ", qlora 0x" << ours;
  }
  EXPECT_EQ(failures, 0) << what << ": total mismatches";
}

TEST(GoldenFloat, Fp32ToFp16MatchesGgml) {
  const FloatGolden g = load_floats();
  expect_same_halves(g, g.f16, [](float x) { return qlora::f32_to_fp16(x); }, "f32_to_fp16");
}

TEST(GoldenFloat, Fp32ToBf16MatchesGgml) {
  const FloatGolden g = load_floats();
  expect_same_halves(g, g.bf16, [](float x) { return qlora::f32_to_bf16(x); }, "f32_to_bf16");
}

// The row API for F16/BF16 must go through the same conversion.
TEST(GoldenFloat, RowApiMatchesGgml) {
  const FloatGolden g = load_floats();
  std::vector<float> x(g.in.size());
  std::memcpy(x.data(), g.in.data(), x.size() * 4);
  std::vector<std::uint16_t> h(x.size()), b(x.size());
  qlora::quant::quantize_row<fmt::F16>(x.data(), h.data(), std::int64_t(x.size()));
  qlora::quant::quantize_row<fmt::BF16>(x.data(), b.data(), std::int64_t(x.size()));
  EXPECT_TRUE(h == g.f16) << "quantize_row<F16> differs from ggml_fp32_to_fp16_row";
  EXPECT_TRUE(b == g.bf16) << "quantize_row<BF16> differs from ggml_fp32_to_bf16_row";
}

// Decoders over every 16-bit pattern against ggml_{fp16,bf16}_to_fp32_row (by hash).
TEST(GoldenFloat, DecodeAll65536MatchesGgml) {
  const json& f = manifest().at("floats");
  std::vector<float> h(1 << 16), b(1 << 16);
  for (std::uint32_t i = 0; i < (1u << 16); ++i) {
    h[i] = qlora::fp16_to_f32(std::uint16_t(i));
    b[i] = qlora::bf16_to_f32(std::uint16_t(i));
  }
  EXPECT_EQ(fnv1a64_hex(h.data(), h.size() * 4), f.at("f16_to_f32_all_fnv1a64").get<std::string>())
      << "fp16_to_f32 over all 65536 halves differs from ggml_fp16_to_fp32_row (see FP16DecodeEdges for details)";
  EXPECT_EQ(fnv1a64_hex(b.data(), b.size() * 4), f.at("bf16_to_f32_all_fnv1a64").get<std::string>())
      << "bf16_to_f32 over all 65536 patterns differs from ggml_bf16_to_fp32_row";
}

// Zeros, subnormals, infinities and NaNs of fp16, stored in full so failures name the half.
TEST(GoldenFloat, Fp16DecodeEdgesMatchGgml) {
  const json& e = manifest().at("floats").at("f16_decode_edges");
  const Bytes hb = load(e.at("halves"));
  const std::vector<float> peer = as_floats(load(e.at("f32")));
  std::vector<std::uint16_t> halves(hb.size() / 2);
  std::memcpy(halves.data(), hb.data(), hb.size());
  ASSERT_EQ(halves.size(), peer.size());
  int failures = 0;
  for (std::size_t i = 0; i < halves.size(); ++i) {
    const float ours = qlora::fp16_to_f32(halves[i]);
    if (bits_of(ours) != bits_of(peer[i]) && failures++ < 10)
      ADD_FAILURE() << "fp16_to_f32(0x" << std::hex << halves[i] << "): ggml 0x" << bits_of(peer[i]) << ", qlora 0x"
                    << bits_of(ours);
  }
  EXPECT_EQ(failures, 0) << "fp16 edge decodes differing from ggml";
}

}  // namespace
