// Pins cpu/vec_exp.hpp: the vectorised exp equals ggml's polynomial (restated
// here as scalar std::fma steps) bit for bit over the whole float range,
// including the under/overflow branches, and stays within a few ulps of
// std::exp; softmax_row and swiglu_row equal ggml's row functions restated
// the same way (per-vector float sums, double across vectors, libm tails).
#include "qlora/cpu/vec_exp.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace qlora;
namespace C = qlora::cpu::vec_exp_detail;

/// ggml_v_expf, one lane, in the variant this build uses.
float exp_lane(float x) {
  const float z = std::fma(x, C::kLog2e, C::kRound);
  const float n = z - C::kRound;
  const float b = std::fma(-n, C::kLn2Lo, std::fma(-n, C::kLn2Hi, x));
  const float u = b * b;
  const float hi = std::fma(C::kC5, b, C::kC4), mid = std::fma(C::kC3, b, C::kC2);
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  const float p = std::fma(std::fma(hi, u, mid), u, std::fma(C::kC1, b, 1.0f));
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  return std::ldexp(p, int(n));  // scalef: p * 2^n, one rounding
#else
  const float j = std::fma(std::fma(hi, u, mid), u, C::kC1 * b);
  const std::uint32_t e = std::bit_cast<std::uint32_t>(z) << 23;
  const float k = std::bit_cast<float>(e + std::bit_cast<std::uint32_t>(1.0f));
  if (!(std::fabs(n) > 126.0f)) return std::fma(j, k, k);
  const std::uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = std::bit_cast<float>(g + 0x7f000000u), s2 = std::bit_cast<float>(e - g);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
#endif
}

/// Apply the build's vector exp to x[0..n) (n a multiple of kExpLanes).
std::vector<float> exp_vector(const std::vector<float>& x) {
  std::vector<float> y(x.size());
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  for (std::size_t i = 0; i < x.size(); i += 16) _mm512_storeu_ps(y.data() + i, cpu::exp16(_mm512_loadu_ps(x.data() + i)));
#elif defined(__AVX2__) && defined(__FMA__)
  for (std::size_t i = 0; i < x.size(); i += 8) _mm256_storeu_ps(y.data() + i, cpu::exp8(_mm256_loadu_ps(x.data() + i)));
#else
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = std::exp(x[i]);
#endif
  return y;
}

/// The lane sum of one exp vector (ggml: _mm512_reduce_add_ps / hsum of 8).
float reduce_lanes(const float* v) {
  const float* h = v;
  float h8[8];
  if (cpu::kExpLanes == 16) {
    for (int i = 0; i < 8; ++i) h8[i] = v[i + 8] + v[i];
    h = h8;
  }
  const float q0 = h[4] + h[0], q1 = h[5] + h[1], q2 = h[6] + h[2], q3 = h[7] + h[3];
  return (q0 + q2) + (q1 + q3);
}

std::vector<float> test_inputs() {
  std::vector<float> x = {0.0f,    -0.0f,   1e-30f,  -1e-30f, 1.0f,    -1.0f,   0.5f,     -0.5f,    88.0f,  88.7f,
                          -87.0f,  -87.5f,  -88.5f,  -100.0f, -103.0f, -104.0f, -120.0f,  -150.0f,  89.0f,  100.0f,
                          200.0f,  -200.0f, 1e30f,   -1e30f,  INFINITY, -INFINITY, 126.5f, -126.5f, 127.2f, -130.0f};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> wide(-110.0f, 95.0f), narrow(-12.0f, 3.0f);
  for (int i = 0; i < 20000; ++i) x.push_back(i % 2 ? wide(rng) : narrow(rng));
  const std::size_t L = std::size_t(cpu::kExpLanes > 1 ? cpu::kExpLanes : 1);
  while (x.size() % L) x.push_back(0.25f);
  return x;
}

TEST(CpuVecExp, EqualsGgmlPolynomialBitForBit) {
  if (cpu::kExpLanes == 1) GTEST_SKIP() << "no AVX2/AVX-512 build: std::exp is used";
  const std::vector<float> x = test_inputs();
  const std::vector<float> y = exp_vector(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float want = exp_lane(x[i]);
    ASSERT_EQ(std::bit_cast<std::uint32_t>(y[i]), std::bit_cast<std::uint32_t>(want))
        << "exp(" << x[i] << ") = " << y[i] << ", ggml's steps give " << want;
  }
}

TEST(CpuVecExp, StaysWithinAFewUlpsOfLibm) {
  const std::vector<float> x = test_inputs();
  const std::vector<float> y = exp_vector(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(double(x[i]));
    if (std::isinf(x[i])) {
      EXPECT_EQ(y[i], x[i] > 0 ? INFINITY : 0.0f);
      continue;
    }
    if (ref > 1e-37 && ref < 1e38) {  // normal results: ggml documents 1.45 ulp + 0.5 rounding
      EXPECT_LE(std::fabs(double(y[i]) - ref), 2.5 * std::ldexp(1.0, std::ilogb(ref) - 23)) << x[i];
    } else if (ref <= 1e-37) {
      EXPECT_LE(y[i], 2e-37f) << x[i];  // underflow region: tiny or zero
    }
  }
}

TEST(CpuVecExp, SoftmaxRowEqualsGgmlRowFunction) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.0f, 3.0f);
  for (int n : {1, 7, 16, 17, 64, 100, 256}) {
    std::vector<float> x(static_cast<std::size_t>(n));
    for (float& v : x) v = g(rng);
    if (n >= 16) x[3] = x[9] = -INFINITY;  // masked entries
    // ggml: max, exp(x - max) per vector with a float lane sum, added in
    // double; libm expf for the tail; then one float scale 1/sum.
    float mx = -INFINITY;
    for (float v : x) mx = std::max(mx, v);
    std::vector<float> e(x.size());
    double sum = 0.0;
    const int L = cpu::kExpLanes;
    int i = 0;
    for (; L > 1 && i + L <= n; i += L) {
      for (int k = 0; k < L; ++k) e[std::size_t(i + k)] = exp_lane(x[std::size_t(i + k)] - mx);
      sum += double(reduce_lanes(e.data() + i));
    }
    for (; i < n; ++i) sum += double(e[std::size_t(i)] = std::exp(x[std::size_t(i)] - mx));
    const float inv = float(1.0 / sum);
    std::vector<float> y = x;
    const float lse = cpu::softmax_row(y.data(), n);
    double total = 0.0;
    for (int k = 0; k < n; ++k) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(y[std::size_t(k)]), std::bit_cast<std::uint32_t>(e[std::size_t(k)] * inv))
          << "n=" << n << " k=" << k;
      total += y[std::size_t(k)];
    }
    EXPECT_NEAR(total, 1.0, 1e-5) << n;
    if (n >= 16) {
      EXPECT_EQ(y[3], 0.0f);
    }
    double ref = 0.0;
    for (float v : x) ref += std::exp(double(v) - double(mx));
    EXPECT_NEAR(lse, std::log(ref) + mx, 1e-5 * (1.0 + std::fabs(mx))) << n;
  }
}

TEST(CpuVecExp, SwigluRowEqualsGgmlRowFunction) {
  std::mt19937 rng(4);
  std::normal_distribution<float> g(0.0f, 4.0f);
  for (int n : {5, 16, 40, 1536}) {
    std::vector<float> gate(static_cast<std::size_t>(n)), up(gate.size()), out(gate.size());
    for (float& v : gate) v = g(rng);
    for (float& v : up) v = g(rng);
    gate[0] = -120.0f;  // exp(-x) overflows: silu = x / inf = -0
    cpu::swiglu_row(gate.data(), up.data(), out.data(), n);
    const int vec_end = cpu::kExpLanes > 1 ? n - n % cpu::kExpLanes : 0;
    for (int i = 0; i < n; ++i) {
      const float x = gate[std::size_t(i)];
      const float e = i < vec_end ? exp_lane(0.0f - x) : std::exp(-x);
      const float want = x / (1.0f + e) * up[std::size_t(i)];
      ASSERT_EQ(std::bit_cast<std::uint32_t>(out[std::size_t(i)]), std::bit_cast<std::uint32_t>(want))
          << "n=" << n << " i=" << i;
    }
    // In place (out aliases gate) gives the same.
    std::vector<float> g2 = gate;
    cpu::swiglu_row(g2.data(), up.data(), g2.data(), n);
    EXPECT_EQ(0, std::memcmp(g2.data(), out.data(), out.size() * sizeof(float)));
  }
}

}  // namespace
