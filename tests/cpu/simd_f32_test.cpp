// Pins cpu/simd_f32.hpp: dot_f32, dot_f32_keys and weighted_rows_f32 give exactly the
// summation orders of llama.cpp's attention products — restated here as plain
// scalar loops (one std::fma chain per lane, then the documented lane
// reduction) — for both batch regimes, and both stay within the usual fp32
// rounding bound of the exact sum.
#include "qlora/cpu/simd_f32.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using namespace qlora;
using cpu::SumOrder;

constexpr int L = cpu::kGgmlLanes;

/// The lane reduction of simd_f32.hpp's header, for L lanes.
float reduce(const std::vector<float>& lane, SumOrder order) {
  float h[8];
  for (int i = 0; i < 8; ++i) h[i] = L == 16 ? lane[std::size_t(i + 8)] + lane[std::size_t(i)] : lane[std::size_t(i)];
  const float q0 = h[4] + h[0], q1 = h[5] + h[1], q2 = h[6] + h[2], q3 = h[7] + h[3];
  if (L == 8 && order == SumOrder::kSingleToken) return (q0 + q1) + (q2 + q3);
  return (q0 + q2) + (q1 + q3);
}

/// tinyBLAS: lane l chains a[i] * b[i] for i = l (mod L) (n a multiple of L).
float batched(const float* a, const float* b, std::int64_t n) {
  std::vector<float> lane(L, 0.0f);
  for (std::int64_t i = 0; i < n; ++i) lane[std::size_t(i % L)] = std::fma(a[i], b[i], lane[std::size_t(i % L)]);
  return reduce(lane, SumOrder::kBatched);
}

/// ggml_vec_dot_f16: 4 accumulators of L lanes, stride 4L; acc0 += acc2,
/// acc1 += acc3, acc0 += acc1; lane reduction; tail in double.
float single_token(const float* a, const float* b, std::int64_t n) {
  const std::int64_t full = n - n % (4 * L);
  std::vector<float> acc(std::size_t(4 * L), 0.0f);
  for (std::int64_t i = 0; i < full; ++i) acc[std::size_t(i % (4 * L))] = std::fma(a[i], b[i], acc[std::size_t(i % (4 * L))]);
  std::vector<float> lane(L);
  for (int l = 0; l < L; ++l)
    lane[std::size_t(l)] = (acc[std::size_t(l)] + acc[std::size_t(l + 2 * L)]) + (acc[std::size_t(l + L)] + acc[std::size_t(l + 3 * L)]);
  double s = double(reduce(lane, SumOrder::kSingleToken));
  for (std::int64_t i = full; i < n; ++i) s += double(a[i] * b[i]);
  return float(s);
}

std::vector<float> randoms(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

#if defined(__AVX2__) && defined(__FMA__)
constexpr bool kSimd = true;
#else
constexpr bool kSimd = false;  // plain loops, no peer order to match
#endif

TEST(CpuSimdF32, DotProductsFollowGgmlOrders) {
  if (!kSimd) GTEST_SKIP() << "no AVX2/FMA build";
  std::mt19937 rng(21);
  for (std::int64_t n : {16, 32, 64, 128, 80, 200}) {
    const std::vector<float> a = randoms(std::size_t(n), rng), b = randoms(std::size_t(n), rng);
    if (n % L == 0) {
      const float got = cpu::dot_f32(a.data(), b.data(), n, SumOrder::kBatched);
      EXPECT_EQ(std::bit_cast<std::uint32_t>(got), std::bit_cast<std::uint32_t>(batched(a.data(), b.data(), n))) << n;
    }
    const float got1 = cpu::dot_f32(a.data(), b.data(), n, SumOrder::kSingleToken);
    EXPECT_EQ(std::bit_cast<std::uint32_t>(got1), std::bit_cast<std::uint32_t>(single_token(a.data(), b.data(), n)))
        << n;
  }
}

TEST(CpuSimdF32, DotProductsAreAccurateForAnyLength) {
  std::mt19937 rng(22);
  for (std::int64_t n = 1; n <= 140; n += 3) {
    const std::vector<float> a = randoms(std::size_t(n), rng), b = randoms(std::size_t(n), rng);
    double exact = 0.0, mag = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      exact += double(a[std::size_t(i)]) * double(b[std::size_t(i)]);
      mag += std::fabs(double(a[std::size_t(i)]) * double(b[std::size_t(i)]));
    }
    const double bound = double(n + 8) * std::ldexp(1.0, -23) * mag;
    for (SumOrder o : {SumOrder::kBatched, SumOrder::kSingleToken})
      EXPECT_LE(std::fabs(double(cpu::dot_f32(a.data(), b.data(), n, o)) - exact), bound) << n;
  }
}

TEST(CpuSimdF32, KeyDotProductsEqualDotF32PerKey) {
  // Transposed keys, vectorised across keys: every score must be dot_f32's
  // bits (exact emulation lengths, a half vector, and the per-key fallback),
  // including key counts that end inside a step.
  std::mt19937 rng(24);
  for (std::int64_t n : {64, 128, 72, 40, 20, 96}) {
    for (std::int64_t n_keys : {1, 7, 16, 37, 100}) {
      const std::int64_t ldk = (n_keys + cpu::kKeyStep - 1) / cpu::kKeyStep * cpu::kKeyStep + cpu::kKeyStep;
      const std::vector<float> q = randoms(std::size_t(n), rng), kt = randoms(std::size_t(n * ldk), rng);
      for (SumOrder o : {SumOrder::kBatched, SumOrder::kSingleToken}) {
        std::vector<float> out(static_cast<std::size_t>(ldk));
        cpu::dot_f32_keys(q.data(), kt.data(), ldk, n, n_keys, 0.125f, out.data(), o);
        std::vector<float> key(static_cast<std::size_t>(n));
        for (std::int64_t j = 0; j < n_keys; ++j) {
          for (std::int64_t i = 0; i < n; ++i) key[std::size_t(i)] = kt[std::size_t(i * ldk + j)];
          const float want = cpu::dot_f32(q.data(), key.data(), n, o) * 0.125f;
          ASSERT_EQ(std::bit_cast<std::uint32_t>(out[std::size_t(j)]), std::bit_cast<std::uint32_t>(want))
              << "n=" << n << " keys=" << n_keys << " j=" << j << (o == SumOrder::kBatched ? " batched" : " single");
        }
      }
    }
  }
}

TEST(CpuSimdF32, WeightedRowsAreColumnDotProductsInGgmlOrder) {
  std::mt19937 rng(23);
  std::vector<float> scratch;
  const std::int64_t width = 40, ldv = 56;  // a head inside a wider row, width not a multiple of 8
  for (std::int64_t n : {1, 5, 16, 33, 64, 130}) {
    std::vector<float> p = randoms(std::size_t(n), rng);
    for (float& x : p) x = std::fabs(x);  // probabilities are >= 0 (any sign works)
    const std::vector<float> v = randoms(std::size_t(n * ldv), rng);
    for (SumOrder o : {SumOrder::kBatched, SumOrder::kSingleToken}) {
      std::vector<float> out(static_cast<std::size_t>(width));
      cpu::weighted_rows_f32(p.data(), v.data(), ldv, n, out.data(), width, o, scratch);
      for (std::int64_t d = 0; d < width; ++d) {
        // Column d of V, zero-padded to whole blocks as llama.cpp's KV length is.
        const std::int64_t padded = (n + 4 * L - 1) / (4 * L) * (4 * L);
        std::vector<float> col(std::size_t(padded), 0.0f), pp(std::size_t(padded), 0.0f);
        for (std::int64_t j = 0; j < n; ++j) {
          col[std::size_t(j)] = v[std::size_t(j * ldv + d)];
          pp[std::size_t(j)] = p[std::size_t(j)];
        }
        double exact = 0.0, mag = 0.0;
        for (std::int64_t j = 0; j < n; ++j) {
          exact += double(pp[std::size_t(j)]) * double(col[std::size_t(j)]);
          mag += std::fabs(double(pp[std::size_t(j)]) * double(col[std::size_t(j)]));
        }
        EXPECT_LE(std::fabs(double(out[std::size_t(d)]) - exact), double(n + 8) * std::ldexp(1.0, -23) * mag);
        if (!kSimd) continue;
        const float want = o == SumOrder::kBatched ? batched(pp.data(), col.data(), padded)
                                                   : single_token(pp.data(), col.data(), padded);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(out[std::size_t(d)]), std::bit_cast<std::uint32_t>(want))
            << "n=" << n << " d=" << d << (o == SumOrder::kBatched ? " batched" : " single token");
      }
    }
  }
}

}  // namespace
