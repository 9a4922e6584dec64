// qlora/train/memory_plan.hpp — what QLoRA training of a model costs in
// memory, computed from its configuration: the question a user with one
// 16 GB card (the paper's RTX 4060 Ti) asks before starting a run.
//
// The plan follows our trainer's design (train/trainable_decoder.hpp), on a
// GPU or the CPU alike:
//   base        the seven projections in NF4 with double-quantized scales:
//               4 bits + one 8-bit scale code per 64 weights + one fp32
//               second-level scale per 256 codes (bitsandbytes' layout);
//               embeddings and output head in bf16 (not quantized, as
//               bitsandbytes leaves them); norms and biases fp32
//   adapter     A and B in fp32, their gradients, AdamW's two moments:
//               16 bytes per trainable parameter
//   activations what each block keeps for its backward pass, per token:
//               4E + 2Q + 2KV + 3F + 2 values (+ r per LoRA target), in the
//               activation type (fp32 on our CPU, bf16 with bf16 compute);
//               with gradient checkpointing only E per block plus one
//               block's full set
//   attention   the probabilities recomputed per head in backward: P and dP,
//               N x N each, for the heads running at once (one per thread on
//               the CPU; a fused flash-attention kernel needs none)
//   logits      fp32 logits of the scored positions (and their gradient, in
//               place): scored tokens x vocabulary x 4 bytes
// Framework overheads (CUDA context ~0.3-0.5 GB, allocator fragmentation)
// are not modelled and are listed separately by the caller. (Our CPU trainer
// keeps the NF4 scales decoded to fp32 — 0.5625 bytes per weight instead of
// 0.516 — trading 9% of the base's size for a decode without a table lookup.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qlora/lora/lora_config.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::train {

struct MemoryPlanInput {
  model::ModelConfig model;
  lora::LoraConfig lora;
  std::int64_t batch = 2;              // sequences per micro-batch (held at once)
  std::int64_t seq_len = 2048;         // tokens per sequence
  double scored_fraction = 1.0;        // share of positions that reach the head (answer tokens)
  bool gradient_checkpointing = false;
  int activation_bytes = 2;            // 2: bf16 compute (the paper), 4: fp32 (our CPU default)
  int attention_heads_at_once = 0;     // heads whose N x N probabilities coexist; 0 = fused (flash) kernel
};

struct MemoryItem {
  std::string name;
  double bytes = 0;
};

struct MemoryPlan {
  std::vector<MemoryItem> items;
  std::int64_t frozen_params = 0, projection_params = 0, lora_params = 0;
  double total() const {
    double t = 0;
    for (const auto& i : items) t += i.bytes;
    return t;
  }
};

inline MemoryPlan plan_memory(const MemoryPlanInput& in) {
  const model::ModelConfig& c = in.model;
  const double E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff, V = c.n_vocab, L = c.n_layer;
  MemoryPlan p;
  const double proj = L * (E * Q + 2 * E * KV + Q * E + 3 * E * F);
  const double embed = V * E * (c.tied_embeddings ? 1 : 2);
  const double small = L * 2 * E + E + (c.qkv_bias ? L * (Q + 2 * KV) : 0);
  p.projection_params = std::int64_t(proj);
  p.frozen_params = std::int64_t(proj + embed + small);
  const double nf4_bytes_per_weight = 0.5 + 1.0 / 64 + 4.0 / (64.0 * 256.0);
  p.items.push_back({"base projections (NF4 + double-quantized scales)", proj * nf4_bytes_per_weight});
  p.items.push_back({c.tied_embeddings ? "embedding = output head (bf16)" : "embedding + output head (bf16)", embed * 2});
  p.items.push_back({"norms and biases (fp32)", small * 4});

  std::int64_t n_adapter = 0;  // r x (in + out) per targeted projection, as LoraAdapter lays them out
  for (const auto& t : lora::kTargetNames)
    if (in.lora.has(t.target)) {
      const lora::ProjShape s = lora::proj_shape(c, t.target);
      n_adapter += std::int64_t(c.n_layer) * in.lora.rank * (s.in + s.out);
    }
  p.lora_params = n_adapter;
  const double n_lora = double(n_adapter);
  p.items.push_back({"LoRA parameters + gradients (fp32)", n_lora * 8});
  p.items.push_back({"AdamW moments (fp32)", n_lora * 8});

  const double tokens = double(in.batch) * double(in.seq_len);
  int targets = 0;
  for (const auto& n : lora::kTargetNames) targets += in.lora.has(n.target);
  const double per_block = 4 * E + 2 * Q + 2 * KV + 3 * F + 2 + double(targets) * in.lora.rank;
  const double act = in.gradient_checkpointing ? tokens * (L * E + per_block) : tokens * L * per_block;
  p.items.push_back({in.gradient_checkpointing ? "activations (checkpointed: block inputs + one block)"
                                               : "activations kept for backward",
                     act * in.activation_bytes});
  const double n = double(in.seq_len);
  p.items.push_back({"attention probabilities (recomputed, P and dP)",
                     double(in.attention_heads_at_once) * 2 * n * n * 4});
  p.items.push_back({"logits of scored positions (fp32)", tokens * in.scored_fraction * V * 4});
  return p;
}

}  // namespace qlora::train
