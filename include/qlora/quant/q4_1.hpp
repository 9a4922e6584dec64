// qlora/quant/q4_1.hpp — GGML Q4_1 (read-only): 32 weights, fp16 scale and
// fp16 min, 4-bit quants.
//
//   byte 0      2      4                                  20
//        +------+------+-----------------------------------+
//        | d    | m    | qs[16]: lo nibble = element j,     |
//        | fp16 | fp16 |         hi nibble = element j+16   |
//        +------+------+-----------------------------------+
//   value_j = nibble_j * d + m
//
// We decode it because the SmolLM2-135M-Instruct GGUF on PyPI is Q4_1; no
// recipe of ours produces it, so there is no quantizer (kQuantizable = false).
// Reference: block_q4_1 (ggml-common.h), dequantize_row_q4_1 (ggml-quants.c).
#pragma once

#include <cstdint>

#include "qlora/core/half.hpp"
#include "qlora/quant/format.hpp"

namespace qlora::quant {

template <>
struct FormatTraits<format::Q4_1> {
  static constexpr std::string_view kName = "q4_1";
  static constexpr int kBlockElems = 32;
  static constexpr std::size_t kBlockBytes = 20;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::Q4_1);
  static constexpr bool kQuantizable = false;

  struct Block {
    Half d;               // step between levels
    Half m;               // value of level 0 (the block minimum)
    std::uint8_t qs[16];  // elements j (low nibble) and j+16 (high nibble)
  };

  QLORA_HD static void dequantize_block(const Block& b, float* y) {
    const float d = b.d.to_float();
    const float m = b.m.to_float();
    for (int j = 0; j < 16; ++j) {
      y[j] = float(b.qs[j] & 0x0F) * d + m;
      y[j + 16] = float(b.qs[j] >> 4) * d + m;
    }
  }

  /// sum_j (q_j*d + m) * x_j = d * sum q_j x_j + m * sum x_j.
  QLORA_HD static float dot_block(const Block& b, const float* x) {
    float sq = 0.0f, sx = 0.0f;
    for (int j = 0; j < 16; ++j) {
      sq += float(b.qs[j] & 0x0F) * x[j] + float(b.qs[j] >> 4) * x[j + 16];
      sx += x[j] + x[j + 16];
    }
    return sq * b.d.to_float() + sx * b.m.to_float();
  }
};
static_assert(sizeof(FormatTraits<format::Q4_1>::Block) == 20, "q4_1 block layout");
static_assert(BlockFormat<format::Q4_1>);

}  // namespace qlora::quant
