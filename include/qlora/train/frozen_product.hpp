// qlora/train/frozen_product.hpp — the two products the trainer needs with a
// frozen base weight W (M x K, y = x W^T), dequantized a panel at a time:
//
//   forward          Y[N,M]  = X[N,K] · W^T      panels of W's rows
//   input gradient   dX[N,K] (+)= dY[N,M] · W    panels of W's columns
//
// in either compute precision (cpu/gemm.hpp):
//
//  * fp32: each pool task decodes one panel into a thread-local fp32 buffer
//    (kept in L2) and runs gemm_f32 on it. Results are deterministic for a
//    given pool size (Eigen's K-blocking depends on the panel shape, so a
//    different thread count may round differently).
//  * bf16: the activations (X or dY) are rounded and packed ONCE per call,
//    split across the pool, and shared read-only; then each thread owns a
//    contiguous range of NR-wide output column panels and packs W's part
//    straight into the bf16 panel layout — from the NF4 blocks or Q8_0 blocks
//    (a tied head) without an fp32 panel (cpu/bf16_pack_nf4.hpp, _q8_0.hpp),
//    from F32 data directly, or from any other file type via a small decoded
//    fp32 slice. Each output element's
//    arithmetic is fixed by gemm_bf16_avx512.hpp, so results do not depend
//    on the thread count at all.
//
// Either way a 4-bit weight is never held in full precision, and every
// output element is written by exactly one task.
// (No weight gradient: the base is frozen; LoRA's gradients are in lora/.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/cpu/bf16_pack_nf4.hpp"
#include "qlora/cpu/bf16_pack_q8_0.hpp"
#include "qlora/cpu/gemm.hpp"
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

#if QLORA_HAVE_AVX512_BF16_KERNELS

/// X [N,K] (leading dimension K) rounded and packed as the bf16 GEMM's A,
/// micro-panels split across the pool. The buffer belongs to the calling
/// thread; the pool's threads only read it during the call that follows.
inline const std::uint32_t* pack_activations(const float* X, std::int64_t N, std::int64_t K, ThreadPool& pool) {
  thread_local cpu::bf16_detail::WordBuffer buf;
  std::uint32_t* a = buf.get(cpu::bf16_packed_a_words(N, K));
  const std::size_t panels = std::size_t((N + cpu::kBf16Mr - 1) / cpu::kBf16Mr);
  parallel_for(panels, 4, [&](std::size_t p0, std::size_t p1) {
    cpu::pack_a_bf16(X, K, 1, N, K, std::int64_t(p0), std::int64_t(p1), a);
  }, pool);
  return a;
}

/// op(B) = W^T for the forward product: lines are W's rows [j, j+nj), depth
/// its columns [k0, k0+kd) (k0 is a multiple of kBf16Kc, so block-aligned).
inline void pack_weight_rows(const FrozenMatrix& W, std::int64_t k0, std::int64_t kd, std::int64_t j, std::int64_t nj,
                             std::uint32_t* dst) {
  const std::int64_t K = W.cols();
  constexpr int NR = cpu::kBf16Nr;
  if (W.is_nf4()) return cpu::pack_bf16_nf4_rows(W.nf4_blocks(), K, j, nj, k0, kd, NR, dst);
  if (const float* d = W.dense()) return cpu::pack_bf16(d + j * K + k0, K, 1, nj, kd, NR, dst);
  if (W.file_type() == std::uint32_t(quant::GgmlType::Q8_0))  // a tied head, as SmolLM2's
    return cpu::pack_bf16_q8_0_rows(static_cast<const cpu::Q8_0Block*>(W.file_data()), K, j, nj, k0, kd, NR, dst);
  // Other file types: decode one micro-panel's rows at a time (48 x 1024 fp32 = 192 KB).
  float* tmp = panel_buffer(std::size_t(NR * kd));
  const std::int64_t pairs = (kd + 1) / 2;
  for (std::int64_t l = 0; l < nj; l += NR) {
    const std::int64_t n = std::min<std::int64_t>(NR, nj - l);
    W.decode(j + l, j + l + n, k0, k0 + kd, tmp, kd);
    cpu::pack_bf16(tmp, kd, 1, n, kd, NR, dst + (l / NR) * pairs * NR);
  }
}

/// op(B) = W for the input gradient: lines are W's columns [j, j+nj), depth
/// its rows [k0, k0+kd).
inline void pack_weight_cols(const FrozenMatrix& W, std::int64_t k0, std::int64_t kd, std::int64_t j, std::int64_t nj,
                             std::uint32_t* dst) {
  const std::int64_t K = W.cols();
  constexpr int NR = cpu::kBf16Nr;
  if (W.is_nf4()) return cpu::pack_bf16_nf4_cols(W.nf4_blocks(), K, j, nj, k0, kd, NR, dst);
  if (const float* d = W.dense()) return cpu::pack_bf16(d + k0 * K + j, 1, K, nj, kd, NR, dst);
  if (W.file_type() == std::uint32_t(quant::GgmlType::Q8_0))
    return cpu::pack_bf16_q8_0_cols(static_cast<const cpu::Q8_0Block*>(W.file_data()), K, j, nj, k0, kd, NR, dst);
  // Other file types decode whole blocks: widen [j, j+nj) to block edges.
  const std::int64_t blk = W.block();
  const std::int64_t c_lo = j / blk * blk, c_hi = std::min(K, (j + nj + blk - 1) / blk * blk);
  float* tmp = panel_buffer(std::size_t(kd * (c_hi - c_lo)));
  W.decode(k0, k0 + kd, c_lo, c_hi, tmp, c_hi - c_lo);
  cpu::pack_bf16(tmp + (j - c_lo), 1, c_hi - c_lo, nj, kd, NR, dst);
}

/// Output column panels [p0, p1) of width NR as a column range of `n` columns.
inline std::int64_t panel_edge(std::size_t p, std::int64_t n) { return std::min(n, std::int64_t(p) * cpu::kBf16Nr); }

inline void forward_bf16(const FrozenMatrix& W, const float* X, std::int64_t N, float* Y, ThreadPool& pool) {
  const std::int64_t M = W.rows(), K = W.cols();
  const std::uint32_t* a = pack_activations(X, N, K, pool);
  const std::size_t panels = std::size_t((M + cpu::kBf16Nr - 1) / cpu::kBf16Nr);
  parallel_for(panels, 1, [&](std::size_t p0, std::size_t p1) {
    auto pack = [&](std::int64_t k0, std::int64_t kd, std::int64_t j, std::int64_t nj, std::uint32_t* dst) {
      pack_weight_rows(W, k0, kd, j, nj, dst);
    };
    cpu::gemm_bf16_packed_a(a, N, K, panel_edge(p0, M), panel_edge(p1, M), pack, 1.0f, 0.0f, Y, M);
  }, pool);
}

inline void backward_input_bf16(const FrozenMatrix& W, const float* dY, std::int64_t N, float* dX, bool accumulate,
                                ThreadPool& pool) {
  const std::int64_t M = W.rows(), K = W.cols();
  const std::uint32_t* a = pack_activations(dY, N, M, pool);
  const std::size_t panels = std::size_t((K + cpu::kBf16Nr - 1) / cpu::kBf16Nr);
  parallel_for(panels, 1, [&](std::size_t p0, std::size_t p1) {
    auto pack = [&](std::int64_t k0, std::int64_t kd, std::int64_t j, std::int64_t nj, std::uint32_t* dst) {
      pack_weight_cols(W, k0, kd, j, nj, dst);
    };
    cpu::gemm_bf16_packed_a(a, N, M, panel_edge(p0, K), panel_edge(p1, K), pack, 1.0f, accumulate ? 1.0f : 0.0f, dX,
                            K);
  }, pool);
}

#endif  // QLORA_HAVE_AVX512_BF16_KERNELS

}  // namespace frozen_detail

/// Y[N,M] = X[N,K] · W^T (overwrites Y), in `compute` precision (resolved:
/// bf16 falls back to fp32 without AVX512_BF16).
inline void frozen_forward(const FrozenMatrix& W, const float* X, std::int64_t N, float* Y, ThreadPool& pool,
                           cpu::Compute compute = cpu::Compute::kF32) {
  const std::int64_t M = W.rows(), K = W.cols();
  if (N == 0 || M == 0) return;
#if QLORA_HAVE_AVX512_BF16_KERNELS
  if (cpu::resolve_compute(compute) == cpu::Compute::kBF16) return frozen_detail::forward_bf16(W, X, N, Y, pool);
#endif
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

/// dX[N,K] = (accumulate ? dX : 0) + dY[N,M] · W, in `compute` precision.
inline void frozen_backward_input(const FrozenMatrix& W, const float* dY, std::int64_t N, float* dX, bool accumulate,
                                  ThreadPool& pool, cpu::Compute compute = cpu::Compute::kF32) {
  const std::int64_t M = W.rows(), K = W.cols();
  if (N == 0) return;
#if QLORA_HAVE_AVX512_BF16_KERNELS
  if (cpu::resolve_compute(compute) == cpu::Compute::kBF16)
    return frozen_detail::backward_input_bf16(W, dY, N, dX, accumulate, pool);
#endif
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
