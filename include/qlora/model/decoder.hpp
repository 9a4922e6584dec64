// qlora/model/decoder.hpp — the llama/qwen2 decoder forward pass on the CPU.
//
//   x = embed(tokens)
//   for each layer:  h = rmsnorm(x) * attn_norm
//                    q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv);  rope(q, k)
//                    append k, v to the cache;  x += attention(q, cache) Wo
//                    h = rmsnorm(x) * ffn_norm;  x += (silu(h Wgate) * h Wup) Wdown
//   logits = rmsnorm(x) * output_norm · Woutput (token_embd when tied)
//
// Weights are used in the file's format through cpu::matmul (quantized dot
// products, never a dequantized copy of the model). Attention<A> (MHA or GQA)
// is a template parameter of the forward pass; which one runs is decided from
// the GGUF's head counts when the decoder opens.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"
#include "qlora/cpu/f16_convert.hpp"
#include "qlora/cpu/matmul.hpp"
#include "qlora/cpu/simd_f32.hpp"
#include "qlora/cpu/vec_exp.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/model/attention_policy.hpp"
#include "qlora/model/kv_cache.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/model/rms_norm.hpp"
#include "qlora/model/rope.hpp"
#include "qlora/model/weights.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::model {

/// The seven projections of a layer, in the order of lora::Target.
enum class Projection : std::uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };

/// A term added to a projection's output after the base product — a LoRA
/// adapter applied at run time (lora/runtime_lora.hpp), as llama.cpp's
/// --lora and Ollama's ADAPTER apply one without merging it. `x` holds the
/// projection's n input rows, `y` its n output rows (bias not yet added).
class ProjectionAddend {
 public:
  virtual ~ProjectionAddend() = default;
  virtual Status add(std::uint32_t layer, Projection p, const float* x, std::int64_t n, float* y) const = 0;
};

struct DecoderOptions {
  std::uint32_t n_ctx = 2048;   // KV cache positions (capped at the model's context length)
  ThreadPool* pool = nullptr;   // default: ThreadPool::global()
};

class Decoder {
 public:
  /// Bind `f`'s tensors (the GgufFile must outlive the decoder) and allocate
  /// the KV cache. Errors name the file and the missing or malformed tensor.
  static Result<Decoder> open(const io::GgufFile& f, const DecoderOptions& opt = {}) {
    auto cfg = config_from_gguf(f);
    if (!cfg) return cfg.status();
    auto w = bind_weights(f, *cfg);
    if (!w) return w.status();
    Decoder d;
    d.cfg_ = std::move(*cfg);
    d.w_ = std::move(*w);
    d.pool_ = opt.pool ? opt.pool : &ThreadPool::global();
    const std::uint32_t n_ctx = opt.n_ctx < d.cfg_.context_length ? opt.n_ctx : d.cfg_.context_length;
    d.cache_ = KvCache(d.cfg_, n_ctx);
    d.gqa_ = d.cfg_.is_gqa();
    return d;
  }

  const ModelConfig& config() const { return cfg_; }
  KvCache& cache() { return cache_; }
  const KvCache& cache() const { return cache_; }
  /// Add `a` (null: nothing) to every projection from the next forward on;
  /// `a` must outlive its use. Clear the cache when switching mid-sequence.
  void set_addend(const ProjectionAddend* a) { addend_ = a; }
  const ProjectionAddend* addend() const { return addend_; }
  /// Which Attention policy runs: "gqa" or "mha".
  std::string_view attention() const { return gqa_ ? Attention<attn::GQA>::kName : Attention<attn::MHA>::kName; }

  /// Evaluate `tokens` at positions cache().size() onward and append their
  /// K/V to the cache. `logits` receives n_vocab values per token when
  /// `all_logits`, else only the last token's.
  Status forward(std::span<const std::int32_t> tokens, std::vector<float>& logits, bool all_logits = false) {
    return gqa_ ? forward_impl<attn::GQA>(tokens, logits, all_logits)
                : forward_impl<attn::MHA>(tokens, logits, all_logits);
  }

 private:
  Status linear(const TensorRef& w, const float* x, std::int64_t n, float* y) const {
    return cpu::matmul(w.type, w.data, w.rows, w.cols, x, n, y, *pool_).with_context(w.name);
  }

  /// The base product, then the addend's term (a LoRA branch) when set.
  Status project(std::uint32_t layer, Projection p, const TensorRef& w, const float* x, std::int64_t n,
                 float* y) const {
    QLORA_TRY(linear(w, x, n, y));
    return addend_ ? addend_->add(layer, p, x, n, y) : Status::ok();
  }

  static void add_bias(const TensorRef& b, float* y, std::int64_t n, std::int64_t dim) {
    if (!b) return;
    const auto* bias = static_cast<const float*>(b.data);
    for (std::int64_t t = 0; t < n; ++t)
      for (std::int64_t i = 0; i < dim; ++i) y[t * dim + i] += bias[i];
  }

  template <class A>
  Status forward_impl(std::span<const std::int32_t> tokens, std::vector<float>& logits, bool all_logits) {
    const ModelConfig& c = cfg_;
    const std::int64_t N = std::int64_t(tokens.size());
    if (N == 0) return Status::invalid("forward: no tokens");
    const std::uint32_t pos0 = cache_.size();
    if (pos0 + std::uint64_t(N) > cache_.capacity())
      return Status::invalid("forward: " + std::to_string(pos0 + N) + " positions exceed the context of " +
                             std::to_string(cache_.capacity()));
    QLORA_TRY(Attention<A>::check(c));
    const std::int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff, V = c.n_vocab;
    const int hd = int(c.head_dim), n_rot = int(c.n_rot);
    const bool neox = c.rope_style == RopeStyle::kNeox;
    const auto* freq = w_.rope_freqs ? static_cast<const float*>(w_.rope_freqs.data) : nullptr;

    x_.resize(std::size_t(N * E));
    h_.resize(x_.size());
    q_.resize(std::size_t(N * Q));
    k_.resize(std::size_t(N * KV));
    v_.resize(std::size_t(N * KV));
    att_.resize(std::size_t(N * Q));
    gate_.resize(std::size_t(N * F));
    up_.resize(std::size_t(N * F));
    rope_cs_.resize(std::size_t(N) * std::size_t(n_rot));

    for (std::int64_t t = 0; t < N; ++t) {
      const std::int32_t id = tokens[std::size_t(t)];
      if (id < 0 || id >= std::int32_t(V))
        return Status::invalid("forward: token id " + std::to_string(id) + " at index " + std::to_string(t) +
                               " is outside the vocabulary of " + std::to_string(V));
      QLORA_TRY(quant::dequantize_row(w_.token_embd.type, w_.token_embd.row(id), x_.data() + t * E, E));
      rope_cos_sin(std::int64_t(pos0) + t, n_rot, c.rope_theta, freq, rope_cs_.data() + t * n_rot);
    }

    // Rows whose logits are wanted. As llama.cpp does (its graph's
    // inp_out_ids), the last layer's feed-forward block runs on these rows
    // only: the other rows' results feed nothing (their K/V are cached
    // before it). Besides the saved work this keeps llama.cpp's batch sizes,
    // and so its kernels' rounding (cpu/matmul.hpp), in that block.
    const std::int64_t first = all_logits ? 0 : N - 1;
    for (std::uint32_t l = 0; l < c.n_layer; ++l) {
      const LayerWeights& L = w_.layers[l];
      for (std::int64_t t = 0; t < N; ++t)
        rms_norm_row(x_.data() + t * E, static_cast<const float*>(L.attn_norm.data), h_.data() + t * E, E, c.rms_eps);
      QLORA_TRY(project(l, Projection::kQ, L.wq, h_.data(), N, q_.data()));
      QLORA_TRY(project(l, Projection::kK, L.wk, h_.data(), N, k_.data()));
      QLORA_TRY(project(l, Projection::kV, L.wv, h_.data(), N, v_.data()));
      add_bias(L.bq, q_.data(), N, Q);
      add_bias(L.bk, k_.data(), N, KV);
      add_bias(L.bv, v_.data(), N, KV);
      for (std::int64_t t = 0; t < N; ++t) {
        const float* cs = rope_cs_.data() + t * n_rot;
        for (std::uint32_t h = 0; h < c.n_head; ++h) rope_apply(q_.data() + t * Q + h * hd, n_rot, cs, neox);
        for (std::uint32_t h = 0; h < c.n_head_kv; ++h) rope_apply(k_.data() + t * KV + h * hd, n_rot, cs, neox);
        cpu::f32_to_fp16_row(k_.data() + t * KV, cache_.k_row(l, pos0 + std::uint32_t(t)), KV);
        cpu::f32_to_fp16_row(v_.data() + t * KV, cache_.v_row(l, pos0 + std::uint32_t(t)), KV);
      }
      attend<A>(l, pos0, N);
      QLORA_TRY(project(l, Projection::kO, L.wo, att_.data(), N, h_.data()));
      for (std::size_t i = 0; i < x_.size(); ++i) x_[i] += h_[i];

      const std::int64_t f0 = l + 1 == c.n_layer ? first : 0, nf = N - f0;  // feed-forward rows
      float* xf = x_.data() + f0 * E;
      for (std::int64_t t = 0; t < nf; ++t)
        rms_norm_row(xf + t * E, static_cast<const float*>(L.ffn_norm.data), h_.data() + t * E, E, c.rms_eps);
      QLORA_TRY(project(l, Projection::kGate, L.w_gate, h_.data(), nf, gate_.data()));
      QLORA_TRY(project(l, Projection::kUp, L.w_up, h_.data(), nf, up_.data()));
      for (std::int64_t t = 0; t < nf; ++t)  // per row, as ggml (a row's tail would use libm's expf)
        cpu::swiglu_row(gate_.data() + t * F, up_.data() + t * F, gate_.data() + t * F, F);
      QLORA_TRY(project(l, Projection::kDown, L.w_down, gate_.data(), nf, h_.data()));
      for (std::int64_t i = 0; i < nf * E; ++i) xf[i] += h_[std::size_t(i)];
    }
    cache_.advance(std::uint32_t(N));

    const std::int64_t n_out = N - first;
    for (std::int64_t t = first; t < N; ++t)
      rms_norm_row(x_.data() + t * E, static_cast<const float*>(w_.output_norm.data), h_.data() + (t - first) * E, E,
                   c.rms_eps);
    logits.resize(std::size_t(n_out * V));
    return linear(w_.output, h_.data(), n_out, logits.data());
  }

  /// Causal attention of the N new tokens over every cached position up to
  /// their own, one (token, query head) pair per work item. A GQA query head
  /// reads the K/V head it shares through Attention<A>::kv_head — in place, no
  /// copy per query head: the layer's fp16 cache rows are widened to fp32 once
  /// per call (shared by every query head of a group and every new token), K
  /// transposed so that Q·K runs across keys (cpu::dot_f32_keys).
  ///
  /// The arithmetic is llama.cpp's (non-flash attention, fp16 KV cache), to
  /// the bit, because on quantized models any difference here flips 8-bit
  /// activation codes downstream (cpu/vec_exp.hpp):
  ///  - Q is rounded to fp16 before Q·K, the probabilities before P·V (ggml
  ///    converts the f32 operand of an f16 product to fp16);
  ///  - Q·K and P·V sum in ggml's order for the batch size: tinyBLAS for two
  ///    or more tokens, ggml_vec_dot_f16 for one (cpu/simd_f32.hpp);
  ///  - scores are Q·K * 1/sqrt(head_dim), softmaxed with ggml's exp and sums
  ///    (cpu/vec_exp.hpp) over rows padded with -inf to whole vectors, as
  ///    llama.cpp's masked KV length (a multiple of 256) pads them.
  template <class A>
  void attend(std::uint32_t layer, std::uint32_t pos0, std::int64_t N) {
    const ModelConfig& c = cfg_;
    const int hd = int(c.head_dim);
    const std::int64_t Q = c.q_dim(), KV = c.kv_dim();
    const std::uint32_t n_pos = pos0 + std::uint32_t(N);
    // K transposed (element e of position j at kt_[e * ldk + j]) for the
    // key-vectorised Q·K; V in rows for P·V.
    const std::size_t ldk = (std::size_t(n_pos) + cpu::kKeyStep - 1) / cpu::kKeyStep * cpu::kKeyStep;
    kt_.resize(std::size_t(KV) * ldk);
    vf_.resize(std::size_t(n_pos) * std::size_t(KV));
    parallel_for(std::size_t(KV), 16, [&](std::size_t e0, std::size_t e1) {
      float wide[64];
      for (std::size_t j = 0; j < n_pos; ++j)
        for (std::size_t b = e0; b < e1; b += 64) {
          const std::size_t nb = std::min<std::size_t>(64, e1 - b);
          cpu::fp16_to_f32_row(cache_.k_row(layer, std::uint32_t(j)) + b, wide, std::int64_t(nb));
          for (std::size_t e = 0; e < nb; ++e) kt_[(b + e) * ldk + j] = wide[e];
        }
      for (std::size_t e = e0; e < e1; ++e)
        for (std::size_t j = n_pos; j < ldk; ++j) kt_[e * ldk + j] = 0.0f;
    }, *pool_);
    parallel_for(n_pos, 64, [&](std::size_t begin, std::size_t end) {
      for (std::size_t j = begin; j < end; ++j)
        cpu::fp16_to_f32_row(cache_.v_row(layer, std::uint32_t(j)), vf_.data() + j * std::size_t(KV), KV);
    }, *pool_);
    const float scale = 1.0f / std::sqrt(float(hd));
    const cpu::SumOrder order = N >= 2 ? cpu::SumOrder::kBatched : cpu::SumOrder::kSingleToken;
    const std::size_t items = std::size_t(N) * c.n_head;
    const std::size_t pad = std::size_t(cpu::kExpLanes);
    parallel_for(items, 1, [&](std::size_t begin, std::size_t end) {
      std::vector<float> scores(std::max((n_pos + pad - 1) / pad * pad, ldk));
      std::vector<float> qr(static_cast<std::size_t>(hd));
      std::vector<float> lanes;
      for (std::size_t it = begin; it < end; ++it) {
        const std::int64_t t = std::int64_t(it / c.n_head);
        const std::uint32_t h = std::uint32_t(it % c.n_head);
        const std::int64_t kv_off = std::int64_t(Attention<A>::kv_head(h, c.n_gqa())) * hd;
        const std::uint32_t n_keys = pos0 + std::uint32_t(t) + 1;  // causal: up to and including itself
        const float* q_src = q_.data() + t * Q + std::int64_t(h) * hd;
        cpu::round_to_fp16_row(q_src, qr.data(), hd);
        cpu::dot_f32_keys(qr.data(), kt_.data() + std::size_t(kv_off) * ldk, std::int64_t(ldk), hd, n_keys, scale,
                          scores.data(), order);
        const std::size_t n_pad = (n_keys + pad - 1) / pad * pad;
        for (std::size_t j = n_keys; j < n_pad; ++j) scores[j] = -INFINITY;  // masked: exp gives exactly 0
        cpu::softmax_row(scores.data(), std::int64_t(n_pad));
        cpu::round_to_fp16_row(scores.data(), scores.data(), n_keys);
        cpu::weighted_rows_f32(scores.data(), vf_.data() + kv_off, KV, n_keys, att_.data() + t * Q + std::int64_t(h) * hd,
                               hd, order, lanes);
      }
    }, *pool_);
  }

  ModelConfig cfg_;
  DecoderWeights w_;
  KvCache cache_;
  ThreadPool* pool_ = nullptr;
  bool gqa_ = true;
  const ProjectionAddend* addend_ = nullptr;
  // Activations, reused across calls so steady-state decoding does not allocate.
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, rope_cs_;
  std::vector<float> kt_, vf_;  // the current layer's K (transposed) and V cache rows widened to fp32
};

}  // namespace qlora::model
