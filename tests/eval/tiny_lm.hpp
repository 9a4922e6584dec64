// tests/eval/tiny_lm.hpp — a tiny random language model for the eval tests:
// a llama-architecture GGUF with random F32 weights AND a byte-level BPE
// vocabulary (256 byte tokens, a few merges, ChatML specials) in its metadata,
// so BpeTokenizer::from_gguf, ChatTemplate::from_gguf and Decoder::open all
// work on it exactly as on a real model.
#pragma once

#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "qlora/io/gguf.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/model/decoder.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::eval_test {

inline std::filesystem::path temp_dir() { return qlora::test::process_temp_dir("qlora_eval"); }

/// The vocabulary: ids 0..255 the byte-level characters of bytes 0..255, then
/// merged tokens, then <|endoftext|> (BOS/EOS), <|im_start|>, <|im_end|>.
inline text::BpeVocabSpec tiny_vocab() {
  text::BpeVocabSpec v;
  const auto& bl = text::ByteLevelMap::get();
  auto ch = [&](unsigned char b) {
    std::string s;
    text::append_utf8(s, bl.to_cp[b]);
    return s;
  };
  for (int b = 0; b < 256; ++b) v.tokens.push_back(ch(static_cast<unsigned char>(b)));
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"t", "h"}, {"th", "e"}, {ch(' '), "t"}, {ch(' '), "a"}, {"i", "n"}, {"e", "r"}, {"o", "n"}, {"a", "n"},
      {ch(' '), "the"}, {"r", "e"}, {"a", "t"}, {"e", "n"}, {"s", "t"}, {"in", "g"}};
  for (const auto& [a, b] : merges) {
    v.merges.push_back(a + " " + b);
    v.tokens.push_back(a + b);
  }
  v.token_types.assign(v.tokens.size(), 1);
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(s);
    v.token_types.push_back(3);
  }
  v.pre = "smollm";
  v.bos = text::TokenId(v.tokens.size() - 3);
  v.eos = text::TokenId(v.tokens.size() - 3);
  v.add_bos = false;
  v.add_eos = false;
  return v;
}

struct TinyLm {
  std::string path;
  text::BpeVocabSpec vocab;
  std::vector<std::vector<float>> tensors;  // kept alive until written
};

/// Write the model; `add_bos` sets tokenizer.ggml.add_bos_token. `n_ff` = 0
/// keeps the tiny preset's FFN width (96); the trainer's NF4 base needs
/// multiples of 64.
inline TinyLm make_tiny_lm(unsigned seed = 7, bool add_bos = false, std::uint32_t ctx = 256, std::uint32_t n_ff = 0) {
  TinyLm m;
  m.vocab = tiny_vocab();
  m.vocab.add_bos = add_bos;
  model::ModelConfig c = model::presets::tiny();
  c.n_vocab = std::uint32_t(m.vocab.tokens.size());
  c.context_length = ctx;
  if (n_ff) c.n_ff = n_ff;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.5f);
  io::GgufWriter w;
  EXPECT_TRUE(w.set_string("general.architecture", "llama").is_ok());
  EXPECT_TRUE(w.set_string("general.name", "tiny-eval").is_ok());
  EXPECT_TRUE(w.set_u32("llama.block_count", c.n_layer).is_ok());
  EXPECT_TRUE(w.set_u32("llama.embedding_length", c.n_embd).is_ok());
  EXPECT_TRUE(w.set_u32("llama.feed_forward_length", c.n_ff).is_ok());
  EXPECT_TRUE(w.set_u32("llama.attention.head_count", c.n_head).is_ok());
  EXPECT_TRUE(w.set_u32("llama.attention.head_count_kv", c.n_head_kv).is_ok());
  EXPECT_TRUE(w.set_u32("llama.context_length", c.context_length).is_ok());
  EXPECT_TRUE(w.set_f32("llama.rope.freq_base", c.rope_theta).is_ok());
  EXPECT_TRUE(w.set_f32("llama.attention.layer_norm_rms_epsilon", c.rms_eps).is_ok());
  EXPECT_TRUE(w.set_u32("llama.vocab_size", c.n_vocab).is_ok());
  EXPECT_TRUE(w.set_string("tokenizer.ggml.model", "gpt2").is_ok());
  EXPECT_TRUE(w.set_string("tokenizer.ggml.pre", m.vocab.pre).is_ok());
  EXPECT_TRUE(w.set_string_array("tokenizer.ggml.tokens", m.vocab.tokens).is_ok());
  EXPECT_TRUE(w.set_array<std::int32_t>("tokenizer.ggml.token_type", m.vocab.token_types).is_ok());
  EXPECT_TRUE(w.set_string_array("tokenizer.ggml.merges", m.vocab.merges).is_ok());
  EXPECT_TRUE(w.set_u32("tokenizer.ggml.bos_token_id", std::uint32_t(*m.vocab.bos)).is_ok());
  EXPECT_TRUE(w.set_u32("tokenizer.ggml.eos_token_id", std::uint32_t(*m.vocab.eos)).is_ok());
  EXPECT_TRUE(w.set_bool("tokenizer.ggml.add_bos_token", add_bos).is_ok());
  EXPECT_TRUE(w.set_string("tokenizer.chat_template",
                           "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                           "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}")
                  .is_ok());
  const std::uint64_t E = c.n_embd, V = c.n_vocab, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
  m.tensors.reserve(64);
  auto add = [&](const std::string& name, std::vector<std::uint64_t> ne, float mean = 0.0f) {
    std::uint64_t n = 1;
    for (auto d : ne) n *= d;
    auto& v = m.tensors.emplace_back(n);
    for (auto& x : v) x = mean + g(rng);
    EXPECT_TRUE(w.add_tensor(name, ne, 0, std::as_bytes(std::span<const float>(v))).is_ok()) << name;
  };
  add("token_embd.weight", {E, V});
  add("output_norm.weight", {E}, 1.0f);
  add("output.weight", {E, V});
  for (std::uint32_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {E}, 1.0f);
    add(b + "attn_q.weight", {E, Q});
    add(b + "attn_k.weight", {E, KV});
    add(b + "attn_v.weight", {E, KV});
    add(b + "attn_output.weight", {Q, E});
    add(b + "ffn_norm.weight", {E}, 1.0f);
    add(b + "ffn_gate.weight", {E, F});
    add(b + "ffn_up.weight", {E, F});
    add(b + "ffn_down.weight", {F, E});
  }
  m.path = (temp_dir() / ("tiny_" + std::to_string(seed) + (add_bos ? "_bos" : "") + ".gguf")).string();
  EXPECT_TRUE(w.write_file(m.path).is_ok());
  return m;
}

/// The model opened: file, tokenizer, template, decoder.
struct Loaded {
  io::GgufFile file;
  text::BpeTokenizer tok;
  text::ChatTemplate tmpl;
  model::Decoder dec;
};

inline std::unique_ptr<Loaded> load(const std::string& path, std::uint32_t n_ctx = 256) {
  auto f = io::GgufFile::open(path);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  if (!f) return nullptr;
  auto out = std::unique_ptr<Loaded>(new Loaded{std::move(*f), {}, {}, {}});
  auto t = text::BpeTokenizer::from_gguf(out->file);
  EXPECT_TRUE(t.is_ok()) << t.status().message();
  auto c = text::ChatTemplate::from_gguf(out->file);
  EXPECT_TRUE(c.is_ok()) << c.status().message();
  auto d = model::Decoder::open(out->file, {n_ctx, nullptr});
  EXPECT_TRUE(d.is_ok()) << d.status().message();
  if (!t || !c || !d) return nullptr;
  out->tok = std::move(*t);
  out->tmpl = std::move(*c);
  out->dec = std::move(*d);
  return out;
}

}  // namespace qlora::eval_test
