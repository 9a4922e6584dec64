// qlora/model/model_config.hpp — decoder hyper-parameters: published presets
// for the paper's models, and reading them from GGUF metadata.
//
// The presets state what the models' own config.json files say — including
// that every Llama-3 8B model here uses grouped-query attention (32 query
// heads sharing 8 KV heads), although the paper calls them MHA. The runtime
// path never trusts a preset over the file: from_gguf() reads the GGUF.
#pragma once

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"

namespace qlora::model {

/// How RoPE pairs dimensions in GGUF: llama.cpp's NORM rotates (x[2i], x[2i+1])
/// (the llama converter permutes Q/K rows so this equals HF's rotate-half);
/// NEOX rotates (x[i], x[i + n_rot/2]) (qwen2, unpermuted).
enum class RopeStyle { kNorm, kNeox };

/// Llama 3.1's frequency-dependent RoPE scaling ("rope_type": "llama3").
struct Llama3RopeScaling {
  float factor = 8.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  std::uint32_t original_context = 8192;
};

struct ModelConfig {
  std::string name;            // preset or general.name
  std::string arch = "llama";  // general.architecture: "llama" or "qwen2"
  std::uint32_t n_vocab = 0;
  std::uint32_t n_embd = 0;    // hidden size
  std::uint32_t n_layer = 0;
  std::uint32_t n_head = 0;
  std::uint32_t n_head_kv = 0;
  std::uint32_t head_dim = 0;  // per-head width (rope.dimension_count when it rotates all dims)
  std::uint32_t n_rot = 0;     // dimensions rotated by RoPE
  std::uint32_t n_ff = 0;      // SwiGLU inner width
  std::uint32_t context_length = 0;
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;  // no output.weight: the head reuses token_embd
  bool qkv_bias = false;         // qwen2: q/k/v projections have biases
  bool llama3_rope = false;      // Llama 3.1 rope scaling (rope_freqs.weight in GGUF)
  Llama3RopeScaling rope_scaling;
  RopeStyle rope_style = RopeStyle::kNorm;

  std::uint32_t n_gqa() const { return n_head_kv ? n_head / n_head_kv : 1; }  // query heads per KV head
  bool is_gqa() const { return n_head_kv != 0 && n_head_kv < n_head; }
  std::uint32_t q_dim() const { return n_head * head_dim; }
  std::uint32_t kv_dim() const { return n_head_kv * head_dim; }

  /// Consistency checks every loader runs; errors say which field is wrong.
  Status validate() const {
    auto bad = [&](const std::string& m) { return Status::invalid(name + ": " + m); };
    if (arch != "llama" && arch != "qwen2")
      return Status::unsupported(name + ": architecture '" + arch + "' is not supported (supported: llama, qwen2)");
    if (!n_vocab || !n_embd || !n_layer || !n_head || !n_head_kv || !head_dim || !n_ff)
      return bad("a required size is zero (vocab, embedding, layers, heads, KV heads, head dim, FFN)");
    if (n_head % n_head_kv != 0)
      return bad(std::to_string(n_head) + " query heads are not a multiple of " + std::to_string(n_head_kv) + " KV heads");
    if (head_dim % 2 != 0 || n_rot > head_dim || n_rot % 2 != 0)
      return bad("head dim " + std::to_string(head_dim) + " / rotary dims " + std::to_string(n_rot) + " are inconsistent");
    if (!(rms_eps > 0) || !(rope_theta > 0)) return bad("rms epsilon and rope theta must be positive");
    return Status::ok();
  }
};

/// Presets from each model's published config.json (see shared brief §2).
/// They are constexpr so that variant apps (dispatch/variant.hpp) can take a
/// preset's head counts and sizes as compile-time constants.
namespace presets {

constexpr ModelConfig llama3(std::string name, std::uint32_t vocab, bool llama3_rope) {
  ModelConfig c;
  c.name = name;  // not std::move: GCC 12 rejects moved-from SSO strings in constant evaluation
  c.arch = "llama";
  c.n_vocab = vocab;
  c.n_embd = 4096;
  c.n_layer = 32;
  c.n_head = 32;
  c.n_head_kv = 8;  // GQA 4:1 — the paper's "MHA" label is wrong
  c.head_dim = 128;
  c.n_rot = 128;
  c.n_ff = 14336;
  c.context_length = llama3_rope ? 131072 : 8192;
  c.rope_theta = 500000.0f;
  c.rms_eps = 1e-5f;
  c.llama3_rope = llama3_rope;
  return c;
}

constexpr ModelConfig qwen2(std::string name, std::uint32_t embd, std::uint32_t layers, std::uint32_t heads,
                         std::uint32_t kv_heads, std::uint32_t ff, std::uint32_t vocab, bool tied) {
  ModelConfig c;
  c.name = name;  // not std::move: GCC 12 rejects moved-from SSO strings in constant evaluation
  c.arch = "qwen2";
  c.n_vocab = vocab;
  c.n_embd = embd;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_head_kv = kv_heads;
  c.head_dim = embd / heads;
  c.n_rot = c.head_dim;
  c.n_ff = ff;
  c.context_length = 32768;
  c.rope_theta = 1000000.0f;
  c.rms_eps = 1e-6f;
  c.tied_embeddings = tied;
  c.qkv_bias = true;
  c.rope_style = RopeStyle::kNeox;
  return c;
}

constexpr ModelConfig swallow_8b() { return llama3("Llama-3.1-Swallow-8B-Instruct-v0.3", 128256, true); }
constexpr ModelConfig elyza_jp_8b() { return llama3("Llama-3-ELYZA-JP-8B", 128256, false); }
constexpr ModelConfig tanuki_8b() { return llama3("Tanuki-8B-dpo-v1.0", 65024, false); }
constexpr ModelConfig qwen25_7b() { return qwen2("Qwen2.5-7B-Instruct", 3584, 28, 28, 4, 18944, 152064, false); }
constexpr ModelConfig qwen25_14b() { return qwen2("Qwen2.5-14B-Instruct", 5120, 48, 40, 8, 13824, 152064, false); }
constexpr ModelConfig qwen25_05b() { return qwen2("Qwen2.5-0.5B-Instruct", 896, 24, 14, 2, 4864, 151936, true); }

constexpr ModelConfig smollm2_135m() {
  ModelConfig c;
  c.name = "SmolLM2-135M-Instruct";
  c.arch = "llama";
  c.n_vocab = 49152;
  c.n_embd = 576;
  c.n_layer = 30;
  c.n_head = 9;
  c.n_head_kv = 3;
  c.head_dim = 64;
  c.n_rot = 64;
  c.n_ff = 1536;
  c.context_length = 8192;
  c.rope_theta = 100000.0f;
  c.rms_eps = 1e-5f;
  c.tied_embeddings = true;
  return c;
}

/// A 2-layer model small enough for finite-difference and golden tests.
constexpr ModelConfig tiny() {
  ModelConfig c;
  c.name = "tiny";
  c.arch = "llama";
  c.n_vocab = 64;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.n_rot = 16;
  c.n_ff = 96;
  c.context_length = 128;
  c.rope_theta = 10000.0f;
  c.rms_eps = 1e-5f;
  return c;
}

/// Every preset, for listing and for tests.
inline std::vector<ModelConfig> all() {
  return {swallow_8b(), elyza_jp_8b(), qwen25_7b(), tanuki_8b(), qwen25_14b(), smollm2_135m(), qwen25_05b(), tiny()};
}

/// The preset whose name contains `part`, ignoring case ("swallow",
/// "qwen2.5-7b", "tanuki"); an error listing the presets when none does.
inline Result<ModelConfig> find(std::string_view part) {
  auto lower = [](std::string_view v) {
    std::string o(v);
    for (char& c : o) c = char(std::tolower(static_cast<unsigned char>(c)));
    return o;
  };
  std::string names;
  for (const ModelConfig& p : all()) {
    if (!part.empty() && lower(p.name).find(lower(part)) != std::string::npos) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  return Status::invalid("no preset matches '" + std::string(part) + "' (presets: " + names + ")");
}

}  // namespace presets

/// A model's shape (read from `file`) against a preset's: the first field
/// that differs, named with both values. `what` names the preset's role in
/// the message ("this app's preset 'smollm2-135m'").
inline Status check_shape(const ModelConfig& m, const ModelConfig& p, const std::string& file,
                          const std::string& what) {
  auto differ = [&](const char* field, const std::string& got, const std::string& want) {
    return Status::invalid(file + ": does not match " + what + " (" + p.name + "): " + field + " is " + got +
                           " in the file, " + want + " in the preset");
  };
  auto num = [](std::uint32_t v) { return std::to_string(v); };
  if (m.arch != p.arch) return differ("architecture", m.arch, p.arch);
  if (m.n_layer != p.n_layer) return differ("layers", num(m.n_layer), num(p.n_layer));
  if (m.n_embd != p.n_embd) return differ("embedding width", num(m.n_embd), num(p.n_embd));
  if (m.n_head != p.n_head) return differ("query heads", num(m.n_head), num(p.n_head));
  if (m.n_head_kv != p.n_head_kv) return differ("KV heads", num(m.n_head_kv), num(p.n_head_kv));
  if (m.head_dim != p.head_dim) return differ("head dim", num(m.head_dim), num(p.head_dim));
  if (m.n_ff != p.n_ff) return differ("FFN width", num(m.n_ff), num(p.n_ff));
  if (m.n_vocab != p.n_vocab) return differ("vocabulary", num(m.n_vocab), num(p.n_vocab));
  return Status::ok();
}

/// Read the configuration from a GGUF's metadata (`{arch}.*` keys), checking
/// types exactly as llama.cpp's loader does. The tensor list decides tied
/// embeddings, biases and llama3 rope scaling.
inline Result<ModelConfig> config_from_gguf(const io::GgufFile& f) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) return arch.status();
  c.arch = *arch;
  auto name = f.get_string("general.name");
  c.name = name ? *name : f.name();
  if (c.arch != "llama" && c.arch != "qwen2")
    return Status::unsupported(f.name() + ": architecture '" + c.arch + "' is not supported (supported: llama, qwen2)");
  const std::string p = c.arch + ".";
  auto need_u32 = [&](const std::string& key, std::uint32_t& out) -> Status {
    auto v = f.get_u32(p + key);
    if (!v) return v.status();
    out = *v;
    return Status::ok();
  };
  QLORA_TRY(need_u32("block_count", c.n_layer));
  QLORA_TRY(need_u32("embedding_length", c.n_embd));
  QLORA_TRY(need_u32("feed_forward_length", c.n_ff));
  QLORA_TRY(need_u32("attention.head_count", c.n_head));
  auto kv = f.get_u32(p + "attention.head_count_kv");
  c.n_head_kv = kv ? *kv : c.n_head;  // absent: no GQA (GGUF spec)
  auto ctx = f.get_u32(p + "context_length");
  c.context_length = ctx ? *ctx : 2048;
  // Linear / YaRN / LongRoPE context scaling changes every rotation; the
  // decoder implements only Llama 3.1's (rope_freqs), so refuse the others
  // rather than run a long-context model with the wrong positions.
  if (auto scaling = f.get_string(p + "rope.scaling.type"); scaling && *scaling != "none")
    return Status::unsupported(f.name() + ": " + p + "rope.scaling.type = '" + *scaling +
                               "' is not supported (qlora implements plain RoPE and Llama 3.1's rope_freqs)");
  auto theta = f.get_f32(p + "rope.freq_base");
  c.rope_theta = theta ? *theta : 10000.0f;
  auto eps = f.get_f32(p + "attention.layer_norm_rms_epsilon");
  if (!eps) return eps.status();
  c.rms_eps = *eps;
  auto key_len = f.get_u32(p + "attention.key_length");
  c.head_dim = key_len ? *key_len : (c.n_head ? c.n_embd / c.n_head : 0);
  auto rot = f.get_u32(p + "rope.dimension_count");
  c.n_rot = rot ? *rot : c.head_dim;
  auto vocab = f.get_u32(p + "vocab_size");
  if (vocab) {
    c.n_vocab = *vocab;
  } else {
    auto tokens = f.find("tokenizer.ggml.tokens");
    c.n_vocab = tokens ? std::uint32_t(tokens->size()) : 0;
  }
  if (c.n_vocab == 0) {
    if (const auto* e = f.find_tensor("token_embd.weight")) c.n_vocab = std::uint32_t(e->ne[1]);
  }
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  c.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.rope_style = c.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kNorm;
  c.llama3_rope = f.find_tensor("rope_freqs.weight") != nullptr;
  QLORA_TRY(c.validate().with_context(f.name()));
  return c;
}

}  // namespace qlora::model
