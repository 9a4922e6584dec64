// qlora/model/attention_policy.hpp — Attention<MHA> and Attention<GQA>.
//
// Multi-head attention gives every query head its own K/V head; grouped-query
// attention lets n_gqa query heads share one K/V head (Llama-3 8B: 32/8,
// Qwen2.5-7B: 28/4, SmolLM2: 9/3). The policy decides, at compile time, how a
// query head finds its K/V head: GQA shares cache rows by index arithmetic
// (kv_head = q_head / n_gqa) — K/V are never copied or repeated — while MHA
// maps heads one to one and needs no division. The group size itself stays a
// runtime value (style.md §2.3): a benchmark has not shown that compiling it in
// pays.
#pragma once

#include <cstdint>
#include <string_view>

#include "qlora/core/hd.hpp"
#include "qlora/core/status.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::model {

namespace attn {
struct MHA {};
struct GQA {};
}  // namespace attn

template <class A>
struct Attention;  // no definition: unknown policy = compile error

template <>
struct Attention<attn::MHA> {
  static constexpr std::string_view kName = "mha";
  QLORA_HD static std::uint32_t kv_head(std::uint32_t q_head, std::uint32_t /*n_gqa*/) { return q_head; }
  static Status check(const ModelConfig& c) {
    if (c.n_head_kv != c.n_head)
      return Status::invalid(c.name + ": --attn mha needs as many KV heads as query heads, but the model has " +
                             std::to_string(c.n_head) + " query and " + std::to_string(c.n_head_kv) +
                             " KV heads (it is GQA: use --attn gqa)");
    return Status::ok();
  }
};

template <>
struct Attention<attn::GQA> {
  static constexpr std::string_view kName = "gqa";
  QLORA_HD static std::uint32_t kv_head(std::uint32_t q_head, std::uint32_t n_gqa) { return q_head / n_gqa; }
  static Status check(const ModelConfig& c) {
    if (c.n_head_kv == 0 || c.n_head % c.n_head_kv != 0)
      return Status::invalid(c.name + ": query heads are not a multiple of KV heads");
    return Status::ok();
  }
};

/// The policy a model's configuration calls for.
inline std::string_view attention_kind(const ModelConfig& c) { return c.is_gqa() ? "gqa" : "mha"; }

}  // namespace qlora::model
