// qlora/quant/float_formats.hpp — F32, F16 and BF16 as one-element "blocks".
//
// Treating plain floats as formats with kBlockElems = 1 lets the row API, the
// GGUF writer and the recipes handle every tensor type through one code path.
// Conversions are the bit-exact ones of core/half.hpp (ggml's RNE fp16 with
// NaN -> 0x7E00, and gguf-py's bf16).
#pragma once

#include <cstdint>

#include "qlora/core/half.hpp"
#include "qlora/quant/format.hpp"

namespace qlora::quant {

template <>
struct FormatTraits<format::F32> {
  static constexpr std::string_view kName = "f32";
  static constexpr int kBlockElems = 1;
  static constexpr std::size_t kBlockBytes = 4;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::F32);
  static constexpr bool kQuantizable = true;
  struct Block {
    float v;
  };
  QLORA_HD static void quantize_block(const float* x, Block& b) { b.v = x[0]; }
  QLORA_HD static void dequantize_block(const Block& b, float* y) { y[0] = b.v; }
  QLORA_HD static float dot_block(const Block& b, const float* x) { return b.v * x[0]; }
};

template <>
struct FormatTraits<format::F16> {
  static constexpr std::string_view kName = "f16";
  static constexpr int kBlockElems = 1;
  static constexpr std::size_t kBlockBytes = 2;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::F16);
  static constexpr bool kQuantizable = true;
  using Block = Half;
  QLORA_HD static void quantize_block(const float* x, Block& b) { b = Half::from_float(x[0]); }
  QLORA_HD static void dequantize_block(const Block& b, float* y) { y[0] = b.to_float(); }
  QLORA_HD static float dot_block(const Block& b, const float* x) { return b.to_float() * x[0]; }
};

template <>
struct FormatTraits<format::BF16> {
  static constexpr std::string_view kName = "bf16";
  static constexpr int kBlockElems = 1;
  static constexpr std::size_t kBlockBytes = 2;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::BF16);
  static constexpr bool kQuantizable = true;
  using Block = BFloat16;
  QLORA_HD static void quantize_block(const float* x, Block& b) { b = BFloat16::from_float(x[0]); }
  QLORA_HD static void dequantize_block(const Block& b, float* y) { y[0] = b.to_float(); }
  QLORA_HD static float dot_block(const Block& b, const float* x) { return b.to_float() * x[0]; }
};

static_assert(QuantizableFormat<format::F32>);
static_assert(QuantizableFormat<format::F16>);
static_assert(QuantizableFormat<format::BF16>);

}  // namespace qlora::quant
