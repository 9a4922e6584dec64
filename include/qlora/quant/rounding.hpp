// qlora/quant/rounding.hpp — the exact rounding helpers the ggml reference
// quantizers use. Bit-exactness with llama.cpp depends on matching these, not
// on "something close".
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "qlora/core/hd.hpp"

namespace qlora::quant {

/// ggml's nearest_int: round-half-to-even via the 1.5*2^23 magic constant.
/// Valid for |f| <= 4194303, which every caller guarantees by clamping.
QLORA_HD int nearest_int(float f) {
  const float val = f + 12582912.0f;
  std::int32_t i;
  std::memcpy(&i, &val, sizeof i);
  return (i & 0x007FFFFF) - 0x00400000;
}

/// C roundf: half away from zero (Q8_0 uses this, not nearest_int).
QLORA_HD float round_half_away(float f) { return ::roundf(f); }

/// Scalar NaN/Inf check usable on host and device.
QLORA_HD bool is_finite_f32(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u & 0x7F800000u) != 0x7F800000u;
}

}  // namespace qlora::quant
