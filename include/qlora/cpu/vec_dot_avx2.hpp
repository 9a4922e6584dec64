// qlora/cpu/vec_dot_avx2.hpp — AVX2/FMA row-dot kernels, one family per weight
// format, written as R x C *tiles*: R weight rows times C activation rows,
// over the whole row length K, producing R*C dot products.
//
//   y[c * ldy + r] = sum_k W[r][k] * A[c][k]        r < R, c < C
//
// A tile decodes each weight block once and reuses it (in registers) for the
// C activation rows, and loads each activation block once for the R weight
// rows. matvec is C = 1 (R rows share the activation loads); matmul uses
// C = 4 (8 in the AVX-512 pair tiles) so prompt processing becomes
// compute-bound.
//
// Activations (activation_quant.hpp):
//   Q8_0, Q5_0, Q4_1  x Act32 (int8 codes, fp32 scale per 32, code sums)
//   Q4_K, Q6_K        x Q8_K blocks
//   F32, F16, BF16    x the f32 activations themselves (no quantization; F16
//                     and BF16 weights are widened to f32 exactly, so these
//                     are plain fp32 FMA dot products)
//
// Integer core. Every quantized product is an unsigned-by-signed byte dot
// product, dp_u8s8(acc, u, s) = acc + sum of 4 adjacent u8*s8 per int32 lane:
// one vpdpbusd with AVX512-VNNI (or AVX-VNNI), else vpmaddubsw + vpmaddwd
// (whose int16 intermediate saturates, so each kernel below states why its
// pair sums stay <= 32767 or uses the sign trick instead). To feed the
// unsigned operand without per-product sign fixes we offset the weights:
//   Q8_0: u = w + 128 (VNNI only; w*s pairs would saturate vpmaddubsw),
//         result - 128 * sum(a);   without VNNI: |w| times sign(a, w).
//   Q5_0: u = code in 0..31 (the stored form), result - 16 * sum(a).
//   Q4_1: u = code in 0..15, then + m * sum(a) in float.
//   Q4_K: u = 4-bit code, vpmaddubsw then vpmaddwd/vpdpwssd by the 6-bit scale.
//   Q6_K: u = 6-bit code 0..63, same with the int8 scale; the -32 offset is
//         applied once per super-block through Q8_K's bsums.
// The "- c * sum(a)" corrections are exact int32 terms, computed per int32
// lane (c times the lane's 4 activation codes, one dp_u8s8 per activation
// block, shared by the R weight rows) and used as the accumulator's initial
// value, so every lane holds exactly its own sum(w*a) before conversion to
// float (a correction in lane 0 alone would inflate the lanes and with them
// the fp32 rounding). All integer sums are exact. The float part — how the
// exact block sums become the fp32 result — is, rounding for rounding, that
// of the llama.cpp kernel which handles the same weight type and batch size
// (matmul.hpp lists which; each kernel below states its steps): Q8_0/Q5_0
// one FMA per block and int32 lane, then ggml's 8-lane sum; Q4_1 the same
// plus a separate fused chain for the mins; Q4_K/Q6_K per-output chains over
// (groups of) super-blocks, selected by the tiles' Accum parameter. So the
// result equals sum_b d_w(b) d_a(b) isum(b) up to fp32 accumulation rounding,
// and equals llama.cpp's result bit for bit.
//
// Without AVX2 this header defines nothing; matmul.hpp then falls back to the
// scalar FormatTraits dot products.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#define QLORA_CPU_AVX2_KERNELS 1
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "qlora/core/half.hpp"
#include "qlora/cpu/activation_quant.hpp"
#include "qlora/cpu/vec_f32.hpp"
#include "qlora/quant/float_formats.hpp"
#include "qlora/quant/q4_1.hpp"
#include "qlora/quant/q4_k.hpp"
#include "qlora/quant/q5_0.hpp"
#include "qlora/quant/q6_k.hpp"
#include "qlora/quant/q8_0.hpp"
#include "qlora/quant/q8_k.hpp"

namespace qlora::cpu {

/// Which of llama.cpp's kernels a tile reproduces the float steps of, where
/// a weight type has more than one (see the K-quant sections below; which one
/// llama.cpp runs depends on the batch size: matmul.hpp). A template
/// parameter of the tiles, so each order is its own straight-line kernel.
enum class Accum : std::uint8_t {
  kDefault,     // the format's ggml_vec_dot_* (for Q8_0/Q5_0 also tinyBLAS: same steps)
  kRepackGemv,  // Q4_K: CPU_REPACK ggml_gemv_q4_K_8x8_q8_K
  kRepackGemm,  // Q4_K: CPU_REPACK ggml_gemm_q4_K_8x8_q8_K
  kTiled,       // Q6_K: the tiled K-quant matmul
};

/// Operands of one tile. Weight row r starts at w + r * w_stride; activation
/// row c at a + c * a_stride (an Act32 row, a Q8_K block array, or f32).
struct TileArgs {
  const std::uint8_t* w;
  std::size_t w_stride;
  const std::uint8_t* a;
  std::size_t a_stride;
  std::int64_t K;
  float* y;
  std::int64_t ldy;
  // Optional software prefetch of the NEXT tile's weights (matvec streams
  // weights from DRAM; the hardware prefetchers do not follow R interleaved
  // row streams well). Iteration i of the K loop prefetches bytes
  // [pf + i * pf_step, pf + (i + 1) * pf_step).
  const std::uint8_t* pf = nullptr;
  std::size_t pf_step = 0;
};

namespace simd {

#if (defined(__AVX512VNNI__) && defined(__AVX512VL__)) || defined(__AVXVNNI__)
inline constexpr bool kVnni = true;
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
inline __m256i dp_u8s8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_epi32(acc, a, b); }
#else
inline __m256i dp_u8s8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_avx_epi32(acc, a, b); }
#endif
#else
inline constexpr bool kVnni = false;
/// Caller guarantees |u[2i]*s[2i] + u[2i+1]*s[2i+1]| <= 32767 (vpmaddubsw saturates).
inline __m256i dp_u8s8(__m256i acc, __m256i u, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
#endif

inline float h2f(std::uint16_t bits) {
#if defined(__F16C__)
  return _cvtsh_ss(bits);
#else
  return fp16_to_f32(bits);
#endif
}

/// ggml's 8-lane sum (hsum8, cpu/vec_f32.hpp).
inline float hsum(__m256 v) { return hsum8(v); }

/// 32 packed nibbles (16 bytes: element j low, element j + 16 high) -> 32 bytes.
inline __m256i nibbles32(const std::uint8_t* p) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/// Bit j of qh -> byte j = 0x10 (set) or 0 (clear), j = 0..31.
inline __m256i bits_to_0x10(std::uint32_t qh) {
  const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                        3, 3, 3, 3, 3, 3);
  const __m256i bm = _mm256_set1_epi64x(0x8040201008040201LL);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(std::int32_t(qh)), shuf);
  v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bm), bm);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

/// Block pointers of a tile's R weight rows: r[i][b] is row i's block b.
template <class B, int R>
struct TileRows {
  const B* r[R];
  explicit TileRows(const TileArgs& t) {
    for (int i = 0; i < R; ++i) r[i] = reinterpret_cast<const B*>(t.w + i * t.w_stride);
  }
};

/// Codes, block scales and scaled sums of a tile's C Act32 activation rows.
template <int C>
struct Act32Cols {
  const std::int8_t* qs[C];
  const float* d[C];
  const float* s[C];
  explicit Act32Cols(const TileArgs& t) {
    for (int c = 0; c < C; ++c) {
      const Act32View v(t.a + c * t.a_stride, t.K);
      qs[c] = v.qs;
      d[c] = v.d;
      s[c] = v.s;
    }
  }
};

/// A Q5_0 block's 32 codes (0..31) as bytes: 4 low bits packed, bit 4 in qh.
inline __m256i q5_0_codes(const quant::FormatTraits<quant::format::Q5_0>::Block& blk) {
  std::uint32_t qh;
  std::memcpy(&qh, blk.qh, 4);
  return _mm256_or_si256(nibbles32(blk.qs), bits_to_0x10(qh));
}

/// Prefetch the cache lines starting in [pf + i*step, pf + (i+1)*step).
inline void prefetch_step(const TileArgs& t, std::int64_t i) {
  if (!t.pf) return;
  const std::uintptr_t b = reinterpret_cast<std::uintptr_t>(t.pf) + std::uintptr_t(i) * t.pf_step;
  for (std::uintptr_t l = (b + 63) & ~std::uintptr_t(63); l < b + t.pf_step; l += 64)
    _mm_prefetch(reinterpret_cast<const char*>(l), _MM_HINT_T0);
}

template <int R, int C>
inline void store_tile(const TileArgs& t, const __m256 (&acc)[R][C]) {
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) t.y[c * t.ldy + r] = hsum(acc[r][c]);
}

template <int R, int C>
inline void zero_tile(__m256 (&acc)[R][C]) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
}

}  // namespace simd

// ---------------------------------------------------------------------------
// Q8_0 x Act32
// ---------------------------------------------------------------------------
template <int R, int C>
inline void tile_q8_0(const TileArgs& t) {
  using namespace simd;
  using B = quant::FormatTraits<quant::format::Q8_0>::Block;
  const std::int64_t nb = t.K / 32;
  const TileRows<B, R> rows(t);
  const auto& wr = rows.r;
  const Act32Cols<C> act(t);
  const auto &aq = act.qs, &ad = act.d;
  __m256 acc[R][C];
  zero_tile(acc);
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch_step(t, b);
    __m256i wu[R];
    __m256i wa[R];  // |w| (no-VNNI path)
    __m256 dw[R];
    for (int r = 0; r < R; ++r) {
      const __m256i q = load256(wr[r][b].qs);
      if constexpr (kVnni) {
        wu[r] = _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));  // w + 128 as u8
      } else {
        wu[r] = q;
        wa[r] = _mm256_sign_epi8(q, q);  // |w| <= 127 (a -128 code would read as 128: still exact u8)
      }
      dw[r] = _mm256_set1_ps(h2f(wr[r][b].d.bits));
    }
    for (int c = 0; c < C; ++c) {
      const __m256i y = load256(aq[c] + 32 * b);
      const __m256 da = _mm256_set1_ps(ad[c][b]);
      if constexpr (kVnni) {
        // -128 * (sum of a over each lane's 4 elements): lanes stay exact sum(w*a).
        const __m256i corr =
            _mm256_sub_epi32(_mm256_setzero_si256(), dp_u8s8(_mm256_setzero_si256(), _mm256_set1_epi8(char(0x80)), y));
        for (int r = 0; r < R; ++r) {
          const __m256i s = dp_u8s8(corr, wu[r], y);
          acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw[r], da), acc[r][c]);
        }
      } else {
        for (int r = 0; r < R; ++r) {
          // |w| * (sign(w) a): pairs <= 2 * 127 * 127 < 32767.
          const __m256i s = dp_u8s8(_mm256_setzero_si256(), wa[r], _mm256_sign_epi8(y, wu[r]));
          acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw[r], da), acc[r][c]);
        }
      }
    }
  }
  store_tile(t, acc);
}

// ---------------------------------------------------------------------------
// Q5_0 x Act32: u = 5-bit code (0..31), dot - 16 * sum(a). maddubs pairs
// <= 2 * 31 * 127 = 7874.
// ---------------------------------------------------------------------------
template <int R, int C>
inline void tile_q5_0(const TileArgs& t) {
  using namespace simd;
  using B = quant::FormatTraits<quant::format::Q5_0>::Block;
  const std::int64_t nb = t.K / 32;
  const TileRows<B, R> rows(t);
  const auto& wr = rows.r;
  const Act32Cols<C> act(t);
  const auto &aq = act.qs, &ad = act.d;
  __m256 acc[R][C];
  zero_tile(acc);
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch_step(t, b);
    __m256i wu[R];
    __m256 dw[R];
    for (int r = 0; r < R; ++r) {
      wu[r] = q5_0_codes(wr[r][b]);
      dw[r] = _mm256_set1_ps(h2f(wr[r][b].d.bits));
    }
    for (int c = 0; c < C; ++c) {
      const __m256i y = load256(aq[c] + 32 * b);
      const __m256 da = _mm256_set1_ps(ad[c][b]);
      const __m256i corr =
          _mm256_sub_epi32(_mm256_setzero_si256(), dp_u8s8(_mm256_setzero_si256(), _mm256_set1_epi8(16), y));
      for (int r = 0; r < R; ++r) {
        const __m256i s = dp_u8s8(corr, wu[r], y);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw[r], da), acc[r][c]);
      }
    }
  }
  store_tile(t, acc);
}

// ---------------------------------------------------------------------------
// Q8_0 and Q5_0 with AVX-512 (VNNI): two activation columns per 512-bit
// register. Both formats are offset bytes u = w + o against the activation
// codes (Q8_0: w + 128 by flipping the sign bit; Q5_0: the stored code, o =
// 16), so each lane's sum(w*a) is dp(u, a) - o * sum(a), as in the VNNI
// paths above. The 256-bit tiles keep one 8-lane accumulator per (row,
// column); here the low half of a register is column c's and the high half
// column c + 1's, with the weight block broadcast to both halves. Each lane
// takes exactly the 256-bit tile's steps (the same exact integer sum, convert,
// scale product and FMA, blocks in the same order), so the outputs are
// bit-identical while each instruction serves two outputs.
// ---------------------------------------------------------------------------
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VNNI__)
#define QLORA_CPU_PAIR_TILES 1

template <class F>
struct OffsetCodes;
template <>
struct OffsetCodes<quant::format::Q8_0> {
  static constexpr char kOffset = char(0x80);
  static __m256i u8(const quant::FormatTraits<quant::format::Q8_0>::Block& blk) {
    return _mm256_xor_si256(simd::load256(blk.qs), _mm256_set1_epi8(char(0x80)));
  }
};
template <>
struct OffsetCodes<quant::format::Q5_0> {
  static constexpr char kOffset = 16;
  static __m256i u8(const quant::FormatTraits<quant::format::Q5_0>::Block& blk) { return simd::q5_0_codes(blk); }
};

template <class F, int R, int C>
inline void tile_offset_pairs(const TileArgs& t) {
  using namespace simd;
  using B = typename quant::FormatTraits<F>::Block;
  constexpr int P = (C + 1) / 2;  // an odd C's last pair repeats its column in the high half, unstored
  const std::int64_t nb = t.K / 32;
  const TileRows<B, R> rows(t);
  const auto& wr = rows.r;
  const Act32Cols<C> act(t);
  const auto &aq = act.qs, &ad = act.d;
  __m512 acc[R][P];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  const __m512i offset = _mm512_set1_epi8(OffsetCodes<F>::kOffset);
  for (std::int64_t b = 0; b < nb; ++b) {
    __m512i wu[R];
    __m512 dw[R];
    for (int r = 0; r < R; ++r) {
      wu[r] = _mm512_broadcast_i64x4(OffsetCodes<F>::u8(wr[r][b]));
      dw[r] = _mm512_set1_ps(h2f(wr[r][b].d.bits));
    }
    for (int p = 0; p < P; ++p) {
      const int c0 = 2 * p, c1 = 2 * p + 1 < C ? 2 * p + 1 : 2 * p;
      const __m512i y = _mm512_inserti64x4(_mm512_castsi256_si512(load256(aq[c0] + 32 * b)), load256(aq[c1] + 32 * b), 1);
      const __m512 da = _mm512_insertf32x8(_mm512_set1_ps(ad[c0][b]), _mm256_set1_ps(ad[c1][b]), 1);
      const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, y));
      for (int r = 0; r < R; ++r) {
        const __m512i s = _mm512_dpbusd_epi32(corr, wu[r], y);
        acc[r][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], da), acc[r][p]);
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int r = 0; r < R; ++r) {
      t.y[2 * p * t.ldy + r] = hsum(_mm512_castps512_ps256(acc[r][p]));
      if (2 * p + 1 < C) t.y[(2 * p + 1) * t.ldy + r] = hsum(_mm512_extractf32x8_ps(acc[r][p], 1));
    }
}
#endif

// ---------------------------------------------------------------------------
// Per-output float steps. The integer part of a K-quant (and Q4_1's min
// term) is exact, but llama.cpp turns it into floats per output, differently
// per kernel — and which kernel runs depends on the batch size (matmul.hpp).
// Those steps run here with one tile output per vector lane ("out lanes"):
//   C == 1 (matvec): lane r of a single vector;
//   C > 1: vector g holds rows 2g and 2g+1 (lanes 0-3 and 4-7) by columns 0..3.
// ggml's interleaved kernels also keep one output per lane, so their
// per-output float steps become ours lane for lane. Lanes of missing
// rows/columns (tile edges) hold zeros.
// ---------------------------------------------------------------------------
namespace detail {

template <int R, int C>
inline constexpr int kOutVecs = C == 1 ? 1 : (R + 1) / 2;

/// Lane i = the sum of the 8 int32 lanes of a[i] (exact; i < 8).
inline __m256i lane_totals8(const __m256i (&a)[8]) {
  const __m256i s01 = _mm256_hadd_epi32(a[0], a[1]), s23 = _mm256_hadd_epi32(a[2], a[3]);
  const __m256i s45 = _mm256_hadd_epi32(a[4], a[5]), s67 = _mm256_hadd_epi32(a[6], a[7]);
  const __m256i q0 = _mm256_hadd_epi32(s01, s23);  // a0..a3: low-half sums | high-half sums
  const __m256i q1 = _mm256_hadd_epi32(s45, s67);  // a4..a7
  return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q0, q1, 0x31));
}

/// Lane i = the sum of the 8 int32 lanes of a[i] for i < 4; lanes 4..7 zero.
inline __m256i lane_totals4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
  const __m256i q = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
  return _mm256_zextsi128_si256(_mm_add_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
}

/// Out-lane vector g of the totals of v[r][c] (each an 8-lane int32 vector).
template <int R, int C>
inline __m256i tile_totals(const __m256i (&v)[R][C], int g) {
  static_assert(C <= 4, "out lanes hold at most 4 columns");
  const __m256i z = _mm256_setzero_si256();
  if constexpr (C == 1) {
    static_assert(R <= 4, "matvec out lanes hold at most 4 rows here");
    return lane_totals4(v[0][0], R > 1 ? v[R > 1 ? 1 : 0][0] : z, R > 2 ? v[R > 2 ? 2 : 0][0] : z,
                        R > 3 ? v[R > 3 ? 3 : 0][0] : z);
  } else {
    __m256i a[8];
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < 4; ++c) {
        const int r = 2 * g + h;
        a[4 * h + c] = (r < R && c < C) ? v[r < R ? r : 0][c < C ? c : 0] : z;
      }
    return lane_totals8(a);
  }
}

/// A per-row value x[r] in out-lane vector g.
template <int R, int C>
inline __m256 rows_vec(const float (&x)[R], int g) {
  auto at = [&](int r) { return r < R ? x[r < R ? r : 0] : 0.0f; };
  if constexpr (C == 1) return _mm256_setr_ps(at(0), at(1), at(2), at(3), 0.0f, 0.0f, 0.0f, 0.0f);
  else return _mm256_set_m128(_mm_set1_ps(at(2 * g + 1)), _mm_set1_ps(at(2 * g)));
}

/// A per-column value x[c] in the out lanes (the same for every vector).
template <int C>
inline __m256 cols_vec(const float (&x)[C]) {
  if constexpr (C == 1) {
    return _mm256_set1_ps(x[0]);
  } else {
    auto at = [&](int c) { return c < C ? x[c < C ? c : 0] : 0.0f; };
    const __m128 v = _mm_setr_ps(at(0), at(1), at(2), at(3));
    return _mm256_set_m128(v, v);
  }
}

/// y[c * ldy + r] = the out lane of (r, c).
template <int R, int C>
inline void store_lanes(const TileArgs& t, const __m256 (&out)[kOutVecs<R, C>]) {
  alignas(32) float o[kOutVecs<R, C>][8];
  for (int g = 0; g < kOutVecs<R, C>; ++g) _mm256_store_ps(o[g], out[g]);
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) t.y[c * t.ldy + r] = C == 1 ? o[0][r] : o[r / 2][(r & 1) * 4 + c];
}

/// The out-lane value at (r, c) of a stored out-lane vector set.
template <int R, int C>
inline float lane_at(const float (&o)[kOutVecs<R, C>][8], int r, int c) {
  return C == 1 ? o[0][r] : o[r / 2][(r & 1) * 4 + c];
}

/// Q4_K's 12 scale bytes -> 8 scales and 8 mins (bytes, 0..63).
inline void q4k_scales(const std::uint8_t* p, std::uint8_t* sc, std::uint8_t* mn) {
  std::uint32_t u0, u1, u2;
  std::memcpy(&u0, p, 4);
  std::memcpy(&u1, p + 4, 4);
  std::memcpy(&u2, p + 8, 4);
  const std::uint32_t s_lo = u0 & 0x3F3F3F3Fu, m_lo = u1 & 0x3F3F3F3Fu;
  const std::uint32_t s_hi = (u2 & 0x0F0F0F0Fu) | ((u0 >> 2) & 0x30303030u);
  const std::uint32_t m_hi = ((u2 >> 4) & 0x0F0F0F0Fu) | ((u1 >> 2) & 0x30303030u);
  std::memcpy(sc, &s_lo, 4);
  std::memcpy(sc + 4, &s_hi, 4);
  std::memcpy(mn, &m_lo, 4);
  std::memcpy(mn + 4, &m_hi, 4);
}
}  // namespace detail

// ---------------------------------------------------------------------------
// Q4_1 x Act32: value = d*q + m, so dot = d*da*sum(q*a) + m*(da*sum(a)).
// llama.cpp (ggml_vec_dot_q4_1_q8_1, for every batch size: llamafile has no
// Q4_1 path) keeps the two terms apart: 8 lanes of fma(float(lane),
// d * d_a, acc) for the codes, and a scalar summs = fma(m, s_a, summs) for
// the mins (s_a = the activation block's fp16 d*sum, Act32View::s; the source
// writes summs += m * s, which GCC fuses: vfmadd231ss in the library), then
// y = hsum8(acc) + summs. The summs chains run in out lanes (one lane per
// output, see "Per-output float steps" above). maddubs pairs <= 2*15*127.
// ---------------------------------------------------------------------------
template <int R, int C>
inline void tile_q4_1(const TileArgs& t) {
  using namespace simd;
  using B = quant::FormatTraits<quant::format::Q4_1>::Block;
  constexpr int G = detail::kOutVecs<R, C>;
  const std::int64_t nb = t.K / 32;
  const TileRows<B, R> rows(t);
  const auto& wr = rows.r;
  const Act32Cols<C> act(t);
  const auto &aq = act.qs, &ad = act.d, &as = act.s;
  __m256 acc[R][C];
  __m256 summs[G];
  zero_tile(acc);
  for (int g = 0; g < G; ++g) summs[g] = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch_step(t, b);
    __m256i wu[R];
    __m256 dw[R];
    float mw[R], sa[C];
    for (int r = 0; r < R; ++r) {
      wu[r] = nibbles32(wr[r][b].qs);
      dw[r] = _mm256_set1_ps(h2f(wr[r][b].d.bits));
      mw[r] = h2f(wr[r][b].m.bits);
    }
    for (int c = 0; c < C; ++c) sa[c] = as[c][b];
    const __m256 sa_v = detail::cols_vec(sa);
    for (int g = 0; g < G; ++g) summs[g] = _mm256_fmadd_ps(detail::rows_vec<R, C>(mw, g), sa_v, summs[g]);
    for (int c = 0; c < C; ++c) {
      const __m256i y = load256(aq[c] + 32 * b);
      const __m256 da = _mm256_set1_ps(ad[c][b]);
      for (int r = 0; r < R; ++r) {
        const __m256i s = dp_u8s8(_mm256_setzero_si256(), wu[r], y);
        acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], da), _mm256_cvtepi32_ps(s), acc[r][c]);
      }
    }
  }
  alignas(32) float sm[G][8];
  for (int g = 0; g < G; ++g) _mm256_store_ps(sm[g], summs[g]);
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) t.y[c * t.ldy + r] = hsum(acc[r][c]) + detail::lane_at<R, C>(sm, r, c);
}

// ---------------------------------------------------------------------------
// Q4_K x Q8_K. Integer part, per 64 elements (sub-blocks 2p and 2p+1, one
// 32-byte load of codes: low nibbles 2p, high 2p+1): vpmaddubsw(code, a)
// (pairs <= 2 * 15 * 127) then vpmaddwd/vpdpwssd by the 6-bit scale; the
// min term's integer per pair p is m_2p * B_2p + m_2p+1 * B_2p+1 with B the
// activation's 32-element code sums (from Q8_K's bsums): one vpmaddwd lane.
// Float part — llama.cpp runs Q4_K through its CPU_REPACK q4_K_8x8 kernels
// (any Q4_K matrix whose row count is a multiple of 8), per output:
//   S = fma(float(I), d * d_a, S),  Mn = fma(float(Imin), dmin * d_a, Mn),
//   y = S - Mn  (S and Mn start at 0; d * d_a is one fp32 product),
// with (I, Imin) the integer sums of a whole super-block in the gemv kernel
// (Accum::kRepackGemv: rows taken one at a time) and of each 64-element pair
// in the gemm kernel (Accum::kRepackGemm: groups of 4 activation rows).
// ---------------------------------------------------------------------------
namespace detail {
/// Q4_K's min-term integers for the out lanes of an R x C tile, per 64-element
/// pair p: m_2p * B_2p + m_2p+1 * B_2p+1 (m the row's 6-bit mins, B the
/// column's 32-element code sums) — one vpmaddwd lane of (mins, B) as int16.
template <int R, int C>
struct Q4KMins {
  static constexpr int G = kOutVecs<R, C>;
  __m256i lanes[4][G];  // [p][g]

  Q4KMins(const std::uint8_t (&mn)[R][8], const __m128i (&bs8)[C]) {
    __m128i mins16[R];
    for (int r = 0; r < R; ++r) mins16[r] = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn[r])));
    if constexpr (C == 1) {
      // Lane p of madd(mins_r, B) is row r's pair-p integer: transpose rows x pairs.
      __m128 m[4];
      for (int r = 0; r < 4; ++r) m[r] = r < R ? _mm_castsi128_ps(_mm_madd_epi16(mins16[r < R ? r : 0], bs8[0])) : _mm_setzero_ps();
      _MM_TRANSPOSE4_PS(m[0], m[1], m[2], m[3]);
      for (int p = 0; p < 4; ++p) lanes[p][0] = _mm256_zextsi128_si256(_mm_castps_si128(m[p]));
    } else {
      // Pair words (B_2p, B_2p+1) of columns 0..3, transposed: bw[p] = [word p of each column].
      __m128 bw[4];
      for (int c = 0; c < 4; ++c) bw[c] = c < C ? _mm_castsi128_ps(bs8[c < C ? c : 0]) : _mm_setzero_ps();
      _MM_TRANSPOSE4_PS(bw[0], bw[1], bw[2], bw[3]);
      for (int g = 0; g < G; ++g) {
        const __m256i rows = _mm256_set_m128i(2 * g + 1 < R ? mins16[2 * g + 1 < R ? 2 * g + 1 : 0] : _mm_setzero_si128(),
                                              mins16[2 * g]);
        for (int p = 0; p < 4; ++p) {
          const __m256i pick = _mm256_setr_epi32(p, p, p, p, 4 + p, 4 + p, 4 + p, 4 + p);
          lanes[p][g] = _mm256_madd_epi16(_mm256_permutevar8x32_epi32(rows, pick),
                                          _mm256_broadcastsi128_si256(_mm_castps_si128(bw[p])));
        }
      }
    }
  }
};
}  // namespace detail

template <int R, int C, Accum A>
inline void tile_q4_K_order(const TileArgs& t) {
  using namespace simd;
  using B = quant::FormatTraits<quant::format::Q4_K>::Block;
  using Q8K = quant::FormatTraits<quant::format::Q8_K>::Block;
  constexpr int G = detail::kOutVecs<R, C>;
  constexpr bool kPerPair = A == Accum::kRepackGemm;
  const std::int64_t nb = t.K / quant::kQK_K;
  const TileRows<B, R> rows(t);
  const auto& wr = rows.r;
  const Q8K* ar[C];
  for (int c = 0; c < C; ++c) ar[c] = reinterpret_cast<const Q8K*>(t.a + c * t.a_stride);
  __m256 S[G], Mn[G];
  for (int g = 0; g < G; ++g) S[g] = Mn[g] = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch_step(t, b);
    alignas(16) std::uint8_t sc[R][8];
    alignas(16) std::uint8_t mn[R][8];
    float dw[R], dmin[R], da[C];
    for (int r = 0; r < R; ++r) {
      detail::q4k_scales(wr[r][b].scales, sc[r], mn[r]);
      dw[r] = h2f(wr[r][b].d.bits);
      dmin[r] = h2f(wr[r][b].dmin.bits);
    }
    __m128i bs8[C];  // activation 32-element code sums, int16
    for (int c = 0; c < C; ++c) {
      da[c] = ar[c][b].d;
      bs8[c] = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ar[c][b].bsums)),
                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(ar[c][b].bsums + 8)));
    }
    const __m256 da_v = detail::cols_vec(da);
    __m256 dd[G], dm[G];  // d * d_a and dmin * d_a per out lane
    for (int g = 0; g < G; ++g) {
      dd[g] = _mm256_mul_ps(detail::rows_vec<R, C>(dw, g), da_v);
      dm[g] = _mm256_mul_ps(detail::rows_vec<R, C>(dmin, g), da_v);
    }
    const detail::Q4KMins<R, C> mins(mn, bs8);
    __m256i sumi[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) sumi[r][c] = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const int j = 2 * p;
      __m256i qlo[R], qhi[R], slo[R], shi[R];
      for (int r = 0; r < R; ++r) {
        const __m256i q = load256(wr[r][b].qs + 32 * p);
        qlo[r] = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
        qhi[r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0F));
        slo[r] = _mm256_set1_epi16(sc[r][j]);
        shi[r] = _mm256_set1_epi16(sc[r][j + 1]);
      }
      if constexpr (kPerPair) {
        for (int r = 0; r < R; ++r)
          for (int c = 0; c < C; ++c) sumi[r][c] = _mm256_setzero_si256();
      }
      for (int c = 0; c < C; ++c) {
        const __m256i y0 = load256(ar[c][b].qs + 32 * j);
        const __m256i y1 = load256(ar[c][b].qs + 32 * j + 32);
        for (int r = 0; r < R; ++r) {
          sumi[r][c] = dp_s16(sumi[r][c], _mm256_maddubs_epi16(qlo[r], y0), slo[r]);
          sumi[r][c] = dp_s16(sumi[r][c], _mm256_maddubs_epi16(qhi[r], y1), shi[r]);
        }
      }
      if constexpr (kPerPair) {
        for (int g = 0; g < G; ++g) {
          S[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(detail::tile_totals(sumi, g)), dd[g], S[g]);
          Mn[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins.lanes[p][g]), dm[g], Mn[g]);
        }
      }
    }
    if constexpr (!kPerPair) {
      for (int g = 0; g < G; ++g) {
        const __m256i imin = _mm256_add_epi32(_mm256_add_epi32(mins.lanes[0][g], mins.lanes[1][g]),
                                              _mm256_add_epi32(mins.lanes[2][g], mins.lanes[3][g]));
        S[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(detail::tile_totals(sumi, g)), dd[g], S[g]);
        Mn[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), dm[g], Mn[g]);
      }
    }
  }
  __m256 out[G];
  for (int g = 0; g < G; ++g) out[g] = _mm256_sub_ps(S[g], Mn[g]);
  detail::store_lanes<R, C>(t, out);
}


// ---------------------------------------------------------------------------
// Q6_K x Q8_K. u = stored 6-bit code (0..63): vpmaddubsw(u, a) pairs <=
// 2 * 63 * 127 = 16002, then vpmaddwd/vpdpwssd by the int8 sub-block scale
// (two scales per 32 elements: one per 128-bit half). The code offset -32
// contributes -32 * sum_j sc_j * bsum_j, one vpmaddwd per super-block, which
// starts the accumulator: int32 lane k then holds exactly what lane k of
// ggml_vec_dot_q6_K_q8_K holds (elements 4k..4k+3 of every 32, and the
// offset of bsum pair k). Float part, per the llama.cpp kernel that runs:
//   Accum::kDefault (ggml_vec_dot_q6_K_q8_K, fewer than 8 activation rows):
//     per lane acc = fma(float(lane), d * d_a, acc), then the 8-lane sum;
//   Accum::kTiled (the tiled K-quant matmul, 8 or more rows):
//     per output S = fma(float(I) * d, d_a, S), I the super-block's total.
//     ggml's source multiplies by d_a and then adds; GCC's default
//     -ffp-contract=fast fuses the two (its vector intrinsics are plain
//     operators). Measured on SmolLM2's ffn_down: the fused form matches
//     llama.cpp's output in 100% of elements, separate rounding in 56%.
// ---------------------------------------------------------------------------
template <int R, int C, Accum A>
inline void tile_q6_K_order(const TileArgs& t) {
  using namespace simd;
  using B = quant::FormatTraits<quant::format::Q6_K>::Block;
  using Q8K = quant::FormatTraits<quant::format::Q8_K>::Block;
  constexpr int G = detail::kOutVecs<R, C>;
  constexpr bool kTotal = A == Accum::kTiled;
  const std::int64_t nb = t.K / quant::kQK_K;
  const TileRows<B, R> rows(t);
  const auto& wr = rows.r;
  const Q8K* ar[C];
  for (int c = 0; c < C; ++c) ar[c] = reinterpret_cast<const Q8K*>(t.a + c * t.a_stride);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m30 = _mm256_set1_epi8(0x30);
  __m256 acc[R][C];  // kDefault: per (r, c) 8 lanes
  __m256 S[G];       // kTiled: one lane per output
  zero_tile(acc);
  for (int g = 0; g < G; ++g) S[g] = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch_step(t, b);
    __m128i sc8[R];
    __m256i sumi[R][C];
    for (int r = 0; r < R; ++r) {
      sc8[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wr[r][b].scales));
      // -32 * scale as int16, times the activation's 16 bsums.
      const __m256i neg32 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(_mm256_cvtepi8_epi16(sc8[r]), 5));
      for (int c = 0; c < C; ++c)
        sumi[r][c] = _mm256_madd_epi16(neg32, load256(ar[c][b].bsums));
    }
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        // Scales of sub-blocks 8h+2k (elements l < 16) and 8h+2k+1.
        const int s0 = 8 * h + 2 * k;
        const __m128i ctrl = _mm_setr_epi8(char(s0), char(s0), char(s0), char(s0), char(s0), char(s0), char(s0),
                                           char(s0), char(s0 + 1), char(s0 + 1), char(s0 + 1), char(s0 + 1),
                                           char(s0 + 1), char(s0 + 1), char(s0 + 1), char(s0 + 1));
        __m256i q[R], s16[R];
        for (int r = 0; r < R; ++r) {
          const __m256i ql = load256(wr[r][b].ql + 64 * h + 32 * (k & 1));
          const __m256i qh = load256(wr[r][b].qh + 32 * h);
          const __m256i lo = (k < 2) ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
          __m256i hi;
          if (k == 0) hi = _mm256_slli_epi16(qh, 4);
          else if (k == 1) hi = _mm256_slli_epi16(qh, 2);
          else if (k == 2) hi = qh;
          else hi = _mm256_srli_epi16(qh, 2);
          q[r] = _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
          s16[r] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8[r], ctrl));
        }
        for (int c = 0; c < C; ++c) {
          const __m256i y = load256(ar[c][b].qs + 128 * h + 32 * k);
          for (int r = 0; r < R; ++r) sumi[r][c] = dp_s16(sumi[r][c], _mm256_maddubs_epi16(q[r], y), s16[r]);
        }
      }
    }
    float dw[R], da[C];
    for (int r = 0; r < R; ++r) dw[r] = h2f(wr[r][b].d.bits);
    for (int c = 0; c < C; ++c) da[c] = ar[c][b].d;
    if constexpr (kTotal) {
      const __m256 da_v = detail::cols_vec(da);
      for (int g = 0; g < G; ++g) {
        const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(detail::tile_totals(sumi, g)), detail::rows_vec<R, C>(dw, g));
        S[g] = _mm256_fmadd_ps(f, da_v, S[g]);
      }
    } else {
      for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r)
          acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[r][c]), _mm256_set1_ps(da[c] * dw[r]), acc[r][c]);
    }
  }
  if constexpr (kTotal) detail::store_lanes<R, C>(t, S);
  else store_tile(t, acc);
}


// ---------------------------------------------------------------------------
// F32 / F16 / BF16 x f32: widen 8 weights to fp32, one FMA per (r, c) and 8.
// ---------------------------------------------------------------------------
namespace detail {
template <class F>
inline __m256 load8_widen(const std::uint8_t* row, std::int64_t k) {
  if constexpr (std::is_same_v<F, quant::format::F32>) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (std::is_same_v<F, quant::format::F16>) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  } else {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
}
template <class F>
inline float widen1(const std::uint8_t* row, std::int64_t k) {
  if constexpr (std::is_same_v<F, quant::format::F32>) return reinterpret_cast<const float*>(row)[k];
  else {
    std::uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    if constexpr (std::is_same_v<F, quant::format::F16>) return simd::h2f(h);
    else return bf16_to_f32(h);
  }
}
}  // namespace detail

#if defined(__AVX512F__)
namespace detail {
template <class F>
inline __m512 load16_widen(const std::uint8_t* row, std::int64_t k) {
  if constexpr (std::is_same_v<F, quant::format::F32>) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (std::is_same_v<F, quant::format::F16>) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  } else {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
}
}  // namespace detail
#endif

namespace detail {
/// kWidth elements of a float-format weight row from element k, as fp32 (exact).
template <class F>
inline VecF::T load_widen(const std::uint8_t* row, std::int64_t k) {
#if defined(__AVX512F__)
  return load16_widen<F>(row, k);
#else
  return load8_widen<F>(row, k);
#endif
}
}  // namespace detail

/// Elements per K-loop iteration of tile_float (its prefetch step).
inline constexpr std::int64_t kFloatTileStep = VecF::kWidth;

// The float tile runs the build's widest FMA (cpu/vec_f32.hpp): with AVX-512,
// 16 lanes (R x C = 16 accumulators + C + 1 operands fit the 32 zmm
// registers). The lane sums are then added by VecF::reduce. The same tile
// serves matvec and matmul, so a batched row equals the matrix-vector
// product of that row.
template <class F, int R, int C>
inline void tile_float(const TileArgs& t) {
  using namespace simd;
  const std::int64_t Kv = t.K - t.K % VecF::kWidth;
  const float* x[C];
  for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const float*>(t.a + c * t.a_stride);
  const std::uint8_t* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = t.w + r * t.w_stride;
  VecF::T acc[R][C];
  for (auto& row : acc)
    for (auto& a : row) a = VecF::zero();
  for (std::int64_t k = 0; k < Kv; k += VecF::kWidth) {
    prefetch_step(t, k / VecF::kWidth);
    VecF::T xv[C];
    for (int c = 0; c < C; ++c) xv[c] = VecF::load(x[c] + k);
    for (int r = 0; r < R; ++r) {
      const VecF::T w = detail::load_widen<F>(wr[r], k);
      for (int c = 0; c < C; ++c) acc[r][c] = VecF::fma(w, xv[c], acc[r][c]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) {
      float s = VecF::reduce(acc[r][c]);
      for (std::int64_t k = Kv; k < t.K; ++k) s += detail::widen1<F>(wr[r], k) * x[c][k];
      t.y[c * t.ldy + r] = s;
    }
}

// ---------------------------------------------------------------------------
// Per-format kernel table used by matmul.hpp.
// ---------------------------------------------------------------------------
enum class ActKind { kFloat, kAct32, kQ8K };

/// Activation rows per matmul tile (kCols below): 4, whose R x 4 accumulators
/// fit the registers; the pair tiles hold two columns per register and take 8.
inline constexpr int kTileCols = 4;
#if defined(QLORA_CPU_PAIR_TILES)
inline constexpr int kPairTileCols = 8;
#else
inline constexpr int kPairTileCols = kTileCols;
#endif

template <class F>
struct TileKernel;

template <>
struct TileKernel<quant::format::Q8_0> {
  static constexpr ActKind kAct = ActKind::kAct32;
  static constexpr int kCols = kPairTileCols;
  template <int R, int C, Accum A>
  static void tile(const TileArgs& t) {
#if defined(QLORA_CPU_PAIR_TILES)
    if constexpr (C >= 2) return tile_offset_pairs<quant::format::Q8_0, R, C>(t);
#endif
    tile_q8_0<R, C>(t);
  }
};
template <>
struct TileKernel<quant::format::Q5_0> {
  static constexpr ActKind kAct = ActKind::kAct32;
  static constexpr int kCols = kPairTileCols;
  template <int R, int C, Accum A>
  static void tile(const TileArgs& t) {
#if defined(QLORA_CPU_PAIR_TILES)
    if constexpr (C >= 2) return tile_offset_pairs<quant::format::Q5_0, R, C>(t);
#endif
    tile_q5_0<R, C>(t);
  }
};
template <>
struct TileKernel<quant::format::Q4_1> {
  static constexpr ActKind kAct = ActKind::kAct32;
  static constexpr int kCols = kTileCols;
  template <int R, int C, Accum A>
  static void tile(const TileArgs& t) { tile_q4_1<R, C>(t); }
};
template <>
struct TileKernel<quant::format::Q4_K> {
  static constexpr ActKind kAct = ActKind::kQ8K;
  static constexpr int kCols = kTileCols;
  // kDefault never reaches Q4_K (matmul.hpp asks for a repack order).
  template <int R, int C, Accum A>
  static void tile(const TileArgs& t) {
    tile_q4_K_order<R, C, A == Accum::kRepackGemm ? Accum::kRepackGemm : Accum::kRepackGemv>(t);
  }
};
template <>
struct TileKernel<quant::format::Q6_K> {
  static constexpr ActKind kAct = ActKind::kQ8K;
  static constexpr int kCols = kTileCols;
  template <int R, int C, Accum A>
  static void tile(const TileArgs& t) { tile_q6_K_order<R, C, A == Accum::kTiled ? Accum::kTiled : Accum::kDefault>(t); }
};
template <class F>
  requires(std::is_same_v<F, quant::format::F32> || std::is_same_v<F, quant::format::F16> ||
           std::is_same_v<F, quant::format::BF16>)
struct TileKernel<F> {
  static constexpr ActKind kAct = ActKind::kFloat;
  static constexpr int kCols = kTileCols;
  template <int R, int C, Accum A>
  static void tile(const TileArgs& t) { tile_float<F, R, C>(t); }
};

}  // namespace qlora::cpu
#endif  // __AVX2__ && __FMA__
