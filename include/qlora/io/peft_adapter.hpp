// qlora/io/peft_adapter.hpp — read and write a Hugging Face PEFT LoRA adapter
// directory, as PeftModel.save_pretrained writes it and
// PeftModel.from_pretrained / llama.cpp's convert_lora_to_gguf.py read it:
//
//   DIR/adapter_config.json        json.dumps(config, indent=2, sort_keys=True),
//                                  no trailing newline (PEFT 0.21.2)
//   DIR/adapter_model.safetensors  safetensors.torch.save_file(state_dict,
//                                  metadata={"format": "pt"})
//
// The state dict holds, per layer and target, lora_A.weight [r, in] and
// lora_B.weight [out, r] (names: io/lora_names.hpp) in fp32 by default — PEFT
// keeps adapter weights in fp32 even on a bf16 model — or F16/BF16 on request
// (rounded to nearest even, as torch's .to() does). The bytes equal what the
// Python library writes for the same tensors (tests/io/peft_adapter_test.cpp
// compares with files made by tools/gen_peft_golden.py).
//
// Coordinates: our LoraAdapter lives in the GGUF model's coordinates; PEFT
// lives in the HF model's. They differ only for arch "llama", where llama.cpp's
// converter permuted the output rows of q_proj/k_proj: B's rows of those two
// targets are un-permuted on write and permuted back on read
// (convert/hf_names.hpp). A's rows are rank directions and A's columns are the
// unpermuted input features, so A never changes.
//
// Reading adapters trained elsewhere is a real use, so the reader accepts what
// PEFT writes for a plain LoRA on a llama/qwen2 causal LM and refuses, with
// the field named, everything a LoraAdapter cannot represent: per-module ranks
// or alphas (rank_pattern/alpha_pattern), DoRA, trained biases,
// modules_to_save, subsets of layers, and the rarer variants. use_rslora is
// supported by folding its scale into alpha: rsLoRA scales by
// lora_alpha / sqrt(r), which equals the plain alpha / r of
// alpha' = lora_alpha * sqrt(r), so the adapter reads with alpha' and the
// reader reports that it did.
#pragma once

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/convert/hf_names.hpp"
#include "qlora/core/half.hpp"
#include "qlora/core/json_number.hpp"
#include "qlora/core/status.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/io/lora_names.hpp"
#include "qlora/io/lora_tensor_set.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::io {

inline constexpr std::string_view kPeftConfigFile = "adapter_config.json";
inline constexpr std::string_view kPeftWeightsFile = "adapter_model.safetensors";
/// Written as "peft_version": the release whose adapter_config.json keys and
/// values we reproduce (tests/data/peft/ holds its output).
inline constexpr std::string_view kPeftVersion = "0.21.2";

struct PeftWriteOptions {
  StDtype dtype = StDtype::F32;         // F32, F16 or BF16
  std::string base_model_name_or_path;  // empty: JSON null (PEFT's default)
};

/// The adapter_config.json PEFT 0.21.2's LoraConfig.save_pretrained writes
/// for `cfg` (task CAUSAL_LM, inference_mode true as after save_pretrained).
/// Keys are sorted on output (nlohmann's object is a std::map), as
/// json.dumps(sort_keys=True) sorts them.
inline nlohmann::json peft_adapter_config(const lora::LoraConfig& cfg, const PeftWriteOptions& opt = {}) {
  using nlohmann::json;
  json c = json::object();
  // PEFT stores target_modules as a set (random order per process); we write
  // PEFT's module order, which every reader treats as a set anyway.
  json targets = json::array();
  for (const auto& n : lora::kTargetNames)
    if (cfg.has(n.target)) targets.push_back(std::string(n.peft));
  // lora_alpha is an int in PEFT's dataclass; a user's 16 is written as 16.
  json alpha = std::floor(cfg.alpha) == cfg.alpha && std::fabs(cfg.alpha) < 1e9f ? json(std::int64_t(cfg.alpha))
                                                                                 : json(shortest_double(cfg.alpha));
  c["alora_invocation_tokens"] = nullptr;
  c["alpha_pattern"] = json::object();
  c["arrow_config"] = nullptr;
  c["auto_mapping"] = nullptr;
  c["base_model_name_or_path"] = opt.base_model_name_or_path.empty() ? json(nullptr) : json(opt.base_model_name_or_path);
  c["bias"] = "none";
  c["corda_config"] = nullptr;
  c["ensure_weight_tying"] = false;
  c["eva_config"] = nullptr;
  c["exclude_modules"] = nullptr;
  c["fan_in_fan_out"] = false;
  c["inference_mode"] = true;
  c["init_lora_weights"] = true;
  c["kasa_config"] = nullptr;
  c["layer_replication"] = nullptr;
  c["layers_pattern"] = nullptr;
  c["layers_to_transform"] = nullptr;
  c["loftq_config"] = json::object();
  c["lora_alpha"] = alpha;
  c["lora_bias"] = false;
  c["lora_dropout"] = shortest_double(cfg.dropout);
  c["lora_ga_config"] = nullptr;
  c["megatron_config"] = nullptr;
  c["megatron_core"] = "megatron.core";
  c["modules_to_save"] = nullptr;
  c["monteclora_config"] = nullptr;
  c["peft_type"] = "LORA";
  c["peft_version"] = std::string(kPeftVersion);
  c["qalora_group_size"] = 16;
  c["r"] = cfg.rank;
  c["rank_pattern"] = json::object();
  c["revision"] = nullptr;
  c["target_modules"] = targets;
  c["target_parameters"] = nullptr;
  c["task_type"] = "CAUSAL_LM";
  c["trainable_token_indices"] = nullptr;
  c["use_bdlora"] = nullptr;
  c["use_dora"] = false;
  c["use_qalora"] = false;
  c["use_rslora"] = false;
  c["velora_config"] = nullptr;
  return c;
}

/// adapter_config.json text: indent 2, sorted keys, non-ASCII escaped, no
/// trailing newline — json.dumps(indent=2, sort_keys=True) byte for byte.
inline std::string peft_adapter_config_text(const lora::LoraConfig& cfg, const PeftWriteOptions& opt = {}) {
  return peft_adapter_config(cfg, opt).dump(2, ' ', /*ensure_ascii=*/true);
}

namespace detail {

/// Does this model's GGUF hold q/k rows in llama.cpp's permuted order?
inline Result<bool> permutes_qk(const model::ModelConfig& m) {
  auto arch = convert::hf_arch(m.arch);
  if (!arch) return arch.status();
  return convert::hf_permutes_qk(*arch);
}

/// Heads that own the output rows of a permuted target (Q: n_head, K: n_head_kv).
inline std::int64_t qk_heads(const model::ModelConfig& m, lora::Target t) {
  return t == lora::Target::kQ ? m.n_head : m.n_head_kv;
}

inline bool is_qk(lora::Target t) { return t == lora::Target::kQ || t == lora::Target::kK; }

/// fp32 values stored as `dtype` (F32 as is; F16/BF16 rounded to nearest even).
inline Result<std::vector<std::byte>> encode_floats(std::span<const float> v, StDtype dtype, const std::string& name) {
  std::vector<std::byte> out;
  if (dtype == StDtype::F32) {
    out.resize(v.size_bytes());
    if (!v.empty()) std::memcpy(out.data(), v.data(), v.size_bytes());
    return out;
  }
  if (dtype != StDtype::F16 && dtype != StDtype::BF16)
    return Status::invalid("tensor '" + name + "': adapter weights are written as F32, F16 or BF16, not " +
                           std::string(st_dtype_info(dtype).name));
  out.resize(v.size() * 2);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::uint16_t h = dtype == StDtype::F16 ? f32_to_fp16(v[i]) : f32_to_bf16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

}  // namespace detail

/// The adapter's state dict as PEFT saves it: HF coordinates, torch shapes.
inline Result<std::vector<StTensor>> peft_tensors(const lora::LoraAdapter& a, StDtype dtype = StDtype::F32) {
  auto permute = detail::permutes_qk(a.model());
  if (!permute) return permute.status();
  std::vector<StTensor> out;
  out.reserve(a.slots().size() * 2);
  std::vector<float> hf;
  for (const lora::LoraSlot& s : a.slots()) {
    const std::int64_t r = a.rank();
    const std::string an = peft_lora_name(s.layer, s.target, LoraMatrix::kA);
    auto ab = detail::encode_floats({a.a(s), std::size_t(r * s.in)}, dtype, an);
    if (!ab) return ab.status();
    out.push_back({an, dtype, {r, s.in}, std::move(*ab)});

    const std::string bn = peft_lora_name(s.layer, s.target, LoraMatrix::kB);
    std::span<const float> b(a.b(s), std::size_t(s.out * r));
    if (*permute && detail::is_qk(s.target)) {
      hf.resize(b.size());
      QLORA_TRY(convert::unpermute_llama_qk(b, std::span<float>(hf), s.out, detail::qk_heads(a.model(), s.target))
                    .with_context("tensor '" + bn + "'"));
      b = hf;
    }
    auto bb = detail::encode_floats(b, dtype, bn);
    if (!bb) return bb.status();
    out.push_back({bn, dtype, {s.out, r}, std::move(*bb)});
  }
  return out;
}

/// adapter_model.safetensors as bytes (safetensors.torch.save_file's layout).
inline Result<std::vector<std::byte>> peft_safetensors_bytes(const lora::LoraAdapter& a, StDtype dtype = StDtype::F32) {
  auto tensors = peft_tensors(a, dtype);
  if (!tensors) return tensors.status();
  std::vector<StTensorView> views;
  for (const auto& t : *tensors) views.push_back(t.view());
  return serialize_safetensors(std::move(views), std::map<std::string, std::string>{{"format", "pt"}});
}

/// Write DIR/adapter_config.json and DIR/adapter_model.safetensors (DIR is
/// created if needed; each file is replaced atomically).
inline Status write_peft_adapter(const lora::LoraAdapter& a, const std::string& dir, const PeftWriteOptions& opt = {}) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io(dir + ": cannot create directory: " + ec.message());
  auto tensors = peft_tensors(a, opt.dtype);
  if (!tensors) return tensors.status().with_context(dir);
  std::vector<StTensorView> views;
  for (const auto& t : *tensors) views.push_back(t.view());
  const std::filesystem::path d(dir);
  QLORA_TRY(save_safetensors((d / kPeftWeightsFile).string(), std::move(views),
                             std::map<std::string, std::string>{{"format", "pt"}}));
  return write_text_file((d / kPeftConfigFile).string(), peft_adapter_config_text(a.config(), opt));
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// The adapter_config.json fields a reader needs.
struct PeftAdapterConfig {
  int r = 0;
  double lora_alpha = 0;    // as written
  double lora_dropout = 0;
  bool use_rslora = false;
  std::string base_model_name_or_path;  // empty when null
  std::string task_type;                // empty when null
  /// target_modules when it is a list of names we know; nullopt when it is a
  /// string (a regex, or "all-linear"): the tensors then decide.
  std::optional<lora::TargetMask> target_modules;

  /// alpha such that alpha / r is PEFT's scale (rsLoRA folded in).
  double effective_alpha() const { return use_rslora ? lora_alpha * std::sqrt(double(r)) : lora_alpha; }
};

/// Parse and validate adapter_config.json text; `path` names the file in errors.
inline Result<PeftAdapterConfig> parse_peft_adapter_config(std::string_view text, const std::string& path) {
  using nlohmann::json;
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::corrupt(path + ": not valid JSON");
  if (!j.is_object()) return Status::corrupt(path + ": not a JSON object");
  auto bad = [&](const std::string& key, const std::string& what) { return Status::invalid(path + ": \"" + key + "\" " + what); };
  auto unsupported = [&](const std::string& key, const std::string& what) {
    return Status::unsupported(path + ": \"" + key + "\" " + what);
  };
  auto get = [&](const char* key) -> const json* {
    const auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  };
  // A key is "unset" when absent, null, false, or an empty list/object.
  auto is_set = [&](const char* key) {
    const json* v = get(key);
    if (!v || v->is_null()) return false;
    if (v->is_boolean()) return v->get<bool>();
    if (v->is_array() || v->is_object()) return !v->empty();
    return true;
  };

  PeftAdapterConfig c;
  const json* type = get("peft_type");
  if (!type || !type->is_string()) return bad("peft_type", "is missing (not a PEFT adapter config?)");
  if (type->get<std::string>() != "LORA")
    return unsupported("peft_type", "is \"" + type->get<std::string>() + "\"; only LORA adapters are supported");
  if (const json* t = get("task_type"); t && !t->is_null()) {
    if (!t->is_string()) return bad("task_type", "must be a string or null");
    c.task_type = t->get<std::string>();
    if (c.task_type != "CAUSAL_LM")
      return unsupported("task_type", "is \"" + c.task_type + "\"; only CAUSAL_LM (or null) adapters are supported");
  }
  const json* r = get("r");
  if (!r || !r->is_number_integer() || r->get<std::int64_t>() < 1 || r->get<std::int64_t>() > 256)
    return bad("r", "must be an integer rank in 1..256");
  c.r = int(r->get<std::int64_t>());
  const json* alpha = get("lora_alpha");
  if (!alpha || !alpha->is_number() || !(alpha->get<double>() > 0) || !std::isfinite(alpha->get<double>()))
    return bad("lora_alpha", "must be a positive number");
  c.lora_alpha = alpha->get<double>();
  if (const json* d = get("lora_dropout"); d && !d->is_null()) {
    if (!d->is_number() || !(d->get<double>() >= 0 && d->get<double>() < 1)) return bad("lora_dropout", "must be in [0, 1)");
    c.lora_dropout = d->get<double>();
  }
  if (const json* rs = get("use_rslora"); rs && !rs->is_null()) {
    if (!rs->is_boolean()) return bad("use_rslora", "must be true or false");
    c.use_rslora = rs->get<bool>();
  }
  if (const json* b = get("base_model_name_or_path"); b && b->is_string()) c.base_model_name_or_path = b->get<std::string>();

  // What a LoraAdapter (one rank, one alpha, plain low-rank updates of the
  // seven projections in every layer) cannot hold.
  if (is_set("rank_pattern")) return unsupported("rank_pattern", "is set: per-module ranks are not supported (one r per adapter)");
  if (is_set("alpha_pattern")) return unsupported("alpha_pattern", "is set: per-module alphas are not supported (one lora_alpha per adapter)");
  if (is_set("use_dora")) return unsupported("use_dora", "is true: DoRA adapters are not supported");
  if (is_set("fan_in_fan_out")) return unsupported("fan_in_fan_out", "is true: transposed (Conv1D) weights are not supported");
  if (const json* b = get("bias"); b && !b->is_null() && !(b->is_string() && b->get<std::string>() == "none"))
    return unsupported("bias", "is " + b->dump() + ": trained biases are not supported (only \"none\")");
  if (is_set("lora_bias")) return unsupported("lora_bias", "is true: LoRA biases are not supported");
  if (is_set("modules_to_save")) return unsupported("modules_to_save", "is set: fully trained modules are not supported");
  if (is_set("layers_to_transform")) return unsupported("layers_to_transform", "is set: adapters on a subset of layers are not supported");
  if (is_set("layer_replication")) return unsupported("layer_replication", "is set and is not supported");
  if (is_set("trainable_token_indices")) return unsupported("trainable_token_indices", "is set and is not supported");
  if (is_set("target_parameters")) return unsupported("target_parameters", "is set and is not supported");
  if (is_set("use_qalora")) return unsupported("use_qalora", "is true and is not supported");
  if (is_set("use_bdlora")) return unsupported("use_bdlora", "is set and is not supported");
  if (is_set("alora_invocation_tokens")) return unsupported("alora_invocation_tokens", "is set: activated LoRA is not supported");

  if (const json* t = get("target_modules"); t && !t->is_null()) {
    if (t->is_array()) {
      lora::TargetMask m = 0;
      for (const auto& e : *t) {
        if (!e.is_string()) return bad("target_modules", "must list module names");
        auto one = lora::parse_targets(e.get<std::string>());
        if (!one)
          return unsupported("target_modules", "lists '" + e.get<std::string>() +
                                                   "': only q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj are supported");
        m |= *one;
      }
      c.target_modules = m;
    } else if (!t->is_string()) {
      return bad("target_modules", "must be a list of names or a string");
    }
  }
  return c;
}

/// An adapter read from a PEFT directory, with the config it came with.
struct PeftAdapter {
  lora::LoraAdapter adapter;
  PeftAdapterConfig config;
};

/// Read DIR (or DIR/adapter_model.safetensors' directory) for `model`, whose
/// shapes and Q/K layout the tensors must fit. Errors name the file and the
/// tensor or field.
inline Result<PeftAdapter> read_peft_adapter(const std::string& dir, const model::ModelConfig& model) {
  const std::filesystem::path d(dir);
  const std::string cfg_path = (d / kPeftConfigFile).string();
  const std::string st_path = (d / kPeftWeightsFile).string();
  std::ifstream in(cfg_path, std::ios::binary);
  if (!in) return Status::io(cfg_path + ": cannot open (not a PEFT adapter directory?)");
  std::ostringstream text;
  text << in.rdbuf();
  auto cfg = parse_peft_adapter_config(text.str(), cfg_path);
  if (!cfg) return cfg.status();
  auto permute = detail::permutes_qk(model);
  if (!permute) return permute.status();

  auto st = SafetensorsFile::open(st_path);
  if (!st) return st.status();
  // Identify every tensor; anything that is not a lora_A/lora_B of a block
  // projection is an error (embeddings, lm_head, biases, DoRA magnitudes).
  LoraTensorSet set(model, st_path, [](std::uint32_t l, lora::Target t, LoraMatrix m) { return peft_lora_name(l, t, m); });
  const auto& tensors = st->tensors();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const StTensorInfo& t = tensors[i];
    const auto id = parse_peft_lora_name(t.name);
    if (!id)
      return Status::invalid(st_path + ": unexpected tensor '" + t.name +
                             "' (a LoRA adapter holds only base_model.model.model.layers.N.<module>.lora_A/lora_B.weight "
                             "of q/k/v/o/gate/up/down_proj)");
    if (t.dtype != StDtype::F32 && t.dtype != StDtype::F16 && t.dtype != StDtype::BF16)
      return Status::invalid(st_path + ": tensor '" + t.name + "' is " + std::string(st_dtype_info(t.dtype).name) +
                             ", expected F32, F16 or BF16");
    if (t.shape.size() != 2)
      return Status::invalid(st_path + ": tensor '" + t.name + "' has " + std::to_string(t.shape.size()) +
                             " dimensions, expected 2");
    QLORA_TRY(set.add(*id, t.name, t.shape[0], t.shape[1], i));
  }
  auto layout = set.finish(cfg->r);
  if (!layout) return layout.status();
  if (cfg->target_modules && (layout->targets & ~*cfg->target_modules))
    return Status::invalid(st_path + ": holds adapters for modules that " + cfg_path + " does not list in target_modules");

  lora::LoraConfig lc;
  lc.rank = layout->rank;
  lc.alpha = float(cfg->effective_alpha());
  lc.dropout = float(cfg->lora_dropout);
  lc.targets = layout->targets;
  QLORA_TRY(lc.validate().with_context(cfg_path));
  PeftAdapter out{lora::LoraAdapter::layout(model, lc), *cfg};
  lora::LoraAdapter& a = out.adapter;
  for (const lora::LoraSlot& s : a.slots()) {
    for (LoraMatrix m : {LoraMatrix::kA, LoraMatrix::kB}) {
      const StTensorInfo& t = tensors[layout->at(s.layer, s.target, m)];
      auto v = st->read_f32(t.name);
      if (!v) return v.status();
      for (std::size_t i = 0; i < v->size(); ++i)
        if (!std::isfinite((*v)[i]))
          return Status::numeric(st_path + ": tensor '" + t.name + "' has a non-finite value at element " + std::to_string(i));
      float* dst = m == LoraMatrix::kA ? a.a(s) : a.b(s);
      if (m == LoraMatrix::kB && *permute && detail::is_qk(s.target)) {
        QLORA_TRY(convert::permute_llama_qk(std::span<const float>(*v), std::span<float>(dst, v->size()), s.out,
                                            detail::qk_heads(model, s.target))
                      .with_context(st_path + ": tensor '" + t.name + "'"));
      } else {
        std::memcpy(dst, v->data(), v->size() * sizeof(float));
      }
    }
  }
  return out;
}

}  // namespace qlora::io
