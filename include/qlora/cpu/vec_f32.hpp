// qlora/cpu/vec_f32.hpp — the widest fp32 vector of the build, as one small
// set of operations: 16 lanes with AVX-512F, else 8 (AVX2 + FMA). Kernels
// that vectorise across independent sums (attention's keys and output
// columns, the float tile's rows) are written once against VecF; kernels
// whose summation order must match llama.cpp's lane layout keep their own
// explicit registers (cpu/simd_f32.hpp's dot_f32, the quantized tiles).
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace qlora::cpu {

/// The sum of 8 lanes: lo4 + hi4, then (s0 + s2) + (s1 + s3) — the order of
/// ggml's 8-lane horizontal sum, which the quantized tiles reproduce.
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#if defined(__AVX512F__)
struct VecF {
  using T = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kChains = 16;  // accumulators a kernel may keep in registers (of 32)
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  /// The lanes' sum, added pairwise (GCC's _mm512_reduce_add_ps).
  static float reduce(T v) { return _mm512_reduce_add_ps(v); }
};
#else
struct VecF {
  using T = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kChains = 8;  // of 16 registers
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static float reduce(T v) { return hsum8(v); }
};
#endif

}  // namespace qlora::cpu
#endif  // __AVX2__ && __FMA__
