// qlora/train/layer_backward.hpp — backward passes of the decoder's
// element-wise and row-wise layers (host/device), each the exact derivative of
// the forward function in model/ it pairs with:
//
//   rms_norm_row (model/rms_norm.hpp)   y = x · s · w,  s = (mean(x²) + eps)^-1/2
//       dx = s · (w ⊙ dy) − x · s³/n · Σ_j x_j w_j dy_j
//   rope_apply (model/rope.hpp)         a rotation R(θ): dx = R(θ)^T dy = R(−θ) dy
//   swiglu_row (model/swiglu.hpp)       o = silu(g) · u
//       du = do · silu(g);  dg = do · u · σ(g) · (1 + g · (1 − σ(g)))
//   softmax_row (model/softmax.hpp)     dz = p ⊙ (dp − Σ_j p_j dp_j)
//
// Sums over a row are accumulated in double (rows are up to 14k wide).
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/hd.hpp"

namespace qlora::train {

/// dx (+)= d/dx of rms_norm_row(x, w) applied to dy; `s` is rms_inv(x) from
/// the forward pass. w == nullptr: no gain. accumulate: add into dx.
QLORA_HD void rms_norm_backward_row(const float* x, const float* w, float s, const float* dy, float* dx,
                                    std::int64_t n, bool accumulate) {
  double dot = 0.0;
  for (std::int64_t i = 0; i < n; ++i) dot += double(x[i]) * double(w ? w[i] * dy[i] : dy[i]);
  const float c = float(dot * double(s) * double(s) * double(s) / double(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = (w ? w[i] * dy[i] : dy[i]) * s - x[i] * c;
    dx[i] = accumulate ? dx[i] + g : g;
  }
}

/// Gradient through rope_apply: rotate dy by −θ in place (the transpose of
/// the forward rotation), same pairing (neox or adjacent pairs).
QLORA_HD void rope_backward(float* dy, int n_rot, const float* cs, bool neox) {
  for (int i = 0; i < n_rot / 2; ++i) {
    const int a = neox ? i : 2 * i;
    const int b = neox ? i + n_rot / 2 : 2 * i + 1;
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const float d0 = dy[a], d1 = dy[b];
    dy[a] = d0 * c + d1 * s;
    dy[b] = -d0 * s + d1 * c;
  }
}

/// Gradients of o = silu(g) · u with respect to g and u, given do.
QLORA_HD void swiglu_backward_row(const float* g, const float* u, const float* d_out, float* dg, float* du,
                                  std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float sig = 1.0f / (1.0f + expf(-g[i]));
    const float silu = g[i] * sig;
    du[i] = d_out[i] * silu;
    dg[i] = d_out[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
  }
}

/// In place: dp (the gradient w.r.t. softmax output p) becomes the gradient
/// w.r.t. the softmax input.
QLORA_HD void softmax_backward_row(const float* p, float* dp, std::int64_t n) {
  double dot = 0.0;
  for (std::int64_t i = 0; i < n; ++i) dot += double(p[i]) * double(dp[i]);
  const float d = float(dot);
  for (std::int64_t i = 0; i < n; ++i) dp[i] = p[i] * (dp[i] - d);
}

}  // namespace qlora::train
