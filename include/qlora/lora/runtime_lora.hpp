// qlora/lora/runtime_lora.hpp — a LoRA adapter applied while decoding,
// without merging it into the base: y = W·x + (alpha/r)·B·(A·x) on every
// projection the adapter targets, in fp32 (lora_product.hpp's forward, the
// training code's own). This is what `llama-server --lora` and Ollama's
// ADAPTER do: one base file serves with or without an adapter, and an adapter
// can be tried (qlora serve / generate / answer / nll --lora) before a merge.
// The ranks 16 and 32 run their LoRARank<R> instantiation.
#pragma once

#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/lora/lora_product.hpp"
#include "qlora/model/decoder.hpp"

namespace qlora::lora {

static_assert(int(model::Projection::kQ) == int(Target::kQ) && int(model::Projection::kDown) == int(Target::kDown),
              "model::Projection and lora::Target share one order");

class RuntimeLora final : public model::ProjectionAddend {
 public:
  /// `adapter` must match the decoder's model (read_lora_adapter checks
  /// shapes against it) and outlive this object.
  RuntimeLora(const LoraAdapter& adapter, ThreadPool& pool) : a_(adapter), pool_(pool) {}

  Status add(std::uint32_t layer, model::Projection p, const float* x, std::int64_t n, float* y) const override {
    const LoraSlot* s = a_.find(layer, Target(int(p)));
    if (s == nullptr) return Status::ok();
    const LoraDims d{n, s->in, s->out, a_.rank(), a_.scale()};
    u_.resize(std::size_t(n) * std::size_t(d.rank));
    dispatch_rank(d.rank, [&]<int R>() { lora_forward<R>(d, x, a_.a(*s), a_.b(*s), u_.data(), y, pool_); });
    return Status::ok();
  }

 private:
  const LoraAdapter& a_;
  ThreadPool& pool_;
  mutable std::vector<float> u_;  // x·A^T, scratch (one forward at a time, as the decoder)
};

}  // namespace qlora::lora
