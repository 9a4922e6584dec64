// qlora/cpu/bf16_pack_nf4.hpp — an NF4 weight decoded straight into the bf16
// panel layout of cpu/bf16_pack.hpp, without an fp32 panel in between.
//
// A frozen M x K weight W (rows of K, y = x W^T) is stored as NF4 blocks of
// 64 consecutive elements of a row (quant/nf4.hpp's working Block: absmax +
// 32 bytes, element 2j in the high nibble of byte j). The trainer needs it in
// two orientations:
//
//   forward   Y = X W^T   op(B) = W^T: a line is a ROW of W, depth runs along
//                         the row — the pairs (k, k+1) are neighbours in a
//                         block, so 16 lines are decoded to 16 words each and
//                         transposed in registers (pack_bf16_nf4_rows)
//   backward  dX = dY W   op(B) = W: a line is a COLUMN of W, depth runs down
//                         the rows — rows k and k+1 are decoded 16 columns at
//                         a time and interleaved (pack_bf16_nf4_cols)
//
// Each element is decoded as dequantize_block does (codebook[q] · absmax in
// fp32) and then rounded by bf16_from_f32, so the result equals decoding to
// fp32 and calling pack_bf16 — the scalar *_ref functions say exactly that.
// The codebook (16 floats) fits one zmm: a decode is vpermps + vmulps.
#pragma once

#include <cstdint>

#include "qlora/cpu/bf16_pack.hpp"
#include "qlora/quant/nf4.hpp"

namespace qlora::cpu {

using Nf4Block = quant::FormatTraits<quant::format::NF4>::Block;

/// Element (r, c) of an NF4 matrix with `cols` columns, in fp32.
inline float nf4_matrix_element(const Nf4Block* blocks, std::int64_t cols, std::int64_t r, std::int64_t c) {
  const Nf4Block& b = blocks[r * (cols / 64) + c / 64];
  const int e = int(c % 64);
  const int q = (e & 1) ? (b.qs[e / 2] & 0x0F) : (b.qs[e / 2] >> 4);
  return quant::kNf4Codebook[q] * b.absmax;
}

/// Forward orientation, scalar: lines = rows [r0, r0+n_lines), depth =
/// columns [c0, c0+depth) of the NF4 matrix.
inline void pack_bf16_nf4_rows_ref(const Nf4Block* blocks, std::int64_t cols, std::int64_t r0, std::int64_t n_lines,
                                   std::int64_t c0, std::int64_t depth, int W, std::uint32_t* dst) {
  const std::int64_t pairs = (depth + 1) / 2, panels = (n_lines + W - 1) / W;
  for (std::int64_t pn = 0; pn < panels; ++pn)
    for (std::int64_t p = 0; p < pairs; ++p)
      for (int w = 0; w < W; ++w) {
        const std::int64_t i = pn * W + w, k = 2 * p;
        float e = 0.0f, o = 0.0f;
        if (i < n_lines) {
          e = nf4_matrix_element(blocks, cols, r0 + i, c0 + k);
          if (k + 1 < depth) o = nf4_matrix_element(blocks, cols, r0 + i, c0 + k + 1);
        }
        dst[(pn * pairs + p) * W + w] = bf16_word(e, o);
      }
}

/// Backward orientation, scalar: lines = columns [c0, c0+n_lines), depth =
/// rows [r0, r0+depth) of the NF4 matrix.
inline void pack_bf16_nf4_cols_ref(const Nf4Block* blocks, std::int64_t cols, std::int64_t c0, std::int64_t n_lines,
                                   std::int64_t r0, std::int64_t depth, int W, std::uint32_t* dst) {
  const std::int64_t pairs = (depth + 1) / 2, panels = (n_lines + W - 1) / W;
  for (std::int64_t pn = 0; pn < panels; ++pn)
    for (std::int64_t p = 0; p < pairs; ++p)
      for (int w = 0; w < W; ++w) {
        const std::int64_t i = pn * W + w, k = 2 * p;
        float e = 0.0f, o = 0.0f;
        if (i < n_lines) {
          e = nf4_matrix_element(blocks, cols, r0 + k, c0 + i);
          if (k + 1 < depth) o = nf4_matrix_element(blocks, cols, r0 + k + 1, c0 + i);
        }
        dst[(pn * pairs + p) * W + w] = bf16_word(e, o);
      }
}

#if QLORA_HAVE_AVX512_BF16_KERNELS
QLORA_AVX512_WARNINGS_PUSH
namespace bf16_detail {

QLORA_TARGET_AVX512_BF16 inline __m512 nf4_codebook_vector() { return _mm512_loadu_ps(quant::kNf4Codebook); }

/// 32 consecutive elements of a block (bytes qs[o..o+15]) as 16 words.
QLORA_TARGET_AVX512_BF16 inline __m512i nf4_words_32(const Nf4Block& b, int byte0, __m512 cb) {
  const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + byte0)));
  const __m512 scale = _mm512_set1_ps(b.absmax);
  const __m512 even = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), cb), scale);
  const __m512 odd = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(q, _mm512_set1_epi32(15)), cb), scale);
  return interleave_words(even, odd);
}

/// 16 consecutive elements of a block (bytes qs[o..o+7]) as 16 floats.
QLORA_TARGET_AVX512_BF16 inline __m512 nf4_values_16(const Nf4Block& b, int byte0, __m512 cb) {
  const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + byte0));
  const __m512i q = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(x, x));  // byte j twice: elements 2j, 2j+1
  const __m512i shift = _mm512_set_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
  const __m512i idx = _mm512_and_si512(_mm512_srlv_epi32(q, shift), _mm512_set1_epi32(15));
  return _mm512_mul_ps(_mm512_permutexvar_ps(idx, cb), _mm512_set1_ps(b.absmax));
}

}  // namespace bf16_detail

/// Forward orientation (see the file comment); same output as the _ref.
/// Vector path when c0 and depth are multiples of 32 and W suits the
/// vector stores; otherwise the scalar one.
QLORA_TARGET_AVX512_BF16 inline void pack_bf16_nf4_rows(const Nf4Block* blocks, std::int64_t cols, std::int64_t r0,
                                                        std::int64_t n_lines, std::int64_t c0, std::int64_t depth,
                                                        int W, std::uint32_t* dst) {
  if (n_lines <= 0 || depth <= 0) return;
  if (c0 % 32 != 0 || depth % 32 != 0 || !bf16_detail::vector_width_ok(W))
    return pack_bf16_nf4_rows_ref(blocks, cols, r0, n_lines, c0, depth, W, dst);
  const __m512 cb = bf16_detail::nf4_codebook_vector();
  const std::int64_t pairs = depth / 2, bpr = cols / 64;
  const std::int64_t padded = (n_lines + W - 1) / W * W;
  for (std::int64_t i0 = 0; i0 < padded; i0 += 16) {
    for (std::int64_t k = 0; k < depth; k += 32) {
      const std::int64_t c = c0 + k;
      __m512i r[16];
      for (int l = 0; l < 16; ++l) {
        if (i0 + l < n_lines) r[l] = bf16_detail::nf4_words_32(blocks[(r0 + i0 + l) * bpr + c / 64], int(c % 64) / 2, cb);
        else r[l] = _mm512_setzero_si512();
      }
      bf16_detail::transpose_16x16(r);
      for (int p = 0; p < 16; ++p) bf16_detail::store_line_words(dst, pairs, W, i0, k / 2 + p, padded, r[p]);
    }
  }
}

/// Backward orientation (see the file comment); same output as the _ref.
/// Vector path when c0 is a multiple of 16 and W suits the vector stores.
QLORA_TARGET_AVX512_BF16 inline void pack_bf16_nf4_cols(const Nf4Block* blocks, std::int64_t cols, std::int64_t c0,
                                                        std::int64_t n_lines, std::int64_t r0, std::int64_t depth,
                                                        int W, std::uint32_t* dst) {
  if (n_lines <= 0 || depth <= 0) return;
  if (c0 % 16 != 0 || !bf16_detail::vector_width_ok(W))
    return pack_bf16_nf4_cols_ref(blocks, cols, c0, n_lines, r0, depth, W, dst);
  const __m512 cb = bf16_detail::nf4_codebook_vector();
  const std::int64_t pairs = (depth + 1) / 2, bpr = cols / 64;
  const std::int64_t padded = (n_lines + W - 1) / W * W;
  for (std::int64_t p = 0; p < pairs; ++p) {
    const std::int64_t re = r0 + 2 * p;
    const bool has_odd = 2 * p + 1 < depth;
    for (std::int64_t i = 0; i < padded; i += 16) {
      const std::int64_t left = n_lines - i;
      const __mmask16 m = __mmask16(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
      __m512 ve = _mm512_setzero_ps(), vo = _mm512_setzero_ps();
      if (m) {
        const std::int64_t c = c0 + i;
        const int byte0 = int(c % 64) / 2;
        ve = _mm512_maskz_mov_ps(m, bf16_detail::nf4_values_16(blocks[re * bpr + c / 64], byte0, cb));
        if (has_odd) vo = _mm512_maskz_mov_ps(m, bf16_detail::nf4_values_16(blocks[(re + 1) * bpr + c / 64], byte0, cb));
      }
      bf16_detail::store_line_words(dst, pairs, W, i, p, padded, bf16_detail::interleave_words(ve, vo));
    }
  }
}
QLORA_AVX512_WARNINGS_POP
#endif  // QLORA_HAVE_AVX512_BF16_KERNELS

}  // namespace qlora::cpu
