// Pins quant/q5_0.hpp: layout, element/bit mapping of hand-built blocks,
// the signed-extreme scale rule, error bounds and edge rows. Byte-identity
// with llama.cpp is in golden_test.cpp.
#include "qlora/quant/q5_0.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "qlora/quant/row.hpp"
#include "quant/test_data.hpp"

namespace {

using namespace qlora::quant;
using Q5 = FormatTraits<format::Q5_0>;

TEST(Q5_0, LayoutMatchesGgml) {
  EXPECT_EQ(offsetof(Q5::Block, d), 0u);
  EXPECT_EQ(offsetof(Q5::Block, qh), 2u);
  EXPECT_EQ(offsetof(Q5::Block, qs), 6u);
  EXPECT_EQ(sizeof(Q5::Block), 22u);
}

TEST(Q5_0, DecodesBitMapping) {
  // Element j takes low nibble of qs[j] and bit j of qh; element j+16 takes
  // the high nibble and bit j+16. Encode q_j = j (0..31) and check decode.
  Q5::Block b{};
  b.d = qlora::Half::from_float(1.0f);
  std::uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = j, q1 = j + 16;
    b.qs[j] = std::uint8_t((q0 & 15) | (q1 & 15) << 4);
    qh |= std::uint32_t(q0 >> 4) << j;
    qh |= std::uint32_t(q1 >> 4) << (j + 16);
  }
  Q5::store_u32(b.qh, qh);
  float y[32];
  Q5::dequantize_block(b, y);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], float(j - 16)) << j;
}

TEST(Q5_0, ScaleFollowsSignedExtreme) {
  // The value of largest magnitude maps to -16 exactly (d = max / -16).
  float x[32] = {};
  x[3] = -8.0f;
  x[7] = 4.0f;
  Q5::Block b{};
  Q5::quantize_block(x, b);
  EXPECT_EQ(b.d.to_float(), 0.5f);
  float y[32];
  Q5::dequantize_block(b, y);
  EXPECT_EQ(y[3], -8.0f);
  EXPECT_EQ(y[7], 4.0f);
  // A positive extreme gives a negative scale and maps to -16 as well.
  x[3] = 8.0f;
  Q5::quantize_block(x, b);
  EXPECT_EQ(b.d.to_float(), -0.5f);
  Q5::dequantize_block(b, y);
  EXPECT_EQ(y[3], 8.0f);
}

TEST(Q5_0, ErrorWithinGgmlLimitOnCosData) {
  const auto x = qlora::test::ggml_cos_data(4096, 1.0f, 2.0f);
  std::vector<Q5::Block> q(128);
  std::vector<float> y(4096);
  quantize_row<format::Q5_0>(x.data(), q.data(), 4096);
  dequantize_row<format::Q5_0>(q.data(), y.data(), 4096);
  EXPECT_LT(qlora::test::ggml_total_error(x, y), 0.002f);
}

double relative_rmse_q5_0(const std::vector<float>& x) {
  std::vector<Q5::Block> q(x.size() / 32);
  std::vector<float> y(x.size());
  quantize_row<format::Q5_0>(x.data(), q.data(), std::int64_t(x.size()));
  dequantize_row<format::Q5_0>(q.data(), y.data(), std::int64_t(x.size()));
  return qlora::test::rmse(x, y) / qlora::test::rms(x);
}

TEST(Q5_0, GaussianAndHeavyTailedRelativeRmse) {
  // Measured 0.043 (Gaussian) and 0.066 (Student t3, whose outliers stretch
  // each block's scale); the bounds leave ~10% headroom.
  EXPECT_LT(relative_rmse_q5_0(qlora::test::gaussian(8192, 3)), 0.047);
  EXPECT_LT(relative_rmse_q5_0(qlora::test::student_t3(8192, 4)), 0.073);
}

TEST(Q5_0, EdgeRowsStayFinite) {
  for (const auto& x : qlora::test::edge_rows(64)) {
    std::vector<Q5::Block> q(2);
    std::vector<float> y(64);
    quantize_row<format::Q5_0>(x.data(), q.data(), 64);
    dequantize_row<format::Q5_0>(q.data(), y.data(), 64);
    for (int b = 0; b < 2; ++b) {
      const float d_stored = q[b].d.to_float();
      if (!std::isfinite(d_stored)) continue;  // beyond fp16 range, as in ggml
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      // Levels run -16..15 with the extreme at -16, so a value of the other
      // sign near the extreme clips at 15: up to one step of error. Add 16
      // steps' worth of the fp16 rounding of d (all of it when d underflows).
      const float d_exact = amax / 16.0f;
      const float bound = d_exact + 16.0f * std::fabs(std::fabs(d_stored) - d_exact) + 1e-37f;
      for (int i = 0; i < 32; ++i) {
        ASSERT_TRUE(std::isfinite(y[b * 32 + i]));
        EXPECT_LE(std::fabs(y[b * 32 + i] - x[b * 32 + i]), bound * 1.0001f);
      }
    }
  }
}

}  // namespace
