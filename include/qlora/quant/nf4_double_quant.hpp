// qlora/quant/nf4_double_quant.hpp — bitsandbytes "double quantization" of the
// NF4 per-block absmax vector (QLoRA §3, `compress_statistics=True`).
//
// NF4 stores one fp32 absmax per 64 weights (0.5 bit/weight). Double quant
// shrinks that to ~8.1 bits per 64 weights by quantizing the absmax vector
// itself with bitsandbytes' blockwise 8-bit "dynamic" quantizer:
//
//   offset      = mean(absmax)                        fp32, one per tensor
//   a'_b        = absmax_b - offset                   centred, so signed
//   absmax2_k   = max |a'_b| over b in block k        fp32, one per 256 absmax
//   qabsmax_b   = dQuantize(code2, a'_b * (1/absmax2_k))   u8, one per NF4 block
//   decode:     absmax_b = code2[qabsmax_b] * absmax2_k + offset   (fp32 mul, then add)
//
// code2 is the signed dynamic map (create_dynamic_map(signed=True, 7, 8)): a
// 256-entry sorted table with 127 negative values, 0 at index 127 and 1.0 at
// 255. Checkpoints store it as `nested_quant_map`, and loaders must use the
// stored table (and the stored offset) rather than regenerating them.
//
// Which bitsandbytes path we follow: the CUDA kernel (kQuantizeBlockwise +
// dQuantize, a fixed 7-step binary search, formats.md §6.4). bitsandbytes'
// CPU build uses a 65536-entry lookup-table approximation instead, and its
// torch fallback uses bucketize; both can pick the neighbouring code when a'
// lies within about an ulp of a midpoint. An all-zero 8-bit block gives code
// index 0 on every path (CUDA via 0*inf = NaN, CPU explicitly), and so here.
// Source: bitsandbytes functional.py (quantize_4bit, quantize_blockwise,
// create_dynamic_map) and csrc/kernels.cu (dQuantize) @ 95f9af3.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qlora/core/hd.hpp"
#include "qlora/core/status.hpp"

namespace qlora::quant {

/// Block size bitsandbytes uses for the nested (absmax) quantization.
inline constexpr int kNf4NestedBlocksize = 256;

/// State of a double-quantized absmax vector, mirroring bnb's QuantState.state2
/// plus the offset. Field names follow the checkpoint keys (bnb_safetensors.hpp).
struct DoubleQuantState {
  std::vector<std::uint8_t> qabsmax;  // `weight.absmax` (u8): one code per NF4 block
  std::vector<float> absmax2;         // `weight.nested_absmax`: one per `blocksize` codes
  std::array<float, 256> code{};      // `weight.nested_quant_map`: sorted dynamic map
  float offset = 0.0f;                // `nested_offset`: subtracted before quantizing
  int blocksize = kNf4NestedBlocksize;  // `nested_blocksize`
};

/// bitsandbytes' signed dynamic 8-bit map, regenerated bit-for-bit.
///
/// The table is assembled exactly as torch does it in fp32, which is what the
/// checked-in golden map is compared against:
///   for i in 0..6: m = midpoints of linspace(0.1, 1, 2^i + 1)   (fp32)
///                  emit  float(10^(i-6)) * m  and its negation   (fp32 mul)
///   emit 0 and 1.0, sort ascending.
/// torch's CPU linspace computes step = (end-start)/(steps-1) in fp32 and
/// fills the first half as start + step*k and the second as end - step*(steps-1-k).
/// Its x86-64 builds compile that kernel per ISA with FMA enabled, so each
/// element is ONE fused multiply-add (found by comparing all 7 linspaces with
/// torch 2.15 bit-for-bit; separate mul+add differs in 24 of 129 values). We
/// call std::fma explicitly so the result does not depend on our own flags.
/// A torch built without FMA contraction would produce a slightly different
/// map, which is one more reason loaders trust `nested_quant_map` from the
/// file. torch multiplies an fp32 tensor by a Python float after casting the
/// scalar to fp32, hence float(kScale[i]).
inline std::array<float, 256> create_dynamic_map_signed() {
  std::vector<float> data;
  data.reserve(256);
  // 10 ** (i - 6) as Python evaluates it (a double), for i = 0..6.
  constexpr double kScale[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
  for (int i = 0; i < 7; ++i) {
    const int steps = (1 << i) + 1;
    const float start = 0.1f, end = 1.0f;
    const float step = (end - start) / float(steps - 1);
    std::vector<float> bounds(static_cast<std::size_t>(steps));
    const int halfway = steps / 2;
    for (int k = 0; k < steps; ++k)
      bounds[std::size_t(k)] = k < halfway ? std::fma(step, float(k), start) : std::fma(-step, float(steps - 1 - k), end);
    const float s = float(kScale[i]);
    for (int k = 0; k + 1 < steps; ++k) {
      const float mean = (bounds[std::size_t(k)] + bounds[std::size_t(k) + 1]) / 2.0f;
      data.push_back(s * mean);
      data.push_back(-s * mean);
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  std::array<float, 256> out{};
  std::copy(data.begin(), data.end(), out.begin());
  return out;
}

/// bitsandbytes' dQuantize (non-stochastic): a 7-step binary search over a
/// sorted 256-entry code, then a midpoint test against the last bracketing
/// neighbour. Kept statement-for-statement with the CUDA kernel because its
/// answer is not always the plain nearest code (the "neighbour" it compares
/// with is the last pivot it moved away from). Exact ties return the pivot.
/// NaN input walks to index 0, as on the GPU.
QLORA_HD std::uint8_t dynamic_quantize(const float* code, float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = code[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = code[pivot];
  }
  // The initial +-1 brackets are placeholders; the table ends are the truth.
  if (upper_pivot == 255) upper = code[255];
  if (lower_pivot == 0) lower = code[0];
  if (x > val) {
    const float midpoint = (upper + val) * 0.5f;
    return std::uint8_t(x > midpoint ? upper_pivot : pivot);
  }
  const float midpoint = (lower + val) * 0.5f;
  return std::uint8_t(x < midpoint ? lower_pivot : pivot);
}

/// Quantize one block of `n` values with the dynamic map (kQuantizeBlockwise,
/// General8bit). Returns the block's absmax; writes n codes to `q`.
QLORA_HD float quantize_block_dynamic(const float* code, const float* x, int n, std::uint8_t* q) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = fmaxf(amax, fabsf(x[i]));
  if (amax == 0.0f) {
    // GPU: 1/0 = inf, 0*inf = NaN -> index 0; CPU: explicit 0. Same bytes.
    for (int i = 0; i < n; ++i) q[i] = 0;
    return amax;
  }
  const float inv = 1.0f / amax;  // multiply by the reciprocal, like the kernel
  for (int i = 0; i < n; ++i) q[i] = dynamic_quantize(code, x[i] * inv);
  return amax;
}

/// Decode one absmax. Two separate roundings (mul, then add) as torch does;
/// device callers must keep nvcc from fusing them (--fmad=false or __fmul_rn).
QLORA_HD float dequantize_absmax(const float* code, std::uint8_t q, float absmax2, float offset) {
  const float scaled = code[q] * absmax2;
  return scaled + offset;
}

/// The offset bitsandbytes subtracts: torch's fp32 mean of absmax, which is an
/// fp32 sum (a vectorised cascade whose exact order we do not reproduce)
/// divided by n in fp32. We round the exact (double) sum to fp32 and divide;
/// that equals torch's value in ~60% of random vectors and is within an ulp
/// otherwise. Loaders never recompute it: the stored `nested_offset` is
/// authoritative, and double_quantize() accepts it to reproduce a checkpoint.
inline float absmax_mean(std::span<const float> absmax) {
  double s = 0.0;
  for (float a : absmax) s += double(a);
  return absmax.empty() ? 0.0f : float(s) / float(absmax.size());
}

/// Double-quantize an NF4 absmax vector (bnb quantize_4bit with
/// compress_statistics=True). `blocksize` is the nested block size (256 in
/// bitsandbytes); it must be a positive power of two. `offset` overrides
/// absmax_mean() (e.g. with bnb's stored offset, to reproduce its codes).
inline Result<DoubleQuantState> double_quantize(std::span<const float> absmax,
                                                int blocksize = kNf4NestedBlocksize,
                                                std::optional<float> offset = std::nullopt) {
  if (blocksize <= 0 || (blocksize & (blocksize - 1)) != 0)
    return Status::invalid("double quant: nested blocksize " + std::to_string(blocksize) +
                           " is not a positive power of two");
  for (std::size_t i = 0; i < absmax.size(); ++i)
    if (!std::isfinite(absmax[i]))
      return Status::numeric("double quant: absmax[" + std::to_string(i) + "] is not finite");
  DoubleQuantState st;
  st.blocksize = blocksize;
  st.code = create_dynamic_map_signed();
  st.offset = offset ? *offset : absmax_mean(absmax);
  std::vector<float> centred(absmax.size());
  for (std::size_t i = 0; i < absmax.size(); ++i) centred[i] = absmax[i] - st.offset;
  st.qabsmax.resize(absmax.size());
  const std::size_t bs = std::size_t(blocksize);
  for (std::size_t b = 0; b < centred.size(); b += bs) {
    const int len = int(std::min(bs, centred.size() - b));
    st.absmax2.push_back(quantize_block_dynamic(st.code.data(), centred.data() + b, len, st.qabsmax.data() + b));
  }
  return st;
}

/// Check that a state's vectors agree with each other and with `nblocks`
/// (the number of NF4 blocks it must describe). Used by loaders.
inline Status validate(const DoubleQuantState& st, std::size_t nblocks) {
  if (st.blocksize <= 0 || (st.blocksize & (st.blocksize - 1)) != 0)
    return Status::corrupt("double quant: nested blocksize " + std::to_string(st.blocksize) +
                           " is not a positive power of two");
  if (st.qabsmax.size() != nblocks)
    return Status::corrupt("double quant: " + std::to_string(st.qabsmax.size()) + " absmax codes for " +
                           std::to_string(nblocks) + " blocks");
  const std::size_t want2 = (nblocks + std::size_t(st.blocksize) - 1) / std::size_t(st.blocksize);
  if (st.absmax2.size() != want2)
    return Status::corrupt("double quant: nested_absmax has " + std::to_string(st.absmax2.size()) +
                           " values, expected " + std::to_string(want2));
  return Status::ok();
}

/// Recover the fp32 absmax vector (bnb dequantize_blockwise + offset).
/// The caller has validated `st` (validate() above).
inline std::vector<float> double_dequantize(const DoubleQuantState& st) {
  std::vector<float> out(st.qabsmax.size());
  for (std::size_t b = 0; b < out.size(); ++b)
    out[b] = dequantize_absmax(st.code.data(), st.qabsmax[b], st.absmax2[b / std::size_t(st.blocksize)],
                               st.offset);
  return out;
}

}  // namespace qlora::quant
