// qlora/quant/type_info.hpp — sizes of every ggml tensor type, by id.
//
// The GGUF reader needs the byte size of *any* tensor a file may hold, even in
// formats we never decode (so `qlora inspect` and validation work on every
// model), hence this table covers all current ggml_type ids. Which types we
// can decode or produce is a separate question, answered by row.hpp.
// Source of the numbers: the block structs in ggml-common.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qlora::quant {

struct GgmlTypeInfo {
  std::uint32_t id;
  std::string_view name;      // as llama.cpp prints it
  std::uint32_t block_elems;  // elements per block (1 for plain floats/ints)
  std::uint32_t block_bytes;  // bytes per block
};

inline constexpr GgmlTypeInfo kGgmlTypes[] = {
    {0, "f32", 1, 4},          {1, "f16", 1, 2},         {2, "q4_0", 32, 18},      {3, "q4_1", 32, 20},
    {6, "q5_0", 32, 22},       {7, "q5_1", 32, 24},      {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},
    {10, "q2_K", 256, 84},     {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
    {14, "q6_K", 256, 210},    {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
    {18, "iq3_xxs", 256, 98},  {19, "iq1_s", 256, 50},   {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},
    {22, "iq2_s", 256, 82},    {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
    {26, "i32", 1, 4},         {27, "i64", 1, 8},        {28, "f64", 1, 8},        {29, "iq1_m", 256, 56},
    {30, "bf16", 1, 2},        {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
};

/// Size facts for a ggml type id, or nullopt for ids no current ggml knows.
constexpr std::optional<GgmlTypeInfo> ggml_type_info(std::uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (t.id == id) return t;
  return std::nullopt;
}

/// Look a type up by its printed name ("q4_K"; case-insensitive).
constexpr std::optional<GgmlTypeInfo> ggml_type_by_name(std::string_view name) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
  for (const auto& t : kGgmlTypes) {
    if (t.name.size() != name.size()) continue;
    bool eq = true;
    for (std::size_t i = 0; i < name.size() && eq; ++i) eq = lower(t.name[i]) == lower(name[i]);
    if (eq) return t;
  }
  return std::nullopt;
}

/// Bytes of one row of `n` elements, or nullopt if n is not a whole number of
/// blocks (GGUF requires ne[0] % block_elems == 0).
constexpr std::optional<std::uint64_t> ggml_row_bytes(const GgmlTypeInfo& t, std::uint64_t n) {
  if (n % t.block_elems != 0) return std::nullopt;
  return n / t.block_elems * t.block_bytes;
}

}  // namespace qlora::quant
