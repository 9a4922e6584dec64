// qlora/cpu/q8_0_avx2.hpp — AVX2 Q8_0 row quantizer, byte-identical to the
// scalar reference FormatTraits<format::Q8_0>::quantize_block.
//
// Exactness argument: amax is a max (order-free); d = amax/127 and id = 1/d
// are computed in scalar exactly as the reference; x*id is one IEEE multiply
// in both; the only subtle step is roundf (half away from zero), which SIMD
// has no instruction for. We use t = trunc(v), r = t + sign(v)*(|v-t| >= 0.5):
// v - t is exact (t only clears fraction bits of v), so the comparison sees
// the true fractional part and ties go away from zero like roundf.
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstdint>

#include "qlora/quant/q8_0.hpp"

namespace qlora::cpu {

inline void quantize_row_q8_0_avx2(const float* x, void* dst, std::int64_t n) {
  using Traits = quant::FormatTraits<quant::format::Q8_0>;
  auto* blocks = static_cast<Traits::Block*>(dst);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (std::int64_t ib = 0; ib < n / 32; ++ib) {
    const float* xb = x + ib * 32;
    __m256 v[4];
    __m256 amax8 = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign_mask, v[k]));
    }
    // Horizontal max of 8 lanes.
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[ib].d = Half::from_float(d);
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q32[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 s = _mm256_mul_ps(v[k], idv);
      const __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign_mask, _mm256_sub_ps(s, t));
      const __m256 bump = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), one);
      const __m256 r = _mm256_add_ps(t, _mm256_or_ps(bump, _mm256_and_ps(s, sign_mask)));
      q32[k] = _mm256_cvttps_epi32(r);
    }
    // Pack 32 int32 -> 32 int8 in order (packs interleave 128-bit lanes; the
    // final permute restores element order).
    const __m256i p01 = _mm256_packs_epi32(q32[0], q32[1]);
    const __m256i p23 = _mm256_packs_epi32(q32[2], q32[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(blocks[ib].qs), p);
  }
}

}  // namespace qlora::cpu
#endif  // __AVX2__
