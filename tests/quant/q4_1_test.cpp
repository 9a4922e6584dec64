// Pins quant/q4_1.hpp (read-only format): layout and the nibble order and
// affine decode of hand-built blocks. The decode of random blocks equals
// llama.cpp's dequantize_row_q4_1 in golden_test.cpp.
#include "qlora/quant/q4_1.hpp"

#include <gtest/gtest.h>

#include <cstddef>

namespace {

using namespace qlora::quant;
using Q41 = FormatTraits<format::Q4_1>;

TEST(Q4_1, LayoutMatchesGgml) {
  EXPECT_EQ(offsetof(Q41::Block, d), 0u);
  EXPECT_EQ(offsetof(Q41::Block, m), 2u);
  EXPECT_EQ(offsetof(Q41::Block, qs), 4u);
  EXPECT_EQ(sizeof(Q41::Block), 20u);
  static_assert(!Q41::kQuantizable, "Q4_1 is read-only");
}

TEST(Q4_1, DecodesNibblesAffinely) {
  Q41::Block b{};
  b.d = qlora::Half::from_float(0.25f);
  b.m = qlora::Half::from_float(-1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = std::uint8_t(j | (15 - j) << 4);
  float y[32];
  Q41::dequantize_block(b, y);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.25f * float(j) - 1.0f);
    EXPECT_EQ(y[j + 16], 0.25f * float(15 - j) - 1.0f);
  }
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j % 5) - 2.0f;
  double ref = 0;
  for (int j = 0; j < 32; ++j) ref += double(y[j]) * x[j];
  EXPECT_NEAR(Q41::dot_block(b, x), ref, 1e-5);
}

}  // namespace
