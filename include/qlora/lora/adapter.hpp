// qlora/lora/adapter.hpp — the trainable parameters of a LoRA adapter.
//
// All A and B matrices of an adapter live in ONE flat fp32 buffer, slot after
// slot (layer-major, targets in PEFT order), so the optimizer, gradient
// clipping, checkpoints and exports each see a single array:
//
//   params: | L0.q A | L0.q B | L0.k A | L0.k B | ... | L{n-1}.down B |
//             r x in   out x r                    (row-major)
//
// Orientation is PEFT's (lora_A.weight [r, in], lora_B.weight [out, r]). The
// adapter lives in the GGUF model's coordinates: for llama, whose converter
// permutes the rows of Q and K, B's rows of q/k follow that permutation — the
// exports (PEFT, GGUF LoRA) translate, training never needs to.
//
// Initialisation as PEFT's default (init_lora_weights=True): A uniform in
// ±1/sqrt(in) (kaiming_uniform with a = sqrt(5)), B zero — so a fresh adapter
// leaves the model's output unchanged. Values come from counter-based draws of
// (seed, slot, element): the same seed gives the same adapter everywhere.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qlora/core/rng.hpp"
#include "qlora/core/status.hpp"
#include "qlora/lora/lora_config.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::lora {

/// Where one (layer, target) pair of matrices lives in the flat buffer.
struct LoraSlot {
  std::uint32_t layer = 0;
  Target target = Target::kQ;
  std::int64_t in = 0, out = 0;  // the projection's features
  std::size_t a_off = 0;         // A: rank x in
  std::size_t b_off = 0;         // B: out x rank
};

class LoraAdapter {
 public:
  /// A fresh adapter for `model` (PEFT initialisation, see the file comment).
  static Result<LoraAdapter> create(const model::ModelConfig& model, const LoraConfig& cfg) {
    QLORA_TRY(cfg.validate());
    LoraAdapter a = layout(model, cfg);
    for (std::size_t s = 0; s < a.slots_.size(); ++s) {
      const LoraSlot& sl = a.slots_[s];
      const float bound = 1.0f / std::sqrt(float(sl.in));
      float* A = a.params_.data() + sl.a_off;
      const std::size_t n = std::size_t(cfg.rank) * std::size_t(sl.in);
      for (std::size_t i = 0; i < n; ++i) A[i] = (2.0f * uniform01_f32(hash3(cfg.seed, s, i)) - 1.0f) * bound;
    }
    return a;
  }

  /// An adapter with every parameter zero (the shape of `create`'s), for
  /// gradient buffers and loading.
  static LoraAdapter zeros_like(const LoraAdapter& other) {
    LoraAdapter a = other;
    std::fill(a.params_.begin(), a.params_.end(), 0.0f);
    return a;
  }

  /// The slots and buffer size an adapter of `cfg` on `model` has.
  static LoraAdapter layout(const model::ModelConfig& model, const LoraConfig& cfg) {
    LoraAdapter a;
    a.model_ = model;
    a.cfg_ = cfg;
    a.index_.assign(std::size_t(model.n_layer) * kNumTargets, -1);
    std::size_t off = 0;
    for (std::uint32_t l = 0; l < model.n_layer; ++l)
      for (const auto& n : kTargetNames) {
        if (!cfg.has(n.target)) continue;
        const ProjShape p = proj_shape(model, n.target);
        LoraSlot s{l, n.target, p.in, p.out, off, off + std::size_t(cfg.rank) * std::size_t(p.in)};
        off = s.b_off + std::size_t(p.out) * std::size_t(cfg.rank);
        a.index_[std::size_t(l) * kNumTargets + std::size_t(n.target)] = int(a.slots_.size());
        a.slots_.push_back(s);
      }
    a.params_.assign(off, 0.0f);
    return a;
  }

  const LoraConfig& config() const { return cfg_; }
  const model::ModelConfig& model() const { return model_; }
  int rank() const { return cfg_.rank; }
  float scale() const { return cfg_.scale(); }

  std::span<const LoraSlot> slots() const { return slots_; }
  /// The slot of (layer, target), or null when the adapter does not target it.
  const LoraSlot* find(std::uint32_t layer, Target t) const {
    if (layer >= model_.n_layer) return nullptr;
    const int i = index_[std::size_t(layer) * kNumTargets + std::size_t(t)];
    return i < 0 ? nullptr : &slots_[std::size_t(i)];
  }

  std::span<float> params() { return params_; }
  std::span<const float> params() const { return params_; }
  float* a(const LoraSlot& s) { return params_.data() + s.a_off; }
  float* b(const LoraSlot& s) { return params_.data() + s.b_off; }
  const float* a(const LoraSlot& s) const { return params_.data() + s.a_off; }
  const float* b(const LoraSlot& s) const { return params_.data() + s.b_off; }

  /// "blk.3.attn_q" — the GGUF base name of a slot's projection.
  static std::string gguf_base(const LoraSlot& s) {
    return "blk." + std::to_string(s.layer) + "." + std::string(names(s.target).gguf);
  }

 private:
  model::ModelConfig model_;
  LoraConfig cfg_;
  std::vector<LoraSlot> slots_;
  std::vector<int> index_;  // layer * kNumTargets + target -> slot, -1 if absent
  std::vector<float> params_;
};

}  // namespace qlora::lora
