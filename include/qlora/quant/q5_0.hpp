// qlora/quant/q5_0.hpp — GGML Q5_0: 32 weights, fp16 scale, 5-bit quants.
//
//   byte 0      2            6                                22
//        +------+------------+---------------------------------+
//        | d    | qh (u32 LE)| qs[16]: lo nibble = element j,   |
//        | fp16 | bit j = 5th| hi nibble = element j+16         |
//        +------+------------+---------------------------------+
//   value_j = (((qs[j%16] >> 4*(j/16)) & 15) | (bit j of qh) << 4) - 16) * d
//
// Why it matters here: the Q4_K_M recipe falls back from Q4_K to Q5_0 when a
// row is not a multiple of 256 (SmolLM2's width 576, Qwen2-0.5B's 896), so
// most tensors of a "Q4_K_M" small model are in fact Q5_0.
// Reference: block_q5_0 (ggml-common.h), quantize_row_q5_0_ref (ggml-quants.c):
// d = (signed value of largest magnitude) / -16, quants truncated toward zero
// after adding 16.5, using the unrounded fp32 d.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "qlora/core/half.hpp"
#include "qlora/quant/format.hpp"

namespace qlora::quant {

template <>
struct FormatTraits<format::Q5_0> {
  static constexpr std::string_view kName = "q5_0";
  static constexpr int kBlockElems = 32;
  static constexpr std::size_t kBlockBytes = 22;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::Q5_0);
  static constexpr bool kQuantizable = true;

  struct Block {
    Half d;                  // scale: max / -16 (max is the signed extreme value)
    std::uint8_t qh[4];      // fifth bits, little-endian u32 (byte array: no padding)
    std::uint8_t qs[16];     // low four bits of elements j and j+16
  };

  QLORA_HD static void quantize_block(const float* x, Block& b) {
    // The signed value of largest magnitude; a strict '>' keeps the first on ties.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < fabsf(x[j])) {
        amax = fabsf(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = Half::from_float(d);
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      // (int8) truncation toward zero after +16.5 is upstream's rounding; the
      // min(31, .) guards the one value that lands on 32 (x == max has xi = -16).
      const int q0 = min_int(31, int(std::int8_t(x[j] * id + 16.5f)));
      const int q1 = min_int(31, int(std::int8_t(x[j + 16] * id + 16.5f)));
      b.qs[j] = std::uint8_t((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= std::uint32_t((q0 & 0x10) >> 4) << j;
      qh |= std::uint32_t((q1 & 0x10) >> 4) << (j + 16);
    }
    store_u32(b.qh, qh);
  }

  QLORA_HD static void dequantize_block(const Block& b, float* y) {
    const float d = b.d.to_float();
    const std::uint32_t qh = load_u32(b.qh);
    for (int j = 0; j < 16; ++j) {
      const int x0 = int((b.qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16;
      const int x1 = int((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
      y[j] = float(x0) * d;
      y[j + 16] = float(x1) * d;
    }
  }

  QLORA_HD static float dot_block(const Block& b, const float* x) {
    const std::uint32_t qh = load_u32(b.qh);
    float s = 0.0f;
    for (int j = 0; j < 16; ++j) {
      const int x0 = int((b.qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16;
      const int x1 = int((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
      s += float(x0) * x[j] + float(x1) * x[j + 16];
    }
    return s * b.d.to_float();
  }

  /// Integer dot product with a Q8_0-quantized activation block (ggml's
  /// vec_dot_q5_0_q8_0 per block). `A` is FormatTraits<format::Q8_0>::Block;
  /// a template keeps this header independent of q8_0.hpp.
  template <class A>
  QLORA_HD static float dot_q8_0(const Block& w, const A& a) {
    const std::uint32_t qh = load_u32(w.qh);
    std::int32_t sum = 0;
    for (int j = 0; j < 16; ++j) {
      const int x0 = int((w.qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16;
      const int x1 = int((w.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
      sum += x0 * a.qs[j] + x1 * a.qs[j + 16];
    }
    return float(sum) * (w.d.to_float() * a.d.to_float());
  }

  QLORA_HD static std::uint32_t load_u32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
  }
  QLORA_HD static void store_u32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = std::uint8_t(v >> (8 * i));
  }

 private:
  QLORA_HD static int min_int(int a, int b) { return a < b ? a : b; }
};
static_assert(sizeof(FormatTraits<format::Q5_0>::Block) == 22, "q5_0 block layout");
static_assert(QuantizableFormat<format::Q5_0>);

}  // namespace qlora::quant
