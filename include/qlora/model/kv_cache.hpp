// qlora/model/kv_cache.hpp — keys and values of every past position, per layer.
//
// Stored in fp16, as llama.cpp does by default: half the memory of fp32 and
// the same rounding of K and V the peer applies, so logits track it. Layout
// per layer: [n_ctx][n_head_kv * head_dim], one row per position, so appending
// a token writes one row and a GQA group reads its K/V head in place.
#pragma once

#include <cstdint>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::model {

class KvCache {
 public:
  KvCache() = default;
  KvCache(const ModelConfig& c, std::uint32_t n_ctx)
      : n_ctx_(n_ctx), kv_dim_(c.kv_dim()), n_layer_(c.n_layer),
        k_(std::size_t(c.n_layer) * n_ctx * c.kv_dim()), v_(k_.size()) {}

  std::uint32_t capacity() const { return n_ctx_; }
  std::uint32_t size() const { return n_past_; }
  void clear() { n_past_ = 0; }
  /// Forget positions >= n (e.g. to re-score from a shared prefix).
  void truncate(std::uint32_t n) { n_past_ = n < n_past_ ? n : n_past_; }
  void advance(std::uint32_t n) { n_past_ += n; }
  std::size_t bytes() const { return (k_.size() + v_.size()) * sizeof(std::uint16_t); }

  std::uint16_t* k_row(std::uint32_t layer, std::uint32_t pos) { return k_.data() + offset(layer, pos); }
  std::uint16_t* v_row(std::uint32_t layer, std::uint32_t pos) { return v_.data() + offset(layer, pos); }
  const std::uint16_t* k_row(std::uint32_t layer, std::uint32_t pos) const { return k_.data() + offset(layer, pos); }
  const std::uint16_t* v_row(std::uint32_t layer, std::uint32_t pos) const { return v_.data() + offset(layer, pos); }
  std::uint32_t kv_dim() const { return kv_dim_; }

 private:
  std::size_t offset(std::uint32_t layer, std::uint32_t pos) const {
    return (std::size_t(layer) * n_ctx_ + pos) * kv_dim_;
  }
  std::uint32_t n_ctx_ = 0, kv_dim_ = 0, n_layer_ = 0, n_past_ = 0;
  std::vector<std::uint16_t> k_, v_;
};

}  // namespace qlora::model
