// Tests for qlora/quant/q8_k.hpp: layout, rounding, bsums, edge magnitudes,
// and bytes pinned against ggml's quantize_row_q8_K_ref.
#include "qlora/quant/q8_k.hpp"

#include <gtest/gtest.h>

#include "quant/test_data.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using qlora::quant::FormatTraits;
namespace format = qlora::quant::format;
using Q8K = FormatTraits<format::Q8_K>;

constexpr int kTestElems = 4096;                      // test-quantize-fns.cpp size
constexpr int kBlocks = kTestElems / Q8K::kBlockElems;
constexpr float kMaxTotalError = 0.002f;              // MAX_QUANTIZATION_TOTAL_ERROR

std::vector<float> cos_data(float offset) { return qlora::test::ggml_cos_data(kTestElems, offset); }
using qlora::test::fnv1a;
using qlora::test::ggml_total_error;

std::vector<Q8K::Block> quantize_row(const std::vector<float>& x) {
  std::vector<Q8K::Block> blocks(x.size() / Q8K::kBlockElems);
  for (std::size_t b = 0; b < blocks.size(); ++b) Q8K::quantize_block(x.data() + b * Q8K::kBlockElems, blocks[b]);
  return blocks;
}

std::vector<float> dequantize_row(const std::vector<Q8K::Block>& blocks) {
  std::vector<float> y(blocks.size() * Q8K::kBlockElems);
  for (std::size_t b = 0; b < blocks.size(); ++b) Q8K::dequantize_block(blocks[b], y.data() + b * Q8K::kBlockElems);
  return y;
}

TEST(Q8KLayout, FieldOffsets) {
  static_assert(sizeof(Q8K::Block) == 292);
  EXPECT_EQ(offsetof(Q8K::Block, d), 0u);
  EXPECT_EQ(offsetof(Q8K::Block, qs), 4u);
  EXPECT_EQ(offsetof(Q8K::Block, bsums), 260u);
  EXPECT_EQ(Q8K::kGgmlType, 15u);
}

TEST(Q8KQuantize, RoundTripOnGgmlTestData) {
  for (float off : {0.0f, 1.0f}) {
    const auto x = cos_data(off);
    const float err = ggml_total_error(x, dequantize_row(quantize_row(x)));
    EXPECT_LT(err, kMaxTotalError) << "offset " << off;
  }
}

// Hashes of the 16 blocks produced by quantize_row_q8_K_ref (ggml d99724f,
// built with -O2 -ffp-contract=off) on the data above. A change here means
// the bytes no longer match llama.cpp.
TEST(Q8KQuantize, MatchesUpstreamBytes) {
  const auto b0 = quantize_row(cos_data(0.0f));
  const auto b1 = quantize_row(cos_data(1.0f));
  EXPECT_EQ(fnv1a(b0.data(), b0.size() * sizeof(Q8K::Block)), 0x4b894a3cbe4b3a47ull);
  EXPECT_EQ(fnv1a(b1.data(), b1.size() * sizeof(Q8K::Block)), 0x87a194173eb4ed88ull);
}

// The extreme value maps to exactly -127, d carries its sign, and ties round
// half to even (nearest_int), not away from zero (roundf).
TEST(Q8KQuantize, ExtremeMapsToMinus127AndTiesRoundToEven) {
  float x[256] = {};
  x[0] = -127.0f;  // iscale = -127/-127 = 1, so codes equal x
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -0.5f;
  x[4] = -1.5f;
  x[5] = 126.6f;
  Q8K::Block b;
  Q8K::quantize_block(x, b);
  EXPECT_EQ(b.d, 1.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], 4);
  EXPECT_EQ(b.qs[3], 0);
  EXPECT_EQ(b.qs[4], -2);
  EXPECT_EQ(b.qs[5], 127);
  EXPECT_EQ(b.bsums[0], -127 + 2 + 4 + 0 - 2 + 127);
  for (int k = 1; k < 16; ++k) EXPECT_EQ(b.bsums[k], 0);

  // A positive extreme gives a negative d and negated codes.
  float y[256] = {};
  y[7] = 2.0f;
  y[8] = -1.0f;
  Q8K::quantize_block(y, b);
  EXPECT_FLOAT_EQ(b.d, -2.0f / 127.0f);
  EXPECT_EQ(b.qs[7], -127);
  EXPECT_EQ(b.qs[8], 64);  // 63.5 rounds to even
}

TEST(Q8KQuantize, BsumsAreSumsOf16) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  float x[256];
  for (float& v : x) v = nd(rng);
  Q8K::Block b;
  Q8K::quantize_block(x, b);
  for (int k = 0; k < 16; ++k) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * k + i];
    EXPECT_EQ(b.bsums[k], sum) << "group " << k;
  }
}

TEST(Q8KDequantize, HandBuiltBlock) {
  Q8K::Block b{};
  b.d = 0.25f;
  for (int i = 0; i < 256; ++i) b.qs[i] = std::int8_t(i - 128);
  float y[256];
  Q8K::dequantize_block(b, y);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.25f * float(i - 128)) << i;
}

TEST(Q8KEdge, AllZeroBlock) {
  float x[256] = {};
  Q8K::Block b;
  Q8K::quantize_block(x, b);
  EXPECT_EQ(b.d, 0.0f);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(b.qs[i], 0);
  for (int k = 0; k < 16; ++k) EXPECT_EQ(b.bsums[k], 0);
  float y[256];
  Q8K::dequantize_block(b, y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(Q8KEdge, ConstantBlockIsExact) {
  for (float c : {1.0f, -1.0f, 3.0f, -7.5f, 1e-3f, 100.0f}) {
    float x[256];
    for (float& v : x) v = c;
    Q8K::Block b;
    Q8K::quantize_block(x, b);
    float y[256];
    Q8K::dequantize_block(b, y);
    for (float v : y) EXPECT_NEAR(v, c, 1e-6f * std::fabs(c)) << c;
  }
}

// The scale is fp32, so Q8_K works across the whole float range that does
// not overflow -127/max.
TEST(Q8KEdge, TinyAndHugeMagnitudes) {
  for (float mag : {1e-30f, 1e30f}) {
    float x[256];
    for (int i = 0; i < 256; ++i) x[i] = mag * float(0.1 + 2 * cosf(float(i)));
    Q8K::Block b;
    Q8K::quantize_block(x, b);
    float y[256];
    Q8K::dequantize_block(b, y);
    ASSERT_TRUE(std::isfinite(b.d)) << mag;
    for (int i = 0; i < 256; ++i) {
      ASSERT_TRUE(std::isfinite(y[i]));
      EXPECT_LE(std::fabs(y[i] - x[i]), 2.1f * mag / 127.0f * 0.5f * 1.001f) << mag << " i=" << i;
    }
  }
}

TEST(Q8KDot, DotBlockMatchesDequantizedDot) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  for (int trial = 0; trial < 20; ++trial) {
    float w[256], x[256], y[256];
    for (int i = 0; i < 256; ++i) {
      w[i] = nd(rng);
      x[i] = nd(rng);
    }
    Q8K::Block b;
    Q8K::quantize_block(w, b);
    Q8K::dequantize_block(b, y);
    double ref = 0, mag = 0;
    for (int i = 0; i < 256; ++i) {
      ref += double(y[i]) * double(x[i]);
      mag += std::fabs(double(y[i]) * double(x[i]));
    }
    EXPECT_NEAR(Q8K::dot_block(b, x), ref, 1e-5 * mag);
  }
}

}  // namespace
