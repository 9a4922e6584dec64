// qlora/cpu/gemm_f32.hpp — single-threaded fp32 matrix products on row-major
// views, for the trainer's dense work (dequantized weight panels, LoRA
// factors, attention). Callers split work across the pool themselves, so the
// partition — and with it every result — never depends on Eigen's threading.
//
//   C[M,N] = beta·C + alpha · op(A) · op(B)       op(X) = X or X^T
//
// Every matrix is row-major with a leading dimension (elements between rows),
// so sub-blocks of bigger buffers (one head's columns, a panel of rows) are
// passed without copies. The products run on Eigen's cache-blocked GEMM
// (style.md §2.1: Eigen only in cpu/); beta is 0 or 1.
#pragma once

#define EIGEN_DONT_PARALLELIZE  // threads are ours (core/parallel_for.hpp)
#include <Eigen/Core>

#include <cstdint>

namespace qlora::cpu {

enum class Op { kN, kT };

namespace gemm_detail {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

}  // namespace gemm_detail

/// C[M,N] = beta·C + alpha·op(A)·op(B). op(A) is M x K (A stored K x M when
/// transposed), op(B) is K x N (B stored N x K when transposed). beta must be
/// 0 (C is overwritten, may hold garbage) or 1 (accumulate).
inline void gemm_f32(Op op_a, Op op_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                     std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  using namespace gemm_detail;
  if (M == 0 || N == 0) return;
  MMap c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == 0.0f) c.setZero();
    return;
  }
  const std::int64_t a_rows = op_a == Op::kN ? M : K, a_cols = op_a == Op::kN ? K : M;
  const std::int64_t b_rows = op_b == Op::kN ? K : N, b_cols = op_b == Op::kN ? N : K;
  CMap a(A, a_rows, a_cols, Eigen::OuterStride<>(lda));
  CMap b(B, b_rows, b_cols, Eigen::OuterStride<>(ldb));
  auto run = [&](const auto& x, const auto& y) {
    if (beta == 0.0f) c.noalias() = alpha * (x * y);
    else c.noalias() += alpha * (x * y);
  };
  if (op_a == Op::kN && op_b == Op::kN) run(a, b);
  else if (op_a == Op::kN) run(a, b.transpose());
  else if (op_b == Op::kN) run(a.transpose(), b);
  else run(a.transpose(), b.transpose());
}

}  // namespace qlora::cpu
