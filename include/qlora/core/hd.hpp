// qlora/core/hd.hpp — host/device qualifiers shared by every header.
//
// Block math (quantize/dequantize a block, dot products, norms, ...) is written
// once as QLORA_HD functions in .hpp files. g++ sees plain inline functions and
// the CPU backend loops over them; nvcc sees __host__ __device__ functions that
// the thin __global__ shells in include/qlora/cuda/ call. No .hpp may include a
// CUDA header or test __CUDA_ARCH__ (style.md §2.4).
#pragma once

#if defined(__CUDACC__)
#define QLORA_HD __host__ __device__ __forceinline__
#define QLORA_DEVICE __device__ __forceinline__
#define QLORA_UNROLL _Pragma("unroll")
#else
#define QLORA_HD inline
#define QLORA_DEVICE inline
#define QLORA_UNROLL
#endif

// A lookup table with one definition for host and device: a __constant__ array
// on the device, a constexpr array on the host (CuTe's CUTE_INLINE_CONSTANT).
#if defined(__CUDA_ARCH__)
#define QLORA_INLINE_CONSTANT static const __device__
#else
#define QLORA_INLINE_CONSTANT static constexpr
#endif

// Host code asserts; device code traps only in debug builds.
#if defined(__CUDA_ARCH__)
#if defined(NDEBUG)
#define QLORA_ASSERT(cond) ((void)0)
#else
#define QLORA_ASSERT(cond) ((cond) ? (void)0 : __trap())
#endif
#else
#include <cassert>
#define QLORA_ASSERT(cond) assert(cond)
#endif
