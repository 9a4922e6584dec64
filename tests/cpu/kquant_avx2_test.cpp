// Pins cpu/kquant_avx2.hpp: the AVX2 Q4_K / Q6_K block quantizers give the
// same bytes as the scalar references (FormatTraits<...>::quantize_block) on
// hundreds of thousands of random blocks drawn from many distributions, and
// the layout-walking Q6_K dequantize_block / dot_block / dot_q8k are bit-
// identical to per-element references written out here.
#include "qlora/cpu/kquant_avx2.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "qlora/cpu/quantize.hpp"
#include "qlora/quant/q4_k.hpp"
#include "qlora/quant/q6_k.hpp"
#include "qlora/quant/q8_k.hpp"

namespace {

using namespace qlora;
using quant::FormatTraits;
namespace format = quant::format;
using Q4K = FormatTraits<format::Q4_K>;
using Q6K = FormatTraits<format::Q6_K>;
using Q8K = FormatTraits<format::Q8_K>;
constexpr int kQK = quant::kQK_K;

enum class Dist {
  kNormal,
  kUniform,
  kPositive,      // all > 0: the Q4_K min clamps to 0
  kNegative,      // all < 0
  kSparse,        // 90 % exact zeros
  kOutliers,      // N(0, 0.02) with 1 % 50x outliers (weight-like)
  kIntegerTies,   // small integer multiples of 0.25: many exact .5 ties
  kTiny,          // N(0, 1) * 1e-30: below the group epsilon
  kNearEps,       // N(0, 1) * 10^U(-17, -13): straddles the group epsilon
  kHuge,          // N(0, 1) * 1e6
  kZeroSubBlocks, // normal, random 16-/32-wide sub-blocks zeroed
  kConstant,      // one value per block (sometimes 0)
  kConstSubBlocks,// one value per 16-wide sub-block
  kMixedScale,    // each 16-wide sub-block scaled by 10^U(-20, 20)
  kExtreme,       // magnitudes up to 1e30 / down to denormals: inf/NaN in sums
  kCount
};

[[maybe_unused]] const char* dist_name(Dist d) {
  static const char* names[] = {"normal",   "uniform", "positive",       "negative",         "sparse",
                                "outliers", "ties",    "tiny",           "near_eps",         "huge",
                                "zero_sub", "constant", "const_sub",     "mixed_scale",      "extreme"};
  return names[int(d)];
}

void fill_block(Dist dist, std::mt19937& rng, float* x) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unif(-1.0f, 1.0f);
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  std::uniform_int_distribution<int> small_int(-12, 12);
  switch (dist) {
    case Dist::kNormal:
      for (int i = 0; i < kQK; ++i) x[i] = normal(rng);
      break;
    case Dist::kUniform:
      for (int i = 0; i < kQK; ++i) x[i] = unif(rng);
      break;
    case Dist::kPositive:
      for (int i = 0; i < kQK; ++i) x[i] = 0.01f + u01(rng);
      break;
    case Dist::kNegative:
      for (int i = 0; i < kQK; ++i) x[i] = -0.01f - u01(rng);
      break;
    case Dist::kSparse:
      for (int i = 0; i < kQK; ++i) x[i] = u01(rng) < 0.9f ? 0.0f : normal(rng);
      break;
    case Dist::kOutliers:
      for (int i = 0; i < kQK; ++i) x[i] = 0.02f * normal(rng) * (u01(rng) < 0.01f ? 50.0f : 1.0f);
      break;
    case Dist::kIntegerTies: {
      const float unit = u01(rng) < 0.5f ? 0.25f : 1.0f;
      for (int i = 0; i < kQK; ++i) x[i] = unit * float(small_int(rng));
      break;
    }
    case Dist::kTiny:
      for (int i = 0; i < kQK; ++i) x[i] = 1e-30f * normal(rng);
      break;
    case Dist::kNearEps: {
      const float s = std::pow(10.0f, -17.0f + 4.0f * u01(rng));
      for (int i = 0; i < kQK; ++i) x[i] = s * normal(rng);
      break;
    }
    case Dist::kHuge:
      for (int i = 0; i < kQK; ++i) x[i] = 1e6f * normal(rng);
      break;
    case Dist::kZeroSubBlocks:
      for (int i = 0; i < kQK; ++i) x[i] = normal(rng);
      for (int j = 0; j < kQK / 16; ++j)
        if (u01(rng) < 0.4f)
          for (int i = 0; i < 16; ++i) x[16 * j + i] = 0.0f;
      break;
    case Dist::kConstant: {
      const float c = u01(rng) < 0.2f ? 0.0f : normal(rng);
      for (int i = 0; i < kQK; ++i) x[i] = c;
      break;
    }
    case Dist::kConstSubBlocks:
      for (int j = 0; j < kQK / 16; ++j) {
        const float c = u01(rng) < 0.2f ? 0.0f : normal(rng);
        for (int i = 0; i < 16; ++i) x[16 * j + i] = c;
      }
      break;
    case Dist::kMixedScale:
      for (int j = 0; j < kQK / 16; ++j) {
        const float s = std::pow(10.0f, -20.0f + 40.0f * u01(rng));
        for (int i = 0; i < 16; ++i) x[16 * j + i] = s * normal(rng);
      }
      break;
    case Dist::kExtreme:
      for (int i = 0; i < kQK; ++i) {
        const float r = u01(rng);
        x[i] = normal(rng) * (r < 0.1f ? 1e30f : r < 0.2f ? 1e-40f : r < 0.3f ? 1e19f : 1.0f);
      }
      break;
    case Dist::kCount:
      break;
  }
}

#if defined(__AVX2__)
template <class Traits, class Simd>
void expect_identical_blocks(Simd simd, int blocks_per_dist, unsigned seed) {
  std::mt19937 rng(seed);
  float x[kQK];
  long total = 0, mismatches = 0;
  for (int d = 0; d < int(Dist::kCount); ++d) {
    long dist_mismatch = 0;
    for (int n = 0; n < blocks_per_dist; ++n) {
      fill_block(Dist(d), rng, x);
      typename Traits::Block ref, got;
      std::memset(&ref, 0xA5, sizeof ref);
      std::memset(&got, 0x5A, sizeof got);
      Traits::quantize_block(x, ref);
      simd(x, got);
      ++total;
      if (std::memcmp(&ref, &got, sizeof ref) != 0) {
        ++dist_mismatch;
        if (dist_mismatch <= 3) ADD_FAILURE() << Traits::kName << " block differs, distribution " << dist_name(Dist(d)) << ", block " << n;
      }
    }
    mismatches += dist_mismatch;
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GE(total, 200000);
}

constexpr int kBlocksPerDist = 14000;  // x 15 distributions = 210,000 blocks per format

TEST(KQuantAvx2, Q4KBlocksByteIdenticalToScalar) {
  expect_identical_blocks<Q4K>([](const float* x, Q4K::Block& b) { cpu::quantize_block_q4_K_avx2(x, b); },
                               kBlocksPerDist, 1234);
}

TEST(KQuantAvx2, Q6KBlocksByteIdenticalToScalar) {
  expect_identical_blocks<Q6K>([](const float* x, Q6K::Block& b) { cpu::quantize_block_q6_K_avx2(x, b); },
                               kBlocksPerDist, 4321);
}

// The row entry points and the quantize_row_fast dispatch, on a multi-block row.
TEST(KQuantAvx2, RowKernelsMatchScalarRows) {
  std::mt19937 rng(77);
  std::vector<float> x(std::size_t(kQK) * 40);
  for (int b = 0; b < 40; ++b) fill_block(Dist(b % int(Dist::kCount)), rng, x.data() + std::size_t(b) * kQK);
  const auto n = std::int64_t(x.size());
  {
    std::vector<Q4K::Block> ref(40), got(40), fast(40);
    quant::quantize_row<format::Q4_K>(x.data(), ref.data(), n);
    cpu::quantize_row_q4_K_avx2(x.data(), got.data(), n);
    cpu::quantize_row_fast<format::Q4_K>(x.data(), fast.data(), n);
    EXPECT_EQ(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(Q4K::Block)), 0);
    EXPECT_EQ(std::memcmp(ref.data(), fast.data(), ref.size() * sizeof(Q4K::Block)), 0);
  }
  {
    std::vector<Q6K::Block> ref(40), got(40), fast(40);
    quant::quantize_row<format::Q6_K>(x.data(), ref.data(), n);
    cpu::quantize_row_q6_K_avx2(x.data(), got.data(), n);
    cpu::quantize_row_fast<format::Q6_K>(x.data(), fast.data(), n);
    EXPECT_EQ(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(Q6K::Block)), 0);
    EXPECT_EQ(std::memcmp(ref.data(), fast.data(), ref.size() * sizeof(Q6K::Block)), 0);
  }
}

#endif  // __AVX2__ (without it there is no SIMD quantizer to compare)

// ---- Q6_K decode / dot: per-element references -----------------------------

// Signed code of element e, written from the format description (independent
// of Q6K::code and of the layout walk under test).
int ref_code(const Q6K::Block& b, int e) {
  const int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
  const int low_byte = b.ql[64 * h + 32 * (k % 2) + l];
  const int low = k < 2 ? low_byte & 15 : low_byte >> 4;
  const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
  return low + 16 * high - 32;
}

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Random blocks: raw random bytes (every code and scale value), plus blocks
// produced by the quantizer.
std::vector<Q6K::Block> q6k_test_blocks(int n_random, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Q6K::Block> blocks;
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(-8.0f, 2.0f);
  for (int n = 0; n < n_random; ++n) {
    Q6K::Block b;
    for (auto& v : b.ql) v = std::uint8_t(byte(rng));
    for (auto& v : b.qh) v = std::uint8_t(byte(rng));
    for (auto& v : b.scales) v = std::int8_t(byte(rng) - 128);
    b.d = Half::from_float((byte(rng) & 1 ? -1.0f : 1.0f) * std::pow(10.0f, mag(rng)));
    blocks.push_back(b);
  }
  float x[kQK];
  for (int d = 0; d < int(Dist::kCount); ++d) {
    for (int n = 0; n < 200; ++n) {
      fill_block(Dist(d), rng, x);
      Q6K::Block b;
      Q6K::quantize_block(x, b);
      blocks.push_back(b);
    }
  }
  return blocks;
}

TEST(Q6KLayoutWalk, DequantizeBitIdenticalToPerElement) {
  const auto blocks = q6k_test_blocks(20000, 99);
  float y[kQK];
  long bad = 0;
  for (const auto& b : blocks) {
    Q6K::dequantize_block(b, y);
    const float d = b.d.to_float();
    for (int e = 0; e < kQK; ++e) {
      const float ref = d * float(b.scales[e / 16]) * float(ref_code(b, e));
      if (bits(ref) != bits(y[e]) && ++bad <= 3) ADD_FAILURE() << "element " << e << ": " << y[e] << " vs " << ref;
      EXPECT_EQ(Q6K::code(b, e), ref_code(b, e));
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(Q6KLayoutWalk, DotBlockBitIdenticalToPerElement) {
  const auto blocks = q6k_test_blocks(20000, 7);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kQK);
  long bad = 0;
  for (const auto& b : blocks) {
    for (auto& v : x) v = normal(rng);
    // Per sub-block: sum of code * x over its 16 elements in index order,
    // then (d * sc) * sum added in sub-block order.
    const float d = b.d.to_float();
    float ref = 0.0f;
    for (int j = 0; j < 16; ++j) {
      float s = 0.0f;
      for (int i = 0; i < 16; ++i) s += float(ref_code(b, 16 * j + i)) * x[std::size_t(16 * j + i)];
      ref += d * float(b.scales[j]) * s;
    }
    const float got = Q6K::dot_block(b, x.data());
    if (bits(ref) != bits(got) && ++bad <= 3) ADD_FAILURE() << got << " vs " << ref;
  }
  EXPECT_EQ(bad, 0);
}

TEST(Q6KLayoutWalk, DotQ8KBitIdenticalToPerElement) {
  const auto blocks = q6k_test_blocks(20000, 11);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kQK);
  Q8K::Block a;
  long bad = 0;
  int n = 0;
  for (const auto& b : blocks) {
    for (auto& v : x) v = normal(rng);
    if (++n % 4 == 0) {
      // Saturated activations: the largest integer products.
      for (int e = 0; e < kQK; ++e) x[std::size_t(e)] = (e % 3 == 0) ? -1.0f : 1.0f;
    }
    Q8K::quantize_block(x.data(), a);
    std::int32_t lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int e = 0; e < kQK; ++e) lanes[e % 8] += int(b.scales[e / 16]) * (ref_code(b, e) * int(a.qs[e]));
    const float d = b.d.to_float() * a.d;
    float ref = 0.0f;
    for (int l = 0; l < 8; ++l) ref += d * float(lanes[l]);
    const float got = Q6K::dot_q8k(b, a);
    if (bits(ref) != bits(got) && ++bad <= 3) ADD_FAILURE() << got << " vs " << ref;
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
