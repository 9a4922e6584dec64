// qlora/cpu/kquant_avx2.hpp — AVX2 Q4_K and Q6_K block quantizers, byte-identical
// to the scalar references FormatTraits<Q4_K/Q6_K>::quantize_block.
//
// Where the time goes. Both quantizers spend almost all their time in the
// per-sub-block scale search (kquant::make_qkx2_quants for Q4_K: 1 + 21
// candidate inverse scales over 32 weights; kquant::make_qx_quants for Q6_K:
// 1 + 18 candidates over 16 weights). Each candidate's sums run sequentially
// over the sub-block, so the scalar code is a chain of dependent adds.
//
// What we vectorize: SUB-BLOCKS ACROSS LANES. Lane j of every __m256 carries
// sub-block j (Q4_K: the block's 8 sub-blocks; Q6_K: two groups of 8), and
// the eight lanes run the scalar search of their sub-block in lock-step: the
// same candidates in the same order, every sum over the elements in index
// order, every product grouped as in the scalar code, and the "keep the
// better candidate" decision as a per-lane blend with the scalar's strict
// comparison (so ties keep the earlier candidate). An IEEE add, multiply,
// divide or square root on one lane is the same operation as on a scalar
// register, so each lane produces its sub-block's scalar result bit for bit.
// No FMA intrinsics are used and the build's -ffp-contract=off keeps the
// compiler from fusing _mm256_mul_ps/_mm256_add_ps pairs (the scalar
// reference needs the same flag). nearest_int is the same 1.5*2^23 magic add
// and bit mask, so even out-of-range inputs give the scalar's integers.
//
// Why lanes = sub-blocks and not lanes = candidates: in make_qkx2_quants a
// winning candidate replaces `min`, and the following candidates' inverse
// scale and codes are computed from that new min, so Q4_K's candidates are
// not independent. Per-sub-block lanes need no speculation and keep the
// sequential candidate order exactly. For Q6_K the candidates are
// independent, and the same layout is used for uniformity.
//
// Everything after the search (d / dmin / 6-bit or int8 scale codes, the
// code packing) is the scalar reference's own helper (store_scales,
// pack_codes in quant/q4_k.hpp, quant/q6_k.hpp); the re-derivation of the
// codes from the stored scales (one divide per weight) is vectorized here
// with the same per-element operations.
//
// Comparison predicates mirror the scalar operators on NaN as well (> and <
// are ordered-quiet, != is unordered), so even inputs whose products
// overflow to inf/NaN take the same branches.
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstdint>

#include "qlora/quant/kquant_search.hpp"
#include "qlora/quant/q4_k.hpp"
#include "qlora/quant/q6_k.hpp"

namespace qlora::cpu {
namespace kquant_avx2_detail {

/// nearest_int (quant/rounding.hpp) on 8 lanes: same magic add, same mask.
inline __m256i nearest_int8(__m256 f) {
  const __m256 v = _mm256_add_ps(f, _mm256_set1_ps(12582912.0f));
  return _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x007FFFFF)),
                          _mm256_set1_epi32(0x00400000));
}

inline __m256i clamp8(__m256i v, int lo, int hi) {
  return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
}

/// Per-lane select: mask lane set -> b, else a (like `if (cond) a = b`).
inline __m256 sel(__m256 a, __m256 b, __m256 mask) { return _mm256_blendv_ps(a, b, mask); }

/// In-place 8x8 transpose: r[j] lane i  <->  r[i] lane j.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/// Load 8 sub-blocks of `n` (a multiple of 8) consecutive floats starting at
/// x, x + n, ..., x + 7n, transposed: out[i] lane j = x[n*j + i].
template <int n>
inline void load_transposed(const float* x, __m256* out) {
  for (int c = 0; c < n / 8; ++c) {
    __m256 r[8];
    for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(x + n * j + 8 * c);
    transpose8(r);
    for (int i = 0; i < 8; ++i) out[8 * c + i] = r[i];
  }
}

/// 16 int32 codes (each 0..255) -> 16 bytes in order.
inline void store_u8x16(__m256i a, __m256i b, std::uint8_t* out) {
  __m256i p = _mm256_packs_epi32(a, b);       // a0-3 b0-3 | a4-7 b4-7 (int16)
  p = _mm256_permute4x64_epi64(p, 0xD8);      // a0-7 | b0-7
  const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
}

inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

}  // namespace kquant_avx2_detail

/// FormatTraits<Q4_K>::quantize_block with the 8 make_qkx2_quants<32>
/// searches (nmax 15, rmin -1, rdelta 0.1, nstep 20, squared error) run one
/// sub-block per lane.
inline void quantize_block_q4_K_avx2(const float* x, quant::FormatTraits<quant::format::Q4_K>::Block& b) {
  using namespace kquant_avx2_detail;
  using T = quant::FormatTraits<quant::format::Q4_K>;
  constexpr int N = T::kSubBlock;  // 32
  constexpr int nmax = T::kMaxCode;
  constexpr int nstep = 20;
  constexpr float rmin = -1.0f, rdelta = 0.1f;
  static_assert(T::kSubBlocks == 8);

  __m256 X[N];  // X[i] lane j = x[32j + i]
  __m256 W[N];  // importance av_x + |x|
  load_transposed<N>(x, X);

  // Importance: av_x = sqrt(sum x^2 / 32), summed from 0 in index order.
  __m256 sum_x2 = _mm256_setzero_ps();
  for (int i = 0; i < N; ++i) sum_x2 = _mm256_add_ps(sum_x2, _mm256_mul_ps(X[i], X[i]));
  const __m256 av_x = _mm256_sqrt_ps(_mm256_div_ps(sum_x2, _mm256_set1_ps(float(N))));
  for (int i = 0; i < N; ++i) W[i] = _mm256_add_ps(av_x, abs8(X[i]));

  // Range and weighted moments, element 0 seeding the loop.
  __m256 min = X[0], max = X[0];
  __m256 sum_w = W[0];
  __m256 sum_x = _mm256_mul_ps(W[0], X[0]);
  for (int i = 1; i < N; ++i) {
    min = sel(min, X[i], _mm256_cmp_ps(X[i], min, _CMP_LT_OQ));
    max = sel(max, X[i], _mm256_cmp_ps(X[i], max, _CMP_GT_OQ));
    sum_w = _mm256_add_ps(sum_w, W[i]);
    sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(W[i], X[i]));
  }
  const __m256 zero = _mm256_setzero_ps();
  min = sel(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ));
  const __m256 flat = _mm256_cmp_ps(max, min, _CMP_EQ_OQ);  // scalar returns early: codes 0, scale 0
  const __m256 min0 = min;

  // Starting point: iscale = nmax / (max - min).
  __m256 iscale = _mm256_div_ps(_mm256_set1_ps(float(nmax)), _mm256_sub_ps(max, min));
  __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
  __m256 best_error = _mm256_setzero_ps();
  for (int i = 0; i < N; ++i) {
    const __m256 fl = _mm256_cvtepi32_ps(clamp8(nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], min))), 0, nmax));
    const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, fl), min), X[i]);
    best_error = _mm256_add_ps(best_error, _mm256_mul_ps(W[i], _mm256_mul_ps(diff, diff)));
  }
  // The codes of the current best are nearest_int(code_iscale * (x - code_min)).
  __m256 code_iscale = iscale, code_min = min;

  __m256 FL[N];
  for (int is = 0; is <= nstep; ++is) {
    const float num = rmin + rdelta * float(is) + float(nmax);
    iscale = _mm256_div_ps(_mm256_set1_ps(num), _mm256_sub_ps(max, min));
    __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < N; ++i) {
      const __m256 fl = _mm256_cvtepi32_ps(clamp8(nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], min))), 0, nmax));
      FL[i] = fl;
      const __m256 wl = _mm256_mul_ps(W[i], fl);
      sum_l = _mm256_add_ps(sum_l, wl);
      sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, fl));
      sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, X[i]));
    }
    const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
    __m256 this_scale =
        _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
    __m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
    const __m256 pos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
    this_min = sel(this_min, zero, pos);
    this_scale = sel(this_scale, _mm256_div_ps(sum_xl, sum_l2), pos);
    __m256 cur_error = zero;
    for (int i = 0; i < N; ++i) {
      const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, FL[i]), this_min), X[i]);
      cur_error = _mm256_add_ps(cur_error, _mm256_mul_ps(W[i], _mm256_mul_ps(diff, diff)));
    }
    const __m256 win =
        _mm256_and_ps(_mm256_cmp_ps(D, zero, _CMP_GT_OQ), _mm256_cmp_ps(cur_error, best_error, _CMP_LT_OQ));
    best_error = sel(best_error, cur_error, win);
    scale = sel(scale, this_scale, win);
    code_iscale = sel(code_iscale, iscale, win);
    code_min = sel(code_min, min, win);
    min = sel(min, this_min, win);
  }
  scale = sel(scale, zero, flat);
  min = sel(min, min0, flat);

  alignas(32) float scales[8];
  alignas(32) float mins[8];
  _mm256_store_ps(scales, scale);
  _mm256_store_ps(mins, _mm256_xor_ps(min, _mm256_set1_ps(-0.0f)));  // the_min = -min
  T::store_scales(scales, mins, b);

  // Re-derive the codes from the stored scales (T::requantize_codes, 8 at a time).
  alignas(32) std::uint8_t L[quant::kQK_K];
  const float d_all = b.d.to_float();
  const float dmin_all = b.dmin.to_float();
  for (int j = 0; j < 8; ++j) {
    const quant::kquant::ScaleMin sm = quant::kquant::get_scale_min_k4(j, b.scales);
    const float dj = d_all * float(sm.scale);
    const float* xj = x + N * j;
    if (dj == 0.0f) {
      // Keep the search's codes (all 0 for a flat sub-block).
      alignas(32) float ci[8], cm[8], fz[8];
      _mm256_store_ps(ci, code_iscale);
      _mm256_store_ps(cm, code_min);
      _mm256_store_ps(fz, flat);
      for (int i = 0; i < N; ++i) {
        int l = quant::nearest_int(ci[j] * (xj[i] - cm[j]));
        l = l < 0 ? 0 : (l > nmax ? nmax : l);
        L[N * j + i] = fz[j] != 0.0f ? 0 : std::uint8_t(l);
      }
      continue;
    }
    const __m256 djv = _mm256_set1_ps(dj);
    const __m256 mjv = _mm256_set1_ps(dmin_all * float(sm.min));
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = clamp8(nearest_int8(_mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(xj + 8 * k), mjv), djv)), 0, nmax);
    store_u8x16(q[0], q[1], L + N * j);
    store_u8x16(q[2], q[3], L + N * j + 16);
  }
  T::pack_codes(L, b);
}

/// FormatTraits<Q6_K>::quantize_block with the 16 make_qx_quants<16>
/// searches (nmax 32) run as two groups of 8 sub-blocks, one per lane.
inline void quantize_block_q6_K_avx2(const float* x, quant::FormatTraits<quant::format::Q6_K>::Block& b) {
  using namespace kquant_avx2_detail;
  using T = quant::FormatTraits<quant::format::Q6_K>;
  constexpr int N = T::kSubBlock;  // 16
  constexpr int nmax = 32;
  static_assert(T::kSubBlocks == 16);

  alignas(32) float scales[16];
  alignas(32) float best_iscales[16];
  alignas(32) float zero_groups[16];
  const __m256 zero = _mm256_setzero_ps();
  for (int g = 0; g < 2; ++g) {
    __m256 X[N];  // X[i] lane j = x[16(8g + j) + i]
    load_transposed<N>(x + 128 * g, X);

    // The signed value of largest magnitude; the first one wins ties.
    __m256 max = zero, amax = zero;
    for (int i = 0; i < N; ++i) {
      const __m256 ax = abs8(X[i]);
      const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
      amax = sel(amax, ax, gt);
      max = sel(max, X[i], gt);
    }
    const __m256 is_zero = _mm256_cmp_ps(amax, _mm256_set1_ps(quant::kquant::kGroupMaxEps), _CMP_LT_OQ);

    __m256 WX[N], Wt[N];  // w = x^2 and w * x
    for (int i = 0; i < N; ++i) {
      Wt[i] = _mm256_mul_ps(X[i], X[i]);
      WX[i] = _mm256_mul_ps(Wt[i], X[i]);
    }
    // Candidate sums: sum (w*x)*l and sum (w*l)*l, in index order.
    auto sums = [&](__m256 iscale, __m256& sumlx, __m256& suml2) {
      sumlx = zero;
      suml2 = zero;
      for (int i = 0; i < N; ++i) {
        const __m256 fl = _mm256_cvtepi32_ps(clamp8(nearest_int8(_mm256_mul_ps(iscale, X[i])), -nmax, nmax - 1));
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(WX[i], fl));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(Wt[i], fl), fl));
      }
    };

    __m256 iscale = _mm256_div_ps(_mm256_set1_ps(float(-nmax)), max);
    __m256 sumlx, suml2;
    sums(iscale, sumlx, suml2);
    __m256 scale = sel(zero, _mm256_div_ps(sumlx, suml2), _mm256_cmp_ps(suml2, zero, _CMP_NEQ_UQ));
    __m256 best = _mm256_mul_ps(scale, sumlx);
    __m256 best_iscale = iscale;
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) continue;
      iscale = _mm256_div_ps(_mm256_set1_ps(-(float(nmax) + 0.1f * float(is))), max);
      sums(iscale, sumlx, suml2);
      const __m256 win = _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
                                       _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
      const __m256 s = _mm256_div_ps(sumlx, suml2);
      scale = sel(scale, s, win);
      best = sel(best, _mm256_mul_ps(s, sumlx), win);
      best_iscale = sel(best_iscale, iscale, win);
    }
    _mm256_store_ps(scales + 8 * g, sel(scale, zero, is_zero));
    _mm256_store_ps(best_iscales + 8 * g, best_iscale);
    _mm256_store_ps(zero_groups + 8 * g, is_zero);
  }

  if (!T::store_scales(scales, b)) return;

  // Re-derive the codes from the stored d and int8 scales (T::requantize_codes).
  alignas(32) std::int8_t L[quant::kQK_K];
  const float d_all = b.d.to_float();
  const __m256i offset = _mm256_set1_epi32(T::kCodeOffset);
  for (int j = 0; j < 16; ++j) {
    const float dj = d_all * float(b.scales[j]);
    const float* xj = x + N * j;
    if (dj == 0.0f) {
      // Keep the search's codes (0 for an all-zero group).
      for (int i = 0; i < N; ++i) {
        int l = quant::nearest_int(best_iscales[j] * xj[i]);
        l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
        L[N * j + i] = zero_groups[j] != 0.0f ? std::int8_t(0) : std::int8_t(l + nmax);
      }
      continue;
    }
    const __m256 djv = _mm256_set1_ps(dj);
    const __m256i q0 = clamp8(nearest_int8(_mm256_div_ps(_mm256_loadu_ps(xj), djv)), -32, 31);
    const __m256i q1 = clamp8(nearest_int8(_mm256_div_ps(_mm256_loadu_ps(xj + 8), djv)), -32, 31);
    store_u8x16(_mm256_add_epi32(q0, offset), _mm256_add_epi32(q1, offset), reinterpret_cast<std::uint8_t*>(L + N * j));
  }
  T::pack_codes(L, b);
}

/// Row kernels: n is a multiple of 256 (validated by the caller).
inline void quantize_row_q4_K_avx2(const float* x, void* dst, std::int64_t n) {
  auto* blocks = static_cast<quant::FormatTraits<quant::format::Q4_K>::Block*>(dst);
  for (std::int64_t i = 0; i < n / quant::kQK_K; ++i) quantize_block_q4_K_avx2(x + i * quant::kQK_K, blocks[i]);
}

inline void quantize_row_q6_K_avx2(const float* x, void* dst, std::int64_t n) {
  auto* blocks = static_cast<quant::FormatTraits<quant::format::Q6_K>::Block*>(dst);
  for (std::int64_t i = 0; i < n / quant::kQK_K; ++i) quantize_block_q6_K_avx2(x + i * quant::kQK_K, blocks[i]);
}

}  // namespace qlora::cpu
#endif  // __AVX2__
