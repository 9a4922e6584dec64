// qlora/model/swiglu.hpp — the gated MLP activation, out = silu(gate) * up.
// The plain definition (host/device). The CPU decoder uses cpu/vec_exp.hpp's
// swiglu_row instead, which reproduces ggml's vectorised exp bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/hd.hpp"

namespace qlora::model {

/// silu(x) = x * sigmoid(x) = x / (1 + e^-x).
QLORA_HD float silu(float x) { return x / (1.0f + expf(-x)); }

/// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
QLORA_HD void swiglu_row(const float* gate, const float* up, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

}  // namespace qlora::model
