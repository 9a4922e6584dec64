// qlora/cuda/launch.cuh — what every launcher in kernels/*.cu needs besides
// its kernel: the stream handle back as a cudaStream_t, and grid sizes for
// grid-stride kernels.
//
// nvcc only (cuda_runtime.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "qlora/cuda/stream.hpp"

namespace qlora::cuda {

/// Upper bound on CTAs per launch. Our kernels are grid-stride loops, so any
/// length works; capping keeps the grid size in range for huge inputs.
inline constexpr std::int64_t kMaxGridCtas = 65536;

inline cudaStream_t to_cuda(Stream s) { return static_cast<cudaStream_t>(s.handle); }

/// CTAs for `work` items at `per_cta` items each, capped at kMaxGridCtas.
inline unsigned grid_size(std::int64_t work, std::int64_t per_cta) {
  const std::int64_t g = (work + per_cta - 1) / per_cta;
  return unsigned(g < kMaxGridCtas ? g : kMaxGridCtas);
}

}  // namespace qlora::cuda
