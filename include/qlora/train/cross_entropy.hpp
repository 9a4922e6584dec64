// qlora/train/cross_entropy.hpp — the paper's loss (its equation 4): mean
// cross-entropy over the answer tokens only, the question masked out.
//
// For one scored position with logits z (V values) and target token y:
//   nll      = logsumexp(z) − z_y
//   dz_i     = weight · (softmax(z)_i − [i = y])
// weight = 1 / (number of scored tokens in the optimizer step): the gradient of
// the step's mean loss, however the step's tokens are split into sequences,
// micro-batches and accumulation steps (HF Trainer's num_items_in_batch
// normalisation, which unsloth and transformers >= 4.46 use).
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/hd.hpp"
#include "qlora/model/softmax.hpp"

namespace qlora::train {

/// Replace logits z (V values) by weight · (softmax(z) − onehot(target)) and
/// return −log softmax(z)_target (in double: losses are summed over thousands
/// of tokens).
QLORA_HD double cross_entropy_backward_row(float* z, std::int64_t V, std::int32_t target, float weight) {
  const float zt = z[target];
  const float lse = model::softmax_row(z, V);  // z now holds the probabilities
  for (std::int64_t i = 0; i < V; ++i) z[i] *= weight;
  z[target] -= weight;
  return double(lse) - double(zt);
}

/// −log softmax(z)_target without touching z (evaluation).
QLORA_HD double cross_entropy_row(const float* z, std::int64_t V, std::int32_t target) {
  return double(model::log_sum_exp(z, V)) - double(z[target]);
}

}  // namespace qlora::train
