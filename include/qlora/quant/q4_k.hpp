// qlora/quant/q4_k.hpp — GGML Q4_K: 256 weights in 8 sub-blocks of 32, each
// with its own 6-bit scale and 6-bit min, 4-bit codes. 4.5 bits per weight.
//
//   byte 0      2      4                 16                                144
//        +------+------+-----------------+----------------------------------+
//        | d    | dmin | scales[12]      | qs[128]                          |
//        | fp16 | fp16 | 8 x (sc,m) 6-bit| 256 x 4-bit codes, two per byte  |
//        +------+------+-----------------+----------------------------------+
//
//   value_e = (d * sc_j) * q_e - (dmin * m_j),   j = e / 32,  q_e in 0..15
//
// Nibble order: the 128 code bytes form 4 chunks of 32. Chunk c holds
// sub-block 2c in the low nibbles and sub-block 2c+1 in the high nibbles:
//   qs[32c + l] = q[64c + l] | q[64c + 32 + l] << 4        (l = 0..31)
// The 12 scale bytes are described at pack_scale_min_k4 (kquant_search.hpp).
//
// Reference: block_q4_K (ggml-common.h); quantize_row_q4_K_ref,
// dequantize_row_q4_K (ggml-quants.c); ggml_vec_dot_q4_K_q8_K_generic
// (ggml-cpu/quants.c). This is the no-imatrix path; quantize_q4_K with an
// importance matrix uses a different search and is not implemented here.
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/half.hpp"
#include "qlora/quant/format.hpp"
#include "qlora/quant/kquant_search.hpp"
#include "qlora/quant/q8_k.hpp"
#include "qlora/quant/rounding.hpp"

namespace qlora::quant {

template <>
struct FormatTraits<format::Q4_K> {
  static constexpr std::string_view kName = "q4_K";
  static constexpr int kBlockElems = kQK_K;
  static constexpr std::size_t kBlockBytes = 144;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::Q4_K);
  static constexpr bool kQuantizable = true;
  static constexpr int kSubBlock = 32;                         // elements per (scale, min) pair
  static constexpr int kSubBlocks = kQK_K / kSubBlock;         // 8
  static constexpr int kMaxCode = 15;                          // 4-bit codes
  static constexpr int kMaxScaleCode = 63;                     // 6-bit sub-block scale / min codes

  struct Block {
    Half d;                          // super-block scale for the 6-bit scale codes
    Half dmin;                       // super-block scale for the 6-bit min codes
    std::uint8_t scales[12];         // 8 (scale, min) pairs, 6 bits each, packed
    std::uint8_t qs[kQK_K / 2];      // 4-bit codes, see nibble order above
  };

  /// 4-bit code of element e (0..255).
  QLORA_HD static int code(const Block& b, int e) {
    const std::uint8_t byte = b.qs[32 * (e / 64) + e % 32];
    return (e / 32) % 2 == 0 ? (byte & 0x0F) : (byte >> 4);
  }

  QLORA_HD static void quantize_block(const float* x, Block& b) {
    std::uint8_t L[kQK_K];            // final 4-bit codes, element order
    float scales[kSubBlocks];         // fitted fp32 scale per sub-block
    float mins[kSubBlocks];           // fitted fp32 (negated) min per sub-block, >= 0
    float weights[kSubBlock];

    // 1. Fit (scale, min) per sub-block. The importance av + |x| favours
    //    large values without ignoring small ones (av = RMS of the group).
    for (int j = 0; j < kSubBlocks; ++j) {
      const float* xj = x + kSubBlock * j;
      float sum_x2 = 0.0f;
      for (int l = 0; l < kSubBlock; ++l) sum_x2 += xj[l] * xj[l];
      const float av_x = sqrtf(sum_x2 / float(kSubBlock));
      for (int l = 0; l < kSubBlock; ++l) weights[l] = av_x + fabsf(xj[l]);
      scales[j] = kquant::make_qkx2_quants<kSubBlock>(kMaxCode, xj, weights, L + kSubBlock * j, &mins[j],
                                                      -1.0f, 0.1f, 20, false);
    }

    // 2.-4. Shared with the SIMD quantizer (cpu/kquant_avx2.hpp).
    store_scales(scales, mins, b);
    requantize_codes(x, b, L);
    pack_codes(L, b);
  }

  /// Step 2 of quantize_block: quantize the fp32 sub-block scales and mins
  /// (mins >= 0) to 6-bit codes against their super-block maxima and store
  /// d, dmin and the packed scale bytes. The code is narrowed to a byte
  /// *before* the clamp to 63, as upstream does: a (rare) negative fitted
  /// scale wraps to a large byte and then clamps to 63 rather than to 0.
  QLORA_HD static void store_scales(const float* scales, const float* mins, Block& b) {
    float max_scale = 0.0f;  // scales are >= 0 because the min absorbs the offset
    float max_min = 0.0f;
    for (int j = 0; j < kSubBlocks; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    std::uint8_t ls[kSubBlocks];
    std::uint8_t lm[kSubBlocks];
    for (int j = 0; j < kSubBlocks; ++j) {
      const std::uint8_t s = std::uint8_t(nearest_int(inv_scale * scales[j]));
      const std::uint8_t m = std::uint8_t(nearest_int(inv_min * mins[j]));
      ls[j] = s < kMaxScaleCode ? s : std::uint8_t(kMaxScaleCode);
      lm[j] = m < kMaxScaleCode ? m : std::uint8_t(kMaxScaleCode);
    }
    kquant::pack_scale_min_k4(ls, lm, b.scales);
    b.d = Half::from_float(max_scale / 63.0f);
    b.dmin = Half::from_float(max_min / 63.0f);
  }

  /// Step 3: re-derive the codes from the values actually stored (fp16 d,
  /// dmin and 6-bit codes) so dequantization sees the codes that fit them. A
  /// sub-block whose effective scale rounded to 0 keeps its search codes.
  QLORA_HD static void requantize_codes(const float* x, const Block& b, std::uint8_t* L) {
    const float d_all = b.d.to_float();
    const float dmin_all = b.dmin.to_float();
    for (int j = 0; j < kSubBlocks; ++j) {
      const kquant::ScaleMin sm = kquant::get_scale_min_k4(j, b.scales);
      const float dj = d_all * float(sm.scale);
      if (dj == 0.0f) continue;
      const float mj = dmin_all * float(sm.min);
      for (int l = 0; l < kSubBlock; ++l) {
        int q = nearest_int((x[kSubBlock * j + l] + mj) / dj);
        q = q < 0 ? 0 : (q > kMaxCode ? kMaxCode : q);
        L[kSubBlock * j + l] = std::uint8_t(q);
      }
    }
  }

  /// Step 4: pack two sub-blocks per 32-byte chunk (low nibble first).
  QLORA_HD static void pack_codes(const std::uint8_t* L, Block& b) {
    for (int c = 0; c < kQK_K / 64; ++c)
      for (int l = 0; l < 32; ++l)
        b.qs[32 * c + l] = std::uint8_t(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }

  QLORA_HD static void dequantize_block(const Block& b, float* y) {
    const float d = b.d.to_float();
    const float dmin = b.dmin.to_float();
    for (int c = 0; c < kQK_K / 64; ++c) {
      const kquant::ScaleMin lo = kquant::get_scale_min_k4(2 * c, b.scales);
      const kquant::ScaleMin hi = kquant::get_scale_min_k4(2 * c + 1, b.scales);
      const float d_lo = d * float(lo.scale), m_lo = dmin * float(lo.min);
      const float d_hi = d * float(hi.scale), m_hi = dmin * float(hi.min);
      const std::uint8_t* q = b.qs + 32 * c;
      for (int l = 0; l < 32; ++l) y[64 * c + l] = d_lo * float(q[l] & 0x0F) - m_lo;
      for (int l = 0; l < 32; ++l) y[64 * c + 32 + l] = d_hi * float(q[l] >> 4) - m_hi;
    }
  }

  /// sum_e value_e * x_e in fp32. Per sub-block this is
  /// (d*sc) * sum(q*x) - (dmin*m) * sum(x), so the min costs one multiply.
  QLORA_HD static float dot_block(const Block& b, const float* x) {
    const float d = b.d.to_float();
    const float dmin = b.dmin.to_float();
    float s = 0.0f;
    for (int j = 0; j < kSubBlocks; ++j) {
      const kquant::ScaleMin sm = kquant::get_scale_min_k4(j, b.scales);
      const std::uint8_t* q = b.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      const float* xj = x + kSubBlock * j;
      float sum_qx = 0.0f, sum_x = 0.0f;
      for (int l = 0; l < kSubBlock; ++l) {
        sum_qx += float((q[l] >> shift) & 0x0F) * xj[l];
        sum_x += xj[l];
      }
      s += d * float(sm.scale) * sum_qx - dmin * float(sm.min) * sum_x;
    }
    return s;
  }

  /// Dot product with one Q8_K activation block, ggml_vec_dot_q4_K_q8_K
  /// semantics: integer products per sub-block scaled by the 6-bit scale,
  /// accumulated in 8 int32 lanes (element e goes to lane e % 8), then
  /// (d * d8) * lanes - (dmin * d8) * sum_j m_j * (bsum_2j + bsum_2j+1).
  /// For a single super-block the float result is bit-identical to the
  /// generic ggml kernel; over a row ggml keeps the 8 float lanes across
  /// blocks, so summing per-block results may differ in the last bits.
  QLORA_HD static float dot_q8k(const Block& b, const FormatTraits<format::Q8_K>::Block& a) {
    std::int32_t lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < kSubBlocks; ++j) {
      const std::int32_t scale = kquant::get_scale_min_k4(j, b.scales).scale;
      const std::uint8_t* q = b.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      const std::int8_t* q8 = a.qs + kSubBlock * j;
      for (int l = 0; l < kSubBlock; ++l) lanes[l % 8] += scale * (int((q[l] >> shift) & 0x0F) * int(q8[l]));
    }
    // Min term from the activation's 16-element sums: sub-block j spans
    // bsums 2j and 2j+1.
    int min_sum = 0;
    for (int k = 0; k < kQK_K / 16; ++k) min_sum += int(a.bsums[k]) * int(kquant::get_scale_min_k4(k / 2, b.scales).min);

    const float d = b.d.to_float() * a.d;
    const float dmin = b.dmin.to_float() * a.d;
    float sum = -(dmin * float(min_sum));
    for (int l = 0; l < 8; ++l) sum += d * float(lanes[l]);
    return sum;
  }
};
static_assert(sizeof(FormatTraits<format::Q4_K>::Block) == 144, "q4_K block layout");
static_assert(QuantizableFormat<format::Q4_K>);

}  // namespace qlora::quant
