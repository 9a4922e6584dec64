// qlora/train/frozen_product.hpp — the two products the trainer needs with a
// frozen base weight W (M x K, y = x W^T), dequantized a panel at a time:
//
//   forward          Y[N,M]  = X[N,K] · W^T      panels of W's rows
//   input gradient   dX[N,K] (+)= dY[N,M] · W    panels of W's columns
//
// Each pool task decodes one panel into a thread-local fp32 buffer (kept in
// L2) and runs a GEMM on it, so a 4-bit weight is never held in full
// precision. Every output element is written by exactly one task, so results
// are deterministic for a given pool size (Eigen's K-blocking depends on the
// panel shape, so a different thread count may round differently).
// F32 weights skip the decode.
// (No weight gradient: the base is frozen; LoRA's gradients are in lora/.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/cpu/gemm_f32.hpp"
#include "qlora/train/frozen_matrix.hpp"

namespace qlora::train {

namespace frozen_detail {

inline float* panel_buffer(std::size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

/// Panel width along a dimension of `n` elements: a multiple of `align`, and
/// small enough to give each thread ~4 panels (load balance on 2-8 cores).
inline std::int64_t panel_width(std::int64_t n, std::int64_t align, std::int64_t max_width, const ThreadPool& pool) {
  const std::int64_t target = std::max<std::int64_t>(1, 4 * pool.size());
  std::int64_t w = (n + target - 1) / target;
  w = std::min(w, max_width);
  w = (w + align - 1) / align * align;
  return std::max(w, align);
}

}  // namespace frozen_detail

/// Y[N,M] = X[N,K] · W^T (overwrites Y).
inline void frozen_forward(const FrozenMatrix& W, const float* X, std::int64_t N, float* Y, ThreadPool& pool) {
  const std::int64_t M = W.rows(), K = W.cols();
  if (N == 0 || M == 0) return;
  // 32-row panels: 32 x K fp32 (<= 200 KB for K <= 1536) stays in L2 while all N rows stream past.
  const std::int64_t mp = frozen_detail::panel_width(M, 8, 32, pool);
  const std::size_t panels = std::size_t((M + mp - 1) / mp);
  parallel_for(panels, 1, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      const std::int64_t r0 = std::int64_t(p) * mp, r1 = std::min(M, r0 + mp);
      const float* w = W.dense();
      if (w) {
        w += r0 * K;
      } else {
        float* buf = frozen_detail::panel_buffer(std::size_t((r1 - r0) * K));
        W.decode(r0, r1, 0, K, buf, K);
        w = buf;
      }
      cpu::gemm_f32(cpu::Op::kN, cpu::Op::kT, N, r1 - r0, K, 1.0f, X, K, w, K, 0.0f, Y + r0, M);
    }
  }, pool);
}

/// dX[N,K] = (accumulate ? dX : 0) + dY[N,M] · W.
inline void frozen_backward_input(const FrozenMatrix& W, const float* dY, std::int64_t N, float* dX, bool accumulate,
                                  ThreadPool& pool) {
  const std::int64_t M = W.rows(), K = W.cols();
  if (N == 0) return;
  const std::int64_t kp = frozen_detail::panel_width(K, W.block(), 256, pool);
  const std::size_t panels = std::size_t((K + kp - 1) / kp);
  parallel_for(panels, 1, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      const std::int64_t c0 = std::int64_t(p) * kp, c1 = std::min(K, c0 + kp);
      const float* w = W.dense();
      std::int64_t ldw = K;
      if (w) {
        w += c0;
      } else {
        float* buf = frozen_detail::panel_buffer(std::size_t(M * (c1 - c0)));
        W.decode(0, M, c0, c1, buf, c1 - c0);
        w = buf;
        ldw = c1 - c0;
      }
      cpu::gemm_f32(cpu::Op::kN, cpu::Op::kN, N, c1 - c0, M, 1.0f, dY, M, w, ldw, accumulate ? 1.0f : 0.0f, dX + c0, K);
    }
  }, pool);
}

}  // namespace qlora::train
