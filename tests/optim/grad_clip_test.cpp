// Pins optim/grad_clip.hpp against torch.nn.utils.clip_grad_norm_ (torch
// 1.13, tools/gen_optim_golden.py): four gradient tensors of norms 1e-3..5e2,
// clipped at max_norm 1.0 and 0.3 and left alone at 1e6.
//
// Tolerances, and why: torch's norm is a norm of per-tensor fp32 norms, ours a
// double sum over the flat buffer, so the two may differ by a few fp32 ulps
// (kNormUlps); ours must sit within half an ulp of the float64 norm (it is
// the correctly rounded value unless the double sum itself is off). Given
// torch's own norm, clip_coefficient must reproduce torch's coefficient bit
// for bit; given ours, within kNormUlps ulps, and the clipped gradients
// within that too.
#include "qlora/optim/grad_clip.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "optim/optim_golden.hpp"

namespace qlora::optim {
namespace {

using test::floats_from_hex;

/// fp32 ulps between two finite floats of the same sign.
std::int64_t ulps(float a, float b) { return std::llabs(std::int64_t(f32_bits(a)) - std::int64_t(f32_bits(b))); }

constexpr std::int64_t kNormUlps = 2;

TEST(GradClip, NormMatchesTorchAndFloat64) {
  const auto& clip = test::optim_golden()["clip"];
  const std::vector<float> g = floats_from_hex(clip["grads"]);
  const double norm = grad_norm_l2(g);
  const double norm64 = test::double_from_repr(clip["norm_f64"]);
  EXPECT_NEAR(norm, norm64, 1e-12 * norm64);  // both exact-ish double sums of the same squares
  const float torch_norm = floats_from_hex(clip["cases"][0]["total_norm_f32"])[0];
  EXPECT_LE(ulps(float(norm), torch_norm), kNormUlps) << norm << " vs torch " << torch_norm;
  EXPECT_LE(ulps(float(norm), float(norm64)), 0);
}

TEST(GradClip, CoefficientIsTorchsGivenTheSameNorm) {
  for (const auto& c : test::optim_golden()["clip"]["cases"]) {
    const float torch_norm = floats_from_hex(c["total_norm_f32"])[0];
    const float torch_coef = floats_from_hex(c["coefficient_f32"])[0];
    EXPECT_EQ(f32_bits(clip_coefficient(torch_norm, c["max_norm"].get<double>())), f32_bits(torch_coef))
        << "max_norm " << c["max_norm"];
  }
}

TEST(GradClip, ClippedGradientsMatchTorch) {
  const auto& clip = test::optim_golden()["clip"];
  for (const auto& c : clip["cases"]) {
    const double max_norm = c["max_norm"];
    SCOPED_TRACE("max_norm " + std::to_string(max_norm));
    std::vector<float> g = floats_from_hex(clip["grads"]);
    const std::vector<float> want = floats_from_hex(c["clipped"]);
    auto r = clip_grad_norm(g, max_norm);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    const float torch_coef = floats_from_hex(c["coefficient_f32"])[0];
    EXPECT_LE(ulps(r->coefficient, torch_coef), kNormUlps);
    EXPECT_EQ(r->clipped(), torch_coef < 1.0f);
    std::int64_t worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, ulps(g[i], want[i]));
    EXPECT_LE(worst, kNormUlps + 1);  // coefficient ulps plus the multiply's rounding
    if (r->clipped()) {
      EXPECT_NEAR(grad_norm_l2(g), max_norm, 1e-6 * max_norm);  // the new norm is max_norm, to fp32 precision
    } else {
      EXPECT_EQ(test::bit_diff(g, floats_from_hex(clip["grads"])).count, 0u);  // untouched
    }
  }
}

TEST(GradClip, NormIndependentOfThreadCount) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> g(37 * kNormBlock + 1234);
  for (auto& x : g) x = normal(rng) * std::exp(3.0f * normal(rng));
  std::vector<double> norms;
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    norms.push_back(grad_norm_l2(g, pool));
  }
  for (double n : norms) EXPECT_EQ(n, norms[0]);  // exact equality, not near
}

TEST(GradClip, EmptyAndZeroGradients) {
  std::vector<float> none;
  EXPECT_EQ(grad_norm_l2(none), 0.0);
  std::vector<float> zeros(100, 0.0f);
  auto r = clip_grad_norm(zeros, 1.0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->total_norm, 0.0);
  EXPECT_FALSE(r->clipped());
  // Very large finite gradients: the double sum cannot overflow.
  std::vector<float> big(8, 3e38f);
  EXPECT_TRUE(std::isfinite(grad_norm_l2(big)));
}

TEST(GradClip, FindsTheFirstNonFiniteGradient) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> g(5 * kFiniteGrain + 17, 0.25f);
  EXPECT_FALSE(find_non_finite(g).has_value());
  g[4 * kFiniteGrain + 3] = nan;  // in a later chunk
  g[2 * kFiniteGrain + 9] = -inf;
  g[3 * kFiniteGrain] = inf;
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    const auto bad = find_non_finite(g, pool);
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->index, 2 * kFiniteGrain + 9) << threads << " threads";
    EXPECT_EQ(bad->value, -inf);
  }
}

TEST(GradClip, RefusesNonFiniteGradientsAndBadMaxNorm) {
  std::vector<float> g = {1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f};
  auto r = clip_grad_norm(g, 1.0);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNumeric);
  EXPECT_NE(r.status().message().find("element 2 is nan"), std::string::npos) << r.status().message();
  EXPECT_EQ(g[0], 1.0f);  // untouched

  std::vector<float> ok = {3.0f, 4.0f};
  EXPECT_EQ(clip_grad_norm(ok, 0.0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(clip_grad_norm(ok, -1.0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(clip_grad_norm(ok, std::numeric_limits<double>::infinity()).is_ok());
  auto c = clip_grad_norm(ok, 1.0);  // norm 5 -> coefficient ~0.2
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->total_norm, 5.0);
  EXPECT_EQ(c->coefficient, (1.0f / (5.0f + 1e-6f)) * 1.0f);
  EXPECT_FLOAT_EQ(ok[0], 0.6f);
}

}  // namespace
}  // namespace qlora::optim
