// qlora/lora/lora_product.hpp — the low-rank branch of a LoRA projection,
// forward and backward, on the CPU.
//
//   forward    U[N,r]  = Xd[N,in] · A^T             Xd = dropout(X) (or X)
//              Y[N,out] += s · U · B^T              s = alpha / r
//   backward   dB[out,r] += s · dY^T · U
//              G[N,r]    = s · dY · B
//              dA[r,in]  += G^T · Xd
//              dXd[N,in] += G · A                   (then dropout's mask)
//
// LoRARank<R> fixes r at compile time (R = 0: run-time rank): the two products
// whose inner dimension is r (U·B^T, G·A) become fixed-size Eigen products, and
// the buffers' shapes are checked by the type. The other two are ordinary
// GEMMs over N. Rows of N are split across the pool for the products that
// produce per-row outputs; the weight gradients (sums over N) run whole on one
// thread each, so the reductions are deterministic for a given pool size.
#pragma once

#include <cstdint>

#include "qlora/core/parallel_for.hpp"
#include "qlora/cpu/gemm_f32.hpp"

namespace qlora::lora {

namespace product_detail {

template <int R>
using RankCols = Eigen::Matrix<float, Eigen::Dynamic, (R > 0 ? R : Eigen::Dynamic), Eigen::RowMajor>;
template <int R>
using RankRows = Eigen::Matrix<float, (R > 0 ? R : Eigen::Dynamic), Eigen::Dynamic, Eigen::RowMajor>;

/// Y[N,out] += s · U[N,r] · B[out,r]^T with r fixed at compile time when R > 0.
template <int R>
void add_low_rank(const float* U, const float* B, std::int64_t N, std::int64_t out, int r, float s, float* Y) {
  Eigen::Map<const RankCols<R>> u(U, N, r);
  Eigen::Map<const RankCols<R>> b(B, out, r);
  Eigen::Map<cpu::gemm_detail::RowMat> y(Y, N, out);
  y.noalias() += s * (u * b.transpose());
}

/// dX[N,in] += G[N,r] · A[r,in].
template <int R>
void add_rank_expand(const float* G, const float* A, std::int64_t N, std::int64_t in, int r, float* dX) {
  Eigen::Map<const RankCols<R>> g(G, N, r);
  Eigen::Map<const RankRows<R>> a(A, r, in);
  Eigen::Map<cpu::gemm_detail::RowMat> dx(dX, N, in);
  dx.noalias() += g * a;
}

}  // namespace product_detail

/// Shapes of one LoRA branch.
struct LoraDims {
  std::int64_t n = 0;    // rows (tokens)
  std::int64_t in = 0;   // projection input features
  std::int64_t out = 0;  // projection output features
  int rank = 0;
  float scale = 1.0f;    // alpha / r
};

/// U = Xd A^T, then Y += s U B^T. U: [n, rank] (kept for the backward pass).
template <int R>
void lora_forward(const LoraDims& d, const float* Xd, const float* A, const float* B, float* U, float* Y,
                  ThreadPool& pool) {
  static_assert(R >= 0);
  parallel_for(std::size_t(d.n), 16, [&](std::size_t t0, std::size_t t1) {
    const std::int64_t rows = std::int64_t(t1 - t0);
    cpu::gemm_f32(cpu::Op::kN, cpu::Op::kT, rows, d.rank, d.in, 1.0f, Xd + std::int64_t(t0) * d.in, d.in, A, d.in, 0.0f,
                  U + std::int64_t(t0) * d.rank, d.rank);
    product_detail::add_low_rank<R>(U + std::int64_t(t0) * d.rank, B, rows, d.out, d.rank, d.scale,
                                    Y + std::int64_t(t0) * d.out);
  }, pool);
}

/// Accumulate dA, dB and (when dXd is not null) dXd from dY. G: [n, rank] scratch.
template <int R>
void lora_backward(const LoraDims& d, const float* dY, const float* Xd, const float* U, const float* A, const float* B,
                   float* dA, float* dB, float* G, float* dXd, ThreadPool& pool) {
  static_assert(R >= 0);
  // G = s dY B  (per-row), then dXd += G A (per-row).
  parallel_for(std::size_t(d.n), 16, [&](std::size_t t0, std::size_t t1) {
    const std::int64_t rows = std::int64_t(t1 - t0);
    cpu::gemm_f32(cpu::Op::kN, cpu::Op::kN, rows, d.rank, d.out, d.scale, dY + std::int64_t(t0) * d.out, d.out, B,
                  d.rank, 0.0f, G + std::int64_t(t0) * d.rank, d.rank);
    if (dXd) product_detail::add_rank_expand<R>(G + std::int64_t(t0) * d.rank, A, rows, d.in, d.rank,
                                                dXd + std::int64_t(t0) * d.in);
  }, pool);
  // dB += s dY^T U and dA += G^T Xd: two independent reductions over n.
  parallel_for(2, 1, [&](std::size_t w0, std::size_t w1) {
    for (std::size_t w = w0; w < w1; ++w) {
      if (w == 0)
        cpu::gemm_f32(cpu::Op::kT, cpu::Op::kN, d.out, d.rank, d.n, d.scale, dY, d.out, U, d.rank, 1.0f, dB, d.rank);
      else
        cpu::gemm_f32(cpu::Op::kT, cpu::Op::kN, d.rank, d.in, d.n, 1.0f, G, d.rank, Xd, d.in, 1.0f, dA, d.in);
    }
  }, pool);
}

}  // namespace qlora::lora
