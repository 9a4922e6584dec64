// qlora/quant/scheme.hpp — quantization *schemes*: recipes that choose a block
// format per tensor, as llama.cpp's llama_tensor_get_type does.
//
// A scheme is not a block type. QuantScheme<scheme::Q4_K_M> emits Q4_K for
// most weights, Q6_K for some attn_v / ffn_down / output tensors, and falls
// back to Q5_0, Q8_0 or F16 when a row length is not a multiple of 256 (so a
// "Q4_K_M" SmolLM2 file is mostly Q5_0). To produce files byte-identical to
// llama-quantize, the recipe must see tensors in llama.cpp's order (see
// llama_tensor_order()) because its counters (i_attention_wv, i_ffn_down)
// advance as tensors are visited.
//
// Each QuantScheme<S> provides kName, kFileType (general.file_type),
// kDefaultType, and choose(tensor, model, state) -> ggml type id. NF4 is the
// bitsandbytes recipe: every linear projection of a decoder block in NF4, the
// rest kept in 16-bit; it produces safetensors, not GGUF.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/quant/format.hpp"
#include "qlora/quant/type_info.hpp"

namespace qlora::quant {

namespace scheme {
struct Q4_K_M {};
struct Q8_0 {};
struct F16 {};
struct NF4 {};
}  // namespace scheme

/// What a recipe needs to know about one tensor.
struct TensorFacts {
  std::string_view name;        // GGUF name, e.g. "blk.3.attn_v.weight"
  int n_dims = 0;
  std::int64_t ne[4] = {1, 1, 1, 1};
  std::uint32_t type = 0;       // current ggml type id
};

/// What a recipe needs to know about the model (from GGUF metadata).
struct ModelFacts {
  std::string arch = "llama";   // general.architecture
  std::uint32_t n_layer = 0;    // {arch}.block_count
  std::uint32_t n_head = 0;
  std::uint32_t n_head_kv = 0;
  std::uint32_t n_expert = 0;
};

/// Coarse tensor roles, as the recipes see them (substring tests follow
/// llama.cpp's tensor_get_category, including its order of checks).
enum class TensorRole { kTokenEmbd, kOutput, kAttnQ, kAttnK, kAttnV, kAttnQkv, kAttnKvB, kAttnOutput,
                        kFfnUp, kFfnGate, kFfnDown, kOther };

inline TensorRole tensor_role(std::string_view name) {
  auto has = [&](std::string_view s) { return name.find(s) != std::string_view::npos; };
  if (name == "output.weight") return TensorRole::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return TensorRole::kTokenEmbd;
  if (has("attn_qkv.weight")) return TensorRole::kAttnQkv;
  if (has("attn_kv_b.weight")) return TensorRole::kAttnKvB;
  if (has("attn_v.weight")) return TensorRole::kAttnV;
  if (has("attn_k.weight")) return TensorRole::kAttnK;
  if (has("attn_q.weight")) return TensorRole::kAttnQ;
  if (has("attn_output.weight")) return TensorRole::kAttnOutput;
  if (has("ffn_up")) return TensorRole::kFfnUp;
  if (has("ffn_gate")) return TensorRole::kFfnGate;
  if (has("ffn_down")) return TensorRole::kFfnDown;
  return TensorRole::kOther;
}

inline bool is_attn_v_like(TensorRole r) {
  return r == TensorRole::kAttnV || r == TensorRole::kAttnQkv || r == TensorRole::kAttnKvB;
}

/// Whether a tensor is a quantization candidate at all: 2-D or more, named
/// "*weight", not a norm, not an expert router (llama.cpp's
/// tensor_allows_quantization, restricted to the dense decoders we support).
inline bool tensor_is_quantizable(const TensorFacts& t) {
  const std::string_view n = t.name;
  if (t.n_dims < 2) return false;
  if (n.size() < 6 || n.substr(n.size() - 6) != "weight") return false;
  for (std::string_view skip : {"_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
                                "per_layer_model_proj", "ssm_conv1d", "attn_rel_b.weight", "position_embd"})
    if (n.find(skip) != std::string_view::npos) return false;
  return n != "token_types.weight";
}

/// Recipe state that advances as tensors are visited in llama.cpp's order.
struct RecipeState {
  int n_attention_wv = 0;       // attn_v-like tensors in the model
  int i_attention_wv = 0;
  int i_ffn_down = 0;
  int n_fallback = 0;           // tensors whose row length forced a fallback type
  bool has_tied_embeddings = true;
  /// One record per tensor whose rows forced a fallback type.
  struct Fallback {
    std::string tensor;
    std::uint32_t wanted = 0, used = 0;
  };
  std::vector<Fallback> fallbacks;

  /// Count what the recipe needs before the first choice.
  void init(const std::vector<TensorFacts>& tensors) {
    for (const auto& t : tensors) {
      const TensorRole r = tensor_role(t.name);
      if (is_attn_v_like(r)) ++n_attention_wv;
      if (r == TensorRole::kOutput) has_tied_embeddings = false;
    }
  }
};

/// llama.cpp's use_more_bits: the first and last eighth of the layers, and
/// every third layer in between, get the bigger type.
constexpr bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

/// When a row is not a whole number of blocks of `target`, the type llama.cpp
/// uses instead (Q4_K -> Q5_0, Q6_K -> Q8_0, then F16 when even 32 fails).
/// Returns 0xFFFFFFFF when no fallback exists (the caller reports an error).
inline std::uint32_t fallback_type(std::uint32_t target, std::int64_t ncols, RecipeState& st, std::string_view name) {
  const auto info = ggml_type_info(target);
  if (!info || ncols % info->block_elems == 0) return target;
  std::uint32_t r;
  switch (GgmlType(target)) {
    case GgmlType::Q4_K: r = std::uint32_t(GgmlType::Q5_0); break;
    case GgmlType::Q6_K: r = std::uint32_t(GgmlType::Q8_0); break;
    default: return 0xFFFFFFFFu;
  }
  ++st.n_fallback;
  if (ncols % ggml_type_info(r)->block_elems != 0) r = std::uint32_t(GgmlType::F16);
  st.fallbacks.push_back({std::string(name), target, r});
  return r;
}

template <class S>
struct QuantScheme;  // no definition: unknown scheme = compile error

template <>
struct QuantScheme<scheme::Q4_K_M> {
  static constexpr std::string_view kName = "q4_k_m";
  static constexpr std::uint32_t kFileType = 15;  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  static constexpr std::uint32_t kDefaultType = std::uint32_t(GgmlType::Q4_K);

  static std::uint32_t choose(const TensorFacts& t, const ModelFacts& m, RecipeState& st) {
    if (!tensor_is_quantizable(t)) return t.type;
    const TensorRole role = tensor_role(t.name);
    const bool is_70b = m.arch == "llama" && m.n_layer == 80 && m.n_head != m.n_head_kv;
    std::uint32_t type = kDefaultType;
    if (role == TensorRole::kOutput || (st.has_tied_embeddings && role == TensorRole::kTokenEmbd)) {
      // The output head is the most sensitive tensor: Q6_K, or Q8_0 when its
      // rows do not split into 256-blocks (and always for Falcon).
      type = (m.arch == "falcon" || t.ne[0] % kQK_K != 0) ? std::uint32_t(GgmlType::Q8_0)
                                                           : std::uint32_t(GgmlType::Q6_K);
    } else if (role == TensorRole::kTokenEmbd) {
      // untied embedding: stays at the default type
    } else if (is_attn_v_like(role)) {
      if (use_more_bits(st.i_attention_wv, st.n_attention_wv)) type = std::uint32_t(GgmlType::Q6_K);
      if (is_70b && type == std::uint32_t(GgmlType::Q4_K)) type = 13;  // Q5_K: not produced by qlora
      if (m.n_expert == 8) type = std::uint32_t(GgmlType::Q8_0);
      ++st.i_attention_wv;
    } else if (role == TensorRole::kAttnK) {
      if (m.n_expert == 8) type = std::uint32_t(GgmlType::Q8_0);
    } else if (role == TensorRole::kFfnDown) {
      int i_layer = st.i_ffn_down;
      const int n_layer = int(m.n_layer);
      if (m.n_expert > 1) std::sscanf(std::string(t.name).c_str(), "blk.%d.", &i_layer);
      if (m.arch == "falcon") {
        type = i_layer < n_layer / 16 ? std::uint32_t(GgmlType::Q6_K)
               : use_more_bits(i_layer, n_layer) ? 13u /* Q5_K */ : std::uint32_t(GgmlType::Q4_K);
      } else if (use_more_bits(i_layer, n_layer)) {
        type = std::uint32_t(GgmlType::Q6_K);
      }
      ++st.i_ffn_down;
    } else if (role == TensorRole::kAttnOutput) {
      if (m.arch != "falcon" && m.n_expert == 8) type = 13;  // Q5_K
    } else if (role == TensorRole::kAttnQkv) {
      type = 13;  // Q5_K (unreachable for dense llama/qwen2: attn_qkv is attn_v-like above)
    }
    return fallback_type(type, t.ne[0], st, t.name);
  }
};

template <>
struct QuantScheme<scheme::Q8_0> {
  static constexpr std::string_view kName = "q8_0";
  static constexpr std::uint32_t kFileType = 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
  static constexpr std::uint32_t kDefaultType = std::uint32_t(GgmlType::Q8_0);

  static std::uint32_t choose(const TensorFacts& t, const ModelFacts&, RecipeState& st) {
    if (!tensor_is_quantizable(t)) return t.type;
    const TensorRole role = tensor_role(t.name);
    if (is_attn_v_like(role)) ++st.i_attention_wv;
    if (role == TensorRole::kFfnDown) ++st.i_ffn_down;
    return fallback_type(kDefaultType, t.ne[0], st, t.name);  // no fallback for Q8_0: error upstream
  }
};

template <>
struct QuantScheme<scheme::F16> {
  static constexpr std::string_view kName = "f16";
  static constexpr std::uint32_t kFileType = 1;  // LLAMA_FTYPE_MOSTLY_F16
  static constexpr std::uint32_t kDefaultType = std::uint32_t(GgmlType::F16);

  static std::uint32_t choose(const TensorFacts& t, const ModelFacts&, RecipeState&) {
    return tensor_is_quantizable(t) ? kDefaultType : t.type;
  }
};

/// bitsandbytes' recipe (transformers' load_in_4bit): the seven projections of
/// every decoder block in NF4; embeddings, output head and norms unquantized.
/// Returns kNoGgmlType for NF4 tensors (NF4 has no GGUF id), else BF16/F32.
template <>
struct QuantScheme<scheme::NF4> {
  static constexpr std::string_view kName = "nf4";
  static constexpr std::uint32_t kFileType = 0xFFFFFFFFu;  // not a GGUF file type
  static constexpr std::uint32_t kDefaultType = kNoGgmlType;

  static std::uint32_t choose(const TensorFacts& t, const ModelFacts&, RecipeState&) {
    switch (tensor_role(t.name)) {
      case TensorRole::kAttnQ: case TensorRole::kAttnK: case TensorRole::kAttnV: case TensorRole::kAttnOutput:
      case TensorRole::kFfnUp: case TensorRole::kFfnGate: case TensorRole::kFfnDown:
        if (t.n_dims >= 2) return kNoGgmlType;
        [[fallthrough]];
      default:
        return t.n_dims >= 2 ? std::uint32_t(GgmlType::BF16) : std::uint32_t(GgmlType::F32);
    }
  }
};

/// Sort key that reproduces llama.cpp's tensor order (weight_name_comparer):
/// tensors outside "blk.N." first, by name; then by layer number; then by name.
inline bool llama_tensor_order(const std::string& a, const std::string& b) {
  // sscanf semantics on purpose (a leading "blk.<int>" is enough), so that
  // odd names sort exactly as llama.cpp sorts them.
  int la = -1, lb = -1;
  std::sscanf(a.c_str(), "blk.%d.", &la);
  std::sscanf(b.c_str(), "blk.%d.", &lb);
  if (la != lb) return la < lb;
  return a < b;
}

}  // namespace qlora::quant
