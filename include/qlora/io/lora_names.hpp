// qlora/io/lora_names.hpp — what the A and B matrices of one (layer, target)
// slot are called in the two adapter formats we exchange:
//
//   PEFT (adapter_model.safetensors, torch orientation):
//     base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight   [r, in]
//     base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight   [out, r]
//   llama.cpp GGUF LoRA (ggml ne, i.e. the torch shape reversed):
//     blk.3.attn_q.weight.lora_a                                       ne [in, r]
//     blk.3.attn_q.weight.lora_b                                       ne [r, out]
//
// "base_model.model." is PEFT's wrapper prefix (PeftModel -> LoraModel ->
// the transformers model), so what follows is the base model's own parameter
// name; llama.cpp's convert_lora_to_gguf.py strips it, maps the rest like a
// model tensor and appends ".lora_a"/".lora_b". Both directions go through
// convert/hf_names.hpp, so the HF <-> GGUF mapping has one definition.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qlora/convert/hf_names.hpp"
#include "qlora/lora/lora_config.hpp"

namespace qlora::io {

/// Which matrix of a LoRA pair a tensor holds.
enum class LoraMatrix : std::uint8_t { kA, kB };

/// One tensor of an adapter file, identified.
struct LoraTensorId {
  std::uint32_t layer = 0;
  lora::Target target = lora::Target::kQ;
  LoraMatrix matrix = LoraMatrix::kA;
};

inline constexpr std::string_view kPeftPrefix = "base_model.model.";

/// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight".
inline std::string peft_lora_name(std::uint32_t layer, lora::Target t, LoraMatrix m) {
  return std::string(kPeftPrefix) + "model.layers." + std::to_string(layer) + "." + std::string(lora::names(t).hf) +
         (m == LoraMatrix::kA ? ".lora_A.weight" : ".lora_B.weight");
}

/// "blk.3.attn_q.weight.lora_a".
inline std::string gguf_lora_name(std::uint32_t layer, lora::Target t, LoraMatrix m) {
  return "blk." + std::to_string(layer) + "." + std::string(lora::names(t).gguf) +
         (m == LoraMatrix::kA ? ".weight.lora_a" : ".weight.lora_b");
}

namespace detail {

inline bool strip_suffix(std::string_view& s, std::string_view suffix) {
  if (s.size() < suffix.size() || s.substr(s.size() - suffix.size()) != suffix) return false;
  s.remove_suffix(suffix.size());
  return true;
}

/// "blk.3.attn_q.weight" -> (3, kQ); nullopt for anything that is not one of
/// the seven projections of a block.
inline std::optional<LoraTensorId> lora_target_of_gguf_weight(std::string_view gguf_weight) {
  std::string_view base = gguf_weight;
  if (!strip_suffix(base, ".weight")) return std::nullopt;
  std::uint32_t layer = 0;
  std::string_view rest;
  if (!convert::detail::split_layer(base, "blk.", layer, rest)) return std::nullopt;
  for (const auto& n : lora::kTargetNames)
    if (rest == n.gguf) return LoraTensorId{layer, n.target, LoraMatrix::kA};
  return std::nullopt;
}

}  // namespace detail

/// Inverse of gguf_lora_name; nullopt for any other tensor name.
inline std::optional<LoraTensorId> parse_gguf_lora_name(std::string_view name) {
  LoraMatrix m = LoraMatrix::kA;
  if (detail::strip_suffix(name, ".lora_a")) m = LoraMatrix::kA;
  else if (detail::strip_suffix(name, ".lora_b")) m = LoraMatrix::kB;
  else return std::nullopt;
  auto id = detail::lora_target_of_gguf_weight(name);
  if (id) id->matrix = m;
  return id;
}

/// Inverse of peft_lora_name (through the HF -> GGUF tensor-name mapping);
/// nullopt for any other tensor name.
inline std::optional<LoraTensorId> parse_peft_lora_name(std::string_view name) {
  if (name.substr(0, kPeftPrefix.size()) != kPeftPrefix) return std::nullopt;
  name.remove_prefix(kPeftPrefix.size());
  LoraMatrix m = LoraMatrix::kA;
  if (detail::strip_suffix(name, ".lora_A.weight")) m = LoraMatrix::kA;
  else if (detail::strip_suffix(name, ".lora_B.weight")) m = LoraMatrix::kB;
  else return std::nullopt;
  auto gguf = convert::hf_to_gguf_name(std::string(name) + ".weight");
  if (!gguf) return std::nullopt;
  auto id = detail::lora_target_of_gguf_weight(*gguf);
  if (id) id->matrix = m;
  return id;
}

}  // namespace qlora::io
