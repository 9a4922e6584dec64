// qlora/model/rms_norm.hpp — RMSNorm, y = x / sqrt(mean(x^2) + eps) * w.
//
// As ggml does (ggml_compute_forward_rms_norm_f32): each square is a float
// product, the squares are summed in double (ggml_float), so wide rows
// (4096+) lose nothing to cancellation, the mean is rounded to float, and
// y = (x * scale) * w. Every step rounds where ggml's does, so our
// activations equal llama.cpp's bit for bit (quantized models need that:
// cpu/vec_exp.hpp). Host/device; the backward pass lives with training.
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/hd.hpp"

namespace qlora::model {

/// 1 / sqrt(mean(x^2) + eps) for one row of n values.
QLORA_HD float rms_inv(const float* x, std::int64_t n, float eps) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);  // float square, as ggml
  const float mean = float(sum / double(n));
  return 1.0f / sqrtf(mean + eps);
}

/// y = (x * rms_inv) * w for one row; y may alias x. w == nullptr: no gain.
QLORA_HD void rms_norm_row(const float* x, const float* w, float* y, std::int64_t n, float eps) {
  const float s = rms_inv(x, n, eps);
  for (std::int64_t i = 0; i < n; ++i) y[i] = w ? (x[i] * s) * w[i] : x[i] * s;
}

}  // namespace qlora::model
