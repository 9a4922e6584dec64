// qlora/model/weights.hpp — zero-copy views of a decoder's tensors in a GGUF.
//
// Weights stay in the file's format (F32, F16, BF16, Q8_0, Q5_0, Q4_1, Q4_K,
// Q6_K, ...) inside the memory mapping: nothing is dequantized up front, so a
// Q4_K_M model occupies its file size, not four times it. Loading checks that
// every tensor the architecture needs is present, has the shape the config
// implies and a type we can compute with — each error names the tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::model {

/// A 1-D or 2-D tensor view: `rows` rows of `cols` elements in ggml `type`.
struct TensorRef {
  std::uint32_t type = 0;
  const void* data = nullptr;
  std::int64_t cols = 0;  // ne[0], contiguous
  std::int64_t rows = 1;  // ne[1]
  std::string name;
  explicit operator bool() const { return data != nullptr; }
  std::size_t row_bytes() const {
    const auto info = quant::ggml_type_info(type);
    return std::size_t(cols / info->block_elems) * info->block_bytes;
  }
  const void* row(std::int64_t r) const { return static_cast<const std::uint8_t*>(data) + std::size_t(r) * row_bytes(); }
};

struct LayerWeights {
  TensorRef attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, w_gate, w_up, w_down;
};

struct DecoderWeights {
  TensorRef token_embd, output_norm, output, rope_freqs;
  std::vector<LayerWeights> layers;
};

namespace detail {

inline Status bind(const io::GgufFile& f, const std::string& name, std::int64_t cols, std::int64_t rows,
                   bool required, TensorRef& out) {
  const io::GgufTensorInfo* t = f.find_tensor(name);
  if (!t) {
    if (required) return Status::invalid(f.name() + ": tensor '" + name + "' missing");
    return Status::ok();
  }
  const std::int64_t ne0 = std::int64_t(t->ne[0]), ne1 = t->n_dims >= 2 ? std::int64_t(t->ne[1]) : 1;
  if (ne0 != cols || ne1 != rows || t->n_dims > 2)
    return Status::invalid(f.name() + ": tensor '" + name + "' has shape [" + std::to_string(ne0) + ", " +
                           std::to_string(ne1) + "], expected [" + std::to_string(cols) + ", " + std::to_string(rows) + "]");
  if (!quant::can_dequantize(t->type))
    return Status::unsupported(f.name() + ": tensor '" + name + "' has type " + quant::ggml_type_name(t->type) +
                               ", which qlora cannot compute with");
  out = TensorRef{t->type, t->data.data(), ne0, ne1, name};
  return Status::ok();
}

}  // namespace detail

/// Bind every tensor of a llama/qwen2 decoder described by `c`.
inline Result<DecoderWeights> bind_weights(const io::GgufFile& f, const ModelConfig& c) {
  DecoderWeights w;
  const std::int64_t E = c.n_embd, V = c.n_vocab, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
  QLORA_TRY(detail::bind(f, "token_embd.weight", E, V, true, w.token_embd));
  QLORA_TRY(detail::bind(f, "output_norm.weight", E, 1, true, w.output_norm));
  QLORA_TRY(detail::bind(f, "output.weight", E, V, !c.tied_embeddings, w.output));
  if (!w.output) w.output = w.token_embd;  // tied embeddings (llama.cpp: TENSOR_DUPLICATED)
  if (c.llama3_rope) QLORA_TRY(detail::bind(f, "rope_freqs.weight", c.n_rot / 2, 1, true, w.rope_freqs));
  w.layers.resize(c.n_layer);
  for (std::uint32_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[l];
    QLORA_TRY(detail::bind(f, b + "attn_norm.weight", E, 1, true, L.attn_norm));
    QLORA_TRY(detail::bind(f, b + "attn_q.weight", E, Q, true, L.wq));
    QLORA_TRY(detail::bind(f, b + "attn_k.weight", E, KV, true, L.wk));
    QLORA_TRY(detail::bind(f, b + "attn_v.weight", E, KV, true, L.wv));
    QLORA_TRY(detail::bind(f, b + "attn_output.weight", Q, E, true, L.wo));
    QLORA_TRY(detail::bind(f, b + "attn_q.bias", Q, 1, c.qkv_bias, L.bq));
    QLORA_TRY(detail::bind(f, b + "attn_k.bias", KV, 1, c.qkv_bias, L.bk));
    QLORA_TRY(detail::bind(f, b + "attn_v.bias", KV, 1, c.qkv_bias, L.bv));
    QLORA_TRY(detail::bind(f, b + "ffn_norm.weight", E, 1, true, L.ffn_norm));
    QLORA_TRY(detail::bind(f, b + "ffn_gate.weight", E, F, true, L.w_gate));
    QLORA_TRY(detail::bind(f, b + "ffn_up.weight", E, F, true, L.w_up));
    QLORA_TRY(detail::bind(f, b + "ffn_down.weight", F, E, true, L.w_down));
    for (const TensorRef* v : {&L.attn_norm, &L.ffn_norm, &L.bq, &L.bk, &L.bv})
      if (*v && v->type != std::uint32_t(quant::GgmlType::F32))
        return Status::unsupported(f.name() + ": tensor '" + v->name + "' must be f32, is " + quant::ggml_type_name(v->type));
  }
  if (w.output_norm.type != std::uint32_t(quant::GgmlType::F32))
    return Status::unsupported(f.name() + ": tensor 'output_norm.weight' must be f32");
  if (w.rope_freqs && w.rope_freqs.type != std::uint32_t(quant::GgmlType::F32))
    return Status::unsupported(f.name() + ": tensor 'rope_freqs.weight' must be f32");
  return w;
}

}  // namespace qlora::model
