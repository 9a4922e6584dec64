// Tests for qlora/train/frozen_product.hpp: both products with a frozen
// weight held as NF4 blocks, as an F32 view and as a Q8_0 view.
//   fp32: equal to gemm_f32 on the decoded weight (tight tolerance: the
//         panels change Eigen's blocking, not the math).
//   bf16: equal BIT FOR BIT to gemm_bf16_ref on the decoded weight — so the
//         fused NF4 -> bf16 packing equals decode-then-round — for every pool
//         size (the result does not depend on the thread split).
#include "qlora/train/frozen_product.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qlora/quant/q8_0.hpp"
#include "qlora/quant/row.hpp"

namespace {

using namespace qlora;
using cpu::Compute;
using cpu::Op;

std::vector<float> randn(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

enum class Kind { kNf4, kF32, kQ8_0 };

/// A weight of M x K in one of the storage kinds, plus its decoded fp32 copy.
struct Weight {
  std::vector<float> f32;               // the source values (F32 view data)
  std::vector<std::uint8_t> q8;         // Q8_0 bytes
  train::FrozenMatrix W;
  std::vector<float> decoded;           // W decoded to fp32, row-major
};

Weight make_weight(Kind kind, std::int64_t M, std::int64_t K, ThreadPool& pool) {
  Weight w;
  w.f32 = randn(std::size_t(M * K), 5, 1.0f / std::sqrt(float(K)));
  model::TensorRef t;
  t.name = "w";
  t.rows = M;
  t.cols = K;
  t.type = std::uint32_t(quant::GgmlType::F32);
  t.data = w.f32.data();
  if (kind == Kind::kNf4) {
    auto m = train::FrozenMatrix::to_nf4(t, true, pool);
    EXPECT_TRUE(m.is_ok());
    w.W = std::move(*m);
  } else if (kind == Kind::kF32) {
    w.W = train::FrozenMatrix::view(t);
  } else {
    using Q = quant::FormatTraits<quant::format::Q8_0>;
    w.q8.resize(std::size_t(M * (K / 32)) * sizeof(Q::Block));
    for (std::int64_t r = 0; r < M; ++r)
      quant::quantize_row<quant::format::Q8_0>(w.f32.data() + r * K, w.q8.data() + r * (K / 32) * sizeof(Q::Block), K);
    t.type = std::uint32_t(quant::GgmlType::Q8_0);
    t.data = w.q8.data();
    w.W = train::FrozenMatrix::view(t);
  }
  w.decoded.resize(std::size_t(M * K));
  w.W.decode(0, M, 0, K, w.decoded.data(), K);
  return w;
}

const char* kind_name(Kind k) { return k == Kind::kNf4 ? "nf4" : k == Kind::kF32 ? "f32" : "q8_0"; }

TEST(FrozenProduct, Fp32MatchesGemmOnTheDecodedWeight) {
  ThreadPool pool(2);
  const std::int64_t M = 200, K = 320, N = 37;
  for (Kind kind : {Kind::kNf4, Kind::kF32, Kind::kQ8_0}) {
    const Weight w = make_weight(kind, M, K, pool);
    const auto X = randn(std::size_t(N * K), 6), dY = randn(std::size_t(N * M), 7);
    std::vector<float> Y(std::size_t(N * M)), Yr(Y.size()), dX(std::size_t(N * K), 1.0f), dXr(dX.size(), 1.0f);
    train::frozen_forward(w.W, X.data(), N, Y.data(), pool, Compute::kF32);
    cpu::gemm_f32(Op::kN, Op::kT, N, M, K, 1.0f, X.data(), K, w.decoded.data(), K, 0.0f, Yr.data(), M);
    train::frozen_backward_input(w.W, dY.data(), N, dX.data(), true, pool, Compute::kF32);
    cpu::gemm_f32(Op::kN, Op::kN, N, K, M, 1.0f, dY.data(), M, w.decoded.data(), K, 1.0f, dXr.data(), K);
    for (std::size_t i = 0; i < Y.size(); ++i) ASSERT_NEAR(Y[i], Yr[i], 1e-5f) << kind_name(kind);
    for (std::size_t i = 0; i < dX.size(); ++i) ASSERT_NEAR(dX[i], dXr[i], 1e-4f) << kind_name(kind);
  }
}

TEST(FrozenProduct, Bf16EqualsTheOracleForEveryPoolSize) {
  if (!cpu::has_avx512_bf16()) GTEST_SKIP() << "CPU (or build) lacks AVX512_BF16";
  // K = 1088 and M = 1100: both products' depth spans two k blocks (1024 +
  // 64 / 76); M is no multiple of the 48-column panels; N = 37 leaves a row
  // tail.
  const std::int64_t M = 1100, K = 1088, N = 37;
  ThreadPool build_pool(2);
  for (Kind kind : {Kind::kNf4, Kind::kF32, Kind::kQ8_0}) {
    const Weight w = make_weight(kind, M, K, build_pool);
    const auto X = randn(std::size_t(N * K), 8), dY = randn(std::size_t(N * M), 9);
    std::vector<float> Yr(std::size_t(N * M)), dXr(std::size_t(N * K), 0.5f), dXr0(dXr.size());
    cpu::gemm_bf16_ref(Op::kN, Op::kT, N, M, K, 1.0f, X.data(), K, w.decoded.data(), K, 0.0f, Yr.data(), M);
    cpu::gemm_bf16_ref(Op::kN, Op::kN, N, K, M, 1.0f, dY.data(), M, w.decoded.data(), K, 1.0f, dXr.data(), K);
    cpu::gemm_bf16_ref(Op::kN, Op::kN, N, K, M, 1.0f, dY.data(), M, w.decoded.data(), K, 0.0f, dXr0.data(), K);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> Y(Yr.size()), dX(dXr.size(), 0.5f), dX0(dXr.size(), std::nanf(""));
      train::frozen_forward(w.W, X.data(), N, Y.data(), pool, Compute::kBF16);
      train::frozen_backward_input(w.W, dY.data(), N, dX.data(), true, pool, Compute::kBF16);
      train::frozen_backward_input(w.W, dY.data(), N, dX0.data(), false, pool, Compute::kBF16);
      EXPECT_EQ(Y, Yr) << kind_name(kind) << " forward, threads " << threads;
      EXPECT_EQ(dX, dXr) << kind_name(kind) << " input gradient (accumulate), threads " << threads;
      EXPECT_EQ(dX0, dXr0) << kind_name(kind) << " input gradient (overwrite), threads " << threads;
    }
  }
}

}  // namespace
