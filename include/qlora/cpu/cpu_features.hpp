// qlora/cpu/cpu_features.hpp — which optional x86 instruction sets the
// running CPU has, for kernels chosen at run time rather than by -march.
//
// Most of cpu/ is compiled for the build's target (-march=native in our
// CMake) and picked with #if __AVX2__. The bf16 training GEMM is different:
// it is the trainer's main cost, AVX512_BF16 is rare enough that a generic
// build should still use it where present, and a -march=native build copied
// to an older machine must not fault. So its functions carry a target
// attribute (QLORA_TARGET_AVX512_BF16) and the caller asks
// has_avx512_bf16() before calling them. Define QLORA_NO_AVX512_BF16 to
// leave them out of a build (everything then computes in fp32).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QLORA_NO_AVX512_BF16)
/// The compiler can emit AVX512_BF16 code (per function, whatever -march says).
#define QLORA_HAVE_AVX512_BF16_KERNELS 1
/// Target attribute of every function that uses AVX-512 BF16 intrinsics.
#define QLORA_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#else
#define QLORA_HAVE_AVX512_BF16_KERNELS 0
#define QLORA_TARGET_AVX512_BF16
#endif

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through masked
// builtins (unpack, extract, cvtepu8, permutes...), which -W(maybe-)
// uninitialized reports once they are inlined into our kernels (GCC PR
// 105593); the values are never read. Our AVX-512 sections sit between these.
#if defined(__GNUC__) && !defined(__clang__)
#define QLORA_AVX512_WARNINGS_PUSH                             \
  _Pragma("GCC diagnostic push")                               \
  _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")        \
  _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define QLORA_AVX512_WARNINGS_POP _Pragma("GCC diagnostic pop")
#else
#define QLORA_AVX512_WARNINGS_PUSH
#define QLORA_AVX512_WARNINGS_POP
#endif

#include <cstdlib>

namespace qlora::cpu {

/// True when this build has the bf16 kernels and the CPU (and OS: the zmm
/// state is enabled, which __builtin_cpu_supports checks) runs them.
/// QLORA_DISABLE_AVX512_BF16=1 in the environment forces false, to exercise
/// the fp32 fallback on a machine that has the instructions.
inline bool has_avx512_bf16() {
  static const bool ok = [] {
    if (const char* env = std::getenv("QLORA_DISABLE_AVX512_BF16"); env && env[0] == '1') return false;
#if QLORA_HAVE_AVX512_BF16_KERNELS
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
  }();
  return ok;
}

}  // namespace qlora::cpu
