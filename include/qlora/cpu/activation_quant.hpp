// qlora/cpu/activation_quant.hpp — fast 8-bit quantizers for *activations*
// (the right-hand side of a matrix product), as consumed by vec_dot_avx2.hpp.
//
// These are runtime formats, never written to a file, so they need not match
// the file-format reference quantizers bit for bit. What they do:
//
// Act32 (for Q8_0, Q5_0, Q4_1 weights; plays the role of ggml's Q8_0/Q8_1):
//   per block of 32: amax = max|x|, d = amax / 127 rounded to fp16 and back
//   (as ggml's block_q8_0 stores it: with the same codes and the same scale our
//   integer dot products equal llama.cpp's, which keeps a decoder's logits on
//   top of the peer's), q = round_to_nearest_even(x * (127/amax))
//   in [-127, 127] (_mm256_cvtps_epi32 under the default MXCSR, like ggml's
//   SIMD quantize_row_q8_0). Per-element error |x - d*q| <= d/2 = amax/254
//   (plus one fp32 rounding of x*id). The exact integer sum of the 32 codes
//   and s = fp16(amax/127 * sum) (ggml's block_q8_1 s: the fp32 scale before its
//   fp16 rounding, times the code sum, rounded to fp16; Q4_1's min term) are stored
//   too. (Q8_0/Q5_0 undo their weight offsets per int32 lane from the codes
//   themselves, see vec_dot_avx2.hpp, and do not read `sum`.)
//   Layout of one activation row of K elements, nb = K/32 blocks (SoA, so the
//   kernels load codes with aligned 32-byte loads):
//     [qs: K int8][d: nb float][sum: nb int32][s: nb float], padded to 64 B.
//
// Q8_K (for Q4_K, Q6_K weights): the FormatTraits<Q8_K>::Block layout. The
//   signed value of largest magnitude (first on ties) maps to -127, iscale =
//   -127/max, q = round_to_nearest_even(iscale * x) clamped to 127, d = 1/iscale,
//   bsums exact. This is the reference algorithm (nearest_int is also RNE), so
//   for finite inputs the blocks equal quantize_block's bit for bit (tested).
//   Per-element error <= |d|/2 = amax/254.
//   One variant (Q8KSign::kPositiveMax): llama.cpp's ggml_quantize_mat_q8_K_4x8,
//   which quantizes the activations of its Q4_K repack gemm 4 rows at a time,
//   takes the positive sign whenever +amax occurs in the block, wherever -amax
//   is; everything else is the same. It differs from the reference only when
//   both +amax and -amax occur and -amax comes first.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "qlora/quant/q8_k.hpp"
#include "qlora/core/half.hpp"
#include "qlora/quant/rounding.hpp"

namespace qlora::cpu {

/// Bytes of one Act32 row of K elements (K a multiple of 32), 64-byte padded.
inline std::size_t act32_row_bytes(std::int64_t K) {
  const std::size_t nb = std::size_t(K / 32);
  const std::size_t raw = std::size_t(K) + nb * 12;
  return (raw + 63) & ~std::size_t(63);
}

/// Read-only view of one Act32 row.
struct Act32View {
  const std::int8_t* qs;
  const float* d;
  const std::int32_t* sum;
  const float* s;
  Act32View(const std::uint8_t* row, std::int64_t K) {
    const std::size_t nb = std::size_t(K / 32);
    qs = reinterpret_cast<const std::int8_t*>(row);
    d = reinterpret_cast<const float*>(row + K);
    sum = reinterpret_cast<const std::int32_t*>(row + K + 4 * nb);
    s = reinterpret_cast<const float*>(row + K + 8 * nb);
  }
};

/// Quantize x[0, K) into one Act32 row at `row` (act32_row_bytes(K) bytes,
/// 4-byte aligned at least; 32-byte aligned keeps the kernels' loads aligned).
inline void quantize_act32(const float* x, std::int64_t K, std::uint8_t* row) {
  const std::int64_t nb = K / 32;
  auto* qs = reinterpret_cast<std::int8_t*>(row);
  auto* d = reinterpret_cast<float*>(row + K);
  auto* sum = reinterpret_cast<std::int32_t*>(row + K + 4 * nb);
  auto* s_out = reinterpret_cast<float*>(row + K + 8 * nb);
  for (std::int64_t b = 0; b < nb; ++b) {
    const float* xb = x + 32 * b;
#if defined(__AVX2__)
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], idv));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    const std::int32_t isum = _mm_cvtsi128_si32(s4);
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + 32 * b), p);
#else
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    std::int32_t isum = 0;
    for (int i = 0; i < 32; ++i) {
      const int v = quant::nearest_int(xb[i] * id);
      qs[32 * b + i] = std::int8_t(v);
      isum += v;
    }
#endif
    const float d32 = amax / 127.0f;
    d[b] = fp16_to_f32(f32_to_fp16(d32));  // ggml's fp16 scale
    sum[b] = isum;
    s_out[b] = fp16_to_f32(f32_to_fp16(d32 * float(isum)));  // quantize_row_q8_1's s
  }
}

/// Which element's sign the Q8_K scale takes (see the header).
enum class Q8KSign : std::uint8_t {
  kFirstMax,     // the first element of largest magnitude (reference, quantize_row_q8_K)
  kPositiveMax,  // +amax if present anywhere (ggml_quantize_mat_q8_K_4x8)
};

/// Quantize x[0, K) (K a multiple of 256) into K/256 Q8_K blocks.
inline void quantize_act_q8_K(const float* x, std::int64_t K, quant::FormatTraits<quant::format::Q8_K>::Block* out,
                              Q8KSign sign_rule = Q8KSign::kFirstMax) {
  using QK = quant::FormatTraits<quant::format::Q8_K>;
  const std::int64_t nb = K / quant::kQK_K;
  for (std::int64_t b = 0; b < nb; ++b) {
    const float* xb = x + quant::kQK_K * b;
    QK::Block& o = out[b];
#if defined(__AVX2__)
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 32; ++k) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + 8 * k)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    if (amax == 0.0f) {
      std::memset(&o, 0, sizeof o);
      continue;
    }
    // The first element with |x| == amax gives the sign (reference tie rule);
    // kPositiveMax: +amax if it occurs anywhere, else -amax.
    float max = sign_rule == Q8KSign::kPositiveMax ? -amax : amax;
    const __m256 av = _mm256_set1_ps(amax);
    for (int k = 0; k < 32; ++k) {
      const __m256 v = _mm256_loadu_ps(xb + 8 * k);
      const __m256 hit = sign_rule == Q8KSign::kPositiveMax ? _mm256_cmp_ps(v, av, _CMP_EQ_OQ)
                                                            : _mm256_cmp_ps(_mm256_andnot_ps(sign, v), av, _CMP_EQ_OQ);
      const int mask = _mm256_movemask_ps(hit);
      if (mask) {
        max = xb[8 * k + __builtin_ctz(unsigned(mask))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 isv = _mm256_set1_ps(iscale);
    const __m256i lim = _mm256_set1_epi32(127);
    for (int g = 0; g < 8; ++g) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k)
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(isv, _mm256_loadu_ps(xb + 32 * g + 8 * k))), lim);
      // bsums for the two 16-element groups of these 32.
      const __m256i s01 = _mm256_add_epi32(q[0], q[1]), s23 = _mm256_add_epi32(q[2], q[3]);
      __m256i h = _mm256_hadd_epi32(s01, s23);  // [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, ...]
      h = _mm256_hadd_epi32(h, h);
      const __m128i hs = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
      o.bsums[2 * g] = std::int16_t(_mm_cvtsi128_si32(hs));
      o.bsums[2 * g + 1] = std::int16_t(_mm_extract_epi32(hs, 1));
      __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qs + 32 * g), p);
    }
    o.d = 1.0f / iscale;
#else
    QK::quantize_block(xb, o);
    if (sign_rule == Q8KSign::kPositiveMax && o.d > 0.0f) {
      // d > 0: the reference took -amax's sign. If +amax occurs too, the scale
      // flips sign, and round-to-nearest-even is symmetric, so every code does.
      float amax = 0.0f;
      for (int i = 0; i < quant::kQK_K; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
      bool has_pos_max = false;
      for (int i = 0; i < quant::kQK_K; ++i) has_pos_max |= xb[i] == amax;
      if (has_pos_max) {
        o.d = -o.d;
        for (auto& q : o.qs) q = std::int8_t(-q);
        for (auto& bs : o.bsums) bs = std::int16_t(-bs);
      }
    }
#endif
  }
}

}  // namespace qlora::cpu
