// qlora/cpu/bf16_pack_q8_0.hpp — a Q8_0 weight decoded straight into the
// bf16 panel layout of cpu/bf16_pack.hpp.
//
// The trainer keeps the output head as the GGUF stores it; SmolLM2's tied
// head is the Q8_0 token embedding (49152 x 576), the largest product of a
// step (forward and input gradient, ~14 GFLOP at 128 scored tokens). Decoding
// it to an fp32 slice and packing that costs ~3% of a step; this does both
// in registers: q (int8) -> fp32 (exact) · d (the block's fp16 scale) ->
// bf16, exactly as FormatTraits<Q8_0>::dequantize_block followed by
// bf16_from_f32, in the two orientations of bf16_pack_nf4.hpp:
//
//   pack_bf16_q8_0_rows   lines = rows of W, depth along the row (forward)
//   pack_bf16_q8_0_cols   lines = columns of W, depth down the rows (backward)
#pragma once

#include <cstdint>

#include "qlora/cpu/bf16_pack.hpp"
#include "qlora/quant/q8_0.hpp"

namespace qlora::cpu {

using Q8_0Block = quant::FormatTraits<quant::format::Q8_0>::Block;

/// Element (r, c) of a Q8_0 matrix with `cols` columns, in fp32.
inline float q8_0_matrix_element(const Q8_0Block* blocks, std::int64_t cols, std::int64_t r, std::int64_t c) {
  const Q8_0Block& b = blocks[r * (cols / 32) + c / 32];
  return float(b.qs[c % 32]) * b.d.to_float();
}

/// Forward orientation, scalar: lines = rows [r0, r0+n_lines), depth =
/// columns [c0, c0+depth).
inline void pack_bf16_q8_0_rows_ref(const Q8_0Block* blocks, std::int64_t cols, std::int64_t r0,
                                    std::int64_t n_lines, std::int64_t c0, std::int64_t depth, int W,
                                    std::uint32_t* dst) {
  const std::int64_t pairs = (depth + 1) / 2, panels = (n_lines + W - 1) / W;
  for (std::int64_t pn = 0; pn < panels; ++pn)
    for (std::int64_t p = 0; p < pairs; ++p)
      for (int w = 0; w < W; ++w) {
        const std::int64_t i = pn * W + w, k = 2 * p;
        float e = 0.0f, o = 0.0f;
        if (i < n_lines) {
          e = q8_0_matrix_element(blocks, cols, r0 + i, c0 + k);
          if (k + 1 < depth) o = q8_0_matrix_element(blocks, cols, r0 + i, c0 + k + 1);
        }
        dst[(pn * pairs + p) * W + w] = bf16_word(e, o);
      }
}

/// Backward orientation, scalar: lines = columns [c0, c0+n_lines), depth =
/// rows [r0, r0+depth).
inline void pack_bf16_q8_0_cols_ref(const Q8_0Block* blocks, std::int64_t cols, std::int64_t c0,
                                    std::int64_t n_lines, std::int64_t r0, std::int64_t depth, int W,
                                    std::uint32_t* dst) {
  const std::int64_t pairs = (depth + 1) / 2, panels = (n_lines + W - 1) / W;
  for (std::int64_t pn = 0; pn < panels; ++pn)
    for (std::int64_t p = 0; p < pairs; ++p)
      for (int w = 0; w < W; ++w) {
        const std::int64_t i = pn * W + w, k = 2 * p;
        float e = 0.0f, o = 0.0f;
        if (i < n_lines) {
          e = q8_0_matrix_element(blocks, cols, r0 + k, c0 + i);
          if (k + 1 < depth) o = q8_0_matrix_element(blocks, cols, r0 + k + 1, c0 + i);
        }
        dst[(pn * pairs + p) * W + w] = bf16_word(e, o);
      }
}

#if QLORA_HAVE_AVX512_BF16_KERNELS
QLORA_AVX512_WARNINGS_PUSH
namespace bf16_detail {

/// 16 consecutive elements of a block from index e0 (0 or 16), in fp32.
QLORA_TARGET_AVX512_BF16 inline __m512 q8_0_values_16(const Q8_0Block& b, int e0) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + e0));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(b.d.to_float()));
}

}  // namespace bf16_detail

/// Forward orientation; same output as the _ref. Vector path when c0 and
/// depth are multiples of 32 (whole blocks) and W suits the vector stores.
QLORA_TARGET_AVX512_BF16 inline void pack_bf16_q8_0_rows(const Q8_0Block* blocks, std::int64_t cols, std::int64_t r0,
                                                         std::int64_t n_lines, std::int64_t c0, std::int64_t depth,
                                                         int W, std::uint32_t* dst) {
  if (n_lines <= 0 || depth <= 0) return;
  if (c0 % 32 != 0 || depth % 32 != 0 || !bf16_detail::vector_width_ok(W))
    return pack_bf16_q8_0_rows_ref(blocks, cols, r0, n_lines, c0, depth, W, dst);
  const std::int64_t pairs = depth / 2, bpr = cols / 32;
  const std::int64_t padded = (n_lines + W - 1) / W * W;
  for (std::int64_t i0 = 0; i0 < padded; i0 += 16) {
    for (std::int64_t k = 0; k < depth; k += 32) {
      __m512i r[16];
      for (int l = 0; l < 16; ++l) {
        if (i0 + l < n_lines) {
          const Q8_0Block& b = blocks[(r0 + i0 + l) * bpr + (c0 + k) / 32];
          r[l] = bf16_detail::consecutive_words(bf16_detail::q8_0_values_16(b, 0), bf16_detail::q8_0_values_16(b, 16));
        } else {
          r[l] = _mm512_setzero_si512();
        }
      }
      bf16_detail::transpose_16x16(r);
      for (int p = 0; p < 16; ++p) bf16_detail::store_line_words(dst, pairs, W, i0, k / 2 + p, padded, r[p]);
    }
  }
}

/// Backward orientation; same output as the _ref. Vector path when c0 is a
/// multiple of 16 and W suits the vector stores.
QLORA_TARGET_AVX512_BF16 inline void pack_bf16_q8_0_cols(const Q8_0Block* blocks, std::int64_t cols, std::int64_t c0,
                                                         std::int64_t n_lines, std::int64_t r0, std::int64_t depth,
                                                         int W, std::uint32_t* dst) {
  if (n_lines <= 0 || depth <= 0) return;
  if (c0 % 16 != 0 || !bf16_detail::vector_width_ok(W))
    return pack_bf16_q8_0_cols_ref(blocks, cols, c0, n_lines, r0, depth, W, dst);
  const std::int64_t pairs = (depth + 1) / 2, bpr = cols / 32;
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
        ve = _mm512_maskz_mov_ps(m, bf16_detail::q8_0_values_16(blocks[re * bpr + c / 32], int(c % 32)));
        if (has_odd) vo = _mm512_maskz_mov_ps(m, bf16_detail::q8_0_values_16(blocks[(re + 1) * bpr + c / 32], int(c % 32)));
      }
      bf16_detail::store_line_words(dst, pairs, W, i, p, padded, bf16_detail::interleave_words(ve, vo));
    }
  }
}
QLORA_AVX512_WARNINGS_POP
#endif  // QLORA_HAVE_AVX512_BF16_KERNELS

}  // namespace qlora::cpu
