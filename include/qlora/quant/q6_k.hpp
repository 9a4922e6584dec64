// qlora/quant/q6_k.hpp — GGML Q6_K: 256 weights in 16 sub-blocks of 16, each
// with a signed 8-bit scale, 6-bit codes split into 4 low + 2 high bits.
// 6.5625 bits per weight.
//
//   byte 0                    128              192          208    210
//        +--------------------+----------------+------------+------+
//        | ql[128]            | qh[64]         | sc[16]     | d    |
//        | low 4 bits, 2/byte | high 2 bits,   | int8 scale | fp16 |
//        |                    | 4/byte         | per 16     |      |
//        +--------------------+----------------+------------+------+
//
//   value_e = (d * sc[e/16]) * (q_e - 32),   q_e in 0..63
//
// Element mapping. The block is two halves h of 128; within a half, element
// e = 128h + 32k + l (k = 0..3, l = 0..31) takes
//   low 4 bits:  ql[64h + 32(k&1) + l], low nibble for k < 2, high for k >= 2
//   high 2 bits: (qh[32h + l] >> 2k) & 3
// So a ql byte holds the pair (k, k+2) of one lane l, and a qh byte holds the
// top bits of all four elements l, l+32, l+64, l+96 of its half.
//
// Reference: block_q6_K (ggml-common.h); quantize_row_q6_K_ref,
// dequantize_row_q6_K (ggml-quants.c); ggml_vec_dot_q6_K_q8_K_generic
// (ggml-cpu/quants.c). No-imatrix path only.
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
struct FormatTraits<format::Q6_K> {
  static constexpr std::string_view kName = "q6_K";
  static constexpr int kBlockElems = kQK_K;
  static constexpr std::size_t kBlockBytes = 210;
  static constexpr std::uint32_t kGgmlType = std::uint32_t(GgmlType::Q6_K);
  static constexpr bool kQuantizable = true;
  static constexpr int kSubBlock = 16;                   // elements per int8 scale
  static constexpr int kSubBlocks = kQK_K / kSubBlock;   // 16
  static constexpr int kCodeOffset = 32;                 // stored code = signed code + 32

  struct Block {
    std::uint8_t ql[kQK_K / 2];       // low 4 bits of each code
    std::uint8_t qh[kQK_K / 4];       // high 2 bits of each code
    std::int8_t scales[kSubBlocks];   // signed sub-block scales (may be negative)
    Half d;                           // super-block scale
  };

  /// Signed code (-32..31) of element e (0..255).
  QLORA_HD static int code(const Block& b, int e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const std::uint8_t low_byte = b.ql[64 * h + 32 * (k & 1) + l];
    const int low4 = k < 2 ? (low_byte & 0x0F) : (low_byte >> 4);
    const int hi2 = (b.qh[32 * h + l] >> (2 * k)) & 3;
    return (low4 | (hi2 << 4)) - kCodeOffset;
  }

  QLORA_HD static void quantize_block(const float* x, Block& b) {
    std::int8_t L[kQK_K];         // stored codes 0..63, element order
    float scales[kSubBlocks];     // fitted signed fp32 scale per sub-block

    // 1. Fit each sub-block.
    for (int ib = 0; ib < kSubBlocks; ++ib)
      scales[ib] = kquant::make_qx_quants<kSubBlock>(32, x + kSubBlock * ib, L + kSubBlock * ib);

    // 2.-4. Shared with the SIMD quantizer (cpu/kquant_avx2.hpp).
    if (!store_scales(scales, b)) return;
    requantize_codes(x, b, L);
    pack_codes(L, b);
  }

  /// Step 2 of quantize_block. Finds the fitted scale with the largest
  /// magnitude, keeping its sign (the first one wins ties), and maps it to
  /// -128 so the int8 scales use their full range; d then carries the
  /// opposite sign of that scale. Only +128 can overflow int8, hence the
  /// one-sided clamp. If every scale is (numerically) zero, writes the
  /// all-zero block (which decodes to 0) and returns false: nothing is left
  /// to do.
  QLORA_HD static bool store_scales(const float* scales, Block& b) {
    float max_scale = 0.0f;
    float max_abs_scale = 0.0f;
    for (int ib = 0; ib < kSubBlocks; ++ib) {
      const float abs_scale = fabsf(scales[ib]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kquant::kGroupMaxEps) {
      for (int i = 0; i < kQK_K / 2; ++i) b.ql[i] = 0;
      for (int i = 0; i < kQK_K / 4; ++i) b.qh[i] = 0;
      for (int i = 0; i < kSubBlocks; ++i) b.scales[i] = 0;
      b.d = Half::from_float(0.0f);
      return false;
    }
    const float iscale = -128.0f / max_scale;
    b.d = Half::from_float(1.0f / iscale);
    for (int ib = 0; ib < kSubBlocks; ++ib) {
      const int s = nearest_int(iscale * scales[ib]);
      b.scales[ib] = std::int8_t(s < 127 ? s : 127);
    }
    return true;
  }

  /// Step 3: re-derive the codes (stored form, 0..63) from the stored fp16 d
  /// and int8 scales. A sub-block whose effective scale is 0 keeps the
  /// search's codes.
  QLORA_HD static void requantize_codes(const float* x, const Block& b, std::int8_t* L) {
    const float d_all = b.d.to_float();
    for (int j = 0; j < kSubBlocks; ++j) {
      const float dj = d_all * float(b.scales[j]);
      if (dj == 0.0f) continue;
      for (int i = 0; i < kSubBlock; ++i) {
        int q = nearest_int(x[kSubBlock * j + i] / dj);
        q = q < -32 ? -32 : (q > 31 ? 31 : q);
        L[kSubBlock * j + i] = std::int8_t(q + kCodeOffset);
      }
    }
  }

  /// Step 4: split each stored code (0..63, element order) into the ql
  /// nibble and the qh bit pair.
  QLORA_HD static void pack_codes(const std::int8_t* L, Block& b) {
    for (int h = 0; h < 2; ++h) {
      const std::int8_t* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        b.ql[64 * h + l] = std::uint8_t((Lh[l] & 0x0F) | ((Lh[l + 64] & 0x0F) << 4));
        b.ql[64 * h + 32 + l] = std::uint8_t((Lh[l + 32] & 0x0F) | ((Lh[l + 96] & 0x0F) << 4));
        b.qh[32 * h + l] = std::uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                        ((Lh[l + 96] >> 4) << 6));
      }
    }
  }

  /// The four stored codes (0..63) at lane l of half h: elements
  /// 128h + l, +32, +64, +96 (see the element mapping above).
  struct Quad {
    int q0, q1, q2, q3;
  };
  QLORA_HD static Quad quad(const Block& b, int h, int l) {
    const int lo0 = b.ql[64 * h + l];
    const int lo1 = b.ql[64 * h + 32 + l];
    const int hi = b.qh[32 * h + l];
    return Quad{(lo0 & 0x0F) | ((hi & 3) << 4), (lo1 & 0x0F) | (((hi >> 2) & 3) << 4),
                (lo0 >> 4) | (((hi >> 4) & 3) << 4), (lo1 >> 4) | (((hi >> 6) & 3) << 4)};
  }

  /// Walks the block layout (half h, stream k, lane l) rather than decoding
  /// per element, so the loops vectorize: element 128h + 32k + l takes the
  /// nibble (k >> 1) of ql[64h + 32(k & 1) + l] and bit pair k of qh[32h + l],
  /// and belongs to sub-block 8h + 2k + l / 16. Per element the float
  /// operations are unchanged: y = (d * sc) * q.
  QLORA_HD static void dequantize_block(const Block& b, float* y) {
    const float d = b.d.to_float();
    float ds[kSubBlocks];
    for (int j = 0; j < kSubBlocks; ++j) ds[j] = d * float(b.scales[j]);
    for (int h = 0; h < 2; ++h) {
      const std::uint8_t* qh = b.qh + 32 * h;
      for (int k = 0; k < 4; ++k) {
        const std::uint8_t* ql = b.ql + 64 * h + 32 * (k & 1);
        const int lo_shift = 4 * (k >> 1), hi_shift = 2 * k;
        float* yk = y + 128 * h + 32 * k;
        for (int half = 0; half < 2; ++half) {
          const float s = ds[8 * h + 2 * k + half];
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int q = ((ql[l] >> lo_shift) & 0x0F) | (((qh[l] >> hi_shift) & 3) << 4);
            yk[l] = s * float(q - kCodeOffset);
          }
        }
      }
    }
  }

  /// sum_e value_e * x_e in fp32, one scale multiply per sub-block. Each
  /// sub-block's sum runs over its 16 elements in index order (eight such
  /// chains advance together), then the sub-block terms are added in order.
  QLORA_HD static float dot_block(const Block& b, const float* x) {
    const float d = b.d.to_float();
    float sum_qx[kSubBlocks];
    for (int h = 0; h < 2; ++h) {
      const float* xh = x + 128 * h;
      float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};  // [2k + half]
      for (int l = 0; l < 16; ++l) {
        const Quad a = quad(b, h, l);
        const Quad c = quad(b, h, l + 16);
        acc[0] += float(a.q0 - kCodeOffset) * xh[l];
        acc[1] += float(c.q0 - kCodeOffset) * xh[l + 16];
        acc[2] += float(a.q1 - kCodeOffset) * xh[l + 32];
        acc[3] += float(c.q1 - kCodeOffset) * xh[l + 48];
        acc[4] += float(a.q2 - kCodeOffset) * xh[l + 64];
        acc[5] += float(c.q2 - kCodeOffset) * xh[l + 80];
        acc[6] += float(a.q3 - kCodeOffset) * xh[l + 96];
        acc[7] += float(c.q3 - kCodeOffset) * xh[l + 112];
      }
      for (int k = 0; k < 8; ++k) sum_qx[8 * h + k] = acc[k];
    }
    float s = 0.0f;
    for (int j = 0; j < kSubBlocks; ++j) s += d * float(b.scales[j]) * sum_qx[j];
    return s;
  }

  /// Dot product with one Q8_K activation block, ggml_vec_dot_q6_K_q8_K
  /// semantics: signed 6-bit codes times int8 activations, scaled by the
  /// int8 sub-block scale, accumulated in 8 int32 lanes (element e goes to
  /// lane e % 8), then multiplied by d * d8. Bit-identical to the generic
  /// ggml kernel for one super-block (see Q4_K's dot_q8k for rows). The
  /// integer sums are exact in any order, so they are gathered per lane l
  /// of the block layout (e % 8 == l % 8) and folded into 8 lanes at the end.
  QLORA_HD static float dot_q8k(const Block& b, const FormatTraits<format::Q8_K>::Block& a) {
    std::int32_t acc[32];  // acc[l]: every element 128h + 32k + l
    for (int l = 0; l < 32; ++l) acc[l] = 0;
    for (int h = 0; h < 2; ++h) {
      const std::uint8_t* qh = b.qh + 32 * h;
      for (int k = 0; k < 4; ++k) {
        const std::uint8_t* ql = b.ql + 64 * h + 32 * (k & 1);
        const std::int8_t* q8 = a.qs + 128 * h + 32 * k;
        const int lo_shift = 4 * (k >> 1), hi_shift = 2 * k;
        for (int half = 0; half < 2; ++half) {
          const int sc = b.scales[8 * h + 2 * k + half];
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int q = ((ql[l] >> lo_shift) & 0x0F) | (((qh[l] >> hi_shift) & 3) << 4);
            acc[l] += sc * ((q - kCodeOffset) * int(q8[l]));
          }
        }
      }
    }
    std::int32_t lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int l = 0; l < 32; ++l) lanes[l % 8] += acc[l];
    const float d = b.d.to_float() * a.d;
    float sum = 0.0f;
    for (int l = 0; l < 8; ++l) sum += d * float(lanes[l]);
    return sum;
  }
};
static_assert(sizeof(FormatTraits<format::Q6_K>::Block) == 210, "q6_K block layout");
static_assert(QuantizableFormat<format::Q6_K>);

}  // namespace qlora::quant
