// qlora/quant/q8_0.hpp — GGML Q8_0: 32 weights, one fp16 scale, int8 quants.
//
//   byte  0      2                                   34
//         +------+-----------------------------------+
//         | d    | qs[0] qs[1] ...          qs[31]   |     value_i = d * qs_i
//         | fp16 | int8 x 32                         |
//         +------+-----------------------------------+
//
// Reference: block_q8_0 (ggml-common.h), quantize_row_q8_0_ref (ggml-quants.c).
// The quantizer divides by the *unrounded* fp32 d and rounds half away from
// zero (roundf); gguf-py's Q8_0 is bit-identical. The runtime activation
// quantizer in ggml-cpu uses a different rounding and is not this format.
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/half.hpp"
#include "qlora/quant/format.hpp"
#include "qlora/quant/rounding.hpp"

namespace qlora::quant {

template <>
struct FormatTraits<format::Q8_0> {
  static constexpr std::string_view kName = "q8_0";
  static constexpr int kBlockElems = 32;
  static constexpr std::size_t kBlockBytes = 34;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::Q8_0);
  static constexpr bool kQuantizable = true;

  struct Block {
    Half d;                 // scale: amax / 127
    std::int8_t qs[32];     // quants in [-127, 127]
  };

  QLORA_HD static void quantize_block(const float* x, Block& b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = Half::from_float(d);
    for (int i = 0; i < 32; ++i) b.qs[i] = std::int8_t(round_half_away(x[i] * id));
  }

  QLORA_HD static void dequantize_block(const Block& b, float* y) {
    const float d = b.d.to_float();
    for (int i = 0; i < 32; ++i) y[i] = float(b.qs[i]) * d;
  }

  QLORA_HD static float dot_block(const Block& b, const float* x) {
    float s = 0.0f;
    for (int i = 0; i < 32; ++i) s += float(b.qs[i]) * x[i];
    return s * b.d.to_float();
  }

  /// Integer dot product with a Q8_0-quantized activation block (ggml's
  /// vec_dot_q8_0_q8_0 per block): exact int32 sum, one float scale.
  QLORA_HD static float dot_q8_0(const Block& w, const Block& a) {
    std::int32_t sum = 0;
    for (int i = 0; i < 32; ++i) sum += std::int32_t(w.qs[i]) * std::int32_t(a.qs[i]);
    return float(sum) * (w.d.to_float() * a.d.to_float());
  }
};
static_assert(sizeof(FormatTraits<format::Q8_0>::Block) == 34, "q8_0 block layout");
static_assert(QuantizableFormat<format::Q8_0>);

}  // namespace qlora::quant
