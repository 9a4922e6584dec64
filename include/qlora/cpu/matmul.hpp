// qlora/cpu/matmul.hpp — quantized matrix-vector and matrix-matrix products
// on the CPU, the entry points the decoder calls.
//
//   matvec: y[M]    = W x          (token generation: batch 1)
//   matmul: Y[N][M] = X[N][K] W^T  (prompt processing, NLL, training forward)
//
// W is M rows of K elements in a ggml type (row-major, each row
// ggml_row_bytes(type, K) bytes, exactly as stored in a GGUF tensor).
//
// How (as llama.cpp's CPU backend does, in our own code):
//  1. The activations are quantized ONCE per call to the weight type's dot
//     type (activation_quant.hpp): Act32 for Q8_0/Q5_0/Q4_1, Q8_K for
//     Q4_K/Q6_K, none for F32/F16/BF16 (the f32 activations are used as is).
//     The buffer is thread-local and only grows: no allocation per call in
//     the steady state.
//  2. Output rows are split into contiguous chunks, one per pool thread
//     (chunk edges on tile boundaries); each thread runs R x C tiles
//     (vec_dot_avx2.hpp) over its rows: matvec uses C = 1, matmul the
//     kernel's kCols (4; 8 for the AVX-512 Q8_0/Q5_0 pair tiles), so each
//     decoded weight block serves that many activation rows from registers.
//     A thread's R weight rows stay in L1 while it sweeps all N activation
//     rows (from L2), which makes prompt processing compute-bound.
// Results do not depend on the thread count (each output is computed by one
// tile with a fixed summation order). Without AVX2+FMA, the scalar
// FormatTraits<F>::dot_block row dot products are used, with f32 activations.
//
// Same results as llama.cpp, bit for bit. On quantized models llama.cpp's
// greedy continuations are only reproducible if every activation is (one
// last-bit difference can flip an 8-bit code of the next quantization and the
// runs drift apart: cpu/vec_exp.hpp). Its CPU backend picks a kernel by
// weight type and batch size N, and the kernels round differently, so we
// pick the same float steps (the tiles' Accum parameter, vec_dot_avx2.hpp):
//   Q8_0, Q5_0: tinyBLAS (N >= 2) or ggml_vec_dot (N = 1): identical steps.
//   Q4_1: ggml_vec_dot_q4_1_q8_1 for every N.
//   Q4_K: the CPU_REPACK q4_K_8x8 kernels (llama.cpp repacks every Q4_K
//     matrix with a multiple of 8 rows): activation rows in groups of 4 go
//     through its gemm (Accum::kRepackGemm, activations quantized 4 rows at a
//     time with Q8KSign::kPositiveMax), the last N % 4 rows (all of them when
//     N < 4) through its gemv (Accum::kRepackGemv). (Matrices with other row
//     counts llama.cpp does not repack; we use the same steps for them, which
//     is then not bit-exact.)
//   Q6_K: ggml_vec_dot_q6_K_q8_K for N < 8, the tiled K-quant matmul for
//     N >= 8 (Accum::kTiled).
// So unlike a plain kernel, row c of a batched product need not equal the
// matrix-vector product of row c: it equals what llama.cpp computes for the
// same batch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"
#include "qlora/cpu/activation_quant.hpp"
#include "qlora/cpu/vec_dot_avx2.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::cpu {

namespace matmul_detail {

/// True for the weight types matvec/matmul accept.
inline bool supported(std::uint32_t type) {
  using quant::GgmlType;
  switch (GgmlType(type)) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q5_0:
    case GgmlType::Q4_1:
    case GgmlType::Q4_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

/// Thread-local, 64-byte aligned scratch that only grows. Each Slot is its
/// own buffer: slot 0 holds the quantized activations, slot 1 a tile's
/// widened weight rows while slot 0 is in use.
template <int Slot = 0>
inline std::uint8_t* scratch(std::size_t bytes) {
  thread_local std::vector<std::uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  const auto p = reinterpret_cast<std::uintptr_t>(buf.data());
  return buf.data() + ((64 - (p & 63)) & 63);
}

#if defined(QLORA_CPU_AVX2_KERNELS)
/// One F16/BF16 weight row widened to fp32 (exact).
template <class F>
inline void widen_row(const std::uint8_t* row, float* out, std::int64_t K) {
  std::int64_t k = 0;
  for (; k + 8 <= K; k += 8) _mm256_storeu_ps(out + k, detail::load8_widen<F>(row, k));
  for (; k < K; ++k) out[k] = detail::widen1<F>(row, k);
}
#endif

inline Status validate(const char* what, std::uint32_t type, const void* W, std::int64_t M, std::int64_t K,
                       const float* X, std::int64_t N, const float* Y) {
  if (!supported(type))
    return Status::unsupported(std::string(what) + ": weight type " + quant::ggml_type_name(type) +
                               " is not supported (f32, f16, bf16, q8_0, q5_0, q4_1, q4_K, q6_K are)");
  if (M < 0 || K <= 0 || N < 0)
    return Status::invalid(std::string(what) + ": bad shape M=" + std::to_string(M) + " K=" + std::to_string(K) +
                           " N=" + std::to_string(N));
  const auto info = quant::ggml_type_info(type);
  if (K % std::int64_t(info->block_elems) != 0)
    return Status::invalid(std::string(what) + ": K=" + std::to_string(K) + " is not a multiple of the " +
                           std::string(info->name) + " block (" + std::to_string(info->block_elems) + ")");
  if (M > 0 && N > 0 && (W == nullptr || X == nullptr || Y == nullptr))
    return Status::invalid(std::string(what) + ": null pointer (W, x/X or y/Y)");
  return Status::ok();
}

#if defined(QLORA_CPU_AVX2_KERNELS)

// Tile shapes. With 32 vector registers (AVX-512VL present) larger tiles fit.
#ifndef QLORA_MATVEC_ROWS
#define QLORA_MATVEC_ROWS 4
#endif
#if defined(__AVX512VL__)
inline constexpr int kMatvecRows = QLORA_MATVEC_ROWS;
inline constexpr int kMatmulRows = 4;
#else
inline constexpr int kMatvecRows = 4;
inline constexpr int kMatmulRows = 2;
#endif

/// Run Kern::tile<rr, cc, A> for rr <= R, cc <= C chosen at run time (tails).
template <class Kern, int R, int C, Accum A>
inline void run_tile(int rr, int cc, const TileArgs& t) {
  if constexpr (R > 1) {
    if (rr < R) return run_tile<Kern, R - 1, C, A>(rr, cc, t);
  }
  if constexpr (C > 1) {
    if (cc < C) return run_tile<Kern, R, C - 1, A>(rr, cc, t);
  }
  Kern::template tile<R, C, A>(t);
}

/// run_tile with the run-time order `a` as its template argument, among the
/// orders weight format F has (see the header).
template <class F, class Kern, int R, int C>
inline void run_tile_in_order(Accum a, int rr, int cc, const TileArgs& t) {
  if constexpr (std::is_same_v<F, quant::format::Q4_K>) {
    if (a == Accum::kRepackGemm) run_tile<Kern, R, C, Accum::kRepackGemm>(rr, cc, t);
    else run_tile<Kern, R, C, Accum::kRepackGemv>(rr, cc, t);
  } else if constexpr (std::is_same_v<F, quant::format::Q6_K>) {
    if (a == Accum::kTiled) run_tile<Kern, R, C, Accum::kTiled>(rr, cc, t);
    else run_tile<Kern, R, C, Accum::kDefault>(rr, cc, t);
  } else {
    run_tile<Kern, R, C, Accum::kDefault>(rr, cc, t);
  }
}

template <class F>
inline void product(const std::uint8_t* W, std::int64_t M, std::int64_t K, const float* X, std::int64_t N, float* Y,
                    ThreadPool& pool) {
  using T = quant::FormatTraits<F>;
  using Kern = TileKernel<F>;
  const std::size_t w_stride = std::size_t(K / T::kBlockElems) * T::kBlockBytes;

  // Which of llama.cpp's kernels we match, per activation row (header).
  constexpr bool kQ4K = std::is_same_v<F, quant::format::Q4_K>;
  constexpr bool kQ6K = std::is_same_v<F, quant::format::Q6_K>;
  const std::int64_t n_gemm = kQ4K && N >= 4 ? N - N % 4 : 0;  // rows through the Q4_K repack gemm
  auto accum_for = [&](std::int64_t c) {
    if constexpr (kQ4K) return c < n_gemm ? Accum::kRepackGemm : Accum::kRepackGemv;
    else if constexpr (kQ6K) return N >= 8 ? Accum::kTiled : Accum::kDefault;
    else return Accum::kDefault;
  };

  // 1. Activations in the kernel's dot type.
  const std::uint8_t* act;
  std::size_t a_stride;
  if constexpr (Kern::kAct == ActKind::kFloat) {
    act = reinterpret_cast<const std::uint8_t*>(X);
    a_stride = std::size_t(K) * sizeof(float);
  } else {
    using QK = quant::FormatTraits<quant::format::Q8_K>;
    a_stride = Kern::kAct == ActKind::kAct32 ? act32_row_bytes(K) : std::size_t(K / quant::kQK_K) * sizeof(QK::Block);
    std::uint8_t* buf = scratch(a_stride * std::size_t(N));
    auto quant_rows = [&](std::size_t c0, std::size_t c1) {
      for (std::size_t c = c0; c < c1; ++c) {
        if constexpr (Kern::kAct == ActKind::kAct32)
          quantize_act32(X + c * std::size_t(K), K, buf + c * a_stride);
        else
          quantize_act_q8_K(X + c * std::size_t(K), K, reinterpret_cast<QK::Block*>(buf + c * a_stride),
                            std::int64_t(c) < n_gemm ? Q8KSign::kPositiveMax : Q8KSign::kFirstMax);
      }
    };
    if (N >= 8) parallel_for(std::size_t(N), 4, quant_rows, pool);
    else quant_rows(0, std::size_t(N));
    act = buf;
  }

  // 2. Tiles over output rows, threads over row chunks.
  const int R = N == 1 ? kMatvecRows : kMatmulRows;
  const std::int64_t tiles = (M + R - 1) / R;
  // At least ~64 KiB of weights per chunk before a second thread is used.
  const std::size_t grain =
      std::max<std::size_t>(1, (std::size_t(64) << 10) / std::max<std::size_t>(1, w_stride * std::size_t(R)));
  parallel_for(std::size_t(tiles), grain, [&](std::size_t t0, std::size_t t1) {
    for (std::size_t ti = t0; ti < t1; ++ti) {
      const std::int64_t r0 = std::int64_t(ti) * R;
      const int rr = int(std::min<std::int64_t>(R, M - r0));
      TileArgs a{W + std::size_t(r0) * w_stride, w_stride, act, a_stride, K, Y + r0, M};
      if (N == 1) {
        // Prefetch the next tile of this chunk while computing this one.
        if (ti + 1 < t1) {
          // K-loop iterations of the tile: kFloatTileStep floats, or one (super-)block.
          const std::int64_t steps = Kern::kAct == ActKind::kFloat ? K / kFloatTileStep : K / T::kBlockElems;
          a.pf = a.w + std::size_t(R) * w_stride;
          a.pf_step = steps > 0 ? (std::size_t(R) * w_stride + std::size_t(steps) - 1) / std::size_t(steps) : 0;
        }
        // One activation row: the order is fixed per format (Q4_K gemv, else the
        // default), and a compile-time one: a run-time choice here measurably
        // slowed the memory-bound matvec (~10% for Q6_K, codegen of this loop).
        constexpr Accum kVec = kQ4K ? Accum::kRepackGemv : Accum::kDefault;
        run_tile<Kern, kMatvecRows, 1, kVec>(rr, 1, a);
        continue;
      }
      if constexpr (Kern::kAct == ActKind::kFloat && !std::is_same_v<F, quant::format::F32>) {
        // F16/BF16 weights: widen this tile's rows to fp32 once (exact), so
        // the sweep over all N activation rows runs the plain fp32 tile
        // instead of re-converting every weight for every column tile.
        const std::size_t row_bytes = std::size_t(K) * sizeof(float);
        auto* wide = reinterpret_cast<float*>(scratch<1>(row_bytes * std::size_t(rr)));
        for (int r = 0; r < rr; ++r) widen_row<F>(a.w + std::size_t(r) * w_stride, wide + std::size_t(r) * std::size_t(K), K);
        TileArgs f{reinterpret_cast<const std::uint8_t*>(wide), row_bytes, act, a_stride, K, Y + r0, M};
        for (std::int64_t c0 = 0; c0 < N;) {
          using Wide = TileKernel<quant::format::F32>;
          const int cc = int(std::min<std::int64_t>(Wide::kCols, N - c0));
          f.a = act + std::size_t(c0) * a_stride;
          f.y = Y + std::size_t(c0) * std::size_t(M) + std::size_t(r0);
          run_tile<Wide, kMatmulRows, Wide::kCols, Accum::kDefault>(rr, cc, f);
          c0 += cc;
        }
        continue;
      }
      for (std::int64_t c0 = 0; c0 < N;) {
        // Column tiles never straddle the Q4_K gemm/gemv boundary.
        const std::int64_t c_end = c0 < n_gemm ? n_gemm : N;
        const int cc = int(std::min<std::int64_t>(Kern::kCols, c_end - c0));
        a.a = act + std::size_t(c0) * a_stride;
        a.y = Y + std::size_t(c0) * std::size_t(M) + std::size_t(r0);
        run_tile_in_order<F, Kern, kMatmulRows, Kern::kCols>(accum_for(c0), rr, cc, a);
        c0 += cc;
      }
    }
  }, pool);
}

#else  // no AVX2: scalar reference dot products with f32 activations

template <class F>
inline void product(const std::uint8_t* W, std::int64_t M, std::int64_t K, const float* X, std::int64_t N, float* Y,
                    ThreadPool& pool) {
  using T = quant::FormatTraits<F>;
  const std::size_t w_stride = std::size_t(K / T::kBlockElems) * T::kBlockBytes;
  parallel_for(std::size_t(M), 16, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r)
      for (std::int64_t c = 0; c < N; ++c)
        Y[std::size_t(c) * std::size_t(M) + r] = quant::dot_row<F>(W + r * w_stride, X + std::size_t(c) * std::size_t(K), K);
  }, pool);
}

#endif

inline Status dispatch(std::uint32_t type, const void* W, std::int64_t M, std::int64_t K, const float* X,
                       std::int64_t N, float* Y, ThreadPool& pool) {
  if (M == 0 || N == 0) return Status::ok();
  const auto* w = static_cast<const std::uint8_t*>(W);
  quant::visit_format(type, [&]<class F>() {
    if constexpr (!std::is_same_v<F, quant::format::Q8_K>) product<F>(w, M, K, X, N, Y, pool);
  });
  return Status::ok();
}

}  // namespace matmul_detail

/// y[M] = W x. W: M rows of K elements of ggml type `type`. x: K floats.
/// Errors: unsupported type, K not a whole number of blocks, null pointers.
inline Status matvec(std::uint32_t type, const void* W, std::int64_t M, std::int64_t K, const float* x, float* y,
                     ThreadPool& pool = ThreadPool::global()) {
  QLORA_TRY(matmul_detail::validate("matvec", type, W, M, K, x, 1, y));
  return matmul_detail::dispatch(type, W, M, K, x, 1, y, pool);
}

/// Y[N][M] = X[N][K] W^T: N activation rows (row-major, K floats each)
/// against M weight rows; Y row-major with M floats per activation row.
inline Status matmul(std::uint32_t type, const void* W, std::int64_t M, std::int64_t K, const float* X, std::int64_t N,
                     float* Y, ThreadPool& pool = ThreadPool::global()) {
  QLORA_TRY(matmul_detail::validate("matmul", type, W, M, K, X, N, Y));
  return matmul_detail::dispatch(type, W, M, K, X, N, Y, pool);
}

}  // namespace qlora::cpu
