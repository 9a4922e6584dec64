// qlora/convert/hf_config.hpp — a Hugging Face checkpoint's config.json and
// generation_config.json, read the way llama.cpp's convert_hf_to_gguf.py
// sees them, so that the GGUF metadata we derive matches what it writes.
//
// The converter does not read config.json raw: it loads it with
// transformers' AutoConfig and uses `to_dict()`, which fills every field the
// file leaves out with the config class's default. Two consequences that
// change bytes on disk (transformers 4.57, the version llama.cpp pins):
//  * LlamaConfig always has head_dim (hidden_size / num_attention_heads when
//    absent), so a llama GGUF always carries attention.key_length and
//    value_length; Qwen2Config has no head_dim field, so a qwen2 GGUF has
//    them only when config.json names one.
//  * Absent values take the class defaults (llama: max_position_embeddings
//    2048, rms_norm_eps 1e-6, rope_theta 10000; qwen2: 32768, 1e-6, 10000;
//    qwen2's num_key_value_heads defaults to 32, not to the head count).
// RoPE settings come from "rope_parameters" (transformers 5) or
// "rope_scaling" (4.x); a theta inside them wins over the top-level one.
// generation_config.json supplies general.sampling.* defaults; a file that
// is not valid JSON is ignored, as the reference converter ignores it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/convert/hf_names.hpp"
#include "qlora/core/status.hpp"
#include "qlora/core/text_file.hpp"

namespace qlora::convert {

/// Parse a JSON file; a syntax error names the file and the byte offset.
inline Result<nlohmann::json> read_json_file(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return text.status();
  try {
    return nlohmann::json::parse(*text);
  } catch (const nlohmann::json::parse_error& e) {
    return Status::corrupt(path + ": not valid JSON (byte " + std::to_string(e.byte) + ")");
  }
}

/// The RoPE block: rope_type plus the parameters the GGUF keys need.
struct HfRope {
  std::string type;             // "" when absent; "type" is accepted for "rope_type"
  nlohmann::json params;        // the whole object, for the optional yarn fields
  std::optional<double> factor;
  double theta = 10000.0;
};

/// What the converter uses from config.json, defaults filled in.
struct HfModelConfig {
  HfArch arch = HfArch::kLlama;
  std::string hf_class;  // architectures[0]
  std::int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0, num_key_value_heads = 0, max_position_embeddings = 0;
  std::optional<std::int64_t> head_dim;  // as to_dict() has it (see the file comment)
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  HfRope rope;

  /// Per-head width the tensors have: head_dim, else hidden / heads.
  std::int64_t head_size() const { return head_dim ? *head_dim : hidden_size / num_attention_heads; }
};

namespace detail {

/// An integer field >= 1 (and < 2^32, since GGUF stores it as u32).
inline Status hf_positive_int(const nlohmann::json& cfg, const std::string& file, const char* key,
                              std::int64_t fallback, std::int64_t& out) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) {
    out = fallback;
    return Status::ok();
  }
  if (!it->is_number_integer())
    return Status::invalid(file + ": field '" + key + "' must be an integer, got " + it->dump());
  const std::int64_t v = it->get<std::int64_t>();
  if (v < 1 || v > std::int64_t(0xFFFFFFFF))
    return Status::invalid(file + ": field '" + key + "' = " + std::to_string(v) + " is out of range");
  out = v;
  return Status::ok();
}

inline Status hf_number(const nlohmann::json& obj, const std::string& file, const std::string& key, double& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::ok();
  if (!it->is_number()) return Status::invalid(file + ": field '" + key + "' must be a number, got " + it->dump());
  out = it->get<double>();
  return Status::ok();
}

}  // namespace detail

/// config.json (already parsed) -> HfModelConfig. Only llama and qwen2
/// decoders are accepted; anything else is refused naming the class.
inline Result<HfModelConfig> parse_hf_config(const nlohmann::json& cfg, const std::string& file) {
  if (!cfg.is_object()) return Status::invalid(file + ": expected a JSON object");
  HfModelConfig c;
  const auto arches = cfg.find("architectures");
  if (arches == cfg.end() || !arches->is_array() || arches->empty() || !(*arches)[0].is_string())
    return Status::invalid(file + ": field 'architectures' must be a non-empty list of class names");
  c.hf_class = (*arches)[0].get<std::string>();
  if (c.hf_class == "LlamaForCausalLM") {
    c.arch = HfArch::kLlama;
  } else if (c.hf_class == "Qwen2ForCausalLM") {
    c.arch = HfArch::kQwen2;
  } else {
    return Status::unsupported(file + ": architecture '" + c.hf_class +
                               "' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM)");
  }
  const bool llama = c.arch == HfArch::kLlama;
  using detail::hf_positive_int;
  QLORA_TRY(hf_positive_int(cfg, file, "vocab_size", llama ? 32000 : 151936, c.vocab_size));
  QLORA_TRY(hf_positive_int(cfg, file, "hidden_size", 4096, c.hidden_size));
  QLORA_TRY(hf_positive_int(cfg, file, "intermediate_size", llama ? 11008 : 22016, c.intermediate_size));
  QLORA_TRY(hf_positive_int(cfg, file, "num_hidden_layers", 32, c.num_hidden_layers));
  QLORA_TRY(hf_positive_int(cfg, file, "num_attention_heads", 32, c.num_attention_heads));
  // Both classes turn an explicit null into "one KV head per query head";
  // only qwen2 has a different default (32) when the key is missing.
  const auto kv = cfg.find("num_key_value_heads");
  const std::int64_t kv_default = (kv == cfg.end() && !llama) ? 32 : c.num_attention_heads;
  QLORA_TRY(hf_positive_int(cfg, file, "num_key_value_heads", kv_default, c.num_key_value_heads));
  QLORA_TRY(hf_positive_int(cfg, file, "max_position_embeddings", llama ? 2048 : 32768, c.max_position_embeddings));
  QLORA_TRY(detail::hf_number(cfg, file, "rms_norm_eps", c.rms_norm_eps));
  if (const auto t = cfg.find("tie_word_embeddings"); t != cfg.end() && !t->is_null()) {
    if (!t->is_boolean()) return Status::invalid(file + ": field 'tie_word_embeddings' must be true or false");
    c.tie_word_embeddings = t->get<bool>();
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return Status::invalid(file + ": num_attention_heads " + std::to_string(c.num_attention_heads) +
                           " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
  if (cfg.contains("head_dim") && !cfg["head_dim"].is_null()) {
    std::int64_t hd = 0;
    QLORA_TRY(hf_positive_int(cfg, file, "head_dim", 0, hd));
    c.head_dim = hd;
  } else {
    // No head_dim: heads split hidden_size evenly (llama's computed head_dim
    // and qwen2's tensor shapes both assume it).
    if (c.hidden_size % c.num_attention_heads != 0)
      return Status::invalid(file + ": hidden_size is not a multiple of num_attention_heads");
    if (llama) c.head_dim = c.hidden_size / c.num_attention_heads;
  }

  // RoPE: rope_parameters, else rope_scaling, else nothing; theta from it or
  // from the top level (the class default 10000 when neither has one).
  const char* rope_key = nullptr;
  for (const char* k : {"rope_parameters", "rope_scaling"})
    if (cfg.contains(k) && !cfg[k].is_null()) {
      rope_key = k;
      break;
    }
  if (rope_key) {
    c.rope.params = cfg[rope_key];
    if (!c.rope.params.is_object()) return Status::invalid(file + ": field '" + rope_key + "' must be an object");
  } else {
    c.rope.params = nlohmann::json::object();
  }
  QLORA_TRY(detail::hf_number(cfg, file, "rope_theta", c.rope.theta));
  const std::string rk = rope_key ? rope_key : "";
  if (const auto t = c.rope.params.find("rope_theta"); t != c.rope.params.end() && !t->is_null()) {
    if (!t->is_number()) return Status::invalid(file + ": field '" + rk + ".rope_theta' must be a number");
    c.rope.theta = t->get<double>();
  }
  for (const char* k : {"rope_type", "type"}) {
    if (const auto t = c.rope.params.find(k); t != c.rope.params.end() && !t->is_null()) {
      if (!t->is_string()) return Status::invalid(file + ": field '" + rk + "." + k + "' must be a string");
      c.rope.type = t->get<std::string>();
      break;
    }
  }
  if (const auto f = c.rope.params.find("factor"); f != c.rope.params.end() && !f->is_null()) {
    if (!f->is_number()) return Status::invalid(file + ": field '" + rk + ".factor' must be a number");
    c.rope.factor = f->get<double>();
  }
  return c;
}

/// general.sampling.* defaults from generation_config.json, in the order the
/// reference writes them. Each is either an i32, an f32 or a string.
struct HfSamplingKey {
  const char* gguf_key;
  const char* json_keys[2];  // first found wins
  enum Kind { kI32, kF32, kString } kind;
};

inline constexpr HfSamplingKey kHfSamplingKeys[] = {
    {"general.sampling.sequence", {"sequence", nullptr}, HfSamplingKey::kString},
    {"general.sampling.top_k", {"top_k", nullptr}, HfSamplingKey::kI32},
    {"general.sampling.top_p", {"top_p", nullptr}, HfSamplingKey::kF32},
    {"general.sampling.min_p", {"min_p", nullptr}, HfSamplingKey::kF32},
    {"general.sampling.xtc_probability", {"xtc_probability", nullptr}, HfSamplingKey::kF32},
    {"general.sampling.xtc_threshold", {"xtc_threshold", nullptr}, HfSamplingKey::kF32},
    {"general.sampling.temp", {"temperature", nullptr}, HfSamplingKey::kF32},
    {"general.sampling.penalty_last_n", {"penalty_last_n", nullptr}, HfSamplingKey::kI32},
    {"general.sampling.penalty_repeat", {"penalty_repeat", "repetition_penalty"}, HfSamplingKey::kF32},
    {"general.sampling.mirostat", {"mirostat", nullptr}, HfSamplingKey::kI32},
    {"general.sampling.mirostat_tau", {"mirostat_tau", nullptr}, HfSamplingKey::kF32},
    {"general.sampling.mirostat_eta", {"mirostat_eta", nullptr}, HfSamplingKey::kF32},
};

/// One general.sampling.* value to write.
struct HfSamplingValue {
  const HfSamplingKey* key;
  nlohmann::json value;
};

/// The sampling defaults a generation_config.json names (empty when the
/// file is absent or not JSON). A value of the wrong kind is an error.
inline Result<std::vector<HfSamplingValue>> hf_sampling_defaults(const nlohmann::json& gen, const std::string& file) {
  std::vector<HfSamplingValue> out;
  if (!gen.is_object()) return out;
  for (const auto& k : kHfSamplingKeys) {
    for (const char* jk : k.json_keys) {
      if (jk == nullptr) break;
      const auto it = gen.find(jk);
      if (it == gen.end()) continue;
      if (it->is_null()) break;  // present but null: the reference writes nothing
      const bool ok = k.kind == HfSamplingKey::kString ? it->is_string()
                      : k.kind == HfSamplingKey::kI32  ? it->is_number_integer()
                                                       : it->is_number();
      if (!ok) return Status::invalid(file + ": field '" + jk + "' has the wrong type: " + it->dump());
      if (k.kind == HfSamplingKey::kI32) {
        const auto v = it->get<std::int64_t>();
        if (v < INT32_MIN || v > INT32_MAX) return Status::invalid(file + ": field '" + jk + "' is out of range");
      }
      out.push_back({&k, *it});
      break;
    }
  }
  return out;
}

}  // namespace qlora::convert
