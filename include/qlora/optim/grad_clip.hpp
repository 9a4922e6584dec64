// qlora/optim/grad_clip.hpp — global L2 gradient norm, clipping as
// torch.nn.utils.clip_grad_norm_ does it, and a finite check.
//
// The HF Trainer clips before every optimizer step when max_grad_norm > 0
// (default 1.0; QLoRA's scripts use 0.3):
//
//   total = || g ||_2 over all trainable gradients
//   coef  = min(max_norm / (total + 1e-6), 1)         in fp32
//   g    *= coef                                      (torch multiplies even by 1)
//
// The norm. torch takes an fp32 norm per tensor and then the norm of those
// norms (torch.norm(torch.stack([torch.norm(g) for g in grads]))), every
// reduction accumulated in fp32. We see one flat buffer and accumulate the
// squares in double, in fixed blocks of kNormBlock elements whose partial sums
// are added in block order, so the value is the same for every thread count.
// Both are within a few fp32 ulps of the exact norm. On the golden case (four
// tensors, 1075 values, norms from 1e-3 to 5e2) ours rounded to fp32 is the
// float64 norm rounded, and torch's is 1 ulp below it; the clip coefficients
// and clipped gradients still came out identical. The tests allow 2 ulps.
// An ulp of the norm moves the coefficient by about an ulp at most.
//
// The coefficient. torch computes max_norm / (total + 1e-6) on a 0-d fp32
// tensor: total + 1e-6f, then (Python's float / tensor) reciprocal times
// max_norm, then clamp(max=1). clip_coefficient() repeats those fp32 steps on
// our norm rounded to fp32, so for the same norm the coefficient is torch's
// bit for bit.
//
// Non-finite gradients. With a NaN or Inf anywhere torch's norm is NaN/Inf and
// (error_if_nonfinite=False, HF's choice) every gradient becomes NaN. We
// refuse instead: find_non_finite() reports the first bad element so that the
// trainer can name the LoRA slot it belongs to, and clip_grad_norm() fails
// with ErrorCode::kNumeric.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"

namespace qlora::optim {

/// HF TrainingArguments.max_grad_norm's default.
inline constexpr double kHfDefaultMaxGradNorm = 1.0;

/// Elements per partial sum of the norm. Fixed (not per thread) so that the
/// summation order, hence the value, never depends on the thread count.
inline constexpr std::size_t kNormBlock = 4096;

/// Sum of squares of x[0, n) in double. Four interleaved accumulators in a
/// fixed order: the same value every call, and the compiler can keep them in
/// one AVX2 register.
inline double sum_of_squares(const float* x, std::size_t n) {
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::size_t j = 0; j < 4; ++j) acc[j] += double(x[i + j]) * double(x[i + j]);
  for (std::size_t j = 0; i < n; ++i, ++j) acc[j] += double(x[i]) * double(x[i]);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/// ||grads||_2, accumulated in double (see the file comment). NaN or Inf when
/// a gradient is; a finite fp32 buffer always has a finite double norm.
inline double grad_norm_l2(std::span<const float> grads, ThreadPool& pool = ThreadPool::global()) {
  const std::size_t n = grads.size();
  const std::size_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(blocks, 0.0);
  parallel_for(blocks, 16, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t begin = b * kNormBlock;
      partial[b] = sum_of_squares(grads.data() + begin, std::min(kNormBlock, n - begin));
    }
  }, pool);
  double total = 0.0;
  for (double p : partial) total += p;  // block order: thread-count independent
  return std::sqrt(total);
}

/// torch's clip coefficient for a total norm, in its fp32 steps:
/// min(max_norm * (1 / (float(total_norm) + 1e-6f)), 1). Not clamped below:
/// a non-finite norm gives NaN (or 0 for +Inf), as torch's does.
inline float clip_coefficient(double total_norm, double max_norm) {
  const float denom = float(total_norm) + 1e-6f;
  const float coef = (1.0f / denom) * float(max_norm);
  return coef < 1.0f || coef != coef ? coef : 1.0f;  // torch.clamp(max=1.0) keeps NaN
}

/// What clip_grad_norm did.
struct GradClip {
  double total_norm = 0.0;   // before clipping (torch returns it as fp32; HF logs it as grad_norm)
  float coefficient = 1.0f;  // applied to every gradient; 1 when the norm was within max_norm
  bool clipped() const { return coefficient < 1.0f; }
};

/// Scale `grads` so that their global L2 norm is at most max_norm (torch's
/// coefficient, see above). Errors, with nothing modified: max_norm not a
/// positive finite number (HF skips clipping when max_grad_norm is 0; the
/// caller does too), or a non-finite gradient (kNumeric, naming its index).
inline Result<GradClip> clip_grad_norm(std::span<float> grads, double max_norm,
                                       ThreadPool& pool = ThreadPool::global());

/// The first non-finite element of a gradient buffer.
struct NonFiniteGrad {
  std::size_t index = 0;  // into the flat buffer
  float value = 0.0f;     // NaN, +Inf or -Inf
};

/// Elements per chunk of the finite scan (a compare per element).
inline constexpr std::size_t kFiniteGrain = 1 << 15;

/// The lowest index holding NaN/Inf, or nullopt when all are finite. Each
/// chunk finds its own first; the lowest wins, so the answer does not depend
/// on the thread count.
inline std::optional<NonFiniteGrad> find_non_finite(std::span<const float> grads,
                                                    ThreadPool& pool = ThreadPool::global()) {
  const std::size_t n = grads.size();
  std::vector<std::size_t> first(parallel_chunks(n, kFiniteGrain, pool), n);
  parallel_for(n, kFiniteGrain, [&](std::size_t chunk, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      if (!std::isfinite(grads[i])) {
        first[chunk] = i;
        return;
      }
  }, pool);
  const std::size_t i = first.empty() ? n : *std::min_element(first.begin(), first.end());
  if (i == n) return std::nullopt;
  return NonFiniteGrad{i, grads[i]};
}

inline Result<GradClip> clip_grad_norm(std::span<float> grads, double max_norm, ThreadPool& pool) {
  if (!(max_norm > 0.0) || !std::isfinite(max_norm))
    return Status::invalid("max_grad_norm " + std::to_string(max_norm) +
                           " must be positive and finite (skip clipping to disable it)");
  GradClip r;
  r.total_norm = grad_norm_l2(grads, pool);
  if (!std::isfinite(r.total_norm)) {
    const auto bad = find_non_finite(grads, pool);
    return Status::numeric("non-finite gradient norm: gradient element " +
                           (bad ? std::to_string(bad->index) + " is " + std::to_string(bad->value)
                                : std::string("?")));
  }
  r.coefficient = clip_coefficient(r.total_norm, max_norm);
  if (r.coefficient < 1.0f) {  // x * 1.0f == x: skipping torch's multiply by 1 changes nothing
    const float c = r.coefficient;
    parallel_for(grads.size(), kFiniteGrain, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) grads[i] *= c;
    }, pool);
  }
  return r;
}

}  // namespace qlora::optim
