// qlora/quant/row.hpp — whole rows in any block format, by tag or by GGUF id.
//
// Formats are template axes (FormatTraits<F>); files and CLIs carry runtime
// type ids. visit_format() is the single bridge: it maps a ggml type id to the
// format tag and calls a templated lambda, so every runtime-typed operation in
// the library goes through one explicit list of supported formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "qlora/core/status.hpp"
#include "qlora/quant/float_formats.hpp"
#include "qlora/quant/format.hpp"
#include "qlora/quant/q4_1.hpp"
#include "qlora/quant/q4_k.hpp"
#include "qlora/quant/q5_0.hpp"
#include "qlora/quant/q6_k.hpp"
#include "qlora/quant/q8_0.hpp"
#include "qlora/quant/q8_k.hpp"
#include "qlora/quant/rounding.hpp"
#include "qlora/quant/type_info.hpp"

namespace qlora::quant {

/// Quantize `n` floats (a multiple of the block size) into blocks of F.
template <QuantizableFormat F>
QLORA_HD void quantize_row(const float* x, void* dst, std::int64_t n) {
  using T = FormatTraits<F>;
  auto* blocks = static_cast<typename T::Block*>(dst);
  for (std::int64_t i = 0; i < n / T::kBlockElems; ++i) T::quantize_block(x + i * T::kBlockElems, blocks[i]);
}

/// Decode `n` elements (a multiple of the block size) of format F.
template <BlockFormat F>
QLORA_HD void dequantize_row(const void* src, float* y, std::int64_t n) {
  using T = FormatTraits<F>;
  const auto* blocks = static_cast<const typename T::Block*>(src);
  for (std::int64_t i = 0; i < n / T::kBlockElems; ++i) T::dequantize_block(blocks[i], y + i * T::kBlockElems);
}

/// sum_i decode(w)[i] * x[i] over `n` elements of format F, accumulated in fp32.
template <BlockFormat F>
QLORA_HD float dot_row(const void* w, const float* x, std::int64_t n) {
  using T = FormatTraits<F>;
  const auto* blocks = static_cast<const typename T::Block*>(w);
  float s = 0.0f;
  for (std::int64_t i = 0; i < n / T::kBlockElems; ++i) s += T::dot_block(blocks[i], x + i * T::kBlockElems);
  return s;
}

/// Call fn.template operator()<F>() for the format with ggml id `type`.
/// Returns false (without calling) when the id is not a format we decode.
template <class Fn>
bool visit_format(std::uint32_t type, Fn&& fn) {
  switch (GgmlType(type)) {
    case GgmlType::F32: fn.template operator()<format::F32>(); return true;
    case GgmlType::F16: fn.template operator()<format::F16>(); return true;
    case GgmlType::BF16: fn.template operator()<format::BF16>(); return true;
    case GgmlType::Q8_0: fn.template operator()<format::Q8_0>(); return true;
    case GgmlType::Q5_0: fn.template operator()<format::Q5_0>(); return true;
    case GgmlType::Q4_1: fn.template operator()<format::Q4_1>(); return true;
    case GgmlType::Q4_K: fn.template operator()<format::Q4_K>(); return true;
    case GgmlType::Q6_K: fn.template operator()<format::Q6_K>(); return true;
    case GgmlType::Q8_K: fn.template operator()<format::Q8_K>(); return true;
  }
  return false;
}

/// Printable name of a ggml type id ("q4_K", or "type#N" when unknown).
/// kNoGgmlType prints as "nf4": NF4 is the one format without a GGUF id.
inline std::string ggml_type_name(std::uint32_t type) {
  if (type == kNoGgmlType) return "nf4";
  if (auto info = ggml_type_info(type)) return std::string(info->name);
  return "type#" + std::to_string(type);
}

/// True when we can decode tensors of this ggml type.
inline bool can_dequantize(std::uint32_t type) {
  return visit_format(type, []<class F>() {});
}

/// True when we can produce tensors of this ggml type.
inline bool can_quantize(std::uint32_t type) {
  bool ok = false;
  visit_format(type, [&]<class F>() { ok = FormatTraits<F>::kQuantizable; });
  return ok;
}

/// Runtime-typed dequantize of one row; errors name the type and length.
inline Status dequantize_row(std::uint32_t type, const void* src, float* y, std::int64_t n) {
  Status st = Status::unsupported("cannot decode tensors of type " + ggml_type_name(type));
  visit_format(type, [&]<class F>() {
    if (n % FormatTraits<F>::kBlockElems != 0) {
      st = Status::invalid("row of " + std::to_string(n) + " elements is not a multiple of the " +
                           std::string(FormatTraits<F>::kName) + " block (" +
                           std::to_string(FormatTraits<F>::kBlockElems) + ")");
      return;
    }
    dequantize_row<F>(src, y, n);
    st = Status::ok();
  });
  return st;
}

/// Index of the first non-finite value in x[0, n), or -1 if all are finite.
inline std::int64_t find_non_finite(const float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!is_finite_f32(x[i])) return i;
  return -1;
}

/// Runtime-typed quantize of one row. Rejects NaN/Inf (which would silently
/// poison a whole block's scale) and lengths that are not whole blocks.
inline Status quantize_row(std::uint32_t type, const float* x, void* dst, std::int64_t n) {
  Status st = Status::unsupported("cannot produce tensors of type " + ggml_type_name(type));
  visit_format(type, [&]<class F>() {
    if constexpr (QuantizableFormat<F>) {
      if (n % FormatTraits<F>::kBlockElems != 0) {
        st = Status::invalid("row of " + std::to_string(n) + " elements is not a multiple of the " +
                             std::string(FormatTraits<F>::kName) + " block (" +
                             std::to_string(FormatTraits<F>::kBlockElems) + ")");
        return;
      }
      if (const std::int64_t bad = find_non_finite(x, n); bad >= 0) {
        st = Status::numeric("non-finite value " + std::to_string(x[bad]) + " at element " + std::to_string(bad));
        return;
      }
      quantize_row<F>(x, dst, n);
      st = Status::ok();
    }
  });
  return st;
}

}  // namespace qlora::quant
