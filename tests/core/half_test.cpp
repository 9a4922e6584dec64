// Pins core/half.hpp: fp16/bf16 conversions are bit-exact IEEE RNE, matching
// the compiler's own _Float16 conversion (x86-64 GCC uses RNE) and ggml's
// NaN canonicalisation. Golden bytes from ggml itself are checked in
// tests/quant/golden_test.cpp.
#include "qlora/core/half.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace {

using qlora::bf16_to_f32;
using qlora::f32_bits;
using qlora::f32_from_bits;
using qlora::f32_to_bf16;
using qlora::f32_to_fp16;
using qlora::fp16_to_f32;

std::uint16_t compiler_fp16(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  std::uint16_t bits;
  std::memcpy(&bits, &h, sizeof bits);
  return bits;
}

TEST(Half, EveryHalfRoundTripsExactly) {
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = fp16_to_f32(std::uint16_t(h));
    const _Float16 ref_h = [&] { _Float16 x; const std::uint16_t b = std::uint16_t(h); std::memcpy(&x, &b, 2); return x; }();
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(float(ref_h))) << h;
      continue;
    }
    EXPECT_EQ(f32_bits(f), f32_bits(float(ref_h))) << "half 0x" << std::hex << h;
    EXPECT_EQ(f32_to_fp16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(Half, FloatToHalfMatchesCompilerOnStridedSweep) {
  // Every 251st float bit pattern (~17M values) covers all exponents, the
  // subnormal range and many rounding ties; NaNs are checked separately.
  for (std::uint64_t u = 0; u <= 0xFFFFFFFFull; u += 251) {
    const float f = f32_from_bits(std::uint32_t(u));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_fp16(f), compiler_fp16(f)) << "float bits 0x" << std::hex << u;
  }
}

TEST(Half, TiesRoundToEven) {
  // 1 + 2^-11 lies exactly between 1 and the next half (1 + 2^-10): even is 1.
  EXPECT_EQ(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3*2^-11 lies between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
  EXPECT_EQ(f32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Half of the smallest subnormal rounds to zero (even), 1.5x rounds up to 2.
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(f32_to_fp16(3 * std::ldexp(1.0f, -26)), 0x0001);
}

TEST(Half, OverflowAndSpecials) {
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_fp16(65519.99f), 0x7BFF);
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-1e30f), 0xFC00);
  EXPECT_EQ(f32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-0.0f), 0x8000);
  // ggml canonicalises any NaN to 0x7E00, keeping the sign.
  EXPECT_EQ(f32_to_fp16(f32_from_bits(0x7FC00001u)), 0x7E00);
  EXPECT_EQ(f32_to_fp16(f32_from_bits(0xFF800001u)), 0xFE00);
}

TEST(BFloat16, RoundsToNearestEvenAndKeepsNaNQuiet) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7F800001u)), 0x7FC0);  // signalling NaN made quiet
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7F7FFFFFu)), 0x7F80);  // max float rounds to inf
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const float f = bf16_to_f32(std::uint16_t(b));
    if (!std::isnan(f)) {
      EXPECT_EQ(f32_to_bf16(f), b);
    }
  }
}

}  // namespace
