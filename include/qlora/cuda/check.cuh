// qlora/cuda/check.cuh — CUDA runtime errors as qlora::Status, and a device
// probe that treats "no GPU" as a count of zero.
//
// nvcc only (it includes cuda_runtime.h). Host APIs never exit or throw on a
// CUDA failure (style.md §2.5.8): QLORA_CUDA_CHECK(expr) evaluates to a Status
// naming the failed call, the runtime's error string and the file:line of the
// check, so a failure deep in a launcher still points at its source.
//
//   QLORA_TRY(QLORA_CUDA_CHECK(cudaMemcpy(...)));   // return early on failure
//   QLORA_CUDA_TRY(cudaMemcpy(...));                // the same, shorter
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "qlora/core/status.hpp"

namespace qlora::cuda {

/// Status for a cudaError_t: ok for cudaSuccess, otherwise an error whose
/// message reads "file:line: expr failed: <name>: <description>".
/// Launch-configuration and driver problems are the caller's environment,
/// not bad arguments, so they map to ErrorCode::kUnsupported; everything
/// else (bad pointers, faults inside a kernel) to kInvalidArgument.
inline Status cuda_status(cudaError_t err, const char* expr, const char* file, int line) {
  if (err == cudaSuccess) return Status::ok();
  std::string msg = std::string(file) + ":" + std::to_string(line) + ": " + expr + " failed: " +
                    cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  switch (err) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      return Status::unsupported(std::move(msg));
    default:
      return Status::invalid(std::move(msg));
  }
}

/// Number of CUDA devices usable by this process. A machine without a GPU,
/// or without the driver (libcuda), has zero devices: that is a normal
/// configuration for our CPU builders, not an error. The probe's error is
/// cleared where the runtime allows it; an initialisation failure such as a
/// missing driver is reported again by every later CUDA call, which is why
/// callers ask device_count() before making any.
inline int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace qlora::cuda

/// Evaluate a CUDA runtime call and turn its cudaError_t into qlora::Status,
/// recording the call text and this file:line.
#define QLORA_CUDA_CHECK(expr) ::qlora::cuda::cuda_status((expr), #expr, __FILE__, __LINE__)

/// Return the Status from the enclosing function when a CUDA call fails.
#define QLORA_CUDA_TRY(expr) QLORA_TRY(QLORA_CUDA_CHECK(expr))
