// qlora/cpu/gemm_bf16_avx512.hpp — single-threaded matrix products with bf16
// operands and fp32 accumulation on AVX-512 BF16 (vdpbf16ps), for the
// trainer's bf16 compute (QLoRA trains with bf16 compute: the frozen NF4
// weight is dequantized to bf16 and multiplied in bf16).
//
//   C[M,N] = beta·C + alpha · op(A) · op(B)       op(X) = X or X^T
//
// Same row-major + leading-dimension interface as cpu/gemm_f32.hpp, so call
// sites swap one for the other (cpu/gemm.hpp chooses at run time). The
// operands are rounded to bf16 (bf16_pack.hpp's bf16_from_f32) and packed
// into panels (BLIS-style loops: B slice of KC x NC in L2, one NR-wide
// micro-panel of it in L1, A slice of MC x KC in L2, a register tile of
// MR x NR fp32 accumulators). Callers that want to share a packed A across
// threads or pack B straight from NF4 blocks use gemm_bf16_packed_a.
//
// The arithmetic, exactly (what gemm_bf16_ref computes, bit for bit):
//   * op(A), op(B) rounded to bf16 by bf16_from_f32 (RNE; fp32 subnormals
//     -> 0); a K-tail pair is padded with 0.
//   * k runs in blocks of kBf16Kc (1024); in block b an fp32 accumulator
//     starts at 0 and for each pair (2p, 2p+1) in order does
//        acc = acc + a[2p+1]·b[2p+1];  acc = acc + a[2p]·b[2p]
//     (each product of two bf16 is exact in fp32; each add rounds to nearest
//     even and flushes a subnormal sum to 0 — vdpbf16ps' own order, checked
//     on Zen 4, and Intel's pseudo-code);
//   * after block b: C = (b == 0 ? beta·C : C) + alpha·acc, as a separate
//     multiply and add (beta is 0 or 1, so beta·C is C or nothing).
// Hence every element of C depends only on its row of op(A), its column of
// op(B) and kBf16Kc — not on M, N, the panel sizes or the thread split.
// Agreement assumes products and sums stay out of the subnormal range
// (|x| >= 2^-126) where the hardware flushes.
//
// Error against an fp32 GEMM: each operand carries a relative rounding error
// of at most 2^-9 (bf16 has 8 significant bits), so for an inner product
// |c_bf16 - c_f32| <= (2^-8 + O(2^-16)) · sum_k |a_k b_k| plus fp32's own
// accumulation error; for random data the relative Frobenius error is about
// 2^-9 (tests/cpu/gemm_bf16_avx512_test.cpp bounds it by 2^-7).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "qlora/cpu/bf16_pack.hpp"
#include "qlora/cpu/cpu_features.hpp"
#include "qlora/cpu/gemm_f32.hpp"

namespace qlora::cpu {

/// Register tile and cache blocking. MR x NR = 8 x 48 fp32 accumulators is 24
/// zmm (+3 for the B vectors): each pair costs 24 vdpbf16ps against 3 vector
/// loads and 8 broadcasts. NR = 48 divides every width SmolLM2 trains with
/// (192, 576, 1536, 49152); 256 = 32 x MR tokens. (Measured alternatives in
/// bench/bench_train_gemm.cpp's header comment.)
inline constexpr int kBf16Mr = 8;           // rows of op(A) per micro-panel
inline constexpr int kBf16Nv = 3;           // zmm vectors per accumulator row
inline constexpr int kBf16Nr = 16 * kBf16Nv;  // columns of op(B) per micro-panel
// k per block. One block covers K <= 1024 (SmolLM2's 576, 960 of its larger
// siblings), so C is read and written once, not ceil(K/256) times: measured
// +3-5% on the frozen products over 256 (Zen 4, 1 thread), although the B
// micro-panel (512 pairs x 48 x 4 B = 96 KB) then streams from L2, not L1.
inline constexpr std::int64_t kBf16Kc = 1024;
inline constexpr std::int64_t kBf16Mc = 256;  // rows of A per packed slice (512 KB at full depth, L2)
// Columns of B per packed slice. Narrower slices (48) re-stream the packed A
// per slice: the head's input gradient (A = 128 x 49152 logits) fell from
// 150 to 105 GFLOP/s.
inline constexpr std::int64_t kBf16Nc = 480;  // columns of B per packed slice (240 KB, L2)
static_assert(kBf16Kc % 64 == 0 && kBf16Mc % 16 == 0 && kBf16Nc % 96 == 0,
              "bf16 GEMM blocking: k blocks of whole NF4 blocks, slices of whole micro-panels of every tile");

/// Scalar oracle: the arithmetic of the file comment, element by element.
/// Compile with -ffp-contract=off (the project default) to keep it exact.
inline void gemm_bf16_ref(Op op_a, Op op_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                          std::int64_t ldc) {
  auto a_at = [&](std::int64_t i, std::int64_t k) { return op_a == Op::kN ? A[i * lda + k] : A[k * lda + i]; };
  auto b_at = [&](std::int64_t k, std::int64_t j) { return op_b == Op::kN ? B[k * ldb + j] : B[j * ldb + k]; };
  auto bf = [](float x) { return bf16_to_f32(bf16_from_f32(x)); };
  auto ftz = [](float x) { return (f32_bits(x) & 0x7F800000u) == 0 ? f32_from_bits(f32_bits(x) & 0x80000000u) : x; };
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      float c = beta == 0.0f ? 0.0f : C[i * ldc + j];
      if (K == 0 && beta == 0.0f) C[i * ldc + j] = 0.0f;
      for (std::int64_t k0 = 0; k0 < K; k0 += kBf16Kc) {
        const std::int64_t k1 = std::min(K, k0 + kBf16Kc);
        float acc = 0.0f;
        for (std::int64_t k = k0; k < k1; k += 2) {
          const bool odd = k + 1 < k1;
          const float ao = odd ? bf(a_at(i, k + 1)) : 0.0f, bo = odd ? bf(b_at(k + 1, j)) : 0.0f;
          acc = ftz(acc + ao * bo);
          acc = ftz(acc + bf(a_at(i, k)) * bf(b_at(k, j)));
        }
        const float scaled = alpha * acc;
        c = (k0 == 0 && beta == 0.0f) ? scaled : c + scaled;
        C[i * ldc + j] = c;
      }
    }
}

#if QLORA_HAVE_AVX512_BF16_KERNELS
QLORA_AVX512_WARNINGS_PUSH

namespace bf16_detail {

/// A 64-byte aligned scratch buffer that only grows (packed slices).
struct WordBuffer {
  std::unique_ptr<std::uint32_t[], void (*)(std::uint32_t*)> p{nullptr, [](std::uint32_t* q) {
                                                                  ::operator delete[](q, std::align_val_t(64));
                                                                }};
  std::int64_t size = 0;
  std::uint32_t* get(std::int64_t n) {
    if (n > size) {
      p.reset(static_cast<std::uint32_t*>(::operator new[](std::size_t(n) * 4, std::align_val_t(64))));
      size = n;
    }
    return p.get();
  }
};

/// The calling thread's packed B slice (kBf16Nc x kBf16Kc bf16 = 960 KB).
inline WordBuffer& b_slice_buffer() {
  thread_local WordBuffer buf;
  return buf;
}

/// The register tile: C[rows, cols] (+)= A micro-panel · B micro-panel over
/// `pairs` k-pairs, then the block epilogue C = (accumulate ? C : 0) + alpha·acc.
/// rows <= MR and cols <= NR trim the stores at the matrix edges.
template <int MR, int NV>
QLORA_TARGET_AVX512_BF16 inline void micro_kernel(std::int64_t pairs, const std::uint32_t* a, const std::uint32_t* b,
                                                  float* c, std::int64_t ldc, int rows, int cols, float alpha,
                                                  bool accumulate) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (std::int64_t p = 0; p < pairs; ++p) {
    __m512bh bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_load_si512(b + p * NR + 16 * v);
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a[p * MR + r]));
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  // Epilogue with explicit-rounding intrinsics: never contracted into an FMA,
  // so the multiply and the add round separately, as gemm_bf16_ref does.
  constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512 va = _mm512_set1_ps(alpha);
  for (int r = 0; r < rows; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const int left = cols - 16 * v;
      if (left <= 0) break;
      const __mmask16 m = __mmask16(left >= 16 ? 0xFFFF : (1u << left) - 1);
      float* cp = c + r * ldc + 16 * v;
      __m512 x = alpha == 1.0f ? acc[r][v] : _mm512_mul_round_ps(acc[r][v], va, kRne);
      if (accumulate) x = _mm512_add_round_ps(_mm512_maskz_loadu_ps(m, cp), x, kRne);
      _mm512_mask_storeu_ps(cp, m, x);
    }
}

/// One k block: C[m, n] (+)= packed A slice (m rows, panels of MR) · packed
/// B slice (n columns, panels of 16·NV). B micro-panel outer (stays in L1),
/// A micro-panels inner.
template <int MR = kBf16Mr, int NV = kBf16Nv>
QLORA_TARGET_AVX512_BF16 inline void block_product(std::int64_t pairs, const std::uint32_t* a, std::int64_t m,
                                                   const std::uint32_t* b, std::int64_t n, float* C, std::int64_t ldc,
                                                   float alpha, bool accumulate) {
  constexpr int NR = 16 * NV;
  for (std::int64_t j = 0; j < n; j += NR) {
    const std::uint32_t* bp = b + (j / NR) * pairs * NR;
    const int cols = int(std::min<std::int64_t>(NR, n - j));
    for (std::int64_t i = 0; i < m; i += MR) {
      const int rows = int(std::min<std::int64_t>(MR, m - i));
      micro_kernel<MR, NV>(pairs, a + (i / MR) * pairs * MR, bp, C + i * ldc + j, ldc, rows, cols, alpha, accumulate);
    }
  }
}

/// gemm_bf16_avx512 with a given register tile (MR x 16·NV).
template <int MR, int NV>
QLORA_TARGET_AVX512_BF16 void gemm_tiled(Op op_a, Op op_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                                         const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                                         float beta, float* C, std::int64_t ldc) {
  constexpr int NR = 16 * NV;
  static_assert(kBf16Mc % MR == 0 && kBf16Nc % NR == 0, "slices hold whole micro-panels");
  thread_local WordBuffer a_buf;
  std::uint32_t* a = a_buf.get(kBf16Mc * (kBf16Kc / 2));
  std::uint32_t* b = b_slice_buffer().get(kBf16Nc * (kBf16Kc / 2));
  // Strides of element (line, k): op(A) rows are lines, op(B) columns are.
  const std::int64_t a_ls = op_a == Op::kN ? lda : 1, a_ks = op_a == Op::kN ? 1 : lda;
  const std::int64_t b_ls = op_b == Op::kN ? 1 : ldb, b_ks = op_b == Op::kN ? ldb : 1;
  for (std::int64_t j = 0; j < N; j += kBf16Nc) {
    const std::int64_t nj = std::min(kBf16Nc, N - j);
    for (std::int64_t k0 = 0; k0 < K; k0 += kBf16Kc) {
      const std::int64_t kd = std::min(kBf16Kc, K - k0), pairs = (kd + 1) / 2;
      pack_bf16(B + j * b_ls + k0 * b_ks, b_ls, b_ks, nj, kd, NR, b);
      for (std::int64_t i = 0; i < M; i += kBf16Mc) {
        const std::int64_t mi = std::min(kBf16Mc, M - i);
        pack_bf16(A + i * a_ls + k0 * a_ks, a_ls, a_ks, mi, kd, MR, a);
        block_product<MR, NV>(pairs, a, mi, b, nj, C + i * ldc + j, ldc, alpha, k0 > 0 || beta != 0.0f);
      }
    }
  }
}

}  // namespace bf16_detail

/// Words of a whole op(A) (M x K) packed for gemm_bf16_packed_a: k blocks of
/// kBf16Kc, each holding all ceil(M/MR) micro-panels.
inline std::int64_t bf16_packed_a_words(std::int64_t M, std::int64_t K) {
  return (M + kBf16Mr - 1) / kBf16Mr * kBf16Mr * ((K + 1) / 2);  // kBf16Kc is even: only the last block is odd
}

/// Offset of k block `kb` in a packed op(A) of M rows (blocks are dense:
/// every full block has kBf16Kc/2 pairs, only the last may have fewer).
inline std::int64_t bf16_packed_a_block(std::int64_t M, std::int64_t kb) {
  return kb * (kBf16Kc / 2) * ((M + kBf16Mr - 1) / kBf16Mr * kBf16Mr);
}

/// Pack micro-panels [panel0, panel1) of op(A) (M x K; element (i, k) at
/// A[i·ls + k·ks]) for every k block, into `dst` laid out as
/// bf16_packed_a_block says. Disjoint panel ranges may be packed by
/// different threads into the same buffer.
QLORA_TARGET_AVX512_BF16 inline void pack_a_bf16(const float* A, std::int64_t ls, std::int64_t ks, std::int64_t M,
                                                 std::int64_t K, std::int64_t panel0, std::int64_t panel1,
                                                 std::uint32_t* dst) {
  const std::int64_t i0 = panel0 * kBf16Mr, i1 = std::min(M, panel1 * kBf16Mr);
  if (i0 >= i1) return;
  for (std::int64_t k0 = 0, kb = 0; k0 < K; k0 += kBf16Kc, ++kb) {
    const std::int64_t kd = std::min(kBf16Kc, K - k0);
    pack_bf16(A + i0 * ls + k0 * ks, ls, ks, i1 - i0, kd, kBf16Mr,
              dst + bf16_packed_a_block(M, kb) + panel0 * ((kd + 1) / 2) * kBf16Mr);
  }
}

/// C[:, j0:j1] = beta·C + alpha·op(A)·op(B) with op(A) already packed (all M
/// rows, pack_a_bf16) and op(B) packed on the fly by
///   pack_b(k0, kd, j, nj, dst)  — columns [j, j+nj), k in [k0, k0+kd),
///                                  panel width kBf16Nr, into dst
/// (pack_bf16 / pack_bf16_nf4_* with the matching offsets). C points at
/// column 0. Only columns [j0, j1) are touched, so threads may own disjoint
/// column ranges of one C.
template <class PackB>
QLORA_TARGET_AVX512_BF16 void gemm_bf16_packed_a(const std::uint32_t* a_packed, std::int64_t M, std::int64_t K,
                                                 std::int64_t j0, std::int64_t j1, PackB&& pack_b, float alpha,
                                                 float beta, float* C, std::int64_t ldc) {
  if (M <= 0 || j1 <= j0) return;
  if (K == 0) {
    if (beta == 0.0f)
      for (std::int64_t i = 0; i < M; ++i) std::fill(C + i * ldc + j0, C + i * ldc + j1, 0.0f);
    return;
  }
  std::uint32_t* b = bf16_detail::b_slice_buffer().get(kBf16Nc * (kBf16Kc / 2));
  for (std::int64_t j = j0; j < j1; j += kBf16Nc) {
    const std::int64_t nj = std::min(kBf16Nc, j1 - j);
    for (std::int64_t k0 = 0, kb = 0; k0 < K; k0 += kBf16Kc, ++kb) {
      const std::int64_t kd = std::min(kBf16Kc, K - k0);
      pack_b(k0, kd, j, nj, b);
      bf16_detail::block_product((kd + 1) / 2, a_packed + bf16_packed_a_block(M, kb), M, b, nj, C + j, ldc, alpha,
                                 kb > 0 || beta != 0.0f);
    }
  }
}

/// The bf16 product with fp32 operands, packing both on the fly (the file
/// comment's arithmetic). Call only when has_avx512_bf16(); cpu/gemm.hpp's
/// gemm() checks and falls back to gemm_f32.
QLORA_TARGET_AVX512_BF16 inline void gemm_bf16_avx512(Op op_a, Op op_b, std::int64_t M, std::int64_t N,
                                                      std::int64_t K, float alpha, const float* A, std::int64_t lda,
                                                      const float* B, std::int64_t ldb, float beta, float* C,
                                                      std::int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    if (beta == 0.0f)
      for (std::int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  // The tile width that pads N least (ties: the wider): 48 for the model
  // widths, 32 for a head's 64 or 256 keys, 16 for a LoRA rank of 16. The
  // tile changes speed only, never the result (see the file comment).
  auto padded = [N](std::int64_t nr) { return (N + nr - 1) / nr * nr; };
  const std::int64_t p48 = padded(48), p32 = padded(32), p16 = padded(16);
  if (p48 <= p32 && p48 <= p16)
    return bf16_detail::gemm_tiled<8, 3>(op_a, op_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (p32 <= p16) return bf16_detail::gemm_tiled<8, 2>(op_a, op_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  bf16_detail::gemm_tiled<16, 1>(op_a, op_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

QLORA_AVX512_WARNINGS_POP
#endif  // QLORA_HAVE_AVX512_BF16_KERNELS

}  // namespace qlora::cpu
