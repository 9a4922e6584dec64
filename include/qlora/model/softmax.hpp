// qlora/model/softmax.hpp — numerically safe softmax of one row (max
// subtracted, sum in double as ggml does), in place.
// The CPU decoder's attention uses cpu/vec_exp.hpp's softmax_row, which
// reproduces ggml's vectorised exp and partial sums bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/hd.hpp"

namespace qlora::model {

/// p_i = exp(x_i - max) / sum_j exp(x_j - max); returns log(sum) + max, the
/// log-normalizer (what NLL needs: -log p_t = logsumexp - x_t).
QLORA_HD float softmax_row(float* x, std::int64_t n) {
  float mx = -INFINITY;
  for (std::int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = expf(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
  return float(std::log(sum)) + mx;
}

/// log(sum_i exp(x_i)) without modifying x.
QLORA_HD float log_sum_exp(const float* x, std::int64_t n) {
  float mx = -INFINITY;
  for (std::int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += double(expf(x[i] - mx));
  return float(std::log(sum)) + mx;
}

}  // namespace qlora::model
