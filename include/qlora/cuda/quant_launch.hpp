// qlora/cuda/quant_launch.hpp — host entry points for the CUDA quantize /
// dequantize kernels, declared with CUDA-free types.
//
// This header is plain C++ (g++ compiles it; no cuda_runtime.h): glue code,
// apps and CPU-side tests can call the GPU path without being built by nvcc.
// The definitions and the one explicit instantiation per format live in
// kernels/quant_kernels.cu, linked as qlora::cuda_kernels. A CUDA stream
// travels as an opaque handle (Stream, qlora/cuda/stream.hpp), the way
// style.md §2.4 asks.
//
// Pointers are *device* pointers. Rows are contiguous: `n` floats in, n /
// kBlockElems blocks of FormatTraits<F>::Block out (or the reverse). All
// launches are asynchronous on the given stream; a returned ok Status means
// the launch was accepted, and kernel faults show up at the next synchronising
// CUDA call. Unlike quant::quantize_row(type, ...), the device path does not
// scan for NaN/Inf (that would cost a device-wide reduction and a sync); for
// finite input the bytes equal quant::quantize_row<F> exactly.
#pragma once

#include <cstdint>

#include "qlora/core/status.hpp"
#include "qlora/cuda/stream.hpp"
#include "qlora/quant/format.hpp"

namespace qlora::cuda {

/// Formats with a CUDA quantizer: every quantizable format. X-macro lists
/// (style.md §2.3) so that the declarations below, the explicit instantiations
/// in kernels/quant_kernels.cu and the "built:" lists in error messages are
/// generated from one place.
#define QLORA_CUDA_QUANTIZE_FORMATS(X) X(F32) X(F16) X(BF16) X(Q8_0) X(Q5_0) X(Q4_K) X(Q6_K) X(Q8_K) X(NF4)
/// Formats with a CUDA dequantizer: the above plus read-only Q4_1.
#define QLORA_CUDA_DEQUANTIZE_FORMATS(X) QLORA_CUDA_QUANTIZE_FORMATS(X) X(Q4_1)

/// True for the format tags that launch_quantize<F> is instantiated for.
template <class F>
inline constexpr bool kCudaQuantizes = false;
/// True for the format tags that launch_dequantize<F> is instantiated for.
template <class F>
inline constexpr bool kCudaDequantizes = false;

#define QLORA_CUDA_MARK_QUANTIZE_(f) \
  template <>                        \
  inline constexpr bool kCudaQuantizes<quant::format::f> = true;
#define QLORA_CUDA_MARK_DEQUANTIZE_(f) \
  template <>                          \
  inline constexpr bool kCudaDequantizes<quant::format::f> = true;
QLORA_CUDA_QUANTIZE_FORMATS(QLORA_CUDA_MARK_QUANTIZE_)
QLORA_CUDA_DEQUANTIZE_FORMATS(QLORA_CUDA_MARK_DEQUANTIZE_)
#undef QLORA_CUDA_MARK_QUANTIZE_
#undef QLORA_CUDA_MARK_DEQUANTIZE_

/// Which quantize kernel to run. Both produce identical bytes; the choice is
/// about speed, and tests run every variant a format has.
enum class QuantKernel : std::uint8_t {
  kAuto,            // the fastest variant this format has (warp-per-block for NF4)
  kThreadPerBlock,  // one thread runs FormatTraits<F>::quantize_block; every format
  kWarpPerBlock,    // a warp per block, absmax via cub::WarpReduce; NF4 only
};

/// Quantize `n` floats (a multiple of F's block) at d_x into blocks at d_out.
/// Errors: n negative or not whole blocks, null or misaligned pointers,
/// a kernel variant F does not have, or the CUDA launch failing (with file:line).
template <class F>
  requires kCudaQuantizes<F>
Status launch_quantize(const float* d_x, void* d_out, std::int64_t n, Stream s = {},
                       QuantKernel kernel = QuantKernel::kAuto);

/// Decode `n` elements (a multiple of F's block) of format F at d_in into d_y.
template <class F>
  requires kCudaDequantizes<F>
Status launch_dequantize(const void* d_in, float* d_y, std::int64_t n, Stream s = {});

/// Runtime-typed quantize by ggml type id (quant::GgmlType). NF4 has no ggml id
/// (it is never stored in GGUF); call launch_quantize<quant::format::NF4>.
Status launch_quantize(std::uint32_t ggml_type, const float* d_x, void* d_out, std::int64_t n, Stream s = {});

/// Runtime-typed dequantize by ggml type id; see launch_quantize above.
Status launch_dequantize(std::uint32_t ggml_type, const void* d_in, float* d_y, std::int64_t n, Stream s = {});

// The one definition of each instance is in kernels/quant_kernels.cu.
#define QLORA_CUDA_EXTERN_QUANTIZE_(f) \
  extern template Status launch_quantize<quant::format::f>(const float*, void*, std::int64_t, Stream, QuantKernel);
#define QLORA_CUDA_EXTERN_DEQUANTIZE_(f) \
  extern template Status launch_dequantize<quant::format::f>(const void*, float*, std::int64_t, Stream);
QLORA_CUDA_QUANTIZE_FORMATS(QLORA_CUDA_EXTERN_QUANTIZE_)
QLORA_CUDA_DEQUANTIZE_FORMATS(QLORA_CUDA_EXTERN_DEQUANTIZE_)
#undef QLORA_CUDA_EXTERN_QUANTIZE_
#undef QLORA_CUDA_EXTERN_DEQUANTIZE_

}  // namespace qlora::cuda
