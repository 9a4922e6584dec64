// qlora/cpu/bf16_pack.hpp — fp32 matrices rounded to bf16 and packed into the
// panel layout the AVX-512 BF16 GEMM (cpu/gemm_bf16_avx512.hpp) reads.
//
// vdpbf16ps multiplies 16 pairs of bf16 by 16 pairs and adds both products to
// 16 fp32 lanes, so an operand is packed as 32-bit WORDS, each holding two
// consecutive k values of one line (a row of op(A), a column of op(B)):
//
//   word(line i, pair p) = bf16(x[i][2p]) | bf16(x[i][2p+1]) << 16
//
// and the words of W consecutive lines (a "panel", W = the micro-kernel's MR
// or NR) are stored side by side for each pair:
//
//   panel 0: p=0 [w0 w1 .. w(W-1)]  p=1 [w0 .. w(W-1)] ...  p=P-1 [...]
//   panel 1: p=0 [...] ...
//
// so the micro-kernel loads one B vector (16 lines) or broadcasts one A word
// per pair. Lines past the end are zero, and so is the odd last k of a pair
// (0·0 adds nothing). A matrix element (line i, depth k) is src[i·ls + k·ks]:
// op(A) rows and op(B) columns of either storage order are all this one form.
//
// Rounding (bf16_from_f32): round-to-nearest-even exactly as core/half.hpp's
// f32_to_bf16, except that fp32 subnormals (|x| < 2^-126) become ±0. That is
// what vcvtne2ps2bf16 does, and vdpbf16ps treats subnormal bf16 inputs as
// zero anyway, so the flush is the only definition under which the hardware
// conversion, the scalar reference and the products agree bit for bit.
#pragma once

#include <cstdint>
#include <cstring>

#include "qlora/core/half.hpp"
#include "qlora/cpu/cpu_features.hpp"

#if QLORA_HAVE_AVX512_BF16_KERNELS
#include <immintrin.h>
#endif

namespace qlora::cpu {

/// fp32 -> bf16 bits as the GEMM rounds (see the file comment).
inline std::uint16_t bf16_from_f32(float x) {
  const std::uint32_t u = f32_bits(x);
  if ((u & 0x7F800000u) == 0) return std::uint16_t((u >> 16) & 0x8000u);  // zero or subnormal -> ±0
  return f32_to_bf16(x);
}

/// One packed word: the pair (x at k = 2p, x at k = 2p+1).
inline std::uint32_t bf16_word(float even, float odd) {
  return std::uint32_t(bf16_from_f32(even)) | std::uint32_t(bf16_from_f32(odd)) << 16;
}

/// Words in the packed form of n_lines x depth with panel width W.
inline std::int64_t bf16_packed_words(std::int64_t n_lines, std::int64_t depth, int W) {
  return (n_lines + W - 1) / W * W * ((depth + 1) / 2);
}

/// Scalar packing: the definition of the layout (and the tails' path).
inline void pack_bf16_ref(const float* src, std::int64_t ls, std::int64_t ks, std::int64_t n_lines, std::int64_t depth,
                          int W, std::uint32_t* dst) {
  const std::int64_t pairs = (depth + 1) / 2;
  const std::int64_t panels = (n_lines + W - 1) / W;
  for (std::int64_t pn = 0; pn < panels; ++pn)
    for (std::int64_t p = 0; p < pairs; ++p)
      for (int w = 0; w < W; ++w) {
        const std::int64_t i = pn * W + w, k = 2 * p;
        float e = 0.0f, o = 0.0f;
        if (i < n_lines) {
          e = src[i * ls + k * ks];
          if (k + 1 < depth) o = src[i * ls + (k + 1) * ks];
        }
        dst[(pn * pairs + p) * W + w] = bf16_word(e, o);
      }
}

#if QLORA_HAVE_AVX512_BF16_KERNELS
QLORA_AVX512_WARNINGS_PUSH
namespace bf16_detail {

/// Words from two 16-lane vectors: word i = bf16(even[i]) | bf16(odd[i]) << 16.
/// cvtne2ps puts `even` in the low 16 halves and `odd` in the high 16; the
/// permute interleaves them.
QLORA_TARGET_AVX512_BF16 inline __m512i interleave_words(__m512 even, __m512 odd) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,  //
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(odd, even));
}

/// 32 consecutive k of one line (lo = k 0..15, hi = k 16..31) -> its 16 words:
/// bf16 values in k order are already the pairs in order.
QLORA_TARGET_AVX512_BF16 inline __m512i consecutive_words(__m512 lo, __m512 hi) {
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/// In-register transpose of a 16 x 16 matrix of 32-bit words (r[i] = row i).
QLORA_TARGET_AVX512_BF16 inline void transpose_16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Each 128-bit lane now holds a 4x4 block; gather lanes across 4 rows.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);        // lanes 0,2 of each
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);    // lanes 1,3
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

/// Panel widths the vector packers handle: 16 lines' words go to one panel
/// (W a multiple of 16) or to two consecutive ones (W = 8).
constexpr bool vector_width_ok(int W) { return W % 16 == 0 || W == 8; }

/// Store the 16 words of lines [i, i+16) for pair p, i a multiple of 16, with
/// one store (W a multiple of 16) or two half stores (W = 8); lines past
/// `padded` (the packed line count) are not stored.
QLORA_TARGET_AVX512_BF16 inline void store_line_words(std::uint32_t* dst, std::int64_t pairs, int W, std::int64_t i,
                                                      std::int64_t p, std::int64_t padded, __m512i v) {
  if (W % 16 == 0) {
    _mm512_storeu_si512(dst + ((i / W) * pairs + p) * W + i % W, v);
    return;
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + ((i / W) * pairs + p) * W + i % W),
                      _mm512_castsi512_si256(v));
  const std::int64_t j = i + 8;
  if (j < padded)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + ((j / W) * pairs + p) * W + j % W),
                        _mm512_extracti64x4_epi64(v, 1));
}

/// Pack lines whose k are contiguous (ks == 1): 16 lines x 32 k per step,
/// converted to 16 words per line, then transposed to 16 lines per pair.
QLORA_TARGET_AVX512_BF16 inline void pack_k_contiguous(const float* src, std::int64_t ls, std::int64_t n_lines,
                                                       std::int64_t depth, int W, std::uint32_t* dst) {
  const std::int64_t pairs = (depth + 1) / 2;
  const std::int64_t padded = (n_lines + W - 1) / W * W;
  for (std::int64_t i0 = 0; i0 < padded; i0 += 16) {
    for (std::int64_t k0 = 0; k0 < depth; k0 += 32) {
      const std::int64_t kn = depth - k0 < 32 ? depth - k0 : 32;
      const __mmask16 m_lo = __mmask16(kn >= 16 ? 0xFFFF : (1u << kn) - 1);
      const __mmask16 m_hi = __mmask16(kn >= 32 ? 0xFFFF : kn > 16 ? (1u << (kn - 16)) - 1 : 0);
      __m512i r[16];
      for (int l = 0; l < 16; ++l) {
        if (i0 + l < n_lines) {
          const float* s = src + (i0 + l) * ls + k0;
          r[l] = consecutive_words(_mm512_maskz_loadu_ps(m_lo, s), _mm512_maskz_loadu_ps(m_hi, s + 16));
        } else {
          r[l] = _mm512_setzero_si512();
        }
      }
      transpose_16x16(r);
      const std::int64_t p0 = k0 / 2, pn = (kn + 1) / 2;
      for (std::int64_t p = 0; p < pn; ++p) store_line_words(dst, pairs, W, i0, p0 + p, padded, r[p]);
    }
  }
}

/// Pack lines that are contiguous (ls == 1): for each pair, 16 lines of k and
/// of k+1 are loaded and interleaved.
QLORA_TARGET_AVX512_BF16 inline void pack_lines_contiguous(const float* src, std::int64_t ks, std::int64_t n_lines,
                                                           std::int64_t depth, int W, std::uint32_t* dst) {
  const std::int64_t pairs = (depth + 1) / 2;
  const std::int64_t padded = (n_lines + W - 1) / W * W;
  for (std::int64_t p = 0; p < pairs; ++p) {
    const float* e = src + 2 * p * ks;
    const float* o = 2 * p + 1 < depth ? e + ks : nullptr;
    for (std::int64_t i = 0; i < padded; i += 16) {
      const std::int64_t left = n_lines - i;
      const __mmask16 m = __mmask16(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
      const __m512 ve = _mm512_maskz_loadu_ps(m, e + i);
      const __m512 vo = o ? _mm512_maskz_loadu_ps(m, o + i) : _mm512_setzero_ps();
      store_line_words(dst, pairs, W, i, p, padded, interleave_words(ve, vo));
    }
  }
}

}  // namespace bf16_detail

/// Pack n_lines x depth of a strided fp32 matrix (element (i, k) at
/// src[i·ls + k·ks]) into panels of W lines; writes
/// bf16_packed_words(n_lines, depth, W) words. AVX-512 when W is a multiple
/// of 16 or 8 and either stride is 1; identical output to pack_bf16_ref. Call only
/// when has_avx512_bf16().
QLORA_TARGET_AVX512_BF16 inline void pack_bf16(const float* src, std::int64_t ls, std::int64_t ks,
                                               std::int64_t n_lines, std::int64_t depth, int W, std::uint32_t* dst) {
  if (n_lines <= 0 || depth <= 0) return;
  const bool vec = bf16_detail::vector_width_ok(W);
  if (vec && ks == 1) return bf16_detail::pack_k_contiguous(src, ls, n_lines, depth, W, dst);
  if (vec && ls == 1) return bf16_detail::pack_lines_contiguous(src, ks, n_lines, depth, W, dst);
  pack_bf16_ref(src, ls, ks, n_lines, depth, W, dst);
}
QLORA_AVX512_WARNINGS_POP
#endif  // QLORA_HAVE_AVX512_BF16_KERNELS

}  // namespace qlora::cpu
