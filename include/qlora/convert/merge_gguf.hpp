// qlora/convert/merge_gguf.hpp — write a base GGUF with a LoRA adapter merged
// into it, in any of our quantization schemes (F16 for llama.cpp's own
// quantizer, or straight to Q8_0 / Q4_K_M with ours — the same bytes).
//
// The merge happens inside the quantizer's tensor stream (QuantizeOptions::
// transform): each targeted projection is decoded to fp32, (for the kNf4
// target) replaced by its NF4 round trip, has (alpha/r)·B·A added, and is
// encoded to the scheme's type; every other tensor goes through unchanged.
// One tensor is in memory at a time — merging never needs the whole model in
// full precision (the "out of memory during merge" pain of Python merges).
#pragma once

#include <string>

#include "qlora/convert/quantize_gguf.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/lora/merge.hpp"
#include "qlora/train/frozen_matrix.hpp"

namespace qlora::convert {

/// The adapter slot a GGUF tensor name belongs to ("blk.3.attn_q.weight"), or null.
inline const lora::LoraSlot* slot_for_tensor(const lora::LoraAdapter& ad, const std::string& name) {
  for (const auto& s : ad.slots())
    if (name == lora::LoraAdapter::gguf_base(s) + ".weight") return &s;
  return nullptr;
}

template <class S>
Result<QuantizeReport> merge_lora_gguf(const io::GgufFile& base, const lora::LoraAdapter& ad, lora::MergeTarget target,
                                       const std::string& out_path, QuantizeOptions opt = {}) {
  const model::ModelConfig& m = ad.model();
  auto cfg = model::config_from_gguf(base);
  if (!cfg) return cfg.status();
  if (cfg->n_layer != m.n_layer || cfg->n_embd != m.n_embd || cfg->q_dim() != m.q_dim() ||
      cfg->kv_dim() != m.kv_dim() || cfg->n_ff != m.n_ff)
    return Status::invalid(base.name() + ": the adapter was trained for a model of another shape (" + m.name + ")");
  for (const auto& s : ad.slots())
    if (!base.find_tensor(lora::LoraAdapter::gguf_base(s) + ".weight"))
      return Status::invalid(base.name() + ": no tensor '" + lora::LoraAdapter::gguf_base(s) + ".weight' to merge into");
  ThreadPool& pool = opt.pool ? *opt.pool : ThreadPool::global();
  opt.transforms = [&ad](const std::string& name) { return slot_for_tensor(ad, name) != nullptr; };
  opt.transform = [&ad, target, &pool](const std::string& name, float* w, std::int64_t rows, std::int64_t cols) {
    const lora::LoraSlot* s = slot_for_tensor(ad, name);
    if (target == lora::MergeTarget::kNf4)
      QLORA_TRY(train::FrozenMatrix::nf4_round_trip(w, rows, cols, /*double_quant=*/true, pool));
    return lora::add_lora_delta(ad, *s, w, rows, cols);
  };
  return quantize_gguf<S>(base, out_path, opt);
}

}  // namespace qlora::convert
