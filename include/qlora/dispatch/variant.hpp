// qlora/dispatch/variant.hpp — one fixed configuration of the method as a type:
// Variant<Preset, Scheme, Attention, Rank>.
//
// The paper's runs are a handful of (model, quantization, attention, LoRA
// rank) combinations. A variant app (cmake/QloraVariant.cmake) bakes one of
// them in as template arguments, so that what a build ships is a finite,
// explicit list, and a mismatch is caught as early as it can be:
//   - at compile time: the Attention policy must be the preset's (a GQA preset
//     under Attention<MHA> does not compile), the rank must be one of the
//     LoRARank instances the trainer specializes (16, 32), the scheme one of
//     QuantScheme's;
//   - at load time: check_model() compares the GGUF's configuration with the
//     preset field by field and names the first difference.
// The preset's sizes are compile-time constants (PresetShape) taken from the
// constexpr presets in model/model_config.hpp — one source for both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "qlora/core/status.hpp"
#include "qlora/lora/lora_config.hpp"
#include "qlora/model/attention_policy.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/quant/scheme.hpp"

namespace qlora::dispatch {

/// Compile-time tags for the presets (names as the CMake function takes them).
namespace preset {
#define QLORA_PRESET_TAG(Tag, id, fn)                                               \
  struct Tag {                                                                      \
    static constexpr std::string_view kId = id;                                     \
    static constexpr model::ModelConfig config() { return model::presets::fn(); } \
  };
QLORA_PRESET_TAG(Swallow8B, "swallow8b", swallow_8b)
QLORA_PRESET_TAG(Elyza8B, "elyza8b", elyza_jp_8b)
QLORA_PRESET_TAG(Tanuki8B, "tanuki8b", tanuki_8b)
QLORA_PRESET_TAG(Qwen25_7B, "qwen25-7b", qwen25_7b)
QLORA_PRESET_TAG(Qwen25_14B, "qwen25-14b", qwen25_14b)
QLORA_PRESET_TAG(Qwen25_05B, "qwen25-0.5b", qwen25_05b)
QLORA_PRESET_TAG(Smollm2_135M, "smollm2-135m", smollm2_135m)
QLORA_PRESET_TAG(Tiny, "tiny", tiny)
#undef QLORA_PRESET_TAG
}  // namespace preset

/// A preset's sizes as constants (evaluated from the constexpr preset).
template <class P>
struct PresetShape {
  static constexpr std::uint32_t kLayers = P::config().n_layer;
  static constexpr std::uint32_t kEmbd = P::config().n_embd;
  static constexpr std::uint32_t kHeads = P::config().n_head;
  static constexpr std::uint32_t kKvHeads = P::config().n_head_kv;
  static constexpr std::uint32_t kHeadDim = P::config().head_dim;
  static constexpr std::uint32_t kFf = P::config().n_ff;
  static constexpr std::uint32_t kVocab = P::config().n_vocab;
  static constexpr bool kGqa = kKvHeads < kHeads;
  static_assert(kHeads % kKvHeads == 0, "query heads must be a multiple of KV heads");
};

/// What the commands of a variant app are pinned to.
template <class Preset, class Scheme, class Attn, int Rank>
struct Variant {
  using preset_type = Preset;
  using scheme = quant::QuantScheme<Scheme>;
  using attention = model::Attention<Attn>;
  using rank = lora::LoRARank<Rank>;
  using shape = PresetShape<Preset>;

  static_assert(std::is_same_v<Attn, model::attn::GQA> == shape::kGqa,
                "the Attention policy must match the preset: GQA for presets with fewer KV heads than query heads, "
                "MHA otherwise");
  static_assert(Rank == 16 || Rank == 32, "variant apps use the compiled LoRARank instances: 16 or 32");
  static_assert(std::is_same_v<Scheme, quant::scheme::NF4> || std::is_same_v<Scheme, quant::scheme::Q4_K_M> ||
                    std::is_same_v<Scheme, quant::scheme::Q8_0>,
                "variant apps take the paper's schemes: NF4, Q4_K_M or Q8_0");

  static constexpr int kRank = rank::kRank;
  static constexpr bool kNf4 = std::is_same_v<Scheme, quant::scheme::NF4>;
  static constexpr std::string_view kQuant = scheme::kName;
  static constexpr std::string_view kAttention = attention::kName;

  /// "smollm2-135m q4_k_m gqa r32" — the app's identity in messages.
  static std::string name() {
    return std::string(Preset::kId) + " " + std::string(kQuant) + " " + std::string(kAttention) + " r" +
           std::to_string(kRank);
  }

  /// Multi-line description for `info`.
  static std::string describe() {
    const model::ModelConfig c = Preset::config();
    std::string s;
    s += "variant:   " + name() + "\n";
    s += "model:     " + c.name + " (" + c.arch + "), preset '" + std::string(Preset::kId) + "'\n";
    s += "shape:     " + std::to_string(shape::kLayers) + " layers, embedding " + std::to_string(shape::kEmbd) +
         ", " + std::to_string(shape::kHeads) + " query / " + std::to_string(shape::kKvHeads) +
         " KV heads of " + std::to_string(shape::kHeadDim) + ", FFN " + std::to_string(shape::kFf) + ", vocab " +
         std::to_string(shape::kVocab) + "\n";
    s += "attention: Attention<" + std::string(shape::kGqa ? "GQA" : "MHA") + ">" +
         (shape::kGqa ? " (" + std::to_string(shape::kHeads / shape::kKvHeads) + " query heads per KV head)" : "") +
         "\n";
    s += "quant:     QuantScheme<" + std::string(kQuant) + ">" +
         (kNf4 ? " (training base: NF4 with double quantization; merge writes f16)"
               : " (training base: the file as stored; quantize and merge write " + std::string(kQuant) + ")") +
         "\n";
    s += "lora:      LoRARank<" + std::to_string(kRank) + ">\n";
    return s;
  }

  /// The GGUF's configuration against the preset; the first differing field
  /// is named with both values.
  static Status check_model(const model::ModelConfig& m, const std::string& file) {
    QLORA_TRY(model::check_shape(m, Preset::config(), file, "this app's preset '" + std::string(Preset::kId) + "'"));
    return attention::check(m);
  }
};

}  // namespace qlora::dispatch
