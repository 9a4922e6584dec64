// Tests for qlora/quant/q4_k.hpp and the Q4_K parts of kquant_search.hpp:
// layout, scale packing, nibble order, round-trip error, edge magnitudes,
// dot products, and bytes pinned against ggml's quantize_row_q4_K_ref.
#include "qlora/quant/q4_k.hpp"

#include <gtest/gtest.h>

#include "quant/test_data.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using qlora::Half;
using qlora::quant::FormatTraits;
namespace format = qlora::quant::format;
namespace kquant = qlora::quant::kquant;
using Q4K = FormatTraits<format::Q4_K>;
using Q8K = FormatTraits<format::Q8_K>;

constexpr int kTestElems = 4096;              // test-quantize-fns.cpp size
constexpr float kMaxTotalError = 0.002f;      // MAX_QUANTIZATION_TOTAL_ERROR
constexpr float kMaxDotError = 0.02f;         // MAX_DOT_PRODUCT_ERROR

// ggml's synthetic data, optionally scaled as a whole (tiny/huge magnitudes).
std::vector<float> cos_data(float offset, float amplitude = 1.0f) {
  return qlora::test::scaled(qlora::test::ggml_cos_data(kTestElems, offset), amplitude);
}
using qlora::test::fnv1a;
using qlora::test::ggml_total_error;

template <class Traits>
std::vector<typename Traits::Block> quantize_row(const std::vector<float>& x) {
  std::vector<typename Traits::Block> blocks(x.size() / Traits::kBlockElems);
  for (std::size_t b = 0; b < blocks.size(); ++b) Traits::quantize_block(x.data() + b * Traits::kBlockElems, blocks[b]);
  return blocks;
}

template <class Traits>
std::vector<float> dequantize_row(const std::vector<typename Traits::Block>& blocks) {
  std::vector<float> y(blocks.size() * Traits::kBlockElems);
  for (std::size_t b = 0; b < blocks.size(); ++b) Traits::dequantize_block(blocks[b], y.data() + b * Traits::kBlockElems);
  return y;
}

// A hand-packed scale array and the (sc, m) pairs it must decode to. Sub-
// blocks 4..7 use values >= 16 so their top two bits (stored in bytes 0..7)
// are exercised, and the last one uses the maximum, 63.
constexpr std::uint8_t kScaleBytes[12] = {0x41, 0x82, 0xC3, 0xC4, 0x45, 0x86, 0xC7, 0xC8, 0x04, 0x15, 0x26, 0xCF};
constexpr std::uint8_t kScaleCodes[8] = {1, 2, 3, 4, 20, 37, 54, 63};
constexpr std::uint8_t kMinCodes[8] = {5, 6, 7, 8, 16, 33, 50, 60};

TEST(Q4KLayout, FieldOffsets) {
  static_assert(sizeof(Q4K::Block) == 144);
  EXPECT_EQ(offsetof(Q4K::Block, d), 0u);
  EXPECT_EQ(offsetof(Q4K::Block, dmin), 2u);
  EXPECT_EQ(offsetof(Q4K::Block, scales), 4u);
  EXPECT_EQ(offsetof(Q4K::Block, qs), 16u);
  EXPECT_EQ(Q4K::kGgmlType, 12u);
}

TEST(Q4KScales, HandPackedBytesDecode) {
  for (int j = 0; j < 8; ++j) {
    const kquant::ScaleMin sm = kquant::get_scale_min_k4(j, kScaleBytes);
    EXPECT_EQ(sm.scale, kScaleCodes[j]) << "sub-block " << j;
    EXPECT_EQ(sm.min, kMinCodes[j]) << "sub-block " << j;
  }
  std::uint8_t packed[12];
  kquant::pack_scale_min_k4(kScaleCodes, kMinCodes, packed);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(packed[i], kScaleBytes[i]) << "byte " << i;
}

// Every (sc, m) pair in every sub-block position survives pack -> unpack,
// with the other seven positions holding different values.
TEST(Q4KScales, PackRoundTripAllPairs) {
  for (int sc = 0; sc < 64; ++sc) {
    for (int m = 0; m < 64; ++m) {
      for (int j = 0; j < 8; ++j) {
        std::uint8_t scales[8], mins[8];
        for (int k = 0; k < 8; ++k) {
          scales[k] = std::uint8_t((sc + 7 * k + 13) & 63);
          mins[k] = std::uint8_t((m + 11 * k + 29) & 63);
        }
        scales[j] = std::uint8_t(sc);
        mins[j] = std::uint8_t(m);
        std::uint8_t packed[12];
        kquant::pack_scale_min_k4(scales, mins, packed);
        for (int k = 0; k < 8; ++k) {
          const kquant::ScaleMin got = kquant::get_scale_min_k4(k, packed);
          ASSERT_EQ(got.scale, scales[k]) << "sc=" << sc << " m=" << m << " j=" << j << " k=" << k;
          ASSERT_EQ(got.min, mins[k]) << "sc=" << sc << " m=" << m << " j=" << j << " k=" << k;
        }
      }
    }
  }
}

// Known bytes -> known values: pins the nibble order (low nibble = sub-block
// 2c, high nibble = 2c+1, chunk c = bytes 32c..32c+31) and the min sign.
TEST(Q4KDequantize, HandBuiltBlock) {
  Q4K::Block b{};
  b.d = Half::from_float(0.5f);
  b.dmin = Half::from_float(0.25f);
  for (int i = 0; i < 12; ++i) b.scales[i] = kScaleBytes[i];
  for (int i = 0; i < 128; ++i) b.qs[i] = std::uint8_t((i % 16) | ((15 - (i + 3) % 16) << 4));

  float y[256];
  Q4K::dequantize_block(b, y);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = (32 * c + l) % 16, hi = 15 - (32 * c + l + 3) % 16;
      const int j_lo = 2 * c, j_hi = 2 * c + 1;
      EXPECT_EQ(y[64 * c + l], 0.5f * kScaleCodes[j_lo] * lo - 0.25f * kMinCodes[j_lo]) << "c=" << c << " l=" << l;
      EXPECT_EQ(y[64 * c + 32 + l], 0.5f * kScaleCodes[j_hi] * hi - 0.25f * kMinCodes[j_hi]) << "c=" << c << " l=" << l;
      EXPECT_EQ(Q4K::code(b, 64 * c + l), lo);
      EXPECT_EQ(Q4K::code(b, 64 * c + 32 + l), hi);
    }
  }
  // Two literal spot checks, independent of the loop above: element 33 is the
  // high nibble of byte 1 in sub-block 1; element 200 the low nibble of byte
  // 104 (chunk 3, l = 8) in sub-block 6.
  EXPECT_EQ(y[33], 0.5f * 2 * (15 - 4) - 0.25f * 6);
  EXPECT_EQ(y[200], 0.5f * 54 * 8 - 0.25f * 50);
}

TEST(Q4KQuantize, RoundTripOnGgmlTestData) {
  for (float off : {0.0f, 1.0f}) {
    const auto x = cos_data(off);
    const float err = ggml_total_error(x, dequantize_row<Q4K>(quantize_row<Q4K>(x)));
    EXPECT_LT(err, kMaxTotalError) << "offset " << off;
  }
}

// Hashes of the 16 blocks produced by quantize_row_q4_K_ref (ggml d99724f,
// built with -O2 -ffp-contract=off) on the data above. A change here means
// the bytes no longer match llama.cpp.
TEST(Q4KQuantize, MatchesUpstreamBytes) {
  const auto b0 = quantize_row<Q4K>(cos_data(0.0f));
  const auto b1 = quantize_row<Q4K>(cos_data(1.0f));
  EXPECT_EQ(b0[0].d.bits, 0x1C9Au);
  EXPECT_EQ(b0[0].dmin.bits, 0x27A8u);
  EXPECT_EQ(fnv1a(b0.data(), b0.size() * sizeof(Q4K::Block)), 0x9604f769a2e93d31ull);
  EXPECT_EQ(fnv1a(b1.data(), b1.size() * sizeof(Q4K::Block)), 0xf901889a2e408ea1ull);
}

// Quantizing a dequantized block must reproduce the block's values closely:
// the search should find (nearly) the grid the values lie on.
TEST(Q4KQuantize, RequantizeIsStable) {
  const auto x = cos_data(0.0f);
  const auto y = dequantize_row<Q4K>(quantize_row<Q4K>(x));
  const auto z = dequantize_row<Q4K>(quantize_row<Q4K>(y));
  EXPECT_LT(ggml_total_error(y, z), kMaxTotalError / 4);
}

TEST(Q4KEdge, AllZeroBlockIsAllZeroBytes) {
  float x[256] = {};
  Q4K::Block b;
  Q4K::quantize_block(x, b);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&b);
  for (std::size_t i = 0; i < sizeof b; ++i) EXPECT_EQ(bytes[i], 0) << "byte " << i;
  float y[256];
  Q4K::dequantize_block(b, y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

// A constant is one grid point: only fp16 d/dmin and the 6-bit codes limit
// the accuracy. Positive constants use min = 0, negative ones use only the min.
TEST(Q4KEdge, ConstantBlock) {
  for (float c : {1.0f, -1.0f, 3.0f, -7.5f, 0.5f, 100.0f}) {
    float x[256];
    for (float& v : x) v = c;
    Q4K::Block b;
    Q4K::quantize_block(x, b);
    float y[256];
    Q4K::dequantize_block(b, y);
    for (float v : y) {
      ASSERT_TRUE(std::isfinite(v));
      EXPECT_NEAR(v, c, 1e-3f * std::fabs(c)) << c;
    }
  }
}

// Small values put d = max|x|/945 (= max_scale/63 with max_scale ~ range/15) below fp16's smallest normal (6.1e-5),
// so d keeps only a few significant bits. llama.cpp has the same limit; the
// result is still finite and within a few percent.
TEST(Q4KEdge, SmallConstantLimitedByFp16Subnormals) {
  const float c = 1e-3f;
  float x[256];
  for (float& v : x) v = c;
  Q4K::Block b;
  Q4K::quantize_block(x, b);
  float y[256];
  Q4K::dequantize_block(b, y);
  for (float v : y) EXPECT_NEAR(v, c, 0.05f * c);
}

// 1e-30 is far below fp16's range: d and dmin flush to 0, the block decodes
// to zeros, which is within 1e-30 of the input.
TEST(Q4KEdge, TinyMagnitudeDecodesToZero) {
  const auto x = cos_data(0.0f, 1e-30f);
  const auto y = dequantize_row<Q4K>(quantize_row<Q4K>(x));
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(std::isfinite(y[i]));
    EXPECT_LE(std::fabs(y[i] - x[i]), 2.2e-30f);
  }
}

// Large values that fp16 d can still represent (d = max_scale/63 < 65504)
// keep the usual relative accuracy.
TEST(Q4KEdge, LargeRepresentableMagnitude) {
  const float amp = 1e6f;
  const auto x = cos_data(0.0f, amp);
  const auto y = dequantize_row<Q4K>(quantize_row<Q4K>(x));
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
  EXPECT_LT(ggml_total_error(x, y) / amp, kMaxTotalError);
}

// Like llama.cpp, nothing guards fp16 overflow: at 1e30 max_scale/63 exceeds
// 65504 and d (and dmin) become +inf. Pinned so a change is deliberate; a
// caller that needs such ranges must pre-scale.
TEST(Q4KEdge, HugeMagnitudeOverflowsFp16LikeUpstream) {
  const auto x = cos_data(0.0f, 1e30f);
  Q4K::Block b;
  Q4K::quantize_block(x.data(), b);
  EXPECT_EQ(b.d.bits, 0x7C00u);
  EXPECT_EQ(b.dmin.bits, 0x7C00u);
}

TEST(Q4KDot, DotBlockMatchesDequantizedDot) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (int trial = 0; trial < 20; ++trial) {
    float w[256], x[256], y[256];
    for (int i = 0; i < 256; ++i) {
      w[i] = nd(rng) + (trial % 2 ? 0.5f : 0.0f);
      x[i] = nd(rng);
    }
    Q4K::Block b;
    Q4K::quantize_block(w, b);
    Q4K::dequantize_block(b, y);
    double ref = 0, mag = 0;
    for (int i = 0; i < 256; ++i) {
      ref += double(y[i]) * double(x[i]);
      mag += std::fabs(double(y[i]) * double(x[i]));
    }
    EXPECT_NEAR(Q4K::dot_block(b, x), ref, 1e-5 * mag) << "trial " << trial;
  }
}

// ggml's dot-product check: |vec_dot(q4_K(x), q8_K(y)) - x.y| / n < 0.02.
TEST(Q4KDot, DotQ8KWithinGgmlLimit) {
  const auto x = cos_data(0.0f);
  const auto y = cos_data(1.0f);
  const auto qx = quantize_row<Q4K>(x);
  const auto qy = quantize_row<Q8K>(y);
  float got = 0.0f;
  for (std::size_t b = 0; b < qx.size(); ++b) got += Q4K::dot_q8k(qx[b], qy[b]);
  double ref = 0;
  for (int i = 0; i < kTestElems; ++i) ref += x[i] * y[i];
  EXPECT_LT(std::fabs(double(got) - ref) / kTestElems, kMaxDotError);
}

// The integer path must equal the float dot of the two dequantized blocks up
// to float rounding: this catches a wrong scale, min term or lane mapping
// that the loose 0.02 limit could hide.
TEST(Q4KDot, DotQ8KMatchesDequantizedOperands) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  for (int trial = 0; trial < 50; ++trial) {
    float w[256], a[256], yw[256], ya[256];
    for (int i = 0; i < 256; ++i) {
      w[i] = nd(rng) + (trial % 3 == 0 ? -1.0f : 0.0f);
      a[i] = nd(rng);
    }
    Q4K::Block bw;
    Q8K::Block ba;
    Q4K::quantize_block(w, bw);
    Q8K::quantize_block(a, ba);
    Q4K::dequantize_block(bw, yw);
    Q8K::dequantize_block(ba, ya);
    double ref = 0, mag = 0;
    for (int i = 0; i < 256; ++i) {
      ref += double(yw[i]) * double(ya[i]);
      mag += std::fabs(double(yw[i]) * double(ya[i]));
    }
    EXPECT_NEAR(Q4K::dot_q8k(bw, ba), ref, 1e-5 * mag) << "trial " << trial;
  }
}

}  // namespace
