// qlora/quant/kquant_search.hpp — the per-sub-block scale searches behind the
// K-quant reference quantizers, and Q4_K's 6-bit scale/min packing.
//
// llama.cpp does not pick a K-quant scale as amax/qmax. It tries a small fan
// of candidate scales around that value, solves a (weighted) least-squares fit
// for each candidate's integer codes, and keeps the best one. Two searches are
// used by the formats we produce:
//   make_qkx2_quants  asymmetric (scale + min), unsigned codes 0..nmax  -> Q4_K
//   make_qx_quants    symmetric, signed codes -nmax..nmax-1, stored +nmax -> Q6_K
// Reference: make_qkx2_quants, make_qx_quants, get_scale_min_k4 in ggml's
// src/ggml-quants.c (see docs formats.md §3.0–3.4).
//
// Bit-exactness notes. Every value is fp32 and every sum runs in index order,
// with each product grouped left to right exactly as upstream writes it
// (e.g. (w*l)*x, not w*(l*x)). Reassociating, or letting the compiler contract
// a*b+c into an FMA, changes which candidate wins and so changes bytes; the
// build uses -ffp-contract=off (g++) and --fmad=false (nvcc) for that reason.
// Measured: with contraction on, ~4% of random Q4_K/Q6_K blocks differ from
// llama.cpp. Integer codes always go through nearest_int (round half to
// even), never roundf.
//
// Only the no-imatrix paths are implemented: make_qx_quants with rmse_type=1
// (weight x^2) and make_qkx2_quants without caller-supplied importance.
#pragma once

#include <cmath>
#include <cstdint>

#include "qlora/core/hd.hpp"
#include "qlora/quant/rounding.hpp"

namespace qlora::quant::kquant {

/// Below this max |x| a group counts as all-zero (ggml GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

/// Weighted search for an asymmetric code: x_i ~= scale * L_i - min, with
/// L_i in [0, nmax]. `weights` are per-element importances (Q4_K passes
/// av + |x|). Candidate inverse scales are (rmin + rdelta*is + nmax)/(max-min)
/// for is = 0..nstep; a candidate replaces the current best only when its
/// weighted error is strictly smaller, so ties keep the earlier one.
///
/// Writes the codes to L[0..N) and the *negated* offset to `the_min` (so it is
/// >= 0 and is stored as an unsigned 6-bit code by Q4_K). Returns the scale.
/// `use_mad` selects |err| instead of err^2 (Q4_K uses err^2).
template <int N>
QLORA_HD float make_qkx2_quants(int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                                float rmin, float rdelta, int nstep, bool use_mad) {
  // Range and weighted moments; element 0 seeds the loop as upstream does,
  // which matters for the float order of sum_w and sum_x.
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < N; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  // The offset may only shift values down: a group that is all positive is
  // coded from zero, so min = 0 stays exactly representable.
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < N; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }

  // Starting point: spread [min, max] over the full code range.
  float iscale = float(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < N; ++i) {
    int l = nearest_int(iscale * (x[i] - min));
    l = l < 0 ? 0 : (l > nmax ? nmax : l);
    L[i] = std::uint8_t(l);
    float diff = scale * float(L[i]) + min - x[i];
    diff = use_mad ? fabsf(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }

  std::uint8_t candidate[N];  // codes for the candidate scale being tried
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < N; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = l < 0 ? 0 : (l > nmax ? nmax : l);
      candidate[i] = std::uint8_t(l);
      const float w = weights[i];
      const float fl = float(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    // Closed-form weighted least squares for (scale, offset) given these
    // codes; D is the determinant of the 2x2 normal equations.
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        // A positive offset is not representable; refit the scale alone.
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (int i = 0; i < N; ++i) {
        float diff = this_scale * float(candidate[i]) + this_min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < N; ++i) L[i] = candidate[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/// Symmetric search, rmse_type = 1 (importance w_i = x_i^2): x_i ~= scale * l_i
/// with l_i in [-nmax, nmax-1]; L_i = l_i + nmax is written to L[0..N).
/// Returns the (signed) scale, 0 for an all-zero group.
///
/// The first guess maps the largest-magnitude element to exactly -nmax, which
/// is why the scale's sign follows that element and why the code range is
/// asymmetric. Then 18 nearby inverse scales are tried; a candidate wins when
/// it improves sum(w*x*l)^2 / sum(w*l^2), the least-squares gain.
template <int N>
QLORA_HD float make_qx_quants(int nmax, const float* x, std::int8_t* L) {
  // The signed value of largest magnitude; the first one wins ties.
  float max = 0.0f;
  float amax = 0.0f;
  for (int i = 0; i < N; ++i) {
    const float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < N; ++i) L[i] = 0;
    return 0.0f;
  }

  // upstream writes -nmax / max with an int numerator; same value in fp32.
  float iscale = float(-nmax) / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < N; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
    L[i] = std::int8_t(l + nmax);
    const float w = x[i] * x[i];
    const float fl = float(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;

  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < N; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
      const float w = x[i] * x[i];
      const float fl = float(l);
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    // Compare gains without dividing: sumlx^2/suml2 > best.
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < N; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
        L[i] = std::int8_t(l + nmax);
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/// One Q4_K sub-block's 6-bit scale code and 6-bit min code.
struct ScaleMin {
  std::uint8_t scale;  // 0..63, multiplies the super-block d
  std::uint8_t min;    // 0..63, multiplies the super-block dmin
};

/// Pack eight (scale, min) 6-bit pairs into Q4_K's 12 scale bytes.
///
///   byte  0..3 : sc0..sc3 in bits 0-5, bits 4-5 of sc4..sc7 in bits 6-7
///   byte  4..7 : m0..m3   in bits 0-5, bits 4-5 of m4..m7   in bits 6-7
///   byte  8..11: low 4 bits of sc4..sc7 | low 4 bits of m4..m7 << 4
///
/// Inputs must already be <= 63 (the quantizer clamps before packing).
QLORA_HD void pack_scale_min_k4(const std::uint8_t* scales, const std::uint8_t* mins, std::uint8_t* packed) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = std::uint8_t(scales[j] | ((scales[j + 4] >> 4) << 6));
    packed[j + 4] = std::uint8_t(mins[j] | ((mins[j + 4] >> 4) << 6));
    packed[j + 8] = std::uint8_t((scales[j + 4] & 0x0F) | ((mins[j + 4] & 0x0F) << 4));
  }
}

/// Decode sub-block j (0..7) from Q4_K's 12 scale bytes (get_scale_min_k4).
QLORA_HD ScaleMin get_scale_min_k4(int j, const std::uint8_t* packed) {
  if (j < 4) return ScaleMin{std::uint8_t(packed[j] & 63), std::uint8_t(packed[j + 4] & 63)};
  return ScaleMin{std::uint8_t((packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4)),
                  std::uint8_t((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4))};
}

}  // namespace qlora::quant::kquant
