// qlora/lora/lora_config.hpp — what a LoRA adapter is made of: the rank
// policy, the projections it targets, and its hyper-parameters.
//
// A LoRA adapter replaces a frozen projection y = x W^T (W: out x in) by
//
//     y = x W^T + (alpha / r) · dropout(x) A^T B^T      A: r x in,  B: out x r
//
// LoRARank<r> makes r a compile-time size for the kernels that run the
// low-rank products (the paper's Stage 1 uses r = 16, Stage 2 r = 32); other
// ranks run through the run-time rank the same code also accepts
// (lora/rank_dispatch in apps picks from an explicit list). Targets are the
// seven projections of a llama/qwen2 block, named as PEFT and llama.cpp name
// them (convert/hf_names.hpp holds the full tensor-name mapping).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "qlora/core/status.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::lora {

/// Compile-time rank policy (style.md §2.2: ints select sizes).
template <int R>
struct LoRARank {
  static_assert(R > 0 && R <= 256, "LoRA rank must be in 1..256");
  static constexpr int kRank = R;
};

/// The projections of one decoder block, in PEFT's module order.
enum class Target : std::uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kNumTargets = 7;

struct TargetNames {
  Target target;
  std::string_view peft;  // PEFT target_modules entry ("q_proj")
  std::string_view hf;    // module path inside a HF block ("self_attn.q_proj")
  std::string_view gguf;  // GGUF tensor base inside "blk.N." ("attn_q")
};

inline constexpr std::array<TargetNames, kNumTargets> kTargetNames = {{
    {Target::kQ, "q_proj", "self_attn.q_proj", "attn_q"},
    {Target::kK, "k_proj", "self_attn.k_proj", "attn_k"},
    {Target::kV, "v_proj", "self_attn.v_proj", "attn_v"},
    {Target::kO, "o_proj", "self_attn.o_proj", "attn_output"},
    {Target::kGate, "gate_proj", "mlp.gate_proj", "ffn_gate"},
    {Target::kUp, "up_proj", "mlp.up_proj", "ffn_up"},
    {Target::kDown, "down_proj", "mlp.down_proj", "ffn_down"},
}};

inline const TargetNames& names(Target t) { return kTargetNames[std::size_t(t)]; }

/// Bit set of targets.
using TargetMask = std::uint8_t;
inline constexpr TargetMask kAllTargets = 0x7F;
constexpr TargetMask bit(Target t) { return TargetMask(1u << unsigned(t)); }

/// (in, out) features of a target's projection in a model.
struct ProjShape {
  std::int64_t in = 0, out = 0;
};
inline ProjShape proj_shape(const model::ModelConfig& c, Target t) {
  const std::int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
  switch (t) {
    case Target::kQ: return {E, Q};
    case Target::kK: return {E, KV};
    case Target::kV: return {E, KV};
    case Target::kO: return {Q, E};
    case Target::kGate: return {E, F};
    case Target::kUp: return {E, F};
    case Target::kDown: return {F, E};
  }
  return {};
}

/// Hyper-parameters of an adapter. Defaults: the paper's Stage 1.
struct LoraConfig {
  int rank = 16;
  float alpha = 16.0f;
  float dropout = 0.0f;              // on the adapter branch's input, as PEFT's lora_dropout
  TargetMask targets = kAllTargets;  // the paper: all attention and MLP projections
  std::uint64_t seed = 42;           // initialisation of A

  /// The factor on B·A (PEFT without rslora: alpha / r).
  float scale() const { return alpha / float(rank); }
  bool has(Target t) const { return (targets & bit(t)) != 0; }

  Status validate() const {
    if (rank < 1 || rank > 256) return Status::invalid("LoRA rank " + std::to_string(rank) + " is outside 1..256");
    if (!(alpha > 0.0f)) return Status::invalid("LoRA alpha must be positive");
    if (!(dropout >= 0.0f && dropout < 1.0f)) return Status::invalid("LoRA dropout must be in [0, 1)");
    if ((targets & kAllTargets) == 0) return Status::invalid("LoRA: no target modules");
    return Status::ok();
  }
};

/// Parse a comma-separated target list: PEFT names ("q_proj,v_proj"), GGUF
/// names ("attn_q"), or "all". Errors name the unknown entry and list the valid ones.
inline Result<TargetMask> parse_targets(std::string_view list) {
  if (list == "all" || list == "all-linear") return kAllTargets;
  TargetMask m = 0;
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    bool found = false;
    for (const auto& n : kTargetNames)
      if (item == n.peft || item == n.gguf) {
        m |= bit(n.target);
        found = true;
      }
    if (!found)
      return Status::invalid("unknown LoRA target '" + std::string(item) +
                             "' (valid: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, all)");
  }
  if (m == 0) return Status::invalid("LoRA: empty target list");
  return m;
}

}  // namespace qlora::lora

namespace qlora::lora {

/// Ranks with a compile-time instantiation (LoRARank<16>, LoRARank<32>: the
/// paper's); any other rank runs the same code with R = 0 (run-time rank).
/// Calls fn.template operator()<R>() and returns its result.
template <class Fn>
decltype(auto) dispatch_rank(int rank, Fn&& fn) {
  switch (rank) {
    case LoRARank<16>::kRank: return fn.template operator()<16>();
    case LoRARank<32>::kRank: return fn.template operator()<32>();
    default: return fn.template operator()<0>();
  }
}

}  // namespace qlora::lora
