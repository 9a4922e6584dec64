// qlora/quant/format.hpp — block-format tags, the FormatTraits contract, and
// the GGUF type ids.
//
// A *format* is a block layout (Q8_0, Q4_K, NF4, ...): the axis kernels are
// specialised on. A *scheme* (scheme.hpp) is a recipe that picks a format per
// tensor. Each format has one header (q8_0.hpp, q4_k.hpp, ...) that defines
// FormatTraits<format::X> with:
//   Block                  the exact on-disk byte layout (static_assert'ed size)
//   kName, kBlockElems, kBlockBytes, kGgmlType
//   quantize_block(x, b)   scalar reference quantizer (QLORA_HD, bit-exact
//                          with the upstream reference; "_ref" in ggml terms)
//   dequantize_block(b, y) decode kBlockElems floats
//   dot_block(b, x)        sum_i decode(b)[i] * x[i], in fp32
// The primary template has no definition, so an unknown tag fails to compile.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qlora/core/hd.hpp"

namespace qlora::quant {

/// ggml_type ids as stored in GGUF tensor infos (ggml.h). Only the ones we
/// read or write are named; anything else is reported as unsupported.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_1 = 3,
  Q5_0 = 6,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

/// Sentinel for formats with no GGUF type id (NF4 lives in safetensors only).
inline constexpr std::uint32_t kNoGgmlType = 0xFFFFFFFFu;

/// Elements per K-quant super-block (ggml QK_K).
inline constexpr int kQK_K = 256;

namespace format {
struct F32 {};
struct F16 {};
struct BF16 {};
struct Q8_0 {};
struct Q5_0 {};
struct Q4_1 {};  // read-only: decoded, never produced by our recipes
struct Q4_K {};
struct Q6_K {};
struct Q8_K {};  // CPU activation format for K-quant dot products; never in files
struct NF4 {};   // bitsandbytes 4-bit NormalFloat; safetensors only
}  // namespace format

template <class F>
struct FormatTraits;  // no definition: an unknown format is a compile error

/// What every block format provides.
template <class F>
concept BlockFormat = requires(const typename FormatTraits<F>::Block& cb, typename FormatTraits<F>::Block& b,
                               const float* x, float* y) {
  { FormatTraits<F>::kName } -> std::convertible_to<std::string_view>;
  { FormatTraits<F>::kBlockElems } -> std::convertible_to<int>;
  { FormatTraits<F>::kBlockBytes } -> std::convertible_to<std::size_t>;
  { FormatTraits<F>::kGgmlType } -> std::convertible_to<std::uint32_t>;
  { FormatTraits<F>::kQuantizable } -> std::convertible_to<bool>;
  FormatTraits<F>::dequantize_block(cb, y);
  { FormatTraits<F>::dot_block(cb, x) } -> std::same_as<float>;
} && sizeof(typename FormatTraits<F>::Block) == FormatTraits<F>::kBlockBytes;

/// Formats with a reference quantizer (all but read-only Q4_1).
template <class F>
concept QuantizableFormat = BlockFormat<F> && FormatTraits<F>::kQuantizable &&
    requires(const float* x, typename FormatTraits<F>::Block& b) { FormatTraits<F>::quantize_block(x, b); };

}  // namespace qlora::quant
