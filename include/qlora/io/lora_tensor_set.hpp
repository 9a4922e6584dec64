// qlora/io/lora_tensor_set.hpp — the checks every adapter reader runs on a
// file's tensor list before it copies a single value.
//
// A LoraAdapter has one rank and, for each target it has, a pair of matrices
// in EVERY layer. Adapter files can say anything: a tensor for layer 40 of a
// 30-layer model, an A without its B, q_proj with rank 8 next to v_proj with
// rank 16, a matrix whose "in" side does not match the model's projection. The
// set below takes the identified tensors of one file (in torch orientation:
// A [r, in], B [out, r]), and on finish() says which targets and which rank the
// adapter has, or names the file and the first tensor that does not fit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/lora_names.hpp"
#include "qlora/lora/lora_config.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::io {

/// What a file's tensors amount to.
struct LoraTensorLayout {
  int rank = 0;
  lora::TargetMask targets = 0;
  /// index[(layer * kNumTargets + target) * 2 + matrix] = the caller's tensor
  /// index, for every present (layer, target, matrix).
  std::vector<std::size_t> index;
  std::size_t at(std::uint32_t layer, lora::Target t, LoraMatrix m) const {
    return index[(std::size_t(layer) * lora::kNumTargets + std::size_t(t)) * 2 + std::size_t(m)];
  }
};

class LoraTensorSet {
 public:
  /// `file` prefixes every error; `name_of` spells a tensor the file lacks.
  LoraTensorSet(const model::ModelConfig& model, std::string file,
                std::function<std::string(std::uint32_t, lora::Target, LoraMatrix)> name_of)
      : model_(model), file_(std::move(file)), name_of_(std::move(name_of)),
        seen_(std::size_t(model.n_layer) * lora::kNumTargets * 2, kAbsent) {}

  /// Record tensor `index` of the file, called `name`, with torch shape
  /// [rows, cols]. Checks the layer and the projection side of the shape now
  /// (the rank side once all tensors are in).
  Status add(const LoraTensorId& id, const std::string& name, std::int64_t rows, std::int64_t cols, std::size_t index) {
    if (id.layer >= model_.n_layer)
      return fail(name, "layer " + std::to_string(id.layer) + " does not exist: the model has " +
                            std::to_string(model_.n_layer) + " layers");
    std::size_t& slot = seen_[key(id.layer, id.target, id.matrix)];
    if (slot != kAbsent) return fail(name, "appears twice");
    const lora::ProjShape p = lora::proj_shape(model_, id.target);
    const bool is_a = id.matrix == LoraMatrix::kA;
    const std::int64_t fixed = is_a ? cols : rows, want = is_a ? p.in : p.out;
    if (fixed != want)
      return fail(name, "has shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "] but " +
                            std::string(lora::names(id.target).peft) + " of this model needs " +
                            (is_a ? "[r, " + std::to_string(p.in) + "]" : "[" + std::to_string(p.out) + ", r]"));
    ranks_.push_back({name, is_a ? rows : cols});
    slot = index;
    return Status::ok();
  }

  /// Check completeness and one rank (`expected_rank`, or whatever the first
  /// tensor says when 0) and return the layout.
  Result<LoraTensorLayout> finish(int expected_rank = 0) const {
    LoraTensorLayout out;
    if (ranks_.empty()) return Status::invalid(file_ + ": holds no LoRA tensors");
    out.rank = expected_rank > 0 ? expected_rank : int(ranks_.front().rank);
    for (const auto& r : ranks_)
      if (r.rank != out.rank)
        return fail(r.name, "has rank " + std::to_string(r.rank) + " but " +
                                (expected_rank > 0 ? "the config says r = " : "the first tensor has rank ") +
                                std::to_string(out.rank) + " (one rank per adapter is supported)");
    if (out.rank < 1 || out.rank > 256)
      return Status::unsupported(file_ + ": rank " + std::to_string(out.rank) + " is outside 1..256");
    for (std::uint32_t l = 0; l < model_.n_layer; ++l)
      for (const auto& n : lora::kTargetNames)
        for (LoraMatrix m : {LoraMatrix::kA, LoraMatrix::kB})
          if (seen_[key(l, n.target, m)] != kAbsent) out.targets |= lora::bit(n.target);
    // A target present anywhere must be complete everywhere: adapters on a
    // subset of layers are not something a LoraAdapter can hold.
    for (std::uint32_t l = 0; l < model_.n_layer; ++l)
      for (const auto& n : lora::kTargetNames)
        for (LoraMatrix m : {LoraMatrix::kA, LoraMatrix::kB})
          if ((out.targets & lora::bit(n.target)) && seen_[key(l, n.target, m)] == kAbsent)
            return Status::invalid(file_ + ": missing tensor '" + name_of_(l, n.target, m) + "' (the file has " +
                                   std::string(n.peft) + " adapters in other layers or the other matrix)");
    out.index = seen_;
    return out;
  }

 private:
  static constexpr std::size_t kAbsent = ~std::size_t{0};
  struct RankSeen {
    std::string name;
    std::int64_t rank;
  };

  static std::size_t key(std::uint32_t layer, lora::Target t, LoraMatrix m) {
    return (std::size_t(layer) * lora::kNumTargets + std::size_t(t)) * 2 + std::size_t(m);
  }
  Status fail(const std::string& tensor, const std::string& what) const {
    return Status::invalid(file_ + ": tensor '" + tensor + "' " + what);
  }

  const model::ModelConfig& model_;
  std::string file_;
  std::function<std::string(std::uint32_t, lora::Target, LoraMatrix)> name_of_;
  std::vector<std::size_t> seen_;
  std::vector<RankSeen> ranks_;
};

}  // namespace qlora::io
