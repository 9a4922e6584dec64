// qlora/train/trainable_decoder.hpp — forward and backward passes of a
// llama/qwen2 decoder with a frozen base and a trainable LoRA adapter.
//
// Per block (the same computation as model/decoder.hpp, in fp32, without the
// KV cache: a training sequence is seen whole and causally masked):
//
//   h1 = rmsnorm(x) · g1
//   q, k, v = h1 Wq (+bq) + LoRA_q(h1), ...;  rope(q, k)
//   a = softmax(q k^T / sqrt(hd) + causal) v          (GQA: kv head = q head / n_gqa)
//   x' = x + a Wo + LoRA_o(a)
//   h2 = rmsnorm(x') · g2
//   x'' = x' + (silu(h2 Wg + LoRA_g) · (h2 Wu + LoRA_u)) Wd + LoRA_d(...)
//
// followed by the final norm, the output head (tied or not) and the masked
// cross-entropy (train/cross_entropy.hpp). Backward runs the blocks in reverse
// and produces gradients for the adapter ONLY: the base weights, norms,
// embeddings and head are frozen, so their gradients are never formed; the
// gradient flows through them to the adapters below (frozen_product.hpp gives
// dX = dY W with W dequantized panel by panel).
//
// Memory: per block the inputs each backward step needs are kept (residual
// input, normed inputs, q/k/v, attention output, gate/up, LoRA's U) —
// about N·(4E + 2Q + 2KV + 3F) floats. Attention probabilities are recomputed
// in the backward pass instead of stored (N² per head). With
// gradient_checkpointing only each block's input is kept and the block's
// forward is recomputed during backward (one extra forward, ~1/3 more work).
//
// Only the positions that are scored (mask = 1) go through the output head:
// the head is the largest product of a small model (SmolLM2: 49152 x 576) and
// the question tokens would only be thrown away.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/core/rng.hpp"
#include "qlora/core/status.hpp"
#include "qlora/cpu/gemm.hpp"
#include "qlora/cpu/gemm_f32.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/lora/lora_product.hpp"
#include "qlora/model/attention_policy.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/model/rms_norm.hpp"
#include "qlora/model/rope.hpp"
#include "qlora/model/softmax.hpp"
#include "qlora/model/swiglu.hpp"
#include "qlora/model/weights.hpp"
#include "qlora/train/cross_entropy.hpp"
#include "qlora/train/frozen_matrix.hpp"
#include "qlora/train/frozen_product.hpp"
#include "qlora/train/layer_backward.hpp"

namespace qlora::train {

struct TrainableOptions {
  BaseStorage storage = BaseStorage::kNf4;  // how the seven projections are held
  bool gradient_checkpointing = false;      // recompute each block's forward in backward
  // Precision of the frozen-weight products (projections, head) and of the
  // attention products: bf16 operands with fp32 accumulation, as the paper
  // trains, where the CPU has AVX512_BF16; fp32 otherwise (a bf16 request
  // falls back; see compute()). LoRA's own products stay fp32.
  cpu::Compute compute = cpu::default_compute();
  ThreadPool* pool = nullptr;               // default: ThreadPool::global()
};

/// Loss of one sequence: the summed NLL of its scored tokens and their count.
struct SeqLoss {
  double nll_sum = 0.0;
  std::int64_t n_scored = 0;
};

/// Dropout on the LoRA branch's input (PEFT's lora_dropout): element i of the
/// input of (layer, target) in micro-step `key` is kept with probability 1-p
/// and scaled by 1/(1-p). Counter-based, so the backward pass regenerates the
/// same mask instead of storing it.
struct LoraDropout {
  float p = 0.0f;
  std::uint64_t key = 0;
  bool active() const { return p > 0.0f; }
};

class TrainableDecoder {
 public:
  /// Bind the GGUF's tensors (the GgufFile must outlive the decoder) and
  /// convert the seven projections of every block to opt.storage.
  static Result<TrainableDecoder> open(const io::GgufFile& f, const TrainableOptions& opt = {}) {
    auto cfg = model::config_from_gguf(f);
    if (!cfg) return cfg.status();
    auto w = model::bind_weights(f, *cfg);
    if (!w) return w.status();
    TrainableDecoder d;
    d.cfg_ = std::move(*cfg);
    d.opt_ = opt;
    d.opt_.compute = cpu::resolve_compute(opt.compute);
    d.pool_ = opt.pool ? opt.pool : &ThreadPool::global();
    d.embd_ = FrozenMatrix::view(w->token_embd);
    d.head_ = FrozenMatrix::view(w->output);
    d.output_norm_ = static_cast<const float*>(w->output_norm.data);
    d.rope_freqs_ = w->rope_freqs ? static_cast<const float*>(w->rope_freqs.data) : nullptr;
    d.layers_.resize(d.cfg_.n_layer);
    for (std::uint32_t l = 0; l < d.cfg_.n_layer; ++l) {
      const model::LayerWeights& L = w->layers[l];
      Layer& o = d.layers_[l];
      o.attn_norm = static_cast<const float*>(L.attn_norm.data);
      o.ffn_norm = static_cast<const float*>(L.ffn_norm.data);
      o.bq = L.bq ? static_cast<const float*>(L.bq.data) : nullptr;
      o.bk = L.bk ? static_cast<const float*>(L.bk.data) : nullptr;
      o.bv = L.bv ? static_cast<const float*>(L.bv.data) : nullptr;
      const model::TensorRef* src[lora::kNumTargets] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
      for (int t = 0; t < lora::kNumTargets; ++t) {
        if (opt.storage == BaseStorage::kFileFormat) {
          o.w[t] = FrozenMatrix::view(*src[t]);
        } else {
          auto m = FrozenMatrix::to_nf4(*src[t], opt.storage == BaseStorage::kNf4, *d.pool_);
          if (!m) return m.status().with_context(f.name());
          o.w[t] = std::move(*m);
        }
      }
    }
    return d;
  }

  const model::ModelConfig& config() const { return cfg_; }
  ThreadPool& pool() const { return *pool_; }
  /// The precision the products actually run in (the option, resolved).
  cpu::Compute compute() const { return opt_.compute; }
  /// Bytes of the frozen projections as held (NF4 blocks or file bytes).
  std::size_t projection_bytes() const {
    std::size_t b = 0;
    for (const Layer& L : layers_)
      for (const FrozenMatrix& m : L.w) b += m.bytes();
    return b;
  }

  /// Forward and backward of one sequence. mask[t] = 1 scores the prediction
  /// of tokens[t+1] from tokens[0..t] (mask has tokens.size() - 1 entries).
  /// Adds loss_weight-scaled gradients of the adapter's parameters into
  /// `grads` (the layout of adapter.params()).
  Result<SeqLoss> forward_backward(std::span<const std::int32_t> tokens, std::span<const std::uint8_t> mask,
                                   const lora::LoraAdapter& adapter, std::span<float> grads, float loss_weight,
                                   const LoraDropout& dropout = {}) {
    QLORA_TRY(check_inputs(tokens, mask, &adapter));
    if (grads.size() != adapter.params().size())
      return Status::invalid("forward_backward: gradient buffer has " + std::to_string(grads.size()) +
                             " values, the adapter " + std::to_string(adapter.params().size()));
    return lora::dispatch_rank(adapter.rank(), [&]<int R>() -> Result<SeqLoss> {
      return gqa_dispatch([&]<class A>() { return run<R, A>(tokens, mask, &adapter, grads.data(), loss_weight, dropout); });
    });
  }

  /// The sequence's loss without gradients or dropout (held-out evaluation).
  /// adapter == nullptr evaluates the base model.
  Result<SeqLoss> loss(std::span<const std::int32_t> tokens, std::span<const std::uint8_t> mask,
                       const lora::LoraAdapter* adapter) {
    QLORA_TRY(check_inputs(tokens, mask, adapter));
    const int rank = adapter ? adapter->rank() : 0;
    return lora::dispatch_rank(rank, [&]<int R>() -> Result<SeqLoss> {
      return gqa_dispatch([&]<class A>() { return run<R, A>(tokens, mask, adapter, nullptr, 1.0f, LoraDropout{}); });
    });
  }

 private:
  using Target = lora::Target;
  static constexpr int kT = lora::kNumTargets;

  struct Layer {
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
    std::array<FrozenMatrix, lora::kNumTargets> w;  // indexed by lora::Target
  };

  /// What one block's backward pass needs from its forward pass.
  struct Acts {
    std::vector<float> x_in;       // [N,E] block input (residual stream)
    std::vector<float> rinv1;      // [N]   rms_inv of x_in
    std::vector<float> h1;         // [N,E] attention input
    std::vector<float> q, k, v;    // [N,Q] [N,KV] [N,KV] after bias and RoPE
    std::vector<float> att;        // [N,Q] attention output (o-proj input)
    std::vector<float> x_mid;      // [N,E] after the attention residual
    std::vector<float> rinv2;      // [N]
    std::vector<float> h2;         // [N,E] MLP input
    std::vector<float> gate, up;   // [N,F] before the activation
    std::vector<float> act;        // [N,F] silu(gate)·up (down-proj input)
    std::array<std::vector<float>, lora::kNumTargets> u;  // [N,r] LoRA's U per target
  };

  template <class Fn>
  Result<SeqLoss> gqa_dispatch(Fn&& fn) {
    if (cfg_.is_gqa()) return fn.template operator()<model::attn::GQA>();
    return fn.template operator()<model::attn::MHA>();
  }

  Status check_inputs(std::span<const std::int32_t> tokens, std::span<const std::uint8_t> mask,
                      const lora::LoraAdapter* adapter) const {
    if (tokens.size() < 2) return Status::invalid("training sequence needs at least 2 tokens");
    if (mask.size() + 1 != tokens.size())
      return Status::invalid("loss mask has " + std::to_string(mask.size()) + " entries for " +
                             std::to_string(tokens.size()) + " tokens (needs tokens - 1)");
    for (std::size_t t = 0; t < tokens.size(); ++t)
      if (tokens[t] < 0 || std::uint32_t(tokens[t]) >= cfg_.n_vocab)
        return Status::invalid("token id " + std::to_string(tokens[t]) + " at index " + std::to_string(t) +
                               " is outside the vocabulary of " + std::to_string(cfg_.n_vocab));
    if (tokens.size() > cfg_.context_length)
      return Status::invalid("sequence of " + std::to_string(tokens.size()) + " tokens exceeds the context of " +
                             std::to_string(cfg_.context_length));
    if (adapter) {
      const model::ModelConfig& m = adapter->model();
      if (m.n_layer != cfg_.n_layer || m.n_embd != cfg_.n_embd || m.q_dim() != cfg_.q_dim() ||
          m.kv_dim() != cfg_.kv_dim() || m.n_ff != cfg_.n_ff)
        return Status::invalid("the adapter was made for a model of different shape (" + m.name + ") than " +
                               cfg_.name);
    }
    return Status::ok();
  }

  static float* grow(std::vector<float>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
  }

  // ------------------------------------------------------------------ projections

  /// The LoRA branch's input: X itself, or X with dropout applied (into buf).
  const float* lora_input(const LoraDropout& dr, std::uint32_t l, Target t, const float* X, std::int64_t N,
                          std::int64_t in, std::vector<float>& buf) const {
    if (!dr.active()) return X;
    float* xd = grow(buf, std::size_t(N * in));
    const float keep = 1.0f / (1.0f - dr.p);
    const std::uint64_t stream = std::uint64_t(l) * kT + std::uint64_t(t);
    for (std::int64_t i = 0; i < N * in; ++i)
      xd[i] = uniform01_f32(hash3(dr.key, stream, std::uint64_t(i))) < dr.p ? 0.0f : X[i] * keep;
    return xd;
  }

  /// Y = X W^T (+ bias) + LoRA(X); U (LoRA's [N,r]) is stored in a.u[t].
  template <int R>
  void project(std::uint32_t l, Target t, const float* X, std::int64_t N, float* Y, const float* bias,
               const lora::LoraAdapter* ad, const LoraDropout& dr, Acts& a) {
    const FrozenMatrix& W = layers_[l].w[std::size_t(t)];
    frozen_forward(W, X, N, Y, *pool_, opt_.compute);
    if (bias)
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < W.rows(); ++i) Y[n * W.rows() + i] += bias[i];
    const lora::LoraSlot* s = ad ? ad->find(l, t) : nullptr;
    if (!s) return;
    const lora::LoraDims d{N, s->in, s->out, ad->rank(), ad->scale()};
    const float* xd = lora_input(dr, l, t, X, N, s->in, drop_buf_);
    float* U = grow(a.u[std::size_t(t)], std::size_t(N * d.rank));
    lora::lora_forward<R>(d, xd, ad->a(*s), ad->b(*s), U, Y, *pool_);
  }

  /// dX (+)= dY W + LoRA's input gradient; LoRA's dA, dB accumulate into grads.
  template <int R>
  void project_backward(std::uint32_t l, Target t, const float* X, const float* dY, std::int64_t N, float* dX,
                        bool accumulate, const lora::LoraAdapter* ad, float* grads, const LoraDropout& dr,
                        const Acts& a) {
    const FrozenMatrix& W = layers_[l].w[std::size_t(t)];
    frozen_backward_input(W, dY, N, dX, accumulate, *pool_, opt_.compute);
    const lora::LoraSlot* s = ad ? ad->find(l, t) : nullptr;
    if (!s) return;
    const lora::LoraDims d{N, s->in, s->out, ad->rank(), ad->scale()};
    const float* xd = lora_input(dr, l, t, X, N, s->in, drop_buf_);
    float* G = grow(g_buf_, std::size_t(N * d.rank));
    float* dxd = dr.active() ? grow(dxd_buf_, std::size_t(N * d.in)) : dX;
    if (dr.active()) std::fill(dxd, dxd + N * d.in, 0.0f);
    lora::lora_backward<R>(d, dY, xd, a.u[std::size_t(t)].data(), ad->a(*s), ad->b(*s), grads + s->a_off,
                           grads + s->b_off, G, dxd, *pool_);
    if (dr.active()) {
      // d(dropout)/dx: the kept elements' scale, zero where dropped — xd/x.
      const float keep = 1.0f / (1.0f - dr.p);
      const std::uint64_t stream = std::uint64_t(l) * kT + std::uint64_t(t);
      for (std::int64_t i = 0; i < N * d.in; ++i)
        if (!(uniform01_f32(hash3(dr.key, stream, std::uint64_t(i))) < dr.p)) dX[i] += dxd[i] * keep;
    }
  }

  // ------------------------------------------------------------------ attention

  /// P = causal softmax(Qh Kg^T · scale) for query head h, into P [N,N].
  void attention_probs(const Acts& a, std::int64_t N, std::uint32_t h, std::uint32_t g, float* P) const {
    const std::int64_t hd = cfg_.head_dim, Q = cfg_.q_dim(), KV = cfg_.kv_dim();
    const float scale = 1.0f / std::sqrt(float(hd));
    cpu::gemm(opt_.compute, cpu::Op::kN, cpu::Op::kT, N, N, hd, scale, a.q.data() + h * hd, Q, a.k.data() + g * hd, KV, 0.0f,
                  P, N);
    for (std::int64_t t = 0; t < N; ++t) {
      float* row = P + t * N;
      model::softmax_row(row, t + 1);
      std::fill(row + t + 1, row + N, 0.0f);
    }
  }

  template <class A>
  void attention_forward(Acts& a, std::int64_t N) {
    const std::int64_t hd = cfg_.head_dim, Q = cfg_.q_dim(), KV = cfg_.kv_dim();
    parallel_for(cfg_.n_head, 1, [&](std::size_t h0, std::size_t h1) {
      float* P = grow(tls_p(), std::size_t(N * N));
      for (std::size_t h = h0; h < h1; ++h) {
        const std::uint32_t g = model::Attention<A>::kv_head(std::uint32_t(h), cfg_.n_gqa());
        attention_probs(a, N, std::uint32_t(h), g, P);
        cpu::gemm(opt_.compute, cpu::Op::kN, cpu::Op::kN, N, hd, N, 1.0f, P, N, a.v.data() + g * hd, KV, 0.0f,
                      a.att.data() + std::int64_t(h) * hd, Q);
      }
    }, *pool_);
  }

  /// From d_att [N,Q]: dq [N,Q], dk and dv [N,KV] (w.r.t. post-RoPE q, k).
  /// Query heads run in parallel, each writing its own dK/dV partial; the
  /// partials of a KV group are then summed in head order (deterministic).
  template <class A>
  void attention_backward(const Acts& a, std::int64_t N, const float* d_att, float* dq, float* dk, float* dv) {
    const std::int64_t hd = cfg_.head_dim, Q = cfg_.q_dim(), KV = cfg_.kv_dim();
    const float scale = 1.0f / std::sqrt(float(hd));
    const std::size_t part = std::size_t(N * hd);
    float* dk_part = grow(dk_part_, part * cfg_.n_head);
    float* dv_part = grow(dv_part_, part * cfg_.n_head);
    parallel_for(cfg_.n_head, 1, [&](std::size_t h0, std::size_t h1) {
      float* P = grow(tls_p(), std::size_t(N * N));
      float* dP = grow(tls_dp(), std::size_t(N * N));
      for (std::size_t h = h0; h < h1; ++h) {
        const std::uint32_t g = model::Attention<A>::kv_head(std::uint32_t(h), cfg_.n_gqa());
        const float* dO = d_att + std::int64_t(h) * hd;
        attention_probs(a, N, std::uint32_t(h), g, P);
        // dV_h = P^T dO;  dP = dO V^T;  dS = softmax'(dP);  dQ = dS K·s;  dK_h = dS^T Q·s.
        cpu::gemm(opt_.compute, cpu::Op::kT, cpu::Op::kN, N, hd, N, 1.0f, P, N, dO, Q, 0.0f, dv_part + h * part, hd);
        cpu::gemm(opt_.compute, cpu::Op::kN, cpu::Op::kT, N, N, hd, 1.0f, dO, Q, a.v.data() + g * hd, KV, 0.0f, dP, N);
        for (std::int64_t t = 0; t < N; ++t) {
          softmax_backward_row(P + t * N, dP + t * N, t + 1);
          std::fill(dP + t * N + t + 1, dP + (t + 1) * N, 0.0f);
        }
        cpu::gemm(opt_.compute, cpu::Op::kN, cpu::Op::kN, N, hd, N, scale, dP, N, a.k.data() + g * hd, KV, 0.0f,
                      dq + std::int64_t(h) * hd, Q);
        cpu::gemm(opt_.compute, cpu::Op::kT, cpu::Op::kN, N, hd, N, scale, dP, N, a.q.data() + std::int64_t(h) * hd, Q, 0.0f,
                      dk_part + h * part, hd);
      }
    }, *pool_);
    std::fill(dk, dk + N * KV, 0.0f);
    std::fill(dv, dv + N * KV, 0.0f);
    for (std::uint32_t h = 0; h < cfg_.n_head; ++h) {
      const std::uint32_t g = model::Attention<A>::kv_head(h, cfg_.n_gqa());
      for (std::int64_t t = 0; t < N; ++t)
        for (std::int64_t i = 0; i < hd; ++i) {
          dk[t * KV + g * hd + i] += dk_part[h * part + std::size_t(t * hd + i)];
          dv[t * KV + g * hd + i] += dv_part[h * part + std::size_t(t * hd + i)];
        }
    }
  }

  static std::vector<float>& tls_p() {
    thread_local std::vector<float> v;
    return v;
  }
  static std::vector<float>& tls_dp() {
    thread_local std::vector<float> v;
    return v;
  }

  // ------------------------------------------------------------------ blocks

  void apply_rope(float* x, std::int64_t N, std::int64_t dim, std::uint32_t heads, bool backward) const {
    const int hd = int(cfg_.head_dim), n_rot = int(cfg_.n_rot);
    const bool neox = cfg_.rope_style == model::RopeStyle::kNeox;
    for (std::int64_t t = 0; t < N; ++t) {
      const float* cs = rope_cs_.data() + t * n_rot;
      for (std::uint32_t h = 0; h < heads; ++h) {
        float* v = x + t * dim + std::int64_t(h) * hd;
        if (backward) rope_backward(v, n_rot, cs, neox);
        else model::rope_apply(v, n_rot, cs, neox);
      }
    }
  }

  void norm_rows(const float* x, const float* w, float* rinv, float* h, std::int64_t N) const {
    const std::int64_t E = cfg_.n_embd;
    for (std::int64_t t = 0; t < N; ++t) {
      rinv[t] = model::rms_inv(x + t * E, E, cfg_.rms_eps);
      for (std::int64_t i = 0; i < E; ++i) h[t * E + i] = (x[t * E + i] * rinv[t]) * w[i];
    }
  }

  /// One block forward from a.x_in; writes the block output to x_out.
  template <int R, class A>
  void block_forward(std::uint32_t l, std::int64_t N, Acts& a, float* x_out, const lora::LoraAdapter* ad,
                     const LoraDropout& dr) {
    const Layer& L = layers_[l];
    const std::int64_t E = cfg_.n_embd, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), F = cfg_.n_ff;
    grow(a.rinv1, std::size_t(N));
    grow(a.h1, std::size_t(N * E));
    grow(a.q, std::size_t(N * Q));
    grow(a.k, std::size_t(N * KV));
    grow(a.v, std::size_t(N * KV));
    grow(a.att, std::size_t(N * Q));
    grow(a.x_mid, std::size_t(N * E));
    grow(a.rinv2, std::size_t(N));
    grow(a.h2, std::size_t(N * E));
    grow(a.gate, std::size_t(N * F));
    grow(a.up, std::size_t(N * F));
    grow(a.act, std::size_t(N * F));
    float* tmp = grow(tmp_e_, std::size_t(N * E));

    norm_rows(a.x_in.data(), L.attn_norm, a.rinv1.data(), a.h1.data(), N);
    project<R>(l, Target::kQ, a.h1.data(), N, a.q.data(), L.bq, ad, dr, a);
    project<R>(l, Target::kK, a.h1.data(), N, a.k.data(), L.bk, ad, dr, a);
    project<R>(l, Target::kV, a.h1.data(), N, a.v.data(), L.bv, ad, dr, a);
    apply_rope(a.q.data(), N, Q, cfg_.n_head, false);
    apply_rope(a.k.data(), N, KV, cfg_.n_head_kv, false);
    attention_forward<A>(a, N);
    project<R>(l, Target::kO, a.att.data(), N, tmp, nullptr, ad, dr, a);
    for (std::int64_t i = 0; i < N * E; ++i) a.x_mid[std::size_t(i)] = a.x_in[std::size_t(i)] + tmp[i];

    norm_rows(a.x_mid.data(), L.ffn_norm, a.rinv2.data(), a.h2.data(), N);
    project<R>(l, Target::kGate, a.h2.data(), N, a.gate.data(), nullptr, ad, dr, a);
    project<R>(l, Target::kUp, a.h2.data(), N, a.up.data(), nullptr, ad, dr, a);
    model::swiglu_row(a.gate.data(), a.up.data(), a.act.data(), N * F);
    project<R>(l, Target::kDown, a.act.data(), N, tmp, nullptr, ad, dr, a);
    for (std::int64_t i = 0; i < N * E; ++i) x_out[i] = a.x_mid[std::size_t(i)] + tmp[i];
  }

  /// One block backward: dx holds d(block output) on entry, d(block input) on exit.
  template <int R, class A>
  void block_backward(std::uint32_t l, std::int64_t N, const Acts& a, float* dx, const lora::LoraAdapter* ad,
                      float* grads, const LoraDropout& dr) {
    const Layer& L = layers_[l];
    const std::int64_t E = cfg_.n_embd, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), F = cfg_.n_ff;
    float* d_act = grow(d_f1_, std::size_t(N * F));
    float* d_up = grow(d_f2_, std::size_t(N * F));
    float* dh = grow(d_e_, std::size_t(N * E));

    // MLP: x'' = x' + down(act)
    project_backward<R>(l, Target::kDown, a.act.data(), dx, N, d_act, false, ad, grads, dr, a);
    for (std::int64_t t = 0; t < N; ++t)
      swiglu_backward_row(a.gate.data() + t * F, a.up.data() + t * F, d_act + t * F, d_act + t * F, d_up + t * F, F);
    // d_act now holds d(gate).
    project_backward<R>(l, Target::kGate, a.h2.data(), d_act, N, dh, false, ad, grads, dr, a);
    project_backward<R>(l, Target::kUp, a.h2.data(), d_up, N, dh, true, ad, grads, dr, a);
    for (std::int64_t t = 0; t < N; ++t)  // dx' = dx'' + norm'(dh)
      rms_norm_backward_row(a.x_mid.data() + t * E, L.ffn_norm, a.rinv2[std::size_t(t)], dh + t * E, dx + t * E, E,
                            true);

    // Attention: x' = x + o(att)
    float* d_att = grow(d_q_, std::size_t(N * Q));
    project_backward<R>(l, Target::kO, a.att.data(), dx, N, d_att, false, ad, grads, dr, a);
    float* dq = grow(d_q2_, std::size_t(N * Q));
    float* dk = grow(d_k_, std::size_t(N * KV));
    float* dv = grow(d_v_, std::size_t(N * KV));
    attention_backward<A>(a, N, d_att, dq, dk, dv);
    apply_rope(dq, N, Q, cfg_.n_head, true);
    apply_rope(dk, N, KV, cfg_.n_head_kv, true);
    project_backward<R>(l, Target::kQ, a.h1.data(), dq, N, dh, false, ad, grads, dr, a);
    project_backward<R>(l, Target::kK, a.h1.data(), dk, N, dh, true, ad, grads, dr, a);
    project_backward<R>(l, Target::kV, a.h1.data(), dv, N, dh, true, ad, grads, dr, a);
    for (std::int64_t t = 0; t < N; ++t)
      rms_norm_backward_row(a.x_in.data() + t * E, L.attn_norm, a.rinv1[std::size_t(t)], dh + t * E, dx + t * E, E,
                            true);
  }

  // ------------------------------------------------------------------ whole pass

  /// Forward (and, when grads != null, backward) over one sequence.
  template <int R, class A>
  Result<SeqLoss> run(std::span<const std::int32_t> tokens, std::span<const std::uint8_t> mask,
                      const lora::LoraAdapter* ad, float* grads, float loss_weight, const LoraDropout& dr) {
    QLORA_TRY(model::Attention<A>::check(cfg_));
    if constexpr (R > 0) {
      if (ad && ad->rank() != R) return Status::invalid("rank dispatch mismatch");
    }
    const std::int64_t N = std::int64_t(tokens.size()), E = cfg_.n_embd, V = cfg_.n_vocab;
    const bool train = grads != nullptr;
    const bool ckpt = !train || opt_.gradient_checkpointing;  // evaluation keeps nothing either

    rope_cs_.resize(std::size_t(N) * cfg_.n_rot);
    for (std::int64_t t = 0; t < N; ++t)
      model::rope_cos_sin(t, int(cfg_.n_rot), cfg_.rope_theta, rope_freqs_, rope_cs_.data() + t * cfg_.n_rot);

    // Activations: one Acts per block, or (checkpointing) block inputs only.
    const std::size_t n_acts = ckpt ? 1 : cfg_.n_layer;
    if (acts_.size() < n_acts) acts_.resize(n_acts);
    if (ckpt && block_inputs_.size() < cfg_.n_layer + 1) block_inputs_.resize(cfg_.n_layer + 1);
    auto block_input = [&](std::uint32_t l) -> std::vector<float>& {
      return ckpt ? block_inputs_[l] : acts_[l].x_in;
    };

    float* x0 = grow(block_input(0), std::size_t(N * E));
    for (std::int64_t t = 0; t < N; ++t) embd_.decode(tokens[std::size_t(t)], tokens[std::size_t(t)] + 1, 0, E, x0 + t * E, E);

    for (std::uint32_t l = 0; l < cfg_.n_layer; ++l) {
      Acts& a = acts_[ckpt ? 0 : l];
      if (ckpt) a.x_in.assign(block_inputs_[l].begin(), block_inputs_[l].begin() + N * E);
      std::vector<float>& next = l + 1 < cfg_.n_layer ? block_input(l + 1) : final_x_;
      float* x_out = grow(next, std::size_t(N * E));
      block_forward<R, A>(l, N, a, x_out, ad, dr);
    }

    // Output head on the scored positions only.
    std::vector<std::int64_t>& rows = scored_rows_;
    rows.clear();
    for (std::int64_t t = 0; t + 1 < N; ++t)
      if (mask[std::size_t(t)]) rows.push_back(t);
    SeqLoss out;
    out.n_scored = std::int64_t(rows.size());
    const std::int64_t Nm = out.n_scored;
    float* hf = grow(hf_, std::size_t(N * E));
    float* rinvf = grow(rinvf_, std::size_t(N));
    norm_rows(final_x_.data(), output_norm_, rinvf, hf, N);
    if (Nm == 0) {
      if (train) return out;  // nothing scored: zero gradient
      return out;
    }
    float* hm = grow(hm_, std::size_t(Nm * E));
    for (std::int64_t i = 0; i < Nm; ++i) std::copy_n(hf + rows[std::size_t(i)] * E, E, hm + i * E);
    float* logits = grow(logits_, std::size_t(Nm * V));
    frozen_forward(head_, hm, Nm, logits, *pool_, opt_.compute);
    std::vector<double> nll(static_cast<std::size_t>(Nm));
    parallel_for(std::size_t(Nm), 4, [&](std::size_t i0, std::size_t i1) {
      for (std::size_t i = i0; i < i1; ++i) {
        const std::int32_t target = tokens[std::size_t(rows[i] + 1)];
        float* z = logits + std::int64_t(i) * V;
        nll[i] = train ? cross_entropy_backward_row(z, V, target, loss_weight) : cross_entropy_row(z, V, target);
      }
    }, *pool_);
    for (double v : nll) out.nll_sum += v;  // fixed order
    if (!std::isfinite(out.nll_sum))
      return Status::numeric("loss is " + std::to_string(out.nll_sum) + " (non-finite activations or weights)");
    if (!train) return out;

    // Backward: head -> final norm -> blocks in reverse.
    float* dhm = grow(dhm_, std::size_t(Nm * E));
    frozen_backward_input(head_, logits, Nm, dhm, false, *pool_, opt_.compute);
    float* dx = grow(dx_, std::size_t(N * E));
    std::fill(dx, dx + N * E, 0.0f);
    float* dhf = grow(dhf_, std::size_t(N * E));
    std::fill(dhf, dhf + N * E, 0.0f);
    for (std::int64_t i = 0; i < Nm; ++i) std::copy_n(dhm + i * E, E, dhf + rows[std::size_t(i)] * E);
    for (std::int64_t t = 0; t < N; ++t)
      rms_norm_backward_row(final_x_.data() + t * E, output_norm_, rinvf[t], dhf + t * E, dx + t * E, E, false);

    for (std::uint32_t l = cfg_.n_layer; l-- > 0;) {
      Acts& a = acts_[ckpt ? 0 : l];
      if (ckpt) {  // recompute this block's forward from its saved input
        a.x_in.assign(block_inputs_[l].begin(), block_inputs_[l].begin() + N * E);
        block_forward<R, A>(l, N, a, grow(recompute_out_, std::size_t(N * E)), ad, dr);
      }
      block_backward<R, A>(l, N, a, dx, ad, grads, dr);
    }
    return out;
  }

  model::ModelConfig cfg_;
  TrainableOptions opt_;
  ThreadPool* pool_ = nullptr;
  FrozenMatrix embd_, head_;
  const float* output_norm_ = nullptr;
  const float* rope_freqs_ = nullptr;
  std::vector<Layer> layers_;

  // Work buffers, reused across calls (they only grow).
  std::vector<Acts> acts_;
  std::vector<std::vector<float>> block_inputs_;
  std::vector<float> final_x_, recompute_out_, rope_cs_, tmp_e_, hf_, rinvf_, hm_, logits_, dhm_, dx_, dhf_;
  std::vector<float> d_f1_, d_f2_, d_e_, d_q_, d_q2_, d_k_, d_v_, dk_part_, dv_part_;
  std::vector<float> drop_buf_, dxd_buf_, g_buf_;
  std::vector<std::int64_t> scored_rows_;
};

}  // namespace qlora::train
