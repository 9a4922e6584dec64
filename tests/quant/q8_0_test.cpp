// Pins quant/q8_0.hpp: byte layout, dequantization of hand-built blocks,
// round-half-away rounding, error bounds, and edge rows. Byte-identity with
// llama.cpp on many inputs is in golden_test.cpp.
#include "qlora/quant/q8_0.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "qlora/quant/row.hpp"
#include "quant/test_data.hpp"

namespace {

using namespace qlora::quant;
using Q8 = FormatTraits<format::Q8_0>;

TEST(Q8_0, LayoutMatchesGgml) {
  EXPECT_EQ(offsetof(Q8::Block, d), 0u);
  EXPECT_EQ(offsetof(Q8::Block, qs), 2u);
  EXPECT_EQ(sizeof(Q8::Block), 34u);
}

TEST(Q8_0, DequantizesHandBuiltBlock) {
  Q8::Block b{};
  b.d = qlora::Half::from_float(0.5f);
  for (int i = 0; i < 32; ++i) b.qs[i] = std::int8_t(i - 16);
  float y[32];
  Q8::dequantize_block(b, y);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.5f * float(i - 16));
}

TEST(Q8_0, RoundsHalfAwayFromZero) {
  // amax = 127 gives d = 1 exactly, so x*id == x and ties are visible.
  float x[32] = {};
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = -0.5f;
  Q8::Block b{};
  Q8::quantize_block(x, b);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 1);
  EXPECT_EQ(b.qs[4], -1);
}

TEST(Q8_0, ErrorWithinGgmlLimitOnCosData) {
  const auto x = qlora::test::ggml_cos_data(4096, 0.0f, 2.0f);
  std::vector<Q8::Block> q(4096 / 32);
  std::vector<float> y(4096);
  quantize_row<format::Q8_0>(x.data(), q.data(), 4096);
  dequantize_row<format::Q8_0>(q.data(), y.data(), 4096);
  EXPECT_LT(qlora::test::ggml_total_error(x, y), 0.002f);
  // Each element is within half a step of its input, plus the effect of
  // storing d in fp16 (relative error <= 2^-11, times |q| <= 127).
  for (std::size_t b = 0; b < q.size(); ++b)
    for (int i = 0; i < 32; ++i)
      EXPECT_LE(std::fabs(x[b * 32 + i] - y[b * 32 + i]), q[b].d.to_float() * (0.5f + 127.0f / 2048.0f) + 1e-6f);
}

TEST(Q8_0, EdgeRows) {
  for (const auto& x : qlora::test::edge_rows(64)) {
    std::vector<Q8::Block> q(2);
    std::vector<float> y(64);
    quantize_row<format::Q8_0>(x.data(), q.data(), 64);
    dequantize_row<format::Q8_0>(q.data(), y.data(), 64);
    for (int b = 0; b < 2; ++b) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      const float d_exact = amax / 127.0f, d_stored = q[b].d.to_float();
      // Scales beyond fp16's range become inf, as in ggml; nothing to bound.
      if (!std::isfinite(d_stored)) continue;
      // Half a step of the exact scale, plus what storing d in fp16 moved
      // (which is all of it when d underflows fp16 and flushes to zero).
      const float bound = 0.5f * d_exact + 127.0f * std::fabs(d_stored - d_exact) + 1e-37f;
      for (int i = 0; i < 32; ++i) {
        EXPECT_TRUE(std::isfinite(y[b * 32 + i]));
        EXPECT_LE(std::fabs(y[b * 32 + i] - x[b * 32 + i]), bound * 1.0001f) << "block " << b << " i " << i;
      }
    }
  }
}

TEST(Q8_0, DotMatchesDequantizedDot) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  std::vector<float> w(256), a(256), y(256);
  for (auto& v : w) v = g(rng);
  for (auto& v : a) v = g(rng);
  std::vector<Q8::Block> q(8);
  quantize_row<format::Q8_0>(w.data(), q.data(), 256);
  dequantize_row<format::Q8_0>(q.data(), y.data(), 256);
  double ref = 0;
  for (int i = 0; i < 256; ++i) ref += double(y[i]) * a[i];
  EXPECT_NEAR(dot_row<format::Q8_0>(q.data(), a.data(), 256), ref, 1e-4 * (1 + std::fabs(ref)));
}

TEST(Q8_0, RuntimeApiRejectsBadInput) {
  std::vector<float> x(48, 1.0f);
  std::vector<std::byte> out(64);
  qlora::Status st = quantize_row(std::uint32_t(GgmlType::Q8_0), x.data(), out.data(), 48);
  EXPECT_EQ(st.code(), qlora::ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("48"), std::string::npos);
  x.resize(32);
  x[5] = NAN;
  st = quantize_row(std::uint32_t(GgmlType::Q8_0), x.data(), out.data(), 32);
  EXPECT_EQ(st.code(), qlora::ErrorCode::kNumeric);
  EXPECT_NE(st.message().find("element 5"), std::string::npos);
}

}  // namespace
