// kernels/optim_kernels.cu — the launcher declared in qlora/cuda/optim_launch.hpp.
//
// No algorithm code here (style.md §2.1): argument checks, grid sizing and the
// launch of the shell in qlora/cuda/optim_kernels.cuh over optim::adamw_update.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "qlora/cuda/check.cuh"
#include "qlora/cuda/launch.cuh"
#include "qlora/cuda/optim_kernels.cuh"
#include "qlora/cuda/optim_launch.hpp"

namespace qlora::cuda {

Status launch_adamw_step(float* d_params, const float* d_grads, float* d_exp_avg, float* d_exp_avg_sq,
                         std::int64_t n, const optim::AdamWStepScalars& s, Stream stream) {
  if (n < 0) return Status::invalid("launch_adamw_step: negative element count " + std::to_string(n));
  if (n == 0) return Status::ok();
  const void* ptrs[] = {d_params, d_grads, d_exp_avg, d_exp_avg_sq};
  const char* names[] = {"params", "grads", "exp_avg", "exp_avg_sq"};
  for (int k = 0; k < 4; ++k) {
    if (ptrs[k] == nullptr) return Status::invalid(std::string("launch_adamw_step: null device pointer for ") + names[k]);
    if (reinterpret_cast<std::uintptr_t>(ptrs[k]) % alignof(float) != 0)
      return Status::invalid(std::string("launch_adamw_step: ") + names[k] + " pointer is not 4-byte aligned");
  }
  adamw_step_kernel<<<grid_size(n, kOptimThreads), kOptimThreads, 0, to_cuda(stream)>>>(d_params, d_grads, d_exp_avg,
                                                                                       d_exp_avg_sq, n, s);
  return QLORA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qlora::cuda
