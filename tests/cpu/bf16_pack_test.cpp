// Tests for qlora/cpu/bf16_pack.hpp: bf16_from_f32 is core/half.hpp's RNE
// with subnormals flushed, the hardware conversion (vcvtne2ps2bf16) equals it
// on a spread of 16.7M bit patterns, and the vector packers equal the scalar
// definition of the panel layout for every stride form, width and tail.
// Vector cases skip when the CPU lacks AVX512_BF16.
#include "qlora/cpu/bf16_pack.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace {

using namespace qlora;
using namespace qlora::cpu;

#define SKIP_WITHOUT_BF16()                                                  \
  if (!has_avx512_bf16()) GTEST_SKIP() << "CPU (or build) lacks AVX512_BF16"

[[maybe_unused]] std::vector<float> randn(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

TEST(Bf16Round, MatchesCoreConversionAndFlushesSubnormals) {
  for (float x : {0.0f, -0.0f, 1.0f, -2.5f, 3.14159f, 65504.0f, 1e-30f, 3.0e38f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::min()})
    EXPECT_EQ(bf16_from_f32(x), f32_to_bf16(x)) << x;
  EXPECT_EQ(bf16_from_f32(1e-39f), 0x0000);       // subnormal -> +0
  EXPECT_EQ(bf16_from_f32(-1e-39f), 0x8000);      // -> -0
  EXPECT_EQ(bf16_from_f32(f32_from_bits(0x007FFFFFu)), 0x0000);  // would round up to 2^-126 in f32_to_bf16
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x007FFFFFu)), 0x0080);
  EXPECT_EQ(bf16_from_f32(std::nanf("")) & 0x7FC0, 0x7FC0);  // NaN stays a quiet NaN
  // Ties go to even: 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7.
  EXPECT_EQ(bf16_from_f32(f32_from_bits(0x3F808000u)), 0x3F80);
  EXPECT_EQ(bf16_from_f32(f32_from_bits(0x3F818000u)), 0x3F82);
}

#if QLORA_HAVE_AVX512_BF16_KERNELS  // the vector kernels exist only there
TEST(Bf16Round, HardwareConversionEqualsScalarOnSampledBitPatterns) {
  SKIP_WITHOUT_BF16();
  // 2^32 / 257 patterns spread over every exponent, sign, NaN and subnormal,
  // through both vector packers (k-contiguous and line-contiguous paths).
  constexpr std::int64_t kLines = 16, kDepth = 4096;
  std::vector<float> x(std::size_t(kLines * kDepth));
  std::vector<std::uint32_t> got(std::size_t(bf16_packed_words(kLines, kDepth, 16))), want(got.size());
  std::uint64_t pattern = 0, checked = 0;
  while (pattern < (1ull << 32)) {
    for (auto& v : x) {
      v = f32_from_bits(std::uint32_t(pattern));
      pattern += 257;
    }
    pack_bf16(x.data(), kDepth, 1, kLines, kDepth, 16, got.data());
    pack_bf16_ref(x.data(), kDepth, 1, kLines, kDepth, 16, want.data());
    ASSERT_EQ(got, want) << "k-contiguous packer, patterns before " << pattern;
    pack_bf16(x.data(), 1, kLines, kLines, kDepth, 16, got.data());
    pack_bf16_ref(x.data(), 1, kLines, kLines, kDepth, 16, want.data());
    ASSERT_EQ(got, want) << "line-contiguous packer, patterns before " << pattern;
    checked += x.size();
  }
  EXPECT_GT(checked, 16'000'000u);
}

TEST(Bf16Pack, VectorPackersEqualTheLayoutDefinition) {
  SKIP_WITHOUT_BF16();
  const auto src = randn(200 * 300, 1);
  for (int W : {8, 16, 48, 12}) {  // 12: no vector path, the scalar one
    for (auto [lines, depth] : std::vector<std::pair<int, int>>{{1, 1}, {7, 3}, {16, 32}, {37, 61}, {96, 256}, {100, 257}}) {
      const std::int64_t words = bf16_packed_words(lines, depth, W);
      std::vector<std::uint32_t> got(std::size_t(words), 0xDEADBEEF), want(std::size_t(words), 0x12345678);
      // k contiguous (ld 300 > depth), then lines contiguous (ld 200 > lines).
      pack_bf16(src.data(), 300, 1, lines, depth, W, got.data());
      pack_bf16_ref(src.data(), 300, 1, lines, depth, W, want.data());
      EXPECT_EQ(got, want) << "ks=1 W=" << W << " " << lines << "x" << depth;
      pack_bf16(src.data(), 1, 200, lines, depth, W, got.data());
      pack_bf16_ref(src.data(), 1, 200, lines, depth, W, want.data());
      EXPECT_EQ(got, want) << "ls=1 W=" << W << " " << lines << "x" << depth;
    }
  }
}
#endif

TEST(Bf16Pack, LayoutPutsPairWordsSideBySideInPanels) {
  // Word (line 9, pair 2) of W = 8 is in panel 1, slot 1; odd depth pads 0.
  std::vector<float> m(16 * 6);
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = float(i);
  std::vector<std::uint32_t> p(std::size_t(bf16_packed_words(16, 6, 8)));
  pack_bf16_ref(m.data(), 6, 1, 16, 6, 8, p.data());
  EXPECT_EQ(p[(1 * 3 + 2) * 8 + 1], bf16_word(m[9 * 6 + 4], m[9 * 6 + 5]));
  std::vector<std::uint32_t> q(std::size_t(bf16_packed_words(3, 5, 8)));
  EXPECT_EQ(q.size(), 8u * 3);
  pack_bf16_ref(m.data(), 6, 1, 3, 5, 8, q.data());
  EXPECT_EQ(q[2 * 8 + 1], bf16_word(m[6 + 4], 0.0f));  // line 1, pair 2: k = 4 and the pad
  EXPECT_EQ(q[2 * 8 + 5], 0u);                          // line 5 does not exist
}

}  // namespace
