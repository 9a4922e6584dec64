// tests/cuda/gpu_fixture.cuh — device plumbing shared by the GPU tests:
// why a machine cannot run them (so each case skips with a reason instead of
// failing on a GPU-less builder), and RAII owners for device memory and a
// stream so that a failed assertion never leaks either.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "qlora/core/status.hpp"
#include "qlora/cuda/check.cuh"
#include "qlora/cuda/stream.hpp"

namespace qlora::cuda::gpu_test {

/// Why the GPU cases cannot run on this machine; empty when they can.
inline std::string gpu_unavailable_reason() {
  if (device_count() == 0) return "no CUDA device or driver on this machine";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cannot query device 0";
  // The fatbinary holds sm_80 and sm_90 code plus PTX, so any device of
  // compute capability 8.0 or newer can run it; older ones cannot.
  if (prop.major < 8)
    return std::string(prop.name) + " is sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
           "; the kernels are built for sm_80 and newer";
  return {};
}

/// Skips every test of a derived fixture when there is no usable GPU.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const std::string reason = gpu_unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  }
};

/// One cudaMalloc allocation, freed on scope exit.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
  }
  Status allocate(std::size_t bytes) { return QLORA_CUDA_CHECK(cudaMalloc(&ptr_, bytes > 0 ? bytes : 1)); }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

/// A non-default stream, so the tests also cover passing Stream through.
class StreamGuard {
 public:
  StreamGuard() = default;
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;
  ~StreamGuard() {
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }
  Status create() { return QLORA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  cudaStream_t get() const { return stream_; }
  Stream opaque() const { return Stream{stream_}; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace qlora::cuda::gpu_test
