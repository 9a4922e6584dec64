// qlora/cuda/optim_launch.hpp — host entry point for the CUDA AdamW step,
// declared with CUDA-free types.
//
// Plain C++ (no cuda_runtime.h), so the trainer's glue compiles with g++; the
// definition lives in kernels/optim_kernels.cu, linked as qlora::cuda_kernels.
//
// A step on the GPU is the CPU optim::adamw_step split in two: the host keeps
// the step count and the hyper-parameters and computes the step's scalars,
// the device updates the buffers:
//
//   state_step += 1;
//   auto s = optim::adamw_step_scalars(hp, state_step);   // Result<AdamWStepScalars>
//   QLORA_TRY(s.status());
//   QLORA_TRY(cuda::launch_adamw_step(d_p, d_g, d_m, d_v, n, *s, stream));
//
// and the buffers then hold the same bits the CPU step would produce.
#pragma once

#include <cstdint>

#include "qlora/core/status.hpp"
#include "qlora/cuda/stream.hpp"
#include "qlora/optim/adamw.hpp"

namespace qlora::cuda {

/// One AdamW step over `n` elements of device buffers: d_params, d_exp_avg
/// and d_exp_avg_sq are updated in place from d_grads, element i of each
/// belonging together (the flat-buffer layout). The four buffers must not
/// overlap. Asynchronous on `stream`: an ok Status means the launch was
/// accepted; a fault surfaces at the next synchronising CUDA call.
/// Errors: n negative, a null or misaligned pointer, or the launch failing
/// (with file:line). n == 0 launches nothing.
Status launch_adamw_step(float* d_params, const float* d_grads, float* d_exp_avg, float* d_exp_avg_sq,
                         std::int64_t n, const optim::AdamWStepScalars& s, Stream stream = {});

}  // namespace qlora::cuda
