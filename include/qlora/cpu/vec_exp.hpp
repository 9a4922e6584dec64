// qlora/cpu/vec_exp.hpp — the vectorised exp llama.cpp's CPU backend uses,
// and the two row operations of the decoder built on it: softmax and SwiGLU.
//
// Why not std::exp: on a quantized model every activation is re-quantized to
// 8 bits before the next matrix product, so a 1-ulp difference in an
// activation can move a code across a rounding boundary, and from there the
// two runs drift apart by the quantization noise itself (measured on
// SmolLM2 q8_0: one flipped code in layer 1 grew to a mean logit difference
// of 0.13 by the output). To give llama.cpp's greedy continuations we have to
// produce its activations bit for bit, which means its exp, not libm's.
//
// ggml (vec.h, ggml_v_expf) evaluates exp(x) = 2^n * p(b) with
//   n = round(x * log2(e))       (by the 1.5 * 2^23 magic add, in one FMA)
//   b = x - n * ln2_hi - n * ln2_lo
//   p(b) = 1 + c1 b + c2 b^2 + ... + c5 b^5, grouped as below,
// and has two variants with different final steps:
//   AVX-512 (F + DQ):  p = fma(fma(fma(c5,b,c4), b², fma(c3,b,c2)), b², fma(c1,b,1))
//                      result = scalef(p, n); |n| > 192 -> 0 or inf
//   AVX2 + FMA:        j = fma(fma(fma(c5,b,c4), b², fma(c3,b,c2)), b², c1*b)
//                      result = fma(j, 2^n, 2^n), with a split 2^n for |n| > 126
// A llama.cpp build uses the widest one its compiler targets; we select the
// same one from the same macros, so on one machine both sides agree. Rows
// whose length is not a multiple of the vector width finish with libm's expf
// element by element, again as ggml does. Constants are the coefficients of
// that polynomial (hex floats, exactly representable).
//
// Softmax and SwiGLU follow ggml's row functions (ggml_vec_soft_max_f32,
// ggml_vec_swiglu_f32): the softmax sums the exponentials per vector as a
// float horizontal sum, then across vectors in double; SwiGLU is
// x / (1 + exp(-x)) * g with one IEEE divide and multiply per element.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace qlora::cpu {

namespace vec_exp_detail {

// Coefficients of p(b) on [-ln2/2, ln2/2] and the two-part ln 2.
inline constexpr float kLog2e = 0x1.715476p+0f;
inline constexpr float kLn2Hi = 0x1.62e4p-1f;
inline constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
inline constexpr float kRound = 0x1.8p23f;  // 1.5 * 2^23: x + kRound rounds x to an integer
inline constexpr float kC1 = 0x1.ffffecp-1f;
inline constexpr float kC2 = 0x1.fffdb6p-2f;
inline constexpr float kC3 = 0x1.555e66p-3f;
inline constexpr float kC4 = 0x1.573e2ep-5f;
inline constexpr float kC5 = 0x1.0e4020p-7f;

}  // namespace vec_exp_detail

#if defined(__AVX512F__) && defined(__AVX512DQ__)
/// Lanes of the exp vector (and of ggml's softmax partial sums).
inline constexpr int kExpLanes = 16;

/// exp of 16 floats, ggml's AVX-512 variant.
inline __m512 exp16(__m512 x) {
  using namespace vec_exp_detail;
  const __m512 r = _mm512_set1_ps(kRound);
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), r);
  const __m512 n = _mm512_sub_ps(z, r);
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x));
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 hi = _mm512_fmadd_ps(_mm512_set1_ps(kC5), b, _mm512_set1_ps(kC4));
  const __m512 mid = _mm512_fmadd_ps(_mm512_set1_ps(kC3), b, _mm512_set1_ps(kC2));
  const __m512 lo = _mm512_fmadd_ps(_mm512_set1_ps(kC1), b, _mm512_set1_ps(1.0f));
  const __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(hi, u, mid), u, lo);
  // (maskz with all lanes: the unmasked intrinsic trips GCC 12's -Wmaybe-uninitialized.)
  const __m512 res = _mm512_maskz_scalef_ps(__mmask16(0xFFFF), p, n);
  // |n| > 192: the result under- or overflows whatever p is.
  const __mmask16 out = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_GT_OQ);
  if (out == 0) return res;
  const __m512 sat = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                          _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
  return _mm512_mask_blend_ps(out, res, sat);
}

/// Sum of 16 lanes in the order GCC's _mm512_reduce_add_ps uses (which ggml calls).
inline float reduce16(__m512 v) {
  // (maskz extracts: GCC 12's plain ones trip -Wmaybe-uninitialized.)
  const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(__mmask8(0xFF), v, 1),
                                 _mm512_maskz_extractf32x8_ps(__mmask8(0xFF), v, 0));
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#elif defined(__AVX2__) && defined(__FMA__)
inline constexpr int kExpLanes = 8;

/// exp of 8 floats, ggml's AVX2 variant.
inline __m256 exp8(__m256 x) {
  using namespace vec_exp_detail;
  const __m256 r = _mm256_set1_ps(kRound);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x));
  // 2^n from the integer in z's low mantissa bits.
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  const __m256 big = _mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0f), _CMP_GT_OQ);
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 hi = _mm256_fmadd_ps(_mm256_set1_ps(kC5), b, _mm256_set1_ps(kC4));
  const __m256 mid = _mm256_fmadd_ps(_mm256_set1_ps(kC3), b, _mm256_set1_ps(kC2));
  const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(hi, u, mid), u, _mm256_mul_ps(_mm256_set1_ps(kC1), b));
  if (!_mm256_movemask_ps(big)) return _mm256_fmadd_ps(j, k, k);
  // |n| > 126: 2^n = s1 * s2 with both factors representable.
  const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                     _mm256_set1_epi32(std::int32_t(0x82000000u)));
  const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
  const __m256 huge = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
  const __m256 split = _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1);
  const __m256 normal = _mm256_blendv_ps(_mm256_fmadd_ps(k, j, k), split, big);
  return _mm256_blendv_ps(normal, _mm256_mul_ps(s1, s1), huge);
}

/// Sum of 8 lanes in ggml's order (hsum_float_8 / the AVX2 softmax).
inline float reduce8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#else
inline constexpr int kExpLanes = 1;
#endif

/// x[i] = exp(x[i] - max) / sum_j exp(x[j] - max) for i < n, in place, with
/// ggml's exp and summation (see the header). Returns log(sum) + max.
inline float softmax_row(float* x, std::int64_t n) {
  // The maximum is exact in any order (as ggml_vec_max_f32's), so it is
  // taken 16 or 8 at a time; a scalar chain of compares is latency-bound.
  float mx = -INFINITY;
  std::int64_t i = 0;
#if defined(__AVX512F__)
  __m512 vmx = _mm512_set1_ps(-INFINITY);
  for (; i + 16 <= n; i += 16) vmx = _mm512_max_ps(vmx, _mm512_loadu_ps(x + i));
  mx = _mm512_reduce_max_ps(vmx);
#elif defined(__AVX2__)
  __m256 vmx = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= n; i += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(x + i));
  alignas(32) float m8[8];
  _mm256_store_ps(m8, vmx);
  for (float m : m8) mx = m > mx ? m : mx;
#endif
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_set1_ps(mx)));
    _mm512_storeu_ps(x + i, e);
    sum += double(reduce16(e));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(mx)));
    _mm256_storeu_ps(x + i, e);
    sum += double(reduce8(e));
  }
#endif
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += double(x[i]);
  }
  const float inv = float(1.0 / sum);
  for (std::int64_t k = 0; k < n; ++k) x[k] *= inv;
  return float(std::log(sum)) + mx;
}

/// out[i] = silu(gate[i]) * up[i] = gate / (1 + exp(-gate)) * up, ggml's
/// ggml_vec_swiglu_f32. out may alias gate or up.
inline void swiglu_row(const float* gate, const float* up, float* out, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
  }
#endif
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace qlora::cpu
