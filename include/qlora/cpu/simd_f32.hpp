// qlora/cpu/simd_f32.hpp — the fp32 vector sums attention needs (Q·K dot
// products and the probability-weighted sum of V rows), each in the exact
// summation order llama.cpp's CPU backend uses, because on quantized models
// a last-bit difference in the attention output can flip an 8-bit activation
// code downstream (see cpu/vec_exp.hpp) and the two runs then drift apart.
//
// ggml computes these products in one of two orders, depending on how many
// tokens the batch has (K, V and the fp16-rounded Q / probabilities are the
// same in both):
//   batched (>= 2 tokens; llamafile's tinyBLAS, sgemm.cpp):
//     L lanes; lane l sums the products of the elements i = l (mod L) as one
//     FMA chain in increasing i, starting from 0; then the lanes are added
//     pairwise (reduce_lanes).
//   single token (ggml_vec_dot_f16, vec.cpp):
//     4 accumulators of L lanes striding 4L elements, each an FMA chain;
//     then acc0 + acc2, acc1 + acc3, their sum, and the lane reduction; a
//     tail of n % 4L elements is added in double.
// L is the build's vector width: 16 with AVX-512F, else 8 (matching the
// llama.cpp build on the same machine). The lane reductions:
//   16 lanes: GCC's _mm512_reduce_add_ps: h = hi8 + lo8, s = hi4(h) + lo4(h),
//             (s0 + s2) + (s1 + s3)
//   8 lanes, tinyBLAS hsum:          s = hi4 + lo4, (s0 + s2) + (s1 + s3)
//   8 lanes, ggml's AVX F32x8 reduce: s = lo4 + hi4, (s0 + s1) + (s2 + s3)
// Both products are vectorised across independent sums, never within one:
// Q·K over keys (dot_f32_keys, keys stored transposed), P·V over output
// columns (weighted_rows_f32, V rows in their natural layout), so each sum's
// steps stay the scalar order above.
// Builds without AVX2/FMA use plain loops (no peer to match there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qlora/cpu/vec_f32.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace qlora::cpu {

/// The vector width (fp32 lanes) of llama.cpp's CPU kernels on this build.
#if defined(__AVX512F__)
inline constexpr int kGgmlLanes = 16;
#else
inline constexpr int kGgmlLanes = 8;
#endif

/// The two summation orders above.
enum class SumOrder {
  kBatched,      // tinyBLAS: one FMA chain per lane
  kSingleToken,  // ggml_vec_dot_f16: four accumulators striding 4 * lanes
};

namespace simd_f32_detail {

/// out[d] = the lane reduction of lanes[0..L)[d] for d < width (lanes[l]
/// points at lane l's `width` partial sums), vectorised over d.
inline void reduce_lanes(float* const* lanes, float* out, std::int64_t width, SumOrder order) {
  const bool pair_adjacent = kGgmlLanes == 8 && order == SumOrder::kSingleToken;  // (q0 + q1) + (q2 + q3)
  std::int64_t d = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const std::int64_t vec_end = width - width % 8;
  for (; d < vec_end; d += 8) {
    __m256 h[8];
    for (int i = 0; i < 8; ++i) {
      h[i] = _mm256_loadu_ps(lanes[i] + d);
      if constexpr (kGgmlLanes == 16) h[i] = _mm256_add_ps(_mm256_loadu_ps(lanes[i + 8] + d), h[i]);
    }
    __m256 q[4];
    for (int i = 0; i < 4; ++i) q[i] = _mm256_add_ps(h[i + 4], h[i]);
    const __m256 r = pair_adjacent ? _mm256_add_ps(_mm256_add_ps(q[0], q[1]), _mm256_add_ps(q[2], q[3]))
                                   : _mm256_add_ps(_mm256_add_ps(q[0], q[2]), _mm256_add_ps(q[1], q[3]));
    _mm256_storeu_ps(out + d, r);
  }
#endif
  for (; d < width; ++d) {
    float h[8];
    for (int i = 0; i < 8; ++i) {
      h[i] = lanes[i][d];
      if constexpr (kGgmlLanes == 16) h[i] = lanes[i + 8][d] + h[i];
    }
    const float q0 = h[4] + h[0], q1 = h[5] + h[1], q2 = h[6] + h[2], q3 = h[7] + h[3];
    out[d] = pair_adjacent ? (q0 + q1) + (q2 + q3) : (q0 + q2) + (q1 + q3);
  }
}

#if defined(__AVX2__) && defined(__FMA__)
/// Reduce 8 lanes held in one register (16-lane callers add hi + lo first).
inline float reduce8(__m256 v, SumOrder order) {
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  if (kGgmlLanes == 8 && order == SumOrder::kSingleToken) {
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
  }
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

}  // namespace simd_f32_detail

/// sum_i a[i] * b[i] in the given order (kBatched: tinyBLAS, kSingleToken:
/// ggml_vec_dot_f16; both exact emulations when n is a multiple of the lane
/// count, resp. any n).
inline float dot_f32(const float* a, const float* b, std::int64_t n, SumOrder order = SumOrder::kBatched) {
  using namespace simd_f32_detail;
  std::int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  constexpr int L = kGgmlLanes;
  if (order == SumOrder::kBatched) {
    // acc[0] = lanes 0..7, acc[1] = lanes 8..15 (16-lane builds).
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i + L <= n; i += L)
      for (int h = 0; h < L / 8; ++h)
        acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * h), _mm256_loadu_ps(b + i + 8 * h), acc[h]);
    // A half vector left on a 16-lane build: its products go to lanes 0..7
    // (as a zero-padded tinyBLAS column would).
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
    float s = reduce8(L == 16 ? _mm256_add_ps(acc[1], acc[0]) : acc[0], order);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }
  // Single token: 4 accumulators of L lanes = 4L/8 registers of 8.
  constexpr int R = 4 * L / 8;
  __m256 acc[R];
  for (auto& r : acc) r = _mm256_setzero_ps();
  for (; i + 4 * L <= n; i += 4 * L)
    for (int r = 0; r < R; ++r)
      acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * r), _mm256_loadu_ps(b + i + 8 * r), acc[r]);
  // acc0 += acc2, acc1 += acc3, acc0 += acc1 (each of L / 8 registers).
  constexpr int P = L / 8;
  for (int r = 0; r < 2 * P; ++r) acc[r] = _mm256_add_ps(acc[r], acc[r + 2 * P]);
  for (int r = 0; r < P; ++r) acc[r] = _mm256_add_ps(acc[r], acc[r + P]);
  double s = double(reduce8(L == 16 ? _mm256_add_ps(acc[1], acc[0]) : acc[0], order));
  for (; i < n; ++i) s += double(a[i] * b[i]);
  return float(s);
#else
  (void)order;
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#endif
}

/// How many keys dot_f32_keys computes per step: `out` and the padding of
/// the transposed keys (ldk) are sized in whole steps.
#if defined(__AVX2__) && defined(__FMA__)
inline constexpr int kKeyStep = VecF::kWidth;
#else
inline constexpr int kKeyStep = 1;
#endif

/// out[j] = dot_f32(q, key j, n, order) * scale for j < n_keys, bit for bit,
/// with the keys stored transposed: element i of key j at kt[i * ldk + j].
/// Attention's Q·K for one query over all its keys: the sum of each key runs
/// in its own vector lane, kKeyStep keys at a time, so the lane reduction that
/// dominates a 64-element dot product becomes a few vector adds shared by
/// kKeyStep keys. ldk >= n_keys rounded up to kKeyStep (the padding is read,
/// its results land in out[n_keys..] and mean nothing), and `out` has room
/// for as many. Lengths outside the exact emulation (kBatched: n % 8 != 0;
/// kSingleToken: n % 4L != 0) take dot_f32 key by key.
inline void dot_f32_keys(const float* q, const float* kt, std::int64_t ldk, std::int64_t n, std::int64_t n_keys,
                         float scale, float* out, SumOrder order) {
  constexpr int L = kGgmlLanes;
#if defined(__AVX2__) && defined(__FMA__)
  using V = VecF;
  const bool exact = order == SumOrder::kBatched ? n % 8 == 0 : n % (4 * L) == 0;
  if (exact) {
    const bool pair_adjacent = L == 8 && order == SumOrder::kSingleToken;
    const V::T vscale = V::set1(scale);
    for (std::int64_t j = 0; j < n_keys; j += V::kWidth) {
      const float* k = kt + j;
      auto term = [&](std::int64_t i, V::T acc) { return V::fma(V::set1(q[i]), V::load(k + i * ldk), acc); };
      V::T lane[L];  // lane l's sum for each of the keys
      if (order == SumOrder::kBatched) {
        // tinyBLAS: lane l chains i = l (mod L); a half vector left on a
        // 16-lane build goes to lanes 0..7.
        const std::int64_t full = n - n % L;
        for (int l = 0; l < L; ++l) {
          V::T acc = V::zero();
          for (std::int64_t i = l; i < full; i += L) acc = term(i, acc);
          if (l < n - full) acc = term(full + l, acc);
          lane[l] = acc;
        }
      } else {
        // ggml_vec_dot_f16: chain (a, l) sums i = a*L + l (mod 4L); lane l
        // is then (c0 + c2) + (c1 + c3).
        for (int l = 0; l < L; ++l) {
          V::T c[4];
          for (int a = 0; a < 4; ++a) {
            c[a] = V::zero();
            for (std::int64_t i = a * L + l; i < n; i += 4 * L) c[a] = term(i, c[a]);
          }
          lane[l] = V::add(V::add(c[0], c[2]), V::add(c[1], c[3]));
        }
      }
      // The lane reduction of reduce_lanes / reduce8, per key.
      if constexpr (L == 16)
        for (int i = 0; i < 8; ++i) lane[i] = V::add(lane[i + 8], lane[i]);
      for (int i = 0; i < 4; ++i) lane[i] = V::add(lane[i + 4], lane[i]);
      const V::T r = pair_adjacent ? V::add(V::add(lane[0], lane[1]), V::add(lane[2], lane[3]))
                                   : V::add(V::add(lane[0], lane[2]), V::add(lane[1], lane[3]));
      V::store(out + j, V::mul(r, vscale));
    }
    return;
  }
#endif
  std::vector<float> key(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < n_keys; ++j) {
    for (std::int64_t i = 0; i < n; ++i) key[std::size_t(i)] = kt[i * ldk + j];
    out[j] = dot_f32(q, key.data(), n, order) * scale;
  }
}

/// out[d] = sum_j p[j] * v[j * ldv + d] for d < width, j < n, in the given
/// order over j: each output column d is the dot product of p with column d
/// of V, exactly as ggml multiplies its transposed V cache. The n rows count
/// as zero-padded to a whole number of blocks, as llama.cpp's are (its KV
/// length is a multiple of 256 and the padding's probabilities are 0), so
/// the single-token double-precision tail never occurs. The chains' partial
/// sums live in `scratch` (classes x width floats), reused across calls.
inline void weighted_rows_f32(const float* p, const float* v, std::int64_t ldv, std::int64_t n, float* out,
                              std::int64_t width, SumOrder order, std::vector<float>& scratch) {
  using namespace simd_f32_detail;
  constexpr int L = kGgmlLanes;
  const int classes = order == SumOrder::kBatched ? L : 4 * L;  // rows j = c (mod classes) form chain c
  const std::size_t need = std::size_t(classes) * std::size_t(width);
  if (scratch.size() < need) scratch.resize(need);
  float* acc = scratch.data();
  auto cls = [&](int c) { return acc + std::size_t(c) * std::size_t(width); };
  // Chain c = fma(p[j], V[j], chain) over j = c (mod classes) in increasing
  // j, from +0 (ggml's zeroed accumulator; a chain with no row stays +0).
  std::int64_t d = 0;
#if defined(__AVX2__) && defined(__FMA__)
  // Register-blocked: kChains chains of one vector of columns each, so every
  // V row is loaded once and no partial sum round-trips through memory.
  constexpr int G = VecF::kChains;  // divides classes
  for (; d + VecF::kWidth <= width; d += VecF::kWidth)
    for (int g = 0; g < classes; g += G) {
      VecF::T a[G];
      for (auto& x : a) x = VecF::zero();
      std::int64_t j = g;
      for (; j + G <= n; j += classes)
        for (int i = 0; i < G; ++i) a[i] = VecF::fma(VecF::set1(p[j + i]), VecF::load(v + (j + i) * ldv + d), a[i]);
      for (int i = 0; j + i < n && i < G; ++i)
        a[i] = VecF::fma(VecF::set1(p[j + i]), VecF::load(v + (j + i) * ldv + d), a[i]);
      for (int i = 0; i < G; ++i) VecF::store(cls(g + i) + d, a[i]);
    }
#endif
  for (int c = 0; c < classes; ++c)
    for (std::int64_t e = d; e < width; ++e) {
      float s = 0.0f;
      for (std::int64_t j = c; j < n; j += classes) s = __builtin_fmaf(p[j], v[j * ldv + e], s);
      cls(c)[e] = s;
    }
  if (order == SumOrder::kSingleToken) {
    // Lane l of accumulator k is chain k*L + l: acc0 += acc2, acc1 += acc3,
    // acc0 += acc1 (x + 0 turns -0 into +0, as in ggml).
    for (int l = 0; l < 2 * L; ++l)
      for (std::int64_t e = 0; e < width; ++e) cls(l)[e] += cls(l + 2 * L)[e];
    for (int l = 0; l < L; ++l)
      for (std::int64_t e = 0; e < width; ++e) cls(l)[e] += cls(l + L)[e];
  }
  float* lanes[16];
  for (int l = 0; l < L; ++l) lanes[l] = cls(l);
  reduce_lanes(lanes, out, width, order);
}

}  // namespace qlora::cpu
