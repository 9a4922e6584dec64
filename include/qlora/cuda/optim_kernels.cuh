// qlora/cuda/optim_kernels.cuh — the __global__ shell of the AdamW update.
//
// nvcc only. The kernel holds no optimizer math: each thread applies
// optim::adamw_update (the QLORA_HD function in qlora/optim/adamw.hpp that the
// CPU adamw_step loops over) to its elements, with the step's fp32 scalars
// passed by value. The double-precision part of a step (bias corrections,
// step size) is done once on the host by optim::adamw_step_scalars, so the
// device never calls pow(). GPU and CPU therefore produce identical bits as
// long as device fp32 arithmetic is IEEE: fmaf is an exact FMA, `/` and sqrtf
// are correctly rounded (nvcc's defaults; --use_fast_math would break it), and
// --fmad=false (set by the qlora target) keeps the kUnfused path unfused.
//
// One thread per element, grid-stride: the update is bandwidth-bound (five
// fp32 streams: p, g read; p, m, v read and written), and consecutive threads
// touch consecutive addresses, so every access is coalesced.
//
// The launcher (argument checks, grid size, stream) is in
// kernels/optim_kernels.cu; its CUDA-free declaration in qlora/cuda/optim_launch.hpp.
#pragma once

#include <cstdint>

#include "qlora/core/hd.hpp"
#include "qlora/optim/adamw.hpp"

namespace qlora::cuda {

/// Threads per CTA for the elementwise optimizer kernels; 256 is the usual
/// choice for a memory-bound elementwise op (no GPU here to tune it on).
inline constexpr int kOptimThreads = 256;

/// One AdamW step over n elements of the flat buffers (see adamw.hpp for the
/// layout): params and the moments in place, grads read-only.
__global__ void __launch_bounds__(kOptimThreads)
    adamw_step_kernel(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ exp_avg,
                      float* __restrict__ exp_avg_sq, std::int64_t n, optim::AdamWStepScalars s) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    optim::adamw_update(params[i], exp_avg[i], exp_avg_sq[i], grads[i], s);
}

}  // namespace qlora::cuda
