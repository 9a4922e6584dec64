// qlora/model/rope.hpp — rotary position embedding as llama.cpp applies it.
//
// theta_i = pos * base^(-2i/n_rot), computed like ggml: theta_scale =
// base^(-2/n_rot) once, then repeated multiplication, in fp32 — so positions
// far into the context see the same rounding llama.cpp does. Llama 3.1's rope
// scaling arrives as per-pair frequency factors (GGUF rope_freqs.weight) that
// divide theta. Two pairings (model_config.hpp RopeStyle):
//   NORM (llama; Q/K rows permuted by the converter): (x[2i], x[2i+1])
//   NEOX (qwen2):                                     (x[i], x[i + n_rot/2])
// Each pair becomes (x0 cos - x1 sin, x0 sin + x1 cos), each with one fused
// multiply-add: fma(x0, cos, -(x1 sin)) and fma(x0, sin, x1 cos). That is
// how llama.cpp's rotate_pairs runs: ggml is compiled with GCC's default
// -ffp-contract=fast, which fuses these expressions (measured: this form
// reproduces its rotated Q of SmolLM2 in 100% of elements, separate
// rounding in 75-88%). Our build contracts nothing, so we spell it out.
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/hd.hpp"

namespace qlora::model {

/// cos/sin of every rotated pair for one position: cs[2i] = cos, cs[2i+1] = sin.
/// freq_factors (n_rot/2 values) may be null.
QLORA_HD void rope_cos_sin(std::int64_t pos, int n_rot, float base, const float* freq_factors, float* cs) {
  const float theta_scale = powf(base, -2.0f / float(n_rot));
  float theta = float(pos);
  for (int i = 0; i < n_rot / 2; ++i) {
    const float t = freq_factors ? theta / freq_factors[i] : theta;
    cs[2 * i] = cosf(t);
    cs[2 * i + 1] = sinf(t);
    theta *= theta_scale;
  }
}

/// Rotate one head vector (head_dim values, the first n_rot rotated) in place.
QLORA_HD void rope_apply(float* x, int n_rot, const float* cs, bool neox) {
  for (int i = 0; i < n_rot / 2; ++i) {
    const int a = neox ? i : 2 * i;
    const int b = neox ? i + n_rot / 2 : 2 * i + 1;
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const float x0 = x[a], x1 = x[b];
    x[a] = fmaf(x0, c, -(x1 * s));
    x[b] = fmaf(x0, s, x1 * c);
  }
}

}  // namespace qlora::model
