// Tests for qlora/cpu/gemm_bf16_avx512.hpp, bf16_pack.hpp, bf16_pack_nf4.hpp
// and gemm.hpp: the AVX-512 BF16 GEMM equals its scalar oracle bit for bit
// (every transposition, tails, leading dimensions, alpha, beta 0/1), the
// vector packers equal the scalar layout definition, the hardware rounding
// equals bf16_from_f32, the result does not depend on how columns are split,
// and the bf16 product stays within a stated bound of fp32.
// bf16-specific cases skip when the CPU lacks AVX512_BF16.
#include "qlora/cpu/gemm_bf16_avx512.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "qlora/cpu/bf16_pack_nf4.hpp"
#include "qlora/cpu/gemm.hpp"

namespace {

using namespace qlora;
using namespace qlora::cpu;

#define SKIP_WITHOUT_BF16()                                                  \
  if (!has_avx512_bf16()) GTEST_SKIP() << "CPU (or build) lacks AVX512_BF16"

std::vector<float> randn(std::size_t n, unsigned seed, float scale = 1.0f) {
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
  // The layout itself: word (line 9, pair 2) of W = 8 is in panel 1, slot 1.
  std::vector<float> m(16 * 6);
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = float(i);
  std::vector<std::uint32_t> p(std::size_t(bf16_packed_words(16, 6, 8)));
  pack_bf16_ref(m.data(), 6, 1, 16, 6, 8, p.data());
  EXPECT_EQ(p[(1 * 3 + 2) * 8 + 1], bf16_word(m[9 * 6 + 4], m[9 * 6 + 5]));
}

/// An NF4 matrix of rows x cols (cols a multiple of 64) with random codes.
std::vector<Nf4Block> random_nf4(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Nf4Block> b(std::size_t(rows * cols / 64));
  for (auto& x : b) {
    x.absmax = 0.01f + 0.1f * float(rng() % 1000) / 1000.0f;
    for (auto& q : x.qs) q = std::uint8_t(rng());
  }
  return b;
}

TEST(Bf16PackNf4, EqualsDecodingThenPacking) {
  const std::int64_t rows = 100, cols = 192;
  const auto blocks = random_nf4(rows, cols, 2);
  std::vector<float> dense(std::size_t(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; c += 64) {
      quant::FormatTraits<quant::format::NF4>::dequantize_block(blocks[std::size_t(r * cols / 64 + c / 64)],
                                                               dense.data() + r * cols + c);
    }
  // Forward orientation: rows [3, 3+50) x columns [64, 64+128).
  std::vector<std::uint32_t> a(std::size_t(bf16_packed_words(50, 128, 48))), b(a.size());
  pack_bf16_nf4_rows_ref(blocks.data(), cols, 3, 50, 64, 128, 48, a.data());
  pack_bf16_ref(dense.data() + 3 * cols + 64, cols, 1, 50, 128, 48, b.data());
  EXPECT_EQ(a, b);
  // Backward orientation: columns [16, 16+70) x rows [5, 5+33) (odd depth).
  std::vector<std::uint32_t> c(std::size_t(bf16_packed_words(70, 33, 48))), d(c.size());
  pack_bf16_nf4_cols_ref(blocks.data(), cols, 16, 70, 5, 33, 48, c.data());
  pack_bf16_ref(dense.data() + 5 * cols + 16, 1, cols, 70, 33, 48, d.data());
  EXPECT_EQ(c, d);
}

TEST(Bf16PackNf4, VectorPackersEqualScalar) {
  SKIP_WITHOUT_BF16();
  const std::int64_t rows = 130, cols = 576;
  const auto blocks = random_nf4(rows, cols, 3);
  for (int W : {48, 16, 8}) {
    // Rows: whole-matrix and offset slices, line tails, k slices of 256 / 64.
    for (auto [r0, n, c0, depth] : std::vector<std::array<std::int64_t, 4>>{
             {0, 130, 0, 576}, {7, 41, 256, 256}, {48, 48, 512, 64}, {1, 3, 32, 96}}) {
      std::vector<std::uint32_t> got(std::size_t(bf16_packed_words(n, depth, W))), want(got.size());
      pack_bf16_nf4_rows(blocks.data(), cols, r0, n, c0, depth, W, got.data());
      pack_bf16_nf4_rows_ref(blocks.data(), cols, r0, n, c0, depth, W, want.data());
      EXPECT_EQ(got, want) << "rows W=" << W << " r0=" << r0 << " n=" << n << " c0=" << c0 << " depth=" << depth;
    }
    // Columns: 16-aligned starts, column tails, odd row counts.
    for (auto [c0, n, r0, depth] : std::vector<std::array<std::int64_t, 4>>{
             {0, 576, 0, 130}, {48, 96, 2, 256 - 129}, {560, 16, 7, 3}, {288, 40, 0, 1}}) {
      std::vector<std::uint32_t> got(std::size_t(bf16_packed_words(n, depth, W))), want(got.size());
      pack_bf16_nf4_cols(blocks.data(), cols, c0, n, r0, depth, W, got.data());
      pack_bf16_nf4_cols_ref(blocks.data(), cols, c0, n, r0, depth, W, want.data());
      EXPECT_EQ(got, want) << "cols W=" << W << " c0=" << c0 << " n=" << n << " r0=" << r0 << " depth=" << depth;
    }
  }
}

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
      {1, 1, 1}, {7, 5, 3}, {8, 48, 256}, {9, 49, 257}, {37, 53, 301}, {256, 64, 256}, {70, 200, 600}, {20, 30, 513}};
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
  const std::int64_t M = 37, K = 700, N = 300;
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
