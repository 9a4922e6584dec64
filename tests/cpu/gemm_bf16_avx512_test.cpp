// Tests for qlora/cpu/gemm_bf16_avx512.hpp: the AVX-512 BF16 GEMM equals its
// scalar oracle bit for bit (every transposition, all three register tiles,
// row/column/k tails, leading dimensions, alpha, beta 0/1), the packed-A
// driver gives the same bits however the columns are split between threads,
// and the bf16 product stays within a stated bound of the exact one.
// All cases skip when the CPU lacks AVX512_BF16.
#include "qlora/cpu/gemm_bf16_avx512.hpp"

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

#if QLORA_HAVE_AVX512_BF16_KERNELS  // the vector kernels exist only there
struct Case {
  Op a, b;
  std::int64_t M, N, K;
  float alpha, beta;
};

/// Runs the AVX-512 GEMM and the oracle on the same inputs (leading
/// dimensions padded, C pre-filled) and expects identical bits.
void expect_exact(const Case& c, unsigned seed) {
  const std::int64_t lda = (c.a == Op::kN ? c.K : c.M) + 3, ldb = (c.b == Op::kN ? c.N : c.K) + 5, ldc = c.N + 2;
  const auto A = randn(std::size_t((c.a == Op::kN ? c.M : c.K) * lda), seed);
  const auto B = randn(std::size_t((c.b == Op::kN ? c.K : c.N) * ldb), seed + 1);
  auto C = randn(std::size_t(c.M * ldc), seed + 2);
  if (c.beta == 0.0f)  // beta = 0 must ignore what C holds, even NaN
    for (std::size_t i = 0; i < C.size(); i += 3) C[i] = std::numeric_limits<float>::quiet_NaN();
  auto R = C;
  gemm_bf16_avx512(c.a, c.b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  gemm_bf16_ref(c.a, c.b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, R.data(), ldc);
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < c.M; ++i)
    for (std::int64_t j = 0; j < ldc; ++j) {
      const float x = C[std::size_t(i * ldc + j)], y = R[std::size_t(i * ldc + j)];
      if (!(x == y || (std::isnan(x) && std::isnan(y)))) ++bad;  // padding columns must be untouched too
    }
  EXPECT_EQ(bad, 0) << "op " << int(c.a) << int(c.b) << " " << c.M << "x" << c.N << "x" << c.K << " alpha " << c.alpha
                    << " beta " << c.beta;
}

TEST(GemmBf16Avx512, EqualsScalarOracleBitForBit) {
  SKIP_WITHOUT_BF16();
  unsigned seed = 10;
  const std::vector<std::array<std::int64_t, 3>> sizes = {
      {1, 1, 1}, {7, 5, 3}, {8, 48, 256}, {9, 49, 257}, {37, 53, 301}, {256, 64, 256}, {70, 200, 600},
      {20, 30, 1100}, {5, 17, 2051}};  // the last two span 2 and 3 k blocks (kBf16Kc = 1024), 2051 odd
  for (Op a : {Op::kN, Op::kT})
    for (Op b : {Op::kN, Op::kT})
      for (const auto& s : sizes)
        for (float beta : {0.0f, 1.0f}) {
          expect_exact({a, b, s[0], s[1], s[2], 1.0f, beta}, seed++);
          expect_exact({a, b, s[0], s[1], s[2], 0.125f + 0.3f * beta, beta}, seed++);
        }
}

TEST(GemmBf16Avx512, EmptyDepthClearsOrKeeps) {
  SKIP_WITHOUT_BF16();
  std::vector<float> C(12, 5.0f);
  gemm_bf16_avx512(Op::kN, Op::kN, 3, 4, 0, 1.0f, nullptr, 1, nullptr, 4, 1.0f, C.data(), 4);
  EXPECT_EQ(C, std::vector<float>(12, 5.0f));
  gemm_bf16_avx512(Op::kN, Op::kN, 3, 4, 0, 1.0f, nullptr, 1, nullptr, 4, 0.0f, C.data(), 4);
  EXPECT_EQ(C, std::vector<float>(12, 0.0f));
}

TEST(GemmBf16Avx512, PackedADriverDoesNotDependOnTheColumnSplit) {
  SKIP_WITHOUT_BF16();
  // C = X W^T with X packed once; columns computed whole, or in the uneven
  // ranges different thread counts would own, must give the same bits (and
  // the oracle's).
  const std::int64_t M = 37, K = 1500, N = 300;  // two k blocks
  const auto X = randn(std::size_t(M * K), 20), W = randn(std::size_t(N * K), 21);
  std::vector<std::uint32_t> a(std::size_t(bf16_packed_a_words(M, K)));
  const std::int64_t panels = (M + kBf16Mr - 1) / kBf16Mr;
  pack_a_bf16(X.data(), K, 1, M, K, 0, 2, a.data());  // two "threads" pack disjoint panels
  pack_a_bf16(X.data(), K, 1, M, K, 2, panels, a.data());
  auto pack = [&](std::int64_t k0, std::int64_t kd, std::int64_t j, std::int64_t nj, std::uint32_t* dst) {
    pack_bf16(W.data() + j * K + k0, K, 1, nj, kd, kBf16Nr, dst);
  };
  std::vector<float> whole(std::size_t(M * N)), split(whole.size()), ref(whole.size());
  gemm_bf16_packed_a(a.data(), M, K, 0, N, pack, 1.0f, 0.0f, whole.data(), N);
  // Ranges start on panel edges (multiples of kBf16Nr = 48), as threads' do.
  const std::pair<std::int64_t, std::int64_t> ranges[] = {{0, 96}, {96, 240}, {240, 288}, {288, N}};
  for (auto [j0, j1] : ranges) gemm_bf16_packed_a(a.data(), M, K, j0, j1, pack, 1.0f, 0.0f, split.data(), N);
  gemm_bf16_ref(Op::kN, Op::kT, M, N, K, 1.0f, X.data(), K, W.data(), K, 0.0f, ref.data(), N);
  EXPECT_EQ(whole, ref);
  EXPECT_EQ(split, ref);
}

/// Relative Frobenius error ||C - C_exact|| / ||C_exact|| with C_exact in double.
double rel_frobenius(const std::vector<float>& C, const std::vector<double>& exact) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < C.size(); ++i) {
    num += (C[i] - exact[i]) * (C[i] - exact[i]);
    den += exact[i] * exact[i];
  }
  return std::sqrt(num / den);
}

TEST(GemmBf16Avx512, StaysWithinBf16RoundingOfTheFp32Product) {
  SKIP_WITHOUT_BF16();
  // Bound: each operand is rounded with relative error <= 2^-9, so a product
  // term errs by <= ~2^-8 relative and, for independent random terms, the
  // relative Frobenius error of C is about 2^-9 · sqrt(2) ~ 2.8e-3.
  // We assert < 2^-7 (7.8e-3) and > 2^-12 (proof that bf16 rounding really
  // happened), while fp32 stays below 1e-5.
  for (auto [M, N, K] : std::vector<std::array<std::int64_t, 3>>{{256, 576, 576}, {256, 192, 1536}, {64, 100, 64}}) {
    const auto A = randn(std::size_t(M * K), 30), B = randn(std::size_t(N * K), 31, 0.05f);
    std::vector<double> exact(std::size_t(M * N), 0.0);
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) {
        double s = 0.0;
        for (std::int64_t k = 0; k < K; ++k) s += double(A[std::size_t(i * K + k)]) * B[std::size_t(j * K + k)];
        exact[std::size_t(i * N + j)] = s;
      }
    std::vector<float> c16(exact.size()), c32(exact.size());
    gemm_bf16_avx512(Op::kN, Op::kT, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, c16.data(), N);
    gemm_f32(Op::kN, Op::kT, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, c32.data(), N);
    const double e16 = rel_frobenius(c16, exact), e32 = rel_frobenius(c32, exact);
    RecordProperty("rel_frobenius_bf16_" + std::to_string(K), std::to_string(e16));
    EXPECT_LT(e16, 1.0 / 128) << M << "x" << N << "x" << K;
    EXPECT_GT(e16, 1.0 / 4096) << M << "x" << N << "x" << K;
    EXPECT_LT(e32, 1e-5) << M << "x" << N << "x" << K;
  }
}
#endif

}  // namespace
