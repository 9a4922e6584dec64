// qlora/quant/q8_k.hpp — GGML Q8_K: the 8-bit activation format that the CPU
// K-quant dot products (Q4_K x Q8_K, Q6_K x Q8_K) consume.
//
//   byte 0      4                                  260                    292
//        +------+-----------------------------------+----------------------+
//        | d    | qs[0] ...                qs[255] | bsums[0] .. bsums[15]|
//        | fp32 | int8 x 256                        | int16 x 16           |
//        +------+-----------------------------------+----------------------+
//
//   value_i  = d * qs_i
//   bsums[k] = qs[16k] + ... + qs[16k+15]   (exact integer sums)
//
// Reference: block_q8_K (ggml-common.h), quantize_row_q8_K_ref (ggml-quants.c).
// Why it exists: activations are re-quantized per 256 values so a Q4_K/Q6_K
// dot product becomes integer multiply-adds with one float scale per
// super-block; bsums let Q4_K subtract its per-sub-block min without touching
// the quants again. Q8_K never appears in a GGUF file.
//
// Unlike Q8_0, the scale is fp32, the extreme value maps to exactly -127 (so
// d takes the sign of that value) and rounding is nearest_int (half to even).
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/quant/format.hpp"
#include "qlora/quant/rounding.hpp"

namespace qlora::quant {

template <>
struct FormatTraits<format::Q8_K> {
  static constexpr std::string_view kName = "q8_K";
  static constexpr int kBlockElems = kQK_K;
  static constexpr std::size_t kBlockBytes = 292;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::Q8_K);
  static constexpr bool kQuantizable = true;
  static constexpr int kSumGroup = 16;  // elements per bsums entry

  struct Block {
    float d;                                  // scale; sign follows the largest-|x| element
    std::int8_t qs[kQK_K];                    // quants in [-127, 127]
    std::int16_t bsums[kQK_K / kSumGroup];    // sum of each 16 consecutive qs
  };

  QLORA_HD static void quantize_block(const float* x, Block& b) {
    // Signed value with the largest magnitude; the first one wins ties.
    float max = 0.0f;
    float amax = 0.0f;
    for (int i = 0; i < kQK_K; ++i) {
      const float ax = fabsf(x[i]);
      if (ax > amax) {
        amax = ax;
        max = x[i];
      }
    }
    if (amax == 0.0f) {
      // Upstream leaves bsums untouched here (callers zero-initialise); we
      // write zeros so the block is fully defined.
      b.d = 0.0f;
      for (int i = 0; i < kQK_K; ++i) b.qs[i] = 0;
      for (int k = 0; k < kQK_K / kSumGroup; ++k) b.bsums[k] = 0;
      return;
    }
    // -127 (not -128) keeps every code in [-127, 127], which the SIMD
    // kernels upstream rely on; the min() only guards rounding at +127.
    const float iscale = -127.0f / max;
    for (int i = 0; i < kQK_K; ++i) {
      const int v = nearest_int(iscale * x[i]);
      b.qs[i] = std::int8_t(v < 127 ? v : 127);
    }
    for (int k = 0; k < kQK_K / kSumGroup; ++k) {
      int sum = 0;
      for (int i = 0; i < kSumGroup; ++i) sum += b.qs[kSumGroup * k + i];
      b.bsums[k] = std::int16_t(sum);
    }
    b.d = 1.0f / iscale;
  }

  QLORA_HD static void dequantize_block(const Block& b, float* y) {
    for (int i = 0; i < kQK_K; ++i) y[i] = b.d * float(b.qs[i]);
  }

  QLORA_HD static float dot_block(const Block& b, const float* x) {
    float s = 0.0f;
    for (int i = 0; i < kQK_K; ++i) s += float(b.qs[i]) * x[i];
    return s * b.d;
  }
};
static_assert(sizeof(FormatTraits<format::Q8_K>::Block) == 292, "q8_K block layout");
static_assert(QuantizableFormat<format::Q8_K>);

}  // namespace qlora::quant
