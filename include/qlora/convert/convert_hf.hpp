// qlora/convert/convert_hf.hpp — a Hugging Face llama/qwen2 checkpoint
// directory -> a GGUF file, byte-compatible with llama.cpp's
// convert_hf_to_gguf.py (--outtype f32/f16/bf16/auto) for the tensors and
// for every architecture and tokenizer key.
//
// What the reference writes, and so what we write (in this order):
//   KVs   general.architecture, general.type = "model", general.sampling.*
//         (generation_config.json), general.name, then the {arch}.* keys of
//         hf_config.hpp's reading (block_count, context_length,
//         embedding_length, feed_forward_length, attention.head_count,
//         head_count_kv, rope scaling when linear/yarn, rope.freq_base,
//         layer_norm_rms_epsilon, key/value_length when head_dim is known),
//         general.file_type, llama only: vocab_size and rope.dimension_count;
//         general.quantization_version = 2; the tokenizer keys
//         (hf_tokenizer.hpp).
//   data  rope_freqs.weight first for llama3 rope scaling (computed below),
//         then the checkpoint's tensors in hf_checkpoint.hpp's order, renamed
//         (hf_names.hpp), shape reversed, llama's Q/K rows permuted. 1-D
//         tensors and *_norm.weight are F32; every other tensor takes the
//         output type. "auto" is the type of the first 2-D BF16 or F16
//         tensor (F16 when all are F32), as the reference guesses it.
// Values convert as numpy does: bf16/f16 -> f32 exactly, f32 -> f16 and
// f32 -> bf16 round to nearest even.
//
// Deliberate differences:
//  * general.* descriptive metadata: we write general.name (title-cased
//    hub id or directory name, as gguf-py does) and general.size_label from
//    the parameter count. The reference also mines README.md's model card
//    and splits the name into basename / size / finetune / version; for a
//    name like "SmolLM2-135M-Instruct" its size_label is the "135M" in the
//    name. We skip those heuristics: no loader reads these keys.
//  * Bad weights are refused instead of written: a NaN or infinity in the
//    checkpoint, or a value that overflows F16, is an error naming the tensor
//    and element (use --outtype bf16 or f32 for weights beyond F16's range).
//  * Shapes are checked against config.json before anything is written.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/convert/hf_checkpoint.hpp"
#include "qlora/convert/hf_config.hpp"
#include "qlora/convert/hf_names.hpp"
#include "qlora/convert/hf_tokenizer.hpp"
#include "qlora/core/half.hpp"
#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/quant/format.hpp"

namespace qlora::convert {

enum class HfOutType { kAuto, kF32, kF16, kBF16 };

inline Result<HfOutType> parse_hf_outtype(std::string_view s) {
  if (s == "auto") return HfOutType::kAuto;
  if (s == "f32") return HfOutType::kF32;
  if (s == "f16") return HfOutType::kF16;
  if (s == "bf16") return HfOutType::kBF16;
  return Status::invalid("--outtype '" + std::string(s) + "': expected auto, f32, f16 or bf16");
}

struct HfConvertOptions {
  HfOutType outtype = HfOutType::kAuto;
  std::string name;  // general.name; empty = the directory's name
  /// Called after each tensor is written: (index, count, bytes so far, total bytes).
  std::function<void(std::size_t, std::size_t, std::uint64_t, std::uint64_t)> on_tensor;
};

/// One tensor of the output, and where its data come from.
struct HfConvertTensor {
  std::string hf_name;  // "" for a generated tensor
  std::string name;     // GGUF name
  std::vector<std::uint64_t> ne;
  quant::GgmlType type = quant::GgmlType::F32;
  io::StDtype src_dtype = io::StDtype::F32;
  std::int64_t permute_heads = 0;  // > 0: llama Q/K row permutation with this many heads
  std::uint64_t bytes = 0;
};

struct HfConvertReport {
  HfModelConfig config;
  std::string arch;           // "llama" / "qwen2"
  quant::GgmlType file_type = quant::GgmlType::F16;
  std::uint32_t file_type_id = 1;  // general.file_type
  std::vector<HfConvertTensor> tensors;
  std::vector<io::GgufKv> kvs;
  std::string pre;
  std::size_t n_tokens = 0, n_unused = 0, n_control = 0, n_merges = 0;
  std::uint64_t bytes = 0;  // tensor data bytes
  double seconds = 0;
};

/// Llama 3.1's per-frequency RoPE factors, computed in float32 with the
/// reference's operation order (a scalar divided by a tensor is the
/// tensor's reciprocal times the scalar in torch).
inline std::vector<float> llama3_rope_factors(const HfModelConfig& c) {
  const auto num = [&](const char* k, double fallback) {
    const auto it = c.rope.params.find(k);
    return it != c.rope.params.end() && it->is_number() ? it->get<double>() : fallback;
  };
  const std::int64_t dim = c.head_size();
  const float factor = float(num("factor", 8.0));
  const float low = float(num("low_freq_factor", 1.0)), high = float(num("high_freq_factor", 4.0));
  const double old_ctx = num("original_max_position_embeddings", 8192);
  const double low_wavelen = old_ctx / num("low_freq_factor", 1.0), high_wavelen = old_ctx / num("high_freq_factor", 4.0);
  std::vector<float> out;
  for (std::int64_t i = 0; i < dim; i += 2) {
    const float e = float(i) / float(dim);
    const float freq = 1.0f / std::pow(float(c.rope.theta), e);
    const float wavelen = (1.0f / freq) * float(2.0 * M_PI);
    if (wavelen < float(high_wavelen)) {
      out.push_back(1.0f);
    } else if (wavelen > float(low_wavelen)) {
      out.push_back(factor);
    } else {
      const float smooth = ((1.0f / wavelen) * float(old_ctx) - low) / (high - low);
      out.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return out;
}

/// gguf-py's Metadata.id_to_title: "-" -> " ", and each all-lowercase word
/// that is not a version ("v1.2") or starts with a digit is title-cased
/// (a letter after a non-letter goes upper, the rest lower). Words with
/// non-ASCII letters are kept as they are.
inline std::string hf_id_to_title(std::string_view id) {
  std::string spaced(id);
  for (char& ch : spaced)
    if (ch == '-') ch = ' ';
  std::string out;
  std::size_t i = 0;
  while (i < spaced.size()) {
    while (i < spaced.size() && std::isspace(static_cast<unsigned char>(spaced[i]))) ++i;
    std::size_t j = i;
    while (j < spaced.size() && !std::isspace(static_cast<unsigned char>(spaced[j]))) ++j;
    if (j == i) break;
    std::string w = spaced.substr(i, j - i);
    bool ascii = true, has_lower = false, has_upper = false;
    for (unsigned char ch : w) {
      ascii &= ch < 0x80;
      has_lower |= std::islower(ch) != 0;
      has_upper |= std::isupper(ch) != 0;
    }
    const bool version = (w[0] == 'v' && w.size() > 1 && std::isdigit(static_cast<unsigned char>(w[1])) &&
                          w.find_first_not_of("0123456789.", 1) == std::string::npos) ||
                         std::isdigit(static_cast<unsigned char>(w[0]));
    if (ascii && has_lower && !has_upper && !version) {
      bool prev_letter = false;
      for (char& ch : w) {
        const bool letter = std::isalpha(static_cast<unsigned char>(ch)) != 0;
        if (letter) ch = char(prev_letter ? std::tolower(static_cast<unsigned char>(ch)) : std::toupper(static_cast<unsigned char>(ch)));
        prev_letter = letter;
      }
    }
    out += (out.empty() ? "" : " ") + w;
    i = j;
  }
  return out;
}

/// gguf-py's size label for a parameter count: "6.4M", "135M", "8.0B".
inline std::string gguf_size_label(std::uint64_t n) {
  const double x = double(n);
  double scaled;
  const char* suffix;
  if (x > 1e12) scaled = x * 1e-12, suffix = "T";
  else if (x > 1e9) scaled = x * 1e-9, suffix = "B";
  else if (x > 1e6) scaled = x * 1e-6, suffix = "M";
  else scaled = x * 1e-3, suffix = "K";
  // Digits of round(scaled) (half to even), leading zeros not counted.
  const std::string digits = std::to_string(static_cast<long long>(std::nearbyint(scaled)));
  const std::size_t nd = digits == "0" ? 0 : digits.size();
  const int fix = nd >= 2 ? 0 : int(2 - nd);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", fix, scaled, suffix);
  return buf;
}

namespace detail {

inline std::string st_dtype_name(io::StDtype d) { return std::string(io::st_dtype_info(d).name); }

/// HF shape the config implies for a GGUF tensor name ({} if unknown).
inline std::vector<std::int64_t> expected_hf_shape(const HfModelConfig& c, std::string_view gguf) {
  const std::int64_t E = c.hidden_size, V = c.vocab_size, F = c.intermediate_size;
  const std::int64_t Q = c.num_attention_heads * c.head_size(), KV = c.num_key_value_heads * c.head_size();
  std::string_view base, param;
  if (!split_param(gguf, base, param)) return {};
  const bool bias = param == "bias";
  if (base == "token_embd" || base == "output") return {V, E};
  if (base == "output_norm") return {E};
  std::uint32_t layer = 0;
  std::string_view rest;
  if (!split_layer(base, "blk.", layer, rest)) return {};
  if (rest == "attn_norm" || rest == "ffn_norm") return {E};
  if (rest == "attn_q") return bias ? std::vector<std::int64_t>{Q} : std::vector<std::int64_t>{Q, E};
  if (rest == "attn_k" || rest == "attn_v") return bias ? std::vector<std::int64_t>{KV} : std::vector<std::int64_t>{KV, E};
  if (rest == "attn_output") return bias ? std::vector<std::int64_t>{E} : std::vector<std::int64_t>{E, Q};
  if (rest == "ffn_gate" || rest == "ffn_up") return bias ? std::vector<std::int64_t>{F} : std::vector<std::int64_t>{F, E};
  if (rest == "ffn_down") return bias ? std::vector<std::int64_t>{E} : std::vector<std::int64_t>{E, F};
  return {};
}

inline std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string o = "[";
  for (std::size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

/// Convert n source elements to the output type; false (with the element
/// index) on a non-finite input or an F16 overflow.
inline bool convert_elements(io::StDtype src, quant::GgmlType dst, const std::byte* in, std::byte* out, std::size_t n,
                             std::size_t& bad) {
  auto load = [&](std::size_t i) -> float {
    switch (src) {
      case io::StDtype::F16: {
        std::uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        return fp16_to_f32(h);
      }
      case io::StDtype::BF16: {
        std::uint16_t b;
        std::memcpy(&b, in + 2 * i, 2);
        return bf16_to_f32(b);
      }
      default: {
        float f;
        std::memcpy(&f, in + 4 * i, 4);
        return f;
      }
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    const float f = load(i);
    if (!std::isfinite(f)) {
      bad = i;
      return false;
    }
    switch (dst) {
      case quant::GgmlType::F32: std::memcpy(out + 4 * i, &f, 4); break;
      case quant::GgmlType::F16: {
        const std::uint16_t h = f32_to_fp16(f);
        if ((h & 0x7C00u) == 0x7C00u) {
          bad = i;
          return false;
        }
        std::memcpy(out + 2 * i, &h, 2);
        break;
      }
      default: {
        const std::uint16_t b = f32_to_bf16(f);
        std::memcpy(out + 2 * i, &b, 2);
        break;
      }
    }
  }
  return true;
}

inline std::size_t ggml_elem_bytes(quant::GgmlType t) { return t == quant::GgmlType::F32 ? 4 : 2; }

}  // namespace detail

/// Plan and write the conversion of `dir` to `out_path` (atomically).
inline Result<HfConvertReport> convert_hf_to_gguf(const std::filesystem::path& dir, const std::string& out_path,
                                                  const HfConvertOptions& opt = {}) {
  namespace fs = std::filesystem;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  HfConvertReport rep;
  const fs::path cfg_path = dir / "config.json";
  if (!fs::is_directory(dir)) return Status::invalid(dir.string() + ": not a directory");
  if (!fs::exists(cfg_path)) return Status::invalid(dir.string() + ": no config.json (not a Hugging Face checkpoint)");
  auto cfg_json = read_json_file(cfg_path.string());
  if (!cfg_json) return cfg_json.status();
  auto cfg = parse_hf_config(*cfg_json, cfg_path.string());
  if (!cfg) return cfg.status();
  rep.config = *cfg;
  const HfModelConfig& c = rep.config;
  const bool llama = c.arch == HfArch::kLlama;
  rep.arch = std::string(hf_model_type(c.arch));

  auto ckpt = HfCheckpoint::open(dir);
  if (!ckpt) return ckpt.status();

  // ---- tensors -------------------------------------------------------------
  const bool llama3 = llama && [&] {
    std::string t = c.rope.type;
    for (char& ch : t) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return t == "llama3";
  }();
  std::optional<std::vector<float>> rope_freqs;
  if (llama3) rope_freqs = llama3_rope_factors(c);

  std::optional<io::StDtype> guessed;
  std::vector<const HfTensorRef*> sources;
  for (const auto& t : ckpt->tensors()) {
    const std::string& n = t.info->name;
    auto ends = [&](std::string_view s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
    if (ends(".attention.masked_bias") || ends(".attention.bias") || ends(".rotary_emb.inv_freq")) continue;
    const std::string where = (dir / ckpt->part_name(t.part)).string();
    if (t.info->dtype != io::StDtype::F32 && t.info->dtype != io::StDtype::F16 && t.info->dtype != io::StDtype::BF16)
      return Status::unsupported(where + ": tensor '" + n + "' is " + detail::st_dtype_name(t.info->dtype) +
                                 "; only F32, F16 and BF16 weights convert (quantized checkpoints are not read)");
    if (!guessed && t.info->shape.size() >= 2 && t.info->dtype != io::StDtype::F32) guessed = t.info->dtype;
    sources.push_back(&t);
  }
  switch (opt.outtype) {
    case HfOutType::kF32: rep.file_type = quant::GgmlType::F32; break;
    case HfOutType::kF16: rep.file_type = quant::GgmlType::F16; break;
    case HfOutType::kBF16: rep.file_type = quant::GgmlType::BF16; break;
    case HfOutType::kAuto:
      rep.file_type = guessed == io::StDtype::BF16 ? quant::GgmlType::BF16 : quant::GgmlType::F16;
      break;
  }
  rep.file_type_id = rep.file_type == quant::GgmlType::F32 ? 0 : rep.file_type == quant::GgmlType::F16 ? 1 : 32;

  if (rope_freqs)
    rep.tensors.push_back({"", "rope_freqs.weight", {std::uint64_t(rope_freqs->size())}, quant::GgmlType::F32,
                           io::StDtype::F32, 0, 4 * rope_freqs->size()});
  constexpr std::size_t kBlockWeights = detail::kHfBlockNames.size();
  std::vector<bool> have_block(std::size_t(c.num_hidden_layers) * kBlockWeights, false);
  bool have_embd = false, have_norm = false;
  for (const HfTensorRef* t : sources) {
    const std::string& n = t->info->name;
    const std::string where = (dir / ckpt->part_name(t->part)).string();
    auto g = hf_to_gguf_name(n);
    if (!g) return Status::unsupported(where + ": tensor '" + n + "' has no GGUF llama/qwen2 name (cannot convert)");
    const auto want = detail::expected_hf_shape(c, *g);
    if (want != t->info->shape)
      return Status::invalid(where + ": tensor '" + n + "' has shape " + detail::shape_str(t->info->shape) +
                             ", config.json implies " + detail::shape_str(want));
    std::string_view base, param, rest;
    std::uint32_t layer = 0;
    detail::split_param(*g, base, param);
    if (detail::split_layer(base, "blk.", layer, rest)) {
      if (layer >= c.num_hidden_layers)
        return Status::invalid(where + ": tensor '" + n + "' is layer " + std::to_string(layer) + " but config.json has " +
                               std::to_string(c.num_hidden_layers) + " layers");
      if (param == "weight")
        for (std::size_t k = 0; k < detail::kHfBlockNames.size(); ++k)
          if (detail::kHfBlockNames[k].gguf == rest) have_block[std::size_t(layer) * kBlockWeights + k] = true;
    }
    have_embd |= *g == "token_embd.weight";
    have_norm |= *g == "output_norm.weight";
    HfConvertTensor out;
    out.hf_name = n;
    out.name = *g;
    for (auto it = t->info->shape.rbegin(); it != t->info->shape.rend(); ++it) out.ne.push_back(std::uint64_t(*it));
    const bool is_norm = out.name.size() >= 12 && out.name.compare(out.name.size() - 12, 12, "_norm.weight") == 0;
    out.type = (out.ne.size() <= 1 || is_norm) ? quant::GgmlType::F32 : rep.file_type;
    out.src_dtype = t->info->dtype;
    if (llama) {
      const QkRole role = gguf_qk_role(out.name);
      if (role == QkRole::kQ) out.permute_heads = c.num_attention_heads;
      if (role == QkRole::kK) out.permute_heads = c.num_key_value_heads;
    }
    out.bytes = t->info->numel() * detail::ggml_elem_bytes(out.type);
    rep.tensors.push_back(std::move(out));
  }
  if (!have_embd) return Status::invalid(dir.string() + ": no model.embed_tokens.weight in the checkpoint");
  if (!have_norm) return Status::invalid(dir.string() + ": no model.norm.weight in the checkpoint");
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (std::size_t k = 0; k < detail::kHfBlockNames.size(); ++k)
      if (!have_block[std::size_t(l) * kBlockWeights + k])
        return Status::invalid(dir.string() + ": no model.layers." + std::to_string(l) + "." +
                               std::string(detail::kHfBlockNames[k].hf) + ".weight in the checkpoint");

  // ---- metadata ------------------------------------------------------------
  io::GgufWriter w;
  const std::string a = rep.arch + ".";
  QLORA_TRY(w.set_string("general.architecture", rep.arch));
  QLORA_TRY(w.set_string("general.type", "model"));
  if (fs::exists(dir / "generation_config.json")) {
    auto gen = read_json_file((dir / "generation_config.json").string());
    if (gen) {  // the reference ignores a generation_config.json that is not JSON
      auto sampling = hf_sampling_defaults(*gen, (dir / "generation_config.json").string());
      if (!sampling) return sampling.status();
      for (const auto& s : *sampling) {
        if (s.key->kind == HfSamplingKey::kString) QLORA_TRY(w.set_string(s.key->gguf_key, s.value.get<std::string>()));
        else if (s.key->kind == HfSamplingKey::kI32) QLORA_TRY(w.set_i32(s.key->gguf_key, std::int32_t(s.value.get<std::int64_t>())));
        else QLORA_TRY(w.set_f32(s.key->gguf_key, float(s.value.get<double>())));
      }
    }
  }
  // general.name: --name, else config.json's _name_or_path when it is a hub
  // id ("org/model"), else the directory's name, title-cased like gguf-py.
  std::string name = opt.name;
  if (name.empty()) {
    const auto nop = cfg_json->find("_name_or_path");
    std::string id;
    if (nop != cfg_json->end() && nop->is_string() && std::count(nop->get_ref<const std::string&>().begin(),
                                                                 nop->get_ref<const std::string&>().end(), '/') <= 1)
      id = nop->get<std::string>();
    if (id.empty()) {
      fs::path p = fs::absolute(dir).lexically_normal();
      if (p.filename().empty()) p = p.parent_path();  // "dir/" has an empty last component
      id = p.filename().string();
    }
    if (const auto slash = id.find('/'); slash != std::string::npos) id = id.substr(slash + 1);
    name = hf_id_to_title(id);
  }
  QLORA_TRY(w.set_string("general.name", name));
  std::uint64_t n_params = 0;
  for (const auto& t : rep.tensors) {
    std::uint64_t n = 1;
    for (auto d : t.ne) n *= d;
    n_params += n;
  }
  if (n_params > 0) QLORA_TRY(w.set_string("general.size_label", gguf_size_label(n_params)));
  QLORA_TRY(w.set_u32(a + "block_count", std::uint32_t(c.num_hidden_layers)));
  QLORA_TRY(w.set_u32(a + "context_length", std::uint32_t(c.max_position_embeddings)));
  QLORA_TRY(w.set_u32(a + "embedding_length", std::uint32_t(c.hidden_size)));
  QLORA_TRY(w.set_u32(a + "feed_forward_length", std::uint32_t(c.intermediate_size)));
  QLORA_TRY(w.set_u32(a + "attention.head_count", std::uint32_t(c.num_attention_heads)));
  QLORA_TRY(w.set_u32(a + "attention.head_count_kv", std::uint32_t(c.num_key_value_heads)));
  if (c.rope.type == "linear" && c.rope.factor) {
    QLORA_TRY(w.set_string(a + "rope.scaling.type", "linear"));
    QLORA_TRY(w.set_f32(a + "rope.scaling.factor", float(*c.rope.factor)));
  } else if (c.rope.type == "yarn" && c.rope.factor) {
    QLORA_TRY(w.set_string(a + "rope.scaling.type", "yarn"));
    QLORA_TRY(w.set_f32(a + "rope.scaling.factor", float(*c.rope.factor)));
    const auto orig = c.rope.params.find("original_max_position_embeddings");
    if (orig == c.rope.params.end() || !orig->is_number_integer())
      return Status::invalid(cfg_path.string() + ": yarn rope scaling needs an integer original_max_position_embeddings");
    QLORA_TRY(w.set_u32(a + "rope.scaling.original_context_length", std::uint32_t(orig->get<std::int64_t>())));
    const std::pair<const char*, const char*> yarn[] = {{"extrapolation_factor", "yarn_ext_factor"},
                                                        {"attention_factor", "yarn_attn_factor"},
                                                        {"beta_fast", "yarn_beta_fast"},
                                                        {"beta_slow", "yarn_beta_slow"}};
    for (const auto& [hf, key] : yarn) {
      auto it = c.rope.params.find(hf);
      if (std::string_view(hf) == "attention_factor" && (it == c.rope.params.end() || it->is_null()))
        it = c.rope.params.find("attn_factor");
      if (it != c.rope.params.end() && it->is_number())
        QLORA_TRY(w.set_f32(a + "rope.scaling." + key, float(it->get<double>())));
    }
  } else if (c.rope.type == "su" || c.rope.type == "longrope") {
    QLORA_TRY(w.set_string(a + "rope.scaling.type", "longrope"));
  }
  QLORA_TRY(w.set_f32(a + "rope.freq_base", float(c.rope.theta)));
  QLORA_TRY(w.set_f32(a + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps)));
  if (c.head_dim) {
    QLORA_TRY(w.set_u32(a + "attention.key_length", std::uint32_t(*c.head_dim)));
    QLORA_TRY(w.set_u32(a + "attention.value_length", std::uint32_t(*c.head_dim)));
  }
  QLORA_TRY(w.set_u32("general.file_type", rep.file_type_id));
  if (llama) {
    QLORA_TRY(w.set_u32(a + "vocab_size", std::uint32_t(c.vocab_size)));
    QLORA_TRY(w.set_u32(a + "rope.dimension_count", std::uint32_t(c.head_size())));
  }
  QLORA_TRY(w.set_u32("general.quantization_version", 2));
  auto tok = read_hf_tokenizer(dir, c, *cfg_json);
  if (!tok) return tok.status();
  for (const auto& kv : tok->kvs.items()) QLORA_TRY(w.set(kv.key, kv.value));
  rep.pre = tok->pre;
  rep.n_tokens = tok->n_tokens;
  rep.n_unused = tok->n_unused;
  rep.n_control = tok->n_control;
  rep.n_merges = tok->n_merges;

  // ---- data ----------------------------------------------------------------
  for (const auto& t : rep.tensors) rep.bytes += t.bytes;
  std::uint64_t done = 0;
  auto written = [&](std::size_t i) {
    done += rep.tensors[i].bytes;
    if (opt.on_tensor) opt.on_tensor(i, rep.tensors.size(), done, rep.bytes);
  };
  std::size_t src_i = 0;
  for (std::size_t i = 0; i < rep.tensors.size(); ++i) {
    const HfConvertTensor& t = rep.tensors[i];
    if (t.hf_name.empty()) {  // rope_freqs
      auto produce = [&, i](io::GgufByteSink& sink) -> Status {
        QLORA_TRY(sink.write_values(std::span<const float>(*rope_freqs)));
        written(i);
        return Status::ok();
      };
      QLORA_TRY(w.add_tensor(t.name, t.ne, std::uint32_t(t.type), produce));
      continue;
    }
    const HfTensorRef* src = sources[src_i++];
    auto produce = [&, i, src](io::GgufByteSink& sink) -> Status {
      const HfConvertTensor& t = rep.tensors[i];
      const std::span<const std::byte> in = ckpt->data(*src);
      const std::size_t in_elem = io::st_dtype_info(t.src_dtype).size, out_elem = detail::ggml_elem_bytes(t.type);
      const std::size_t cols = std::size_t(t.ne[0]);
      const std::size_t rows = std::size_t(src->info->numel() / t.ne[0]);
      const std::int64_t hd = t.permute_heads > 0 ? std::int64_t(rows) / t.permute_heads : 0;
      const std::size_t chunk_rows = std::max<std::size_t>(1, (std::size_t(4) << 20) / (cols * out_elem));
      std::vector<std::byte> buf;
      std::vector<std::size_t> bad_row(rows == 0 ? 1 : std::min(rows, chunk_rows), SIZE_MAX), bad_col(bad_row.size());
      for (std::size_t r0 = 0; r0 < rows; r0 += chunk_rows) {
        const std::size_t nr = std::min(chunk_rows, rows - r0);
        buf.resize(nr * cols * out_elem);
        std::fill(bad_row.begin(), bad_row.end(), SIZE_MAX);
        parallel_for(nr, 16, [&](std::size_t b, std::size_t e) {
          for (std::size_t r = b; r < e; ++r) {
            const std::size_t out_row = r0 + r;
            // The output row out_row holds HF row hf_row (llama Q/K permutation).
            const std::size_t hf_row =
                hd > 0 ? std::size_t(llama_qk_hf_row(std::int64_t(out_row), hd)) : out_row;
            std::size_t bad = 0;
            if (!detail::convert_elements(t.src_dtype, t.type, in.data() + hf_row * cols * in_elem,
                                          buf.data() + r * cols * out_elem, cols, bad)) {
              bad_row[r] = hf_row;
              bad_col[r] = bad;
            }
          }
        });
        for (std::size_t r = 0; r < nr; ++r)
          if (bad_row[r] != SIZE_MAX) {
            const std::size_t idx = bad_row[r] * cols + bad_col[r];
            std::byte raw[4]{};
            std::memcpy(raw, in.data() + idx * in_elem, in_elem);
            std::size_t dummy = 0;
            std::byte tmp[4];
            const bool finite_in = detail::convert_elements(t.src_dtype, quant::GgmlType::F32, raw, tmp, 1, dummy);
            return Status::invalid((dir / ckpt->part_name(src->part)).string() + ": tensor '" + t.hf_name +
                                   "' element " + std::to_string(idx) + " (row " + std::to_string(bad_row[r]) +
                                   ", column " + std::to_string(bad_col[r]) + ") " +
                                   (finite_in ? "overflows F16 (use --outtype bf16 or f32)" : "is not finite (NaN or inf)"));
          }
        QLORA_TRY(sink.write(buf));
      }
      written(i);
      return Status::ok();
    };
    QLORA_TRY(w.add_tensor(t.name, t.ne, std::uint32_t(t.type), produce).with_context(out_path));
  }
  QLORA_TRY(w.write_file(out_path));
  rep.kvs = w.kvs();
  rep.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return rep;
}

}  // namespace qlora::convert
