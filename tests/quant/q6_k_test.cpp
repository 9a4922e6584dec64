// Tests for qlora/quant/q6_k.hpp and make_qx_quants: layout, element mapping,
// round-trip error, edge magnitudes, dot products, and bytes pinned against
// ggml's quantize_row_q6_K_ref.
#include "qlora/quant/q6_k.hpp"

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
using Q6K = FormatTraits<format::Q6_K>;
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

TEST(Q6KLayout, FieldOffsets) {
  static_assert(sizeof(Q6K::Block) == 210);
  EXPECT_EQ(offsetof(Q6K::Block, ql), 0u);
  EXPECT_EQ(offsetof(Q6K::Block, qh), 128u);
  EXPECT_EQ(offsetof(Q6K::Block, scales), 192u);
  EXPECT_EQ(offsetof(Q6K::Block, d), 208u);
  EXPECT_EQ(Q6K::kGgmlType, 14u);
}

// Literal bytes -> literal values, written out by hand from the layout in
// formats.md §3.3 so the test does not share code with the header.
TEST(Q6KDequantize, HandBuiltSpotValues) {
  Q6K::Block b{};
  b.d = Half::from_float(0.5f);
  for (int j = 0; j < 16; ++j) b.scales[j] = std::int8_t(j - 8);  // includes 0 and negatives
  b.ql[0] = 0x21;   // e=0 low nibble 1, e=64 low bits 2
  b.ql[32] = 0x9F;  // e=32 low bits 15, e=96 low bits 9
  b.qh[0] = 0xE4;   // 2-bit fields, from bit 0: e=0 -> 0, e=32 -> 1, e=64 -> 2, e=96 -> 3
  b.ql[101] = 0x0A; // second half, k=1, l=5: e = 128 + 32 + 5 = 165, low bits 10
  b.qh[37] = 0x08;  // e=165 high bits (bits 2-3) = 2

  float y[256];
  Q6K::dequantize_block(b, y);
  // value = (d * sc[e/16]) * (code - 32)
  EXPECT_EQ(y[0], 0.5f * -8 * (1 - 32));          // sc[0] = -8
  EXPECT_EQ(y[32], 0.5f * -6 * ((15 | 16) - 32));  // sc[2] = -6
  EXPECT_EQ(y[64], 0.5f * -4 * ((2 | 32) - 32));   // sc[4] = -4
  EXPECT_EQ(y[96], 0.5f * -2 * ((9 | 48) - 32));   // sc[6] = -2
  EXPECT_EQ(y[165], 0.5f * 2 * ((10 | 32) - 32));  // sc[10] = 2
  EXPECT_EQ(Q6K::code(b, 165), 10);
  // Elements with all-zero bits decode to -32 * scale; sub-block 8 has
  // scale 0 and decodes to 0.
  EXPECT_EQ(y[1], 0.5f * -8 * -32);
  EXPECT_EQ(y[130], 0.0f);
}

// Every element of a block with distinct codes, via an independent packing
// written from formats.md §3.4 step 5.
TEST(Q6KDequantize, HandBuiltFullMapping) {
  int codes[256];  // stored 0..63
  for (int e = 0; e < 256; ++e) codes[e] = (e * 37 + 11) % 64;
  Q6K::Block b{};
  b.d = Half::from_float(0.25f);
  for (int j = 0; j < 16; ++j) b.scales[j] = std::int8_t(3 * j - 20);
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int* c = codes + 128 * h;
      b.ql[64 * h + l] = std::uint8_t((c[l] & 15) | (c[l + 64] & 15) << 4);
      b.ql[64 * h + l + 32] = std::uint8_t((c[l + 32] & 15) | (c[l + 96] & 15) << 4);
      b.qh[32 * h + l] = std::uint8_t((c[l] >> 4) | (c[l + 32] >> 4) << 2 | (c[l + 64] >> 4) << 4 | (c[l + 96] >> 4) << 6);
    }
  }
  float y[256];
  Q6K::dequantize_block(b, y);
  for (int e = 0; e < 256; ++e) {
    EXPECT_EQ(Q6K::code(b, e), codes[e] - 32) << e;
    EXPECT_EQ(y[e], 0.25f * float(3 * (e / 16) - 20) * float(codes[e] - 32)) << e;
  }
}

TEST(Q6KQuantize, RoundTripOnGgmlTestData) {
  for (float off : {0.0f, 1.0f}) {
    const auto x = cos_data(off);
    const float err = ggml_total_error(x, dequantize_row<Q6K>(quantize_row<Q6K>(x)));
    EXPECT_LT(err, kMaxTotalError) << "offset " << off;
  }
}

// Hashes of the 16 blocks produced by quantize_row_q6_K_ref (ggml d99724f,
// built with -O2 -ffp-contract=off) on the data above. A change here means
// the bytes no longer match llama.cpp.
TEST(Q6KQuantize, MatchesUpstreamBytes) {
  const auto b0 = quantize_row<Q6K>(cos_data(0.0f));
  const auto b1 = quantize_row<Q6K>(cos_data(1.0f));
  EXPECT_EQ(fnv1a(b0.data(), b0.size() * sizeof(Q6K::Block)), 0x32c1e4fa1a55c9dbull);
  EXPECT_EQ(fnv1a(b1.data(), b1.size() * sizeof(Q6K::Block)), 0x0c4c96fb46a8694eull);
}

// The sub-block scale of largest magnitude maps to exactly -128.
TEST(Q6KQuantize, ExtremeScaleIsMinus128) {
  const auto x = cos_data(0.0f);
  for (const auto& b : quantize_row<Q6K>(x)) {
    int lowest = 0;
    for (std::int8_t s : b.scales) lowest = s < lowest ? s : lowest;
    EXPECT_EQ(lowest, -128);
  }
}

// make_qx_quants starts by mapping the largest-|x| element to code -nmax
// (stored 0); the search fan (nmax +- 0.9) may move it one step in. The scale
// takes that element's sign.
TEST(Q6KSearch, MakeQxQuantsSignAndRange) {
  float x[16];
  for (int i = 0; i < 16; ++i) x[i] = 0.1f * float(i) - 0.5f;
  x[9] = 3.0f;
  std::int8_t L[16];
  const float scale = kquant::make_qx_quants<16>(32, x, L);
  EXPECT_LT(scale, 0.0f);
  EXPECT_LE(L[9], 1);
  for (int i = 0; i < 16; ++i) {
    EXPECT_GE(L[i], 0);
    EXPECT_LE(L[i], 63);
    EXPECT_NEAR(scale * float(L[i] - 32), x[i], std::fabs(scale)) << i;
  }
  float zeros[16] = {};
  EXPECT_EQ(kquant::make_qx_quants<16>(32, zeros, L), 0.0f);
  for (std::int8_t l : L) EXPECT_EQ(l, 0);
}

TEST(Q6KEdge, AllZeroBlockIsAllZeroBytes) {
  float x[256] = {};
  Q6K::Block b;
  Q6K::quantize_block(x, b);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&b);
  for (std::size_t i = 0; i < sizeof b; ++i) EXPECT_EQ(bytes[i], 0) << "byte " << i;
  float y[256];
  Q6K::dequantize_block(b, y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(Q6KEdge, ConstantBlock) {
  for (float c : {1.0f, -1.0f, 3.0f, -7.5f, 0.5f, 100.0f}) {
    float x[256];
    for (float& v : x) v = c;
    Q6K::Block b;
    Q6K::quantize_block(x, b);
    float y[256];
    Q6K::dequantize_block(b, y);
    for (float v : y) {
      ASSERT_TRUE(std::isfinite(v));
      EXPECT_NEAR(v, c, 1e-3f * std::fabs(c)) << c;
    }
  }
}

// Small values put d = max|x|/4096 below fp16's smallest normal (6.1e-5),
// so d keeps only a few significant bits. llama.cpp has the same limit; the
// result is still finite and within a few percent.
TEST(Q6KEdge, SmallConstantLimitedByFp16Subnormals) {
  const float c = 1e-3f;
  float x[256];
  for (float& v : x) v = c;
  Q6K::Block b;
  Q6K::quantize_block(x, b);
  float y[256];
  Q6K::dequantize_block(b, y);
  for (float v : y) EXPECT_NEAR(v, c, 0.05f * c);
}

// Below GROUP_MAX_EPS (1e-15) a group counts as zero: 1e-30 data gives the
// all-zero block, within 1e-30 of the input.
TEST(Q6KEdge, TinyMagnitudeDecodesToZero) {
  const auto x = cos_data(0.0f, 1e-30f);
  const auto y = dequantize_row<Q6K>(quantize_row<Q6K>(x));
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(std::isfinite(y[i]));
    EXPECT_LE(std::fabs(y[i] - x[i]), 2.2e-30f);
  }
}

// d = max|x|/4096 roughly, so fp16 holds it up to |x| ~ 2.6e8.
TEST(Q6KEdge, LargeRepresentableMagnitude) {
  const float amp = 1e6f;
  const auto x = cos_data(0.0f, amp);
  const auto y = dequantize_row<Q6K>(quantize_row<Q6K>(x));
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
  EXPECT_LT(ggml_total_error(x, y) / amp, kMaxTotalError);
}

// Like llama.cpp: at 1e30 the x^2-weighted sums in make_qx_quants overflow,
// every sub-block scale becomes NaN, no scale passes the "largest |s|" test,
// and the block is written as all zeros. Finite, but the data are lost;
// pinned so a change is deliberate.
TEST(Q6KEdge, HugeMagnitudeCollapsesToZeroLikeUpstream) {
  const auto x = cos_data(0.0f, 1e30f);
  Q6K::Block b;
  Q6K::quantize_block(x.data(), b);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&b);
  for (std::size_t i = 0; i < sizeof b; ++i) EXPECT_EQ(bytes[i], 0) << "byte " << i;
}

TEST(Q6KDot, DotBlockMatchesDequantizedDot) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd;
  for (int trial = 0; trial < 20; ++trial) {
    float w[256], x[256], y[256];
    for (int i = 0; i < 256; ++i) {
      w[i] = nd(rng);
      x[i] = nd(rng);
    }
    Q6K::Block b;
    Q6K::quantize_block(w, b);
    Q6K::dequantize_block(b, y);
    double ref = 0, mag = 0;
    for (int i = 0; i < 256; ++i) {
      ref += double(y[i]) * double(x[i]);
      mag += std::fabs(double(y[i]) * double(x[i]));
    }
    EXPECT_NEAR(Q6K::dot_block(b, x), ref, 1e-5 * mag) << "trial " << trial;
  }
}

// ggml's dot-product check: |vec_dot(q6_K(x), q8_K(y)) - x.y| / n < 0.02.
TEST(Q6KDot, DotQ8KWithinGgmlLimit) {
  const auto x = cos_data(0.0f);
  const auto y = cos_data(1.0f);
  const auto qx = quantize_row<Q6K>(x);
  const auto qy = quantize_row<Q8K>(y);
  float got = 0.0f;
  for (std::size_t b = 0; b < qx.size(); ++b) got += Q6K::dot_q8k(qx[b], qy[b]);
  double ref = 0;
  for (int i = 0; i < kTestElems; ++i) ref += x[i] * y[i];
  EXPECT_LT(std::fabs(double(got) - ref) / kTestElems, kMaxDotError);
}

// The integer path must equal the float dot of the two dequantized blocks up
// to float rounding (catches a wrong scale index or element mapping).
TEST(Q6KDot, DotQ8KMatchesDequantizedOperands) {
  std::mt19937 rng(17);
  std::normal_distribution<float> nd;
  for (int trial = 0; trial < 50; ++trial) {
    float w[256], a[256], yw[256], ya[256];
    for (int i = 0; i < 256; ++i) {
      w[i] = nd(rng);
      a[i] = nd(rng);
    }
    Q6K::Block bw;
    Q8K::Block ba;
    Q6K::quantize_block(w, bw);
    Q8K::quantize_block(a, ba);
    Q6K::dequantize_block(bw, yw);
    Q8K::dequantize_block(ba, ya);
    double ref = 0, mag = 0;
    for (int i = 0; i < 256; ++i) {
      ref += double(yw[i]) * double(ya[i]);
      mag += std::fabs(double(yw[i]) * double(ya[i]));
    }
    EXPECT_NEAR(Q6K::dot_q8k(bw, ba), ref, 1e-5 * mag) << "trial " << trial;
  }
}

}  // namespace
