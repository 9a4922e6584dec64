// qlora/lora/merge.hpp — fold an adapter into its base weight:
//
//     W' = W + (alpha / r) · B · A          W: out x in (GGUF rows = outputs)
//
// Which W: QLoRA trains the adapter against the NF4-dequantized base, so the
// merge has two candidate targets (a known pitfall of QLoRA merging):
//   * kOriginal — the base weights as the file stores them (what most merge
//     scripts do: load the 16-bit model, add B·A);
//   * kNf4 — the NF4 (double-quantized) round trip of those weights, i.e.
//     exactly the weights the adapter was trained against
//     (train::FrozenMatrix::nf4_round_trip).
// convert/merge_gguf.hpp writes either as a GGUF; docs/benchmarks.md reports
// the NLL difference between them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "qlora/core/status.hpp"
#include "qlora/cpu/gemm_f32.hpp"
#include "qlora/lora/adapter.hpp"

namespace qlora::lora {

enum class MergeTarget { kOriginal, kNf4 };

inline Result<MergeTarget> parse_merge_target(std::string_view s) {
  if (s == "original") return MergeTarget::kOriginal;
  if (s == "nf4") return MergeTarget::kNf4;
  return Status::invalid("unknown merge target '" + std::string(s) + "' (valid: nf4, original)");
}

/// W (rows x cols, row-major) += scale · B · A for the adapter slot `s`.
inline Status add_lora_delta(const LoraAdapter& ad, const LoraSlot& s, float* W, std::int64_t rows, std::int64_t cols) {
  if (rows != s.out || cols != s.in)
    return Status::invalid("merge: weight is " + std::to_string(rows) + " x " + std::to_string(cols) +
                           ", the adapter's " + LoraAdapter::gguf_base(s) + " expects " + std::to_string(s.out) +
                           " x " + std::to_string(s.in));
  cpu::gemm_f32(cpu::Op::kN, cpu::Op::kN, rows, cols, ad.rank(), ad.scale(), ad.b(s), ad.rank(), ad.a(s), cols, 1.0f,
                W, cols);
  return Status::ok();
}

}  // namespace qlora::lora
