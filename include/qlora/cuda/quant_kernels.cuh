// qlora/cuda/quant_kernels.cuh — __global__ shells that quantize and
// dequantize rows of blocks on the GPU.
//
// nvcc only. These kernels hold no format knowledge: every byte they write
// comes from the QLORA_HD block math in include/qlora/quant/*.hpp, the same
// functions the CPU reference (quant::quantize_row<F>) loops over, so the GPU
// and CPU produce identical bytes by construction (given --fmad=false, which
// the qlora target sets for CUDA, and IEEE div/sqrt, nvcc's default).
// The shells only decide who works on which block:
//
//   quantize_blocks_kernel<F>    one thread per block, grid-stride. The heavy
//                                formats (Q4_K, Q6_K run an iterative scale
//                                search per sub-block) have no cheap way to
//                                split a block across threads without copying
//                                their math, so a thread owns a block.
//   quantize_nf4_warp_kernel     a warp per NF4 block: the block's absmax is
//                                reduced cooperatively with cub::WarpReduce,
//                                then each lane encodes its two elements with
//                                the HD per-element encoder (nf4_index). Loads
//                                are coalesced (a warp reads 256 contiguous
//                                bytes) instead of 64 strided loads per thread.
//   dequantize_blocks_kernel<F>  one thread per block, grid-stride. For the
//                                1-element formats (F32/F16/BF16) that is one
//                                thread per element and fully coalesced; for the
//                                block formats it is the simple, obviously
//                                correct decode. Bandwidth-tuned decoding belongs
//                                in the fused dequant-GEMM kernels, not here.
//
// Launchers (shape checks, grid sizes, streams) are in kernels/quant_kernels.cu;
// their CUDA-free declarations in qlora/cuda/quant_launch.hpp.
#pragma once

#include <cub/warp/warp_reduce.cuh>

#include <cstdint>

#include "qlora/core/hd.hpp"
#include "qlora/quant/format.hpp"
#include "qlora/quant/nf4.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::cuda {

/// Threads per CTA for the thread-per-block kernels. 128 keeps register
/// pressure of the K-quant searches (local arrays of 256 codes) from limiting
/// occupancy on sm_80/sm_90; not tuned on hardware yet (no GPU on builders).
inline constexpr int kQuantThreads = 128;

/// Warps per CTA for the warp-per-block NF4 kernel (128 threads, as above).
inline constexpr int kNf4WarpsPerCta = 4;

/// Quantize nblocks consecutive blocks: x[i*E, (i+1)*E) -> out[i].
template <class F>
__global__ void __launch_bounds__(kQuantThreads)
    quantize_blocks_kernel(const float* __restrict__ x, typename quant::FormatTraits<F>::Block* __restrict__ out,
                           std::int64_t nblocks) {
  using T = quant::FormatTraits<F>;
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < nblocks; i += stride)
    T::quantize_block(x + i * T::kBlockElems, out[i]);
}

/// Decode nblocks consecutive blocks: in[i] -> y[i*E, (i+1)*E).
template <class F>
__global__ void __launch_bounds__(kQuantThreads)
    dequantize_blocks_kernel(const typename quant::FormatTraits<F>::Block* __restrict__ in, float* __restrict__ y,
                             std::int64_t nblocks) {
  using T = quant::FormatTraits<F>;
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < nblocks; i += stride)
    T::dequantize_block(in[i], y + i * T::kBlockElems);
}

/// fmaxf as a reduction operator. Not cub::Max: fmaxf ignores a NaN operand
/// where `a < b ? b : a` does not, and the reference absmax (nf4_absmax) is an
/// fmaxf chain. fmaxf is commutative and associative, so the warp's tree order
/// gives the same value as the reference's left-to-right loop.
struct FmaxOp {
  QLORA_DEVICE float operator()(float a, float b) const { return fmaxf(a, b); }
};

/// NF4, one warp per 64-element block; lane l owns elements 2l and 2l+1,
/// which are exactly the two nibbles of qs[l] (high nibble = element 2l).
template <int kWarpsPerCta>  // warps per CTA = blocks in flight per CTA
__global__ void __launch_bounds__(kWarpsPerCta * 32)
    quantize_nf4_warp_kernel(const float* __restrict__ x,
                             quant::FormatTraits<quant::format::NF4>::Block* __restrict__ out, std::int64_t nblocks) {
  using T = quant::FormatTraits<quant::format::NF4>;
  static_assert(T::kBlockElems == 64, "one warp covers a block as 32 lanes x 2 elements");
  using WarpReduce = cub::WarpReduce<float>;
  __shared__ typename WarpReduce::TempStorage temp[kWarpsPerCta];

  const int warp = int(threadIdx.x) / 32;
  const int lane = int(threadIdx.x) % 32;
  const std::int64_t stride = std::int64_t(gridDim.x) * kWarpsPerCta;
  // b is uniform across the warp, so every lane takes part in every reduction.
  for (std::int64_t b = std::int64_t(blockIdx.x) * kWarpsPerCta + warp; b < nblocks; b += stride) {
    const float* xb = x + b * T::kBlockElems;
    const float x0 = xb[2 * lane];
    const float x1 = xb[2 * lane + 1];
    // Same seed (0) and operator as nf4_absmax, so the result is its value.
    const float lane_max = fmaxf(fmaxf(0.0f, fabsf(x0)), fabsf(x1));
    const float reduced = WarpReduce(temp[warp]).Reduce(lane_max, FmaxOp{});  // valid in lane 0 only
    const float absmax = __shfl_sync(0xFFFFFFFFu, reduced, 0);
    const float inv = quant::nf4_inv_scale(absmax);
    out[b].qs[lane] = std::uint8_t(quant::nf4_index(x0 * inv) << 4 | quant::nf4_index(x1 * inv));
    if (lane == 0) out[b].absmax = absmax;
    __syncwarp();  // temp[warp] is reused by the next iteration's reduction
  }
}

}  // namespace qlora::cuda
