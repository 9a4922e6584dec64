// tests/train/tiny_model.hpp — tiny random decoders (llama or qwen2, GQA or
// MHA, tied or separate head, with or without Q/K/V biases) written as F32
// GGUFs, for the trainer's gradient and training tests.
#pragma once

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "qlora/io/gguf_writer.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::train_test {

struct TinySpec {
  std::string arch = "llama";
  std::uint32_t vocab = 64, embd = 64, layers = 2, heads = 4, kv_heads = 2, head_dim = 16, ff = 128;
  bool tied = true;
  bool bias = false;
  unsigned seed = 7;
  std::string tag = "a";  // file name suffix
};

/// Write the model and return its path. Projections are N(0, 1/in) so
/// activations stay O(1); norms are 1 + small noise.
inline std::string write_tiny_model(const TinySpec& s) {
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  io::GgufWriter w;
  const std::string p = s.arch + ".";
  EXPECT_TRUE(w.set_string("general.architecture", s.arch).is_ok());
  EXPECT_TRUE(w.set_string("general.name", "tiny-train-" + s.tag).is_ok());
  EXPECT_TRUE(w.set_u32(p + "block_count", s.layers).is_ok());
  EXPECT_TRUE(w.set_u32(p + "embedding_length", s.embd).is_ok());
  EXPECT_TRUE(w.set_u32(p + "feed_forward_length", s.ff).is_ok());
  EXPECT_TRUE(w.set_u32(p + "attention.head_count", s.heads).is_ok());
  EXPECT_TRUE(w.set_u32(p + "attention.head_count_kv", s.kv_heads).is_ok());
  EXPECT_TRUE(w.set_u32(p + "attention.key_length", s.head_dim).is_ok());
  EXPECT_TRUE(w.set_u32(p + "attention.value_length", s.head_dim).is_ok());
  EXPECT_TRUE(w.set_u32(p + "rope.dimension_count", s.head_dim).is_ok());
  EXPECT_TRUE(w.set_u32(p + "context_length", 256).is_ok());
  EXPECT_TRUE(w.set_f32(p + "rope.freq_base", 10000.0f).is_ok());
  EXPECT_TRUE(w.set_f32(p + "attention.layer_norm_rms_epsilon", 1e-5f).is_ok());
  EXPECT_TRUE(w.set_u32(p + "vocab_size", s.vocab).is_ok());
  const std::uint64_t E = s.embd, V = s.vocab, Q = s.heads * s.head_dim, KV = s.kv_heads * s.head_dim, F = s.ff;
  static std::vector<std::vector<float>> keep;  // tensors must outlive write_file
  keep.clear();
  auto add = [&](const std::string& name, std::vector<std::uint64_t> ne, float mean, float stdev) {
    std::uint64_t n = 1;
    for (auto d : ne) n *= d;
    auto& v = keep.emplace_back(n);
    for (auto& x : v) x = mean + stdev * g(rng);
    EXPECT_TRUE(w.add_tensor(name, ne, 0, std::as_bytes(std::span<const float>(v))).is_ok()) << name;
  };
  auto proj = [&](const std::string& name, std::uint64_t in, std::uint64_t out) {
    add(name, {in, out}, 0.0f, 1.0f / std::sqrt(float(in)));
  };
  add("token_embd.weight", {E, V}, 0.0f, 1.0f);
  add("output_norm.weight", {E}, 1.0f, 0.1f);
  if (!s.tied) proj("output.weight", E, V);
  for (std::uint32_t l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {E}, 1.0f, 0.1f);
    proj(b + "attn_q.weight", E, Q);
    proj(b + "attn_k.weight", E, KV);
    proj(b + "attn_v.weight", E, KV);
    if (s.bias) {
      add(b + "attn_q.bias", {Q}, 0.0f, 0.1f);
      add(b + "attn_k.bias", {KV}, 0.0f, 0.1f);
      add(b + "attn_v.bias", {KV}, 0.0f, 0.1f);
    }
    proj(b + "attn_output.weight", Q, E);
    add(b + "ffn_norm.weight", {E}, 1.0f, 0.1f);
    proj(b + "ffn_gate.weight", E, F);
    proj(b + "ffn_up.weight", E, F);
    proj(b + "ffn_down.weight", F, E);
  }
  const std::string path =
      (test::process_temp_dir("qlora_train") / ("tiny_" + s.arch + "_" + s.tag + ".gguf")).string();
  EXPECT_TRUE(w.write_file(path).is_ok());
  return path;
}

}  // namespace qlora::train_test
