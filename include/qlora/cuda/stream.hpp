// qlora/cuda/stream.hpp — the CUDA stream as an opaque handle.
//
// Plain C++ (no CUDA headers), so that every launcher declaration
// (quant_launch.hpp, optim_launch.hpp) can be included by g++-built glue and
// tests (style.md §2.4). kernels/*.cu turn it back into a cudaStream_t with
// to_cuda() from qlora/cuda/launch.cuh.
#pragma once

namespace qlora::cuda {

/// A cudaStream_t carried as void* so that this header needs no CUDA headers.
/// The default (nullptr) is the legacy default stream.
struct Stream {
  void* handle = nullptr;
};

}  // namespace qlora::cuda
