// qlora/quant/nf4.hpp — bitsandbytes NF4 (4-bit NormalFloat, QLoRA): the
// codebook, the per-element encoder, FormatTraits<format::NF4>, and a host API
// for whole tensors in bitsandbytes' split layout.
//
// NF4 is a 16-entry lookup table, not a float encoding: index i means
// kNf4Codebook[i] * absmax of the block. bitsandbytes stores a tensor as two
// separate arrays (its "split layout", the one checkpoints use):
//
//   packed  u8[(n+1)/2]   byte k = idx[2k] << 4 | idx[2k+1]   (first element HIGH)
//   absmax  f32[ceil(n/B)]  one per block of B consecutive elements (B = 64 by
//                           default), counted over the FLATTENED tensor, so a
//                           block may cross rows
//
// Our kernels instead use an interleaved working block (FormatTraits::Block,
// 36 bytes = absmax + 32 packed bytes for B = 64). That struct is NOT a file
// format: nothing on disk or in bitsandbytes has this layout; the split layout
// is converted to it when a weight is loaded.
//
// Which bitsandbytes path we reproduce (formats.md §6.2, bnb @ 95f9af3):
//  * Scaling multiplies by the fp32 reciprocal of absmax (CUDA kernels and the
//    torch path's full blocks). bnb's torch path divides in a partial last
//    block instead; the two differ only if x/a and x*(1/a) fall on opposite
//    sides of a threshold, i.e. within an ulp of it.
//  * All-zero block: we follow bitsandbytes' CPU/torch path, which is the one
//    our golden generator can run (bnb 0.50.2 on torch CPU): absmax is clamped
//    to >= 1e-38 before the reciprocal, so 0 scales to 0 and encodes as index 7
//    (bytes 0x77); the stored absmax stays 0. bnb's CUDA kernel computes
//    1/0 = inf and 0*inf = NaN, which encodes as index 0 (bytes 0x00). Both
//    decode to +-0, so only the bytes differ. (bnb's torch path stores the
//    clamped 1e-38 for an all-zero PARTIAL last block; we store 0 there too.)
//  * NaN/Inf inputs are rejected by the host API (Status naming the element);
//    the QLORA_HD encoder maps NaN to index 0 like the GPU.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qlora/core/hd.hpp"
#include "qlora/core/status.hpp"
#include "qlora/quant/format.hpp"
#include "qlora/quant/nf4_double_quant.hpp"

namespace qlora::quant {

/// The NF4 codebook (bnb get_4bit_type("nf4")), exact fp32 values; the hex
/// bits are pinned in tests/quant/nf4_test.cpp. The only copy in the project:
/// host code reads the constexpr array, device code the __device__ one.
QLORA_INLINE_CONSTANT float kNf4Codebook[16] = {
    -1.0f,                  -0.6961928009986877f,  -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f,  -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f,   0.16093020141124725f,  0.24611230194568634f,  0.33791524171829224f,
    0.44070982933044434f,   0.5626170039176941f,   0.7229568362236023f,   1.0f,
};

/// Decision thresholds: kNf4Thresholds[i] = (code[i] + code[i+1]) / 2 computed
/// in fp32, i.e. the `bounds` bnb's torch path hands to bucketize (verified
/// bit-for-bit in tests). The literals are exact fp32 values.
/// bnb's CUDA tree (dQuantizeNF4) instead writes the midpoints computed in
/// double as `f` literals; those fall exactly halfway between two floats, and
/// for i = 0, 8, 12 and 14 the decimal rounds to the float one ulp away from
/// ours. The two paths therefore disagree only for a normalised input equal
/// to one of those four CUDA literals (measure zero; formats.md §6.2 calls the
/// two sets identical, which holds for the other 11).
QLORA_INLINE_CONSTANT float kNf4Thresholds[15] = {
    -0.8480963706970215f,  -0.6106328964233398f,  -0.4599952697753906f,   -0.33967941999435425f,
    -0.23460739850997925f, -0.13791173696517944f, -0.045525018125772476f, 0.03979014977812767f,
    0.120255246758461f,    0.2035212516784668f,   0.2920137643814087f,    0.3893125355243683f,
    0.5016634464263916f,   0.6427869200706482f,   0.8614784479141235f,
};

/// Index of a normalised value (x / absmax): the number of thresholds that are
/// STRICTLY below x, so a value exactly on a threshold goes to the lower index.
/// Written as the 4-level binary tree bnb's dQuantizeNF4 is (root t[7], then
/// t[3]/t[11], ...): each level asks "x > t" and, if so, skips the lower half
/// of the remaining range. NaN fails every comparison and yields 0, as on GPU.
QLORA_HD int nf4_index(float x) {
  int i = 0;
  i += x > kNf4Thresholds[i + 7] ? 8 : 0;  // above t[7] => at least 8 thresholds below
  i += x > kNf4Thresholds[i + 3] ? 4 : 0;
  i += x > kNf4Thresholds[i + 1] ? 2 : 0;
  i += x > kNf4Thresholds[i + 0] ? 1 : 0;
  return i;
}

/// Codebook value of a 4-bit index (0..15).
QLORA_HD float nf4_value(int idx) { return kNf4Codebook[idx & 15]; }

/// max |x_i| over n values: the block scale bnb stores (unclamped).
QLORA_HD float nf4_absmax(const float* x, int n) {
  float a = 0.0f;
  for (int i = 0; i < n; ++i) a = fmaxf(a, fabsf(x[i]));
  return a;
}

/// The multiplier applied before nf4_index. The 1e-38 clamp is bnb's torch
/// path and turns an all-zero block into index 7 rather than NaN (see top).
QLORA_HD float nf4_inv_scale(float absmax) { return 1.0f / fmaxf(absmax, 1e-38f); }

/// Encode one block of n values (any n >= 1; bitsandbytes block sizes are even,
/// so only a tensor's last block can be odd). Writes (n+1)/2 bytes, first
/// element in the high nibble; an odd tail's missing partner is 0.0 -> index 7.
/// Returns the absmax to store.
QLORA_HD float nf4_quantize_span(const float* x, int n, std::uint8_t* packed) {
  const float absmax = nf4_absmax(x, n);
  const float inv = nf4_inv_scale(absmax);
  for (int i = 0; i < n; i += 2) {
    const int hi = nf4_index(x[i] * inv);
    const int lo = i + 1 < n ? nf4_index(x[i + 1] * inv) : nf4_index(0.0f);
    packed[i / 2] = std::uint8_t(hi << 4 | lo);
  }
  return absmax;
}

/// Element i of a packed span: high nibble for even i, low for odd.
QLORA_HD int nf4_unpack(const std::uint8_t* packed, std::uint64_t i) {
  const std::uint8_t byte = packed[i >> 1];
  return (i & 1) ? (byte & 0x0F) : (byte >> 4);
}

template <>
struct FormatTraits<format::NF4> {
  static constexpr std::string_view kName = "nf4";
  static constexpr int kBlockElems = 64;  // bitsandbytes' default (Params4bit) blocksize
  static constexpr std::size_t kBlockBytes = 36;
  static constexpr std::uint32_t kGgmlType = kNoGgmlType;  // lives in safetensors, never GGUF
  static constexpr bool kQuantizable = true;

  /// Working layout for kernels, NOT a file format (see the file comment).
  struct Block {
    float absmax;           // fp32 block scale (already decoded if double-quantized)
    std::uint8_t qs[32];    // 64 indices; element 2k in the high nibble of qs[k]
  };

  QLORA_HD static void quantize_block(const float* x, Block& b) { b.absmax = nf4_quantize_span(x, 64, b.qs); }

  QLORA_HD static void dequantize_block(const Block& b, float* y) {
    for (int k = 0; k < 32; ++k) {
      y[2 * k] = kNf4Codebook[b.qs[k] >> 4] * b.absmax;
      y[2 * k + 1] = kNf4Codebook[b.qs[k] & 0x0F] * b.absmax;
    }
  }

  QLORA_HD static float dot_block(const Block& b, const float* x) {
    float s = 0.0f;
    for (int k = 0; k < 32; ++k) {
      s += kNf4Codebook[b.qs[k] >> 4] * x[2 * k];
      s += kNf4Codebook[b.qs[k] & 0x0F] * x[2 * k + 1];
    }
    return s * b.absmax;
  }
};
static_assert(sizeof(FormatTraits<format::NF4>::Block) == 36, "nf4 working block layout");
static_assert(QuantizableFormat<format::NF4>);

// ---------------------------------------------------------------------------
// Host API: whole tensors in bitsandbytes' split layout.
// ---------------------------------------------------------------------------

/// An NF4-quantized tensor as bitsandbytes holds it (Params4bit + QuantState).
/// Exactly one of `absmax` / `double_quant` carries the block scales: after
/// double quantization bitsandbytes drops the fp32 absmax, and so do we
/// (`absmax` is then empty). Use nf4_block_scales() to get fp32 scales either way.
struct Nf4Tensor {
  std::vector<std::uint8_t> packed;  // (n+1)/2 bytes, first element in the high nibble
  std::vector<float> absmax;         // ceil(n/blocksize) fp32 scales, unless double-quantized
  int blocksize = 64;                // elements per block over the flattened tensor
  std::uint64_t n = 0;               // element count (product of shape)
  std::vector<std::int64_t> shape;   // original (unquantized) shape, row-major
  std::optional<DoubleQuantState> double_quant;  // compressed absmax, if any

  std::uint64_t num_blocks() const { return blocksize > 0 ? (n + std::uint64_t(blocksize) - 1) / std::uint64_t(blocksize) : 0; }
};

struct Nf4QuantizeOptions {
  int blocksize = 64;         // power of two in [32, 4096], as bitsandbytes allows
  bool double_quant = false;  // bnb quantize_4bit(compress_statistics=...); Params4bit uses true
  int nested_blocksize = kNf4NestedBlocksize;
};

/// True for the block sizes bitsandbytes accepts for 4-bit quantization.
inline bool nf4_blocksize_ok(int b) { return b >= 32 && b <= 4096 && (b & (b - 1)) == 0; }

/// Check a tensor's fields agree (sizes, blocksize, shape); loaders call this
/// before trusting data from a file.
inline Status validate(const Nf4Tensor& t) {
  if (!nf4_blocksize_ok(t.blocksize))
    return Status::invalid("nf4: blocksize " + std::to_string(t.blocksize) + " is not a power of two in [32, 4096]");
  std::uint64_t prod = 1;
  for (std::int64_t d : t.shape) {
    if (d < 0) return Status::invalid("nf4: negative dimension in shape");
    if (d != 0 && prod > UINT64_MAX / std::uint64_t(d)) return Status::invalid("nf4: shape overflows");
    prod *= std::uint64_t(d);
  }
  if (!t.shape.empty() && prod != t.n)
    return Status::invalid("nf4: shape has " + std::to_string(prod) + " elements but n = " + std::to_string(t.n));
  if (t.packed.size() != (t.n + 1) / 2)
    return Status::invalid("nf4: " + std::to_string(t.packed.size()) + " packed bytes for n = " + std::to_string(t.n) +
                           " (expected " + std::to_string((t.n + 1) / 2) + ")");
  const std::uint64_t nb = t.num_blocks();
  if (t.double_quant) {
    if (!t.absmax.empty()) return Status::invalid("nf4: both fp32 absmax and double-quant state are set");
    return validate(*t.double_quant, nb);
  }
  if (t.absmax.size() != nb)
    return Status::invalid("nf4: " + std::to_string(t.absmax.size()) + " absmax values for " + std::to_string(nb) +
                           " blocks");
  return Status::ok();
}

/// Quantize a row-major tensor (bnb quantize_4bit, quant_type="nf4").
/// `shape` may be empty, meaning a 1-D tensor of x.size() elements.
inline Result<Nf4Tensor> quantize_nf4(std::span<const float> x, std::vector<std::int64_t> shape = {},
                                      const Nf4QuantizeOptions& opt = {}) {
  if (!nf4_blocksize_ok(opt.blocksize))
    return Status::invalid("nf4: blocksize " + std::to_string(opt.blocksize) + " is not a power of two in [32, 4096]");
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      return Status::numeric("nf4: element " + std::to_string(i) + " is " + (std::isnan(x[i]) ? "NaN" : "infinite"));
  Nf4Tensor t;
  t.blocksize = opt.blocksize;
  t.n = x.size();
  t.shape = shape.empty() ? std::vector<std::int64_t>{std::int64_t(x.size())} : std::move(shape);
  t.packed.resize((t.n + 1) / 2);
  t.absmax.resize(t.num_blocks());
  const std::uint64_t bs = std::uint64_t(opt.blocksize);
  for (std::uint64_t b = 0; b < t.absmax.size(); ++b) {
    const std::uint64_t start = b * bs;
    const int len = int(std::min<std::uint64_t>(bs, t.n - start));
    // Blocks are even-sized, so block b starts at byte start/2 exactly.
    t.absmax[b] = nf4_quantize_span(x.data() + start, len, t.packed.data() + start / 2);
  }
  QLORA_TRY(validate(t));  // catches a shape that disagrees with x.size()
  if (opt.double_quant) {
    // bnb quantizes the weights with the exact fp32 absmax first, then
    // compresses the absmax; the packed nibbles do not see the compression.
    auto dq = double_quantize(t.absmax, opt.nested_blocksize);
    if (!dq) return dq.status();
    t.double_quant = std::move(*dq);
    t.absmax.clear();
  }
  return t;
}

/// fp32 block scales: `absmax` itself, or the decoded double-quant state.
inline Result<std::vector<float>> nf4_block_scales(const Nf4Tensor& t) {
  QLORA_TRY(validate(t));
  if (t.double_quant) return double_dequantize(*t.double_quant);
  return t.absmax;
}

/// Dequantize to fp32 (bnb dequantize_4bit): y_i = code[idx_i] * scale_block(i).
inline Result<std::vector<float>> dequantize_nf4(const Nf4Tensor& t) {
  auto scales = nf4_block_scales(t);
  if (!scales) return scales.status();
  std::vector<float> y(t.n);
  const std::uint64_t bs = std::uint64_t(t.blocksize);
  for (std::uint64_t i = 0; i < t.n; ++i) y[i] = nf4_value(nf4_unpack(t.packed.data(), i)) * (*scales)[i / bs];
  return y;
}

}  // namespace qlora::quant
