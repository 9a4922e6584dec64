// qlora/convert/hf_names.hpp — the correspondence between a GGUF decoder
// (llama, qwen2) and its Hugging Face transformers checkpoint: tensor names,
// shapes, and llama's Q/K row permutation.
//
// llama.cpp's converter (conversion/llama.py, formats.md §1.4–1.5) renames
// every tensor, reverses its shape (GGUF `ne` is the numpy shape backwards,
// bytes unchanged), and for arch "llama" only reorders the output rows of
// q_proj/k_proj (weights and biases) so that RoPE's rotate-half pairs
// (i, i+hd/2) become adjacent pairs (2i, 2i+1), which ggml's NORM rope rotates.
// Going back to HF means inverting all three. Qwen2 uses NEOX rope, so its
// rows are stored in HF order and no permutation applies.
//
// Everything here is a pure function of names and numbers, so the NF4 export
// and the LoRA adapter export share one definition of the mapping.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/core/status.hpp"

namespace qlora::convert {

/// The decoder families whose checkpoints we can translate.
enum class HfArch { kLlama, kQwen2 };

/// `general.architecture` -> HfArch; anything else is unsupported.
inline Result<HfArch> hf_arch(std::string_view gguf_arch) {
  if (gguf_arch == "llama") return HfArch::kLlama;
  if (gguf_arch == "qwen2") return HfArch::kQwen2;
  return Status::unsupported("architecture '" + std::string(gguf_arch) +
                             "' has no Hugging Face mapping (supported: llama, qwen2)");
}

/// transformers' model_type and class name for an architecture.
inline std::string_view hf_model_type(HfArch a) { return a == HfArch::kLlama ? "llama" : "qwen2"; }
inline std::string_view hf_model_class(HfArch a) {
  return a == HfArch::kLlama ? "LlamaForCausalLM" : "Qwen2ForCausalLM";
}

/// Only llama's converter permutes Q/K (qwen2 keeps HF row order).
inline bool hf_permutes_qk(HfArch a) { return a == HfArch::kLlama; }

namespace detail {

struct NamePair {
  std::string_view gguf, hf;
};

// Model-level tensors: the whole base name maps.
inline constexpr std::array<NamePair, 3> kHfGlobalNames = {{
    {"token_embd", "model.embed_tokens"},
    {"output_norm", "model.norm"},
    {"output", "lm_head"},
}};

// Per-block tensors: "blk.N.<gguf>" <-> "model.layers.N.<hf>".
inline constexpr std::array<NamePair, 9> kHfBlockNames = {{
    {"attn_norm", "input_layernorm"},
    {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
}};

/// Split "<base>.weight" / "<base>.bias"; false for any other suffix.
inline bool split_param(std::string_view name, std::string_view& base, std::string_view& param) {
  for (std::string_view p : {std::string_view("weight"), std::string_view("bias")}) {
    if (name.size() > p.size() + 1 && name.substr(name.size() - p.size()) == p &&
        name[name.size() - p.size() - 1] == '.') {
      base = name.substr(0, name.size() - p.size() - 1);
      param = p;
      return true;
    }
  }
  return false;
}

/// Parse "<prefix><decimal>.<rest>"; the layer number must be canonical
/// (no sign, no leading zeros) so the mapping is a bijection.
inline bool split_layer(std::string_view name, std::string_view prefix, std::uint32_t& layer, std::string_view& rest) {
  if (name.substr(0, prefix.size()) != prefix) return false;
  const std::string_view tail = name.substr(prefix.size());
  const auto dot = tail.find('.');
  if (dot == std::string_view::npos || dot == 0 || (dot > 1 && tail[0] == '0')) return false;
  const auto r = std::from_chars(tail.data(), tail.data() + dot, layer);
  if (r.ec != std::errc() || r.ptr != tail.data() + dot) return false;
  rest = tail.substr(dot + 1);
  return true;
}

}  // namespace detail

/// GGUF tensor name -> HF state-dict name, e.g. "blk.3.attn_q.weight" ->
/// "model.layers.3.self_attn.q_proj.weight". Unknown names (including
/// rope_freqs.weight, which HF recomputes from the config) are an error.
inline Result<std::string> gguf_to_hf_name(std::string_view gguf) {
  auto unknown = [&] {
    return Status::unsupported("tensor '" + std::string(gguf) + "' has no Hugging Face llama/qwen2 name");
  };
  std::string_view base, param;
  if (!detail::split_param(gguf, base, param)) return unknown();
  for (const auto& p : detail::kHfGlobalNames)
    if (base == p.gguf) return std::string(p.hf) + "." + std::string(param);
  std::uint32_t layer = 0;
  std::string_view rest;
  if (!detail::split_layer(base, "blk.", layer, rest)) return unknown();
  for (const auto& p : detail::kHfBlockNames)
    if (rest == p.gguf) return "model.layers." + std::to_string(layer) + "." + std::string(p.hf) + "." + std::string(param);
  return unknown();
}

/// HF state-dict name -> GGUF tensor name (the inverse of gguf_to_hf_name).
inline Result<std::string> hf_to_gguf_name(std::string_view hf) {
  auto unknown = [&] {
    return Status::unsupported("tensor '" + std::string(hf) + "' has no GGUF llama/qwen2 name");
  };
  std::string_view base, param;
  if (!detail::split_param(hf, base, param)) return unknown();
  for (const auto& p : detail::kHfGlobalNames)
    if (base == p.hf) return std::string(p.gguf) + "." + std::string(param);
  std::uint32_t layer = 0;
  std::string_view rest;
  if (!detail::split_layer(base, "model.layers.", layer, rest)) return unknown();
  for (const auto& p : detail::kHfBlockNames)
    if (rest == p.hf) return "blk." + std::to_string(layer) + "." + std::string(p.gguf) + "." + std::string(param);
  return unknown();
}

/// Which of llama's permuted tensors a GGUF name is: Q uses n_head, K uses
/// n_head_kv (the converter passes n_head_kv for k_proj). Weights and biases
/// both, since both have one entry per output row.
enum class QkRole { kNone, kQ, kK };

inline QkRole gguf_qk_role(std::string_view gguf) {
  std::string_view base, param;
  std::uint32_t layer = 0;
  std::string_view rest;
  if (!detail::split_param(gguf, base, param) || !detail::split_layer(base, "blk.", layer, rest)) return QkRole::kNone;
  if (rest == "attn_q") return QkRole::kQ;
  if (rest == "attn_k") return QkRole::kK;
  return QkRole::kNone;
}

/// HF (row-major, numpy/torch) shape of a GGUF tensor: `ne` reversed.
inline std::vector<std::int64_t> hf_shape(std::span<const std::uint64_t> ne) {
  std::vector<std::int64_t> s;
  for (std::size_t i = ne.size(); i-- > 0;) s.push_back(std::int64_t(ne[i]));
  return s;
}

// ---------------------------------------------------------------------------
// llama Q/K row permutation (formats.md §1.5)
// ---------------------------------------------------------------------------

/// Within each head of hd rows: HF row s·hd/2 + i  <->  GGUF row 2i + s.
/// Index maps on whole-matrix row numbers (head h adds h·hd to both sides).
constexpr std::int64_t llama_qk_gguf_row(std::int64_t hf_row, std::int64_t head_dim) {
  const std::int64_t h = hf_row / head_dim, r = hf_row % head_dim, half = head_dim / 2;
  return h * head_dim + 2 * (r % half) + r / half;
}
constexpr std::int64_t llama_qk_hf_row(std::int64_t gguf_row, std::int64_t head_dim) {
  const std::int64_t h = gguf_row / head_dim, r = gguf_row % head_dim, half = head_dim / 2;
  return h * head_dim + (r % 2) * half + r / 2;
}

namespace detail {

inline Status check_qk_permutation(std::size_t n_src, std::size_t n_dst, std::int64_t n_rows, std::int64_t n_head) {
  if (n_head <= 0 || n_rows <= 0 || n_rows % n_head != 0)
    return Status::invalid("Q/K permutation: " + std::to_string(n_rows) + " rows do not split into " +
                           std::to_string(n_head) + " heads");
  if ((n_rows / n_head) % 2 != 0)
    return Status::invalid("Q/K permutation: head dim " + std::to_string(n_rows / n_head) + " is odd");
  if (n_src % std::size_t(n_rows) != 0 || n_src != n_dst)
    return Status::invalid("Q/K permutation: " + std::to_string(n_src) + " elements are not " +
                           std::to_string(n_rows) + " whole rows (destination holds " + std::to_string(n_dst) + ")");
  return Status::ok();
}

/// dst row map(r) = src row r, rows of n/n_rows elements.
template <class T, class Map>
void move_rows(std::span<const T> src, std::span<T> dst, std::int64_t n_rows, Map map) {
  const std::size_t cols = src.size() / std::size_t(n_rows);
  for (std::int64_t r = 0; r < n_rows; ++r) {
    const T* from = src.data() + std::size_t(r) * cols;
    std::copy(from, from + cols, dst.data() + std::size_t(map(r)) * cols);
  }
}

}  // namespace detail

/// GGUF -> HF: undo llama.cpp's permutation of a row-major [n_rows, cols]
/// matrix (or a bias, cols = 1). `n_head` is n_head for Q, n_head_kv for K.
/// `src` and `dst` must not overlap.
template <class T>
Status unpermute_llama_qk(std::span<const T> gguf, std::span<T> hf, std::int64_t n_rows, std::int64_t n_head) {
  QLORA_TRY(detail::check_qk_permutation(gguf.size(), hf.size(), n_rows, n_head));
  const std::int64_t hd = n_rows / n_head;
  detail::move_rows(gguf, hf, n_rows, [hd](std::int64_t r) { return llama_qk_hf_row(r, hd); });
  return Status::ok();
}

/// HF -> GGUF: apply llama.cpp's permutation (LlamaModel.permute).
template <class T>
Status permute_llama_qk(std::span<const T> hf, std::span<T> gguf, std::int64_t n_rows, std::int64_t n_head) {
  QLORA_TRY(detail::check_qk_permutation(hf.size(), gguf.size(), n_rows, n_head));
  const std::int64_t hd = n_rows / n_head;
  detail::move_rows(hf, gguf, n_rows, [hd](std::int64_t r) { return llama_qk_gguf_row(r, hd); });
  return Status::ok();
}

/// Vector-returning conveniences.
template <class T>
Result<std::vector<T>> unpermute_llama_qk(std::span<const T> gguf, std::int64_t n_rows, std::int64_t n_head) {
  std::vector<T> out(gguf.size());
  QLORA_TRY(unpermute_llama_qk(gguf, std::span<T>(out), n_rows, n_head));
  return out;
}
template <class T>
Result<std::vector<T>> permute_llama_qk(std::span<const T> hf, std::int64_t n_rows, std::int64_t n_head) {
  std::vector<T> out(hf.size());
  QLORA_TRY(permute_llama_qk(hf, std::span<T>(out), n_rows, n_head));
  return out;
}

}  // namespace qlora::convert
