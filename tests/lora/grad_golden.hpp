// Reading the PyTorch LoRA golden files (tests/data/lora/grad_<case>.safetensors,
// written by tools/gen_lora_grad_golden.py) for the LoRA and trainer tests.
//
// Each file is one tiny random decoder in GGUF conventions with a LoRA adapter
// (random, nonzero A and B on all seven projections of every block), a batch
// of token sequences with an answer mask, and what PyTorch computed in fp32:
// the logits of sequence 0 without and with the adapter, the masked mean
// cross-entropy of the batch, and its gradient with respect to every A and B.
// The generator's docstring is the file contract; read_grad_golden() checks
// every shape against the configuration in __metadata__, so a test that gets
// a GradGolden can index without checking.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/lora/lora_config.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::test {

/// A row-major fp32 tensor in numpy orientation (a projection is [out, in]).
struct GoldenTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> v;
  std::int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  std::int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
};

/// One golden case.
struct GradGolden {
  std::string path;
  model::ModelConfig cfg;       // arch, sizes, RoPE, eps, tied, qkv_bias from __metadata__
  lora::LoraConfig lora;        // rank, alpha, all seven targets, no dropout
  std::map<std::string, std::string> metadata;  // everything in __metadata__
  std::map<std::string, GoldenTensor> base;     // GGUF name -> weight ("blk.0.attn_q.weight")
  // Keyed by projection base name ("blk.0.attn_q"), as LoraAdapter::gguf_base.
  std::map<std::string, GoldenTensor> lora_a, lora_b;  // A [r, in], B [out, r]
  std::map<std::string, GoldenTensor> grad_a, grad_b;  // d loss / d A, d loss / d B
  std::vector<std::vector<std::int32_t>> tokens;       // n_seq sequences, unpadded
  std::vector<std::vector<std::uint8_t>> loss_mask;    // same lengths; mask[t]: tokens[t+1] is an answer token
  GoldenTensor base_logits, lora_logits;               // sequence 0, [T0, n_vocab]
  float loss = 0;                                      // sum of masked CEs / number of masked positions
  // What fp32 costs, measured against a float64 run of the same model:
  // max over tensors of max|x32 - x64| / max|x64|.
  double grad_rel_err_f32 = 0, logits_rel_err_f32 = 0;
  double loss_f64 = 0;
};

/// The cases the generator writes.
inline std::vector<std::string> grad_golden_cases() { return {"llama_gqa", "qwen2_mha"}; }

inline std::string grad_golden_path(const std::string& name) {
  return std::string(QLORA_TEST_DATA_DIR) + "/lora/grad_" + name + ".safetensors";
}

namespace detail {

inline Result<GoldenTensor> golden_f32(const io::SafetensorsFile& f, const std::string& name,
                                       std::vector<std::int64_t> shape) {
  auto bytes = f.get(name, io::StDtype::F32, &shape);
  if (!bytes) return bytes.status();
  GoldenTensor t{std::move(shape), std::vector<float>(bytes->size() / 4)};
  std::memcpy(t.v.data(), bytes->data(), bytes->size());
  return t;
}

inline Result<std::string> golden_meta(const io::SafetensorsFile& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  if (it == f.metadata().end()) return Status::invalid(f.name() + ": __metadata__ has no '" + key + "'");
  return it->second;
}

}  // namespace detail

/// Read and check one golden file.
inline Result<GradGolden> read_grad_golden(const std::string& path) {
  auto file = io::SafetensorsFile::open(path);
  if (!file) return file.status();
  const io::SafetensorsFile& f = *file;
  GradGolden g;
  g.path = path;
  g.metadata = f.metadata();
  auto meta = [&](const std::string& key) { return detail::golden_meta(f, key); };
  auto meta_u32 = [&](const std::string& key, std::uint32_t& out) -> Status {
    auto s = meta(key);
    if (!s) return s.status();
    out = std::uint32_t(std::stoul(*s));
    return Status::ok();
  };
  auto meta_f64 = [&](const std::string& key, double& out) -> Status {
    auto s = meta(key);
    if (!s) return s.status();
    out = std::stod(*s);
    return Status::ok();
  };
  model::ModelConfig& c = g.cfg;
  auto arch = meta("arch");
  if (!arch) return arch.status();
  c.arch = *arch;
  c.name = "golden-" + c.arch;
  QLORA_TRY(meta_u32("n_vocab", c.n_vocab));
  QLORA_TRY(meta_u32("n_embd", c.n_embd));
  QLORA_TRY(meta_u32("n_layer", c.n_layer));
  QLORA_TRY(meta_u32("n_head", c.n_head));
  QLORA_TRY(meta_u32("n_head_kv", c.n_head_kv));
  QLORA_TRY(meta_u32("head_dim", c.head_dim));
  QLORA_TRY(meta_u32("n_rot", c.n_rot));
  QLORA_TRY(meta_u32("n_ff", c.n_ff));
  double theta = 0, eps = 0, alpha = 0;
  QLORA_TRY(meta_f64("rope_theta", theta));
  QLORA_TRY(meta_f64("rms_eps", eps));
  QLORA_TRY(meta_f64("alpha", alpha));
  c.rope_theta = float(theta);
  c.rms_eps = float(eps);
  c.tied_embeddings = meta("tied").is_ok() && *meta("tied") == "true";
  c.qkv_bias = meta("qkv_bias").is_ok() && *meta("qkv_bias") == "true";
  c.rope_style = c.arch == "qwen2" ? model::RopeStyle::kNeox : model::RopeStyle::kNorm;
  c.context_length = 64;  // longer than any golden sequence
  std::uint32_t rank = 0;
  QLORA_TRY(meta_u32("rank", rank));
  g.lora.rank = int(rank);
  g.lora.alpha = float(alpha);
  g.lora.dropout = 0.0f;
  g.lora.targets = lora::kAllTargets;
  QLORA_TRY(c.validate().with_context(path));
  QLORA_TRY(g.lora.validate().with_context(path));
  QLORA_TRY(meta_f64("grad_rel_err_f32", g.grad_rel_err_f32));
  QLORA_TRY(meta_f64("logits_rel_err_f32", g.logits_rel_err_f32));
  QLORA_TRY(meta_f64("loss_f64", g.loss_f64));

  // Base weights: every tensor the config implies, in numpy orientation.
  const std::int64_t E = c.n_embd, V = c.n_vocab, Q = c.q_dim(), KV = c.kv_dim(), r = g.lora.rank;
  auto add_base = [&](const std::string& name, std::vector<std::int64_t> shape) -> Status {
    auto t = detail::golden_f32(f, name, std::move(shape));
    if (!t) return t.status();
    g.base[name] = std::move(*t);
    return Status::ok();
  };
  QLORA_TRY(add_base("token_embd.weight", {V, E}));
  QLORA_TRY(add_base("output_norm.weight", {E}));
  if (!c.tied_embeddings) QLORA_TRY(add_base("output.weight", {V, E}));
  for (std::uint32_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    QLORA_TRY(add_base(b + "attn_norm.weight", {E}));
    QLORA_TRY(add_base(b + "ffn_norm.weight", {E}));
    if (c.qkv_bias) {
      QLORA_TRY(add_base(b + "attn_q.bias", {Q}));
      QLORA_TRY(add_base(b + "attn_k.bias", {KV}));
      QLORA_TRY(add_base(b + "attn_v.bias", {KV}));
    }
    for (const auto& n : lora::kTargetNames) {
      const lora::ProjShape p = lora::proj_shape(c, n.target);
      const std::string base = b + std::string(n.gguf);
      QLORA_TRY(add_base(base + ".weight", {p.out, p.in}));
      for (auto [prefix, map_a, map_b] : {std::tuple{"lora.", &g.lora_a, &g.lora_b},
                                          std::tuple{"grad.", &g.grad_a, &g.grad_b}}) {
        auto a = detail::golden_f32(f, prefix + base + ".lora_a", {r, p.in});
        if (!a) return a.status();
        auto bm = detail::golden_f32(f, prefix + base + ".lora_b", {p.out, r});
        if (!bm) return bm.status();
        (*map_a)[base] = std::move(*a);
        (*map_b)[base] = std::move(*bm);
      }
    }
  }

  // The batch: tokens padded with -1 to [n_seq, T_max], lengths, mask.
  const io::StTensorInfo* tok = f.find("tokens");
  if (!tok || tok->shape.size() != 2) return Status::invalid(path + ": 'tokens' missing or not 2-D");
  const std::int64_t n_seq = tok->shape[0], t_max = tok->shape[1];
  const std::vector<std::int64_t> batch_shape = {n_seq, t_max}, seq_shape = {n_seq};
  auto tokens = f.get("tokens", io::StDtype::I32, &batch_shape);
  auto lengths = f.get("lengths", io::StDtype::I32, &seq_shape);
  auto mask = f.get("loss_mask", io::StDtype::U8, &batch_shape);
  for (const Status& s : {tokens.status(), lengths.status(), mask.status()})
    if (!s.is_ok()) return s;
  for (std::int64_t s = 0; s < n_seq; ++s) {
    std::int32_t len = 0;
    std::memcpy(&len, lengths->data() + 4 * s, 4);
    if (len < 2 || len > t_max) return Status::invalid(path + ": sequence " + std::to_string(s) + " has length " + std::to_string(len));
    std::vector<std::int32_t> ids(static_cast<std::size_t>(t_max));
    std::memcpy(ids.data(), tokens->data() + 4 * s * t_max, std::size_t(4 * t_max));
    const auto* m = reinterpret_cast<const std::uint8_t*>(mask->data()) + s * t_max;
    for (std::int64_t t = 0; t < t_max; ++t) {
      const bool pad = t >= len;
      if (pad ? ids[std::size_t(t)] != -1 : (ids[std::size_t(t)] < 0 || ids[std::size_t(t)] >= std::int32_t(V)))
        return Status::invalid(path + ": tokens[" + std::to_string(s) + "][" + std::to_string(t) + "] = " +
                               std::to_string(ids[std::size_t(t)]));
      if (m[t] > 1 || (m[t] && t >= len - 1))
        return Status::invalid(path + ": loss_mask[" + std::to_string(s) + "][" + std::to_string(t) + "] is out of place");
    }
    ids.resize(std::size_t(len));
    g.tokens.push_back(std::move(ids));
    g.loss_mask.emplace_back(m, m + len);
  }
  if (g.tokens.empty()) return Status::invalid(path + ": no sequence");
  const std::int64_t T0 = std::int64_t(g.tokens[0].size());
  auto base_logits = detail::golden_f32(f, "base_logits", {T0, V});
  if (!base_logits) return base_logits.status();
  auto lora_logits = detail::golden_f32(f, "lora_logits", {T0, V});
  if (!lora_logits) return lora_logits.status();
  auto loss = detail::golden_f32(f, "loss", {1});
  if (!loss) return loss.status();
  g.base_logits = std::move(*base_logits);
  g.lora_logits = std::move(*lora_logits);
  g.loss = loss->v[0];
  return g;
}

/// An adapter laid out for the golden model and configuration, holding the
/// golden A and B (`grads` = false) or their gradients (`grads` = true) —
/// what a trainer's own buffers are compared with.
inline lora::LoraAdapter golden_adapter(const GradGolden& g, bool grads = false) {
  lora::LoraAdapter ad = lora::LoraAdapter::layout(g.cfg, g.lora);
  const auto& ma = grads ? g.grad_a : g.lora_a;
  const auto& mb = grads ? g.grad_b : g.lora_b;
  for (const lora::LoraSlot& s : ad.slots()) {
    const std::string base = lora::LoraAdapter::gguf_base(s);
    std::copy(ma.at(base).v.begin(), ma.at(base).v.end(), ad.a(s));
    std::copy(mb.at(base).v.begin(), mb.at(base).v.end(), ad.b(s));
  }
  return ad;
}

/// The base weights with the adapter merged, W' = W + (alpha/r) B A, computed
/// in double and rounded once — the model a LoRA forward pass must equal.
inline std::map<std::string, GoldenTensor> merged_weights(const GradGolden& g) {
  std::map<std::string, GoldenTensor> w = g.base;
  const double scale = g.lora.scale();
  for (const auto& [base, A] : g.lora_a) {
    const GoldenTensor& B = g.lora_b.at(base);
    GoldenTensor& W = w.at(base + ".weight");
    const std::int64_t out = W.rows(), in = W.cols(), r = A.rows();
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t i = 0; i < in; ++i) {
        double d = 0;
        for (std::int64_t k = 0; k < r; ++k) d += double(B.v[std::size_t(o * r + k)]) * A.v[std::size_t(k * in + i)];
        float& x = W.v[std::size_t(o * in + i)];
        x = float(double(x) + scale * d);
      }
  }
  return w;
}

/// A GGUF image (F32 tensors, the metadata config_from_gguf reads) of the
/// golden configuration with `weights` — g.base or merged_weights(g).
inline Result<std::vector<std::byte>> golden_gguf(const GradGolden& g,
                                                  const std::map<std::string, GoldenTensor>& weights) {
  const model::ModelConfig& c = g.cfg;
  const std::string p = c.arch + ".";
  io::GgufWriter w;
  QLORA_TRY(w.set_string("general.architecture", c.arch));
  QLORA_TRY(w.set_string("general.name", c.name));
  QLORA_TRY(w.set_u32(p + "block_count", c.n_layer));
  QLORA_TRY(w.set_u32(p + "context_length", c.context_length));
  QLORA_TRY(w.set_u32(p + "embedding_length", c.n_embd));
  QLORA_TRY(w.set_u32(p + "feed_forward_length", c.n_ff));
  QLORA_TRY(w.set_u32(p + "attention.head_count", c.n_head));
  QLORA_TRY(w.set_u32(p + "attention.head_count_kv", c.n_head_kv));
  QLORA_TRY(w.set_u32(p + "attention.key_length", c.head_dim));
  QLORA_TRY(w.set_u32(p + "attention.value_length", c.head_dim));
  QLORA_TRY(w.set_u32(p + "rope.dimension_count", c.n_rot));
  QLORA_TRY(w.set_f32(p + "rope.freq_base", c.rope_theta));
  QLORA_TRY(w.set_f32(p + "attention.layer_norm_rms_epsilon", c.rms_eps));
  QLORA_TRY(w.set_u32(p + "vocab_size", c.n_vocab));
  for (const auto& [name, t] : weights) {
    std::vector<std::uint64_t> ne(t.shape.rbegin(), t.shape.rend());  // numpy [out, in] -> ggml ne [in, out]
    QLORA_TRY(w.add_tensor(name, std::move(ne), std::uint32_t(quant::GgmlType::F32),
                           std::as_bytes(std::span<const float>(t.v))));
  }
  return w.write_buffer();
}

}  // namespace qlora::test
