// qlora/cpu/f16_convert.hpp — fp16 <-> fp32 rows on the CPU, with F16C when
// the build targets it. Conversions to fp32 are exact either way; to fp16 the
// F16C path rounds to nearest even like core/half.hpp (NaN payloads may
// differ, which no caller depends on: this serves caches, not file formats).
#pragma once

#include <cstdint>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "qlora/core/half.hpp"

namespace qlora::cpu {

inline void fp16_to_f32_row(const std::uint16_t* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
#endif
  for (; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

inline void f32_to_fp16_row(const float* x, std::uint16_t* y, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#endif
  for (; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

/// y[i] = x[i] rounded to fp16 and back (nearest even), as ggml rounds the
/// f32 operand of an f16 product. y may alias x.
inline void round_to_fp16_row(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
#endif
  for (; i < n; ++i) y[i] = fp16_to_f32(f32_to_fp16(x[i]));
}

}  // namespace qlora::cpu
