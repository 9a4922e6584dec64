// qlora/cpu/gemm.hpp — the compute precision of the trainer's dense products
// and the run-time choice between the fp32 and bf16 GEMMs.
//
//   Compute::kF32   cpu/gemm_f32.hpp (Eigen, fp32 throughout)
//   Compute::kBF16  cpu/gemm_bf16_avx512.hpp (operands rounded to bf16,
//                   fp32 accumulation: QLoRA's "bf16 compute dtype")
//
// kBF16 needs AVX512_BF16 (has_avx512_bf16()); where it is missing — the CPU
// or the compiler — gemm() computes in fp32 instead, so a bf16 request never
// fails, it only runs slower and rounds less. resolve_compute() tells callers
// which one they will actually get.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "qlora/core/status.hpp"
#include "qlora/cpu/cpu_features.hpp"
#include "qlora/cpu/gemm_bf16_avx512.hpp"
#include "qlora/cpu/gemm_f32.hpp"

namespace qlora::cpu {

enum class Compute { kF32, kBF16 };

inline const char* compute_name(Compute c) { return c == Compute::kBF16 ? "bf16" : "fp32"; }

inline Result<Compute> parse_compute(std::string_view s) {
  if (s == "fp32" || s == "f32") return Compute::kF32;
  if (s == "bf16") return Compute::kBF16;
  return Status::invalid("unknown compute precision '" + std::string(s) + "' (valid: fp32, bf16)");
}

/// What a request runs as on this machine: kBF16 only with AVX512_BF16.
inline Compute resolve_compute(Compute requested) {
  return requested == Compute::kBF16 && has_avx512_bf16() ? Compute::kBF16 : Compute::kF32;
}

/// bf16 where the CPU has it (the paper trains with bf16 compute), else fp32.
inline Compute default_compute() { return resolve_compute(Compute::kBF16); }

/// C[M,N] = beta·C + alpha·op(A)·op(B) in the resolved precision (the
/// interface and beta rules of gemm_f32).
inline void gemm(Compute c, Op op_a, Op op_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc) {
#if QLORA_HAVE_AVX512_BF16_KERNELS
  if (resolve_compute(c) == Compute::kBF16)
    return gemm_bf16_avx512(op_a, op_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  gemm_f32(op_a, op_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace qlora::cpu
