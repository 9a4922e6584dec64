// Tests for qlora/cpu/gemm.hpp: the compute switch parses, resolves to what
// the CPU can run, and dispatches to gemm_f32 or the bf16 GEMM.
#include "qlora/cpu/gemm.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace {

using namespace qlora;
using namespace qlora::cpu;

[[maybe_unused]] std::vector<float> randn(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

TEST(Gemm, ComputeSwitchDispatchesAndParses) {
  EXPECT_EQ(*parse_compute("bf16"), Compute::kBF16);
  EXPECT_EQ(*parse_compute("fp32"), Compute::kF32);
  EXPECT_FALSE(parse_compute("fp16").is_ok());
  EXPECT_EQ(resolve_compute(Compute::kF32), Compute::kF32);
  EXPECT_EQ(resolve_compute(Compute::kBF16), has_avx512_bf16() ? Compute::kBF16 : Compute::kF32);
  EXPECT_EQ(default_compute(), resolve_compute(Compute::kBF16));
  const std::int64_t M = 13, N = 21, K = 40;
  const auto A = randn(std::size_t(M * K), 40), B = randn(std::size_t(K * N), 41);
  std::vector<float> got(std::size_t(M * N)), want(got.size());
  gemm(Compute::kF32, Op::kN, Op::kN, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, got.data(), N);
  gemm_f32(Op::kN, Op::kN, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, want.data(), N);
  EXPECT_EQ(got, want);
  gemm(Compute::kBF16, Op::kN, Op::kN, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, got.data(), N);
  if (has_avx512_bf16()) gemm_bf16_ref(Op::kN, Op::kN, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, want.data(), N);
  EXPECT_EQ(got, want);  // bf16 where available, else the fp32 fallback
}

}  // namespace
