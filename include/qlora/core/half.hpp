// qlora/core/half.hpp — fp16 and bf16 storage types with bit-exact conversions.
//
// We own these types (rather than __half / Eigen::half) so that the same bytes
// come out of g++ and nvcc, and so conversions match ggml and gguf-py exactly:
//   fp32 -> fp16: IEEE round-to-nearest-even, subnormals kept, overflow -> inf,
//                 any NaN -> 0x7E00 with its sign (ggml_compute_fp32_to_fp16).
//   fp32 -> bf16: RNE on the top 16 bits, NaN -> quiet NaN (ggml / gguf-py).
// Both are plain 16-bit payloads, so they can sit inside on-disk block structs.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "qlora/core/hd.hpp"

namespace qlora {

QLORA_HD std::uint32_t f32_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
QLORA_HD float f32_from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// fp16 bits -> fp32, exact (every half is representable as a float).
/// Signalling NaNs come out quiet (payload kept), as from ggml_fp16_to_fp32_row
/// and F16C vcvtph2ps: ggml's decode ends in a float multiply, which quiets them.
QLORA_HD float fp16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u));  // inf / NaN
  if (exp != 0) return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return f32_from_bits(sign);  // signed zero
  // Subnormal half: value = mant * 2^-24; normalise into a float.
  int e = -1;
  do {
    mant <<= 1;
    ++e;
  } while ((mant & 0x400u) == 0);
  return f32_from_bits(sign | std::uint32_t(112 - e) << 23 | ((mant & 0x3FFu) << 13));
}

/// fp32 -> fp16 bits, round-to-nearest-even. Integer-only so host and device
/// agree without relying on F16C or __float2half rounding modes.
QLORA_HD std::uint16_t f32_to_fp16(float f) {
  const std::uint32_t u = f32_bits(f);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return sign | 0x7E00u;      // NaN: canonical quiet NaN, sign kept
  if (abs >= 0x477FF000u) return sign | 0x7C00u;     // rounds to >= 65520: overflow to inf
  if (abs >= 0x38800000u) {                          // normal half range (>= 2^-14)
    const std::uint32_t rounded = abs + 0x0FFFu + ((abs >> 13) & 1u);
    return sign | std::uint16_t((rounded - 0x38000000u) >> 13);
  }
  if (abs < 0x33000000u) return sign;                // < 2^-25 (half of smallest subnormal): zero
  // Subnormal half: shift the implicit-1 mantissa right, rounding to even.
  const std::uint32_t e = abs >> 23;                 // 102..112
  const std::uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126u - e;              // 14..24
  std::uint32_t q = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return sign | std::uint16_t(q);
}

/// bf16 bits -> fp32, exact.
QLORA_HD float bf16_to_f32(std::uint16_t b) { return f32_from_bits(std::uint32_t(b) << 16); }

/// fp32 -> bf16 bits, RNE, NaN kept quiet; no flushing of subnormals.
QLORA_HD std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((u >> 16) | 0x0040u);
  return std::uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/// IEEE binary16 storage. Trivially copyable, 2 bytes, no arithmetic on purpose:
/// math happens in fp32 after an explicit to_float().
struct Half {
  std::uint16_t bits;
  QLORA_HD static Half from_float(float f) { return Half{f32_to_fp16(f)}; }
  QLORA_HD float to_float() const { return fp16_to_f32(bits); }
};

/// bfloat16 storage, same conventions as Half.
struct BFloat16 {
  std::uint16_t bits;
  QLORA_HD static BFloat16 from_float(float f) { return BFloat16{f32_to_bf16(f)}; }
  QLORA_HD float to_float() const { return bf16_to_f32(bits); }
};

static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2, "16-bit storage types");

}  // namespace qlora
