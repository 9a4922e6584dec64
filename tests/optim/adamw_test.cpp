// Pins optim/adamw.hpp: our AdamW equals torch's bit for bit.
//
// Golden runs (tools/gen_optim_golden.py, torch 1.13 CPU): 205 parameters in
// three tensors, 20 steps of gradients spanning ten binades with exact zeros,
// five hyper-parameter sets (torch defaults; QLoRA's lr with weight decay; a
// large lr with other betas/eps; beta1 = 0.3, which takes lerp's other
// branch; and a cosine schedule whose first lr is 0), each for both moment
// updates and both FMA roundings. Tolerance: none — every bit of p after the
// first step and of p, m and v after the last must match, because both sides
// perform the same fp32 operations in the same order (the header explains
// where torch rounds). A mismatch means the op order or a scalar's rounding
// drifted from torch's.
#include "qlora/optim/adamw.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "optim/optim_golden.hpp"

namespace qlora::optim {
namespace {

using test::bit_diff;
using test::floats_from_hex;

/// Replays one golden case through adamw_step and compares bit for bit.
void replay_case(const nlohmann::json& section, const nlohmann::json& c) {
  const std::string label = c["name"].get<std::string>() + " moment=" + c["moment"].get<std::string>() +
                            " fma=" + (c["fma"].get<bool>() ? "fused" : "unfused");
  SCOPED_TRACE(label);
  AdamWHyperParams hp;
  hp.beta1 = c["beta1"].get<double>();
  hp.beta2 = c["beta2"].get<double>();
  hp.eps = c["eps"].get<double>();
  hp.weight_decay = c["weight_decay"].get<double>();
  hp.moment = c["moment"] == "lerp" ? MomentUpdate::kLerp : MomentUpdate::kMulAdd;
  hp.fma = c["fma"].get<bool>() ? FmaRounding::kFused : FmaRounding::kUnfused;

  std::vector<float> p = floats_from_hex(section["params0"]);
  AdamWState state = AdamWState::zeros(p.size());
  const auto& grads = section["grads"];
  const int steps = section["steps"].get<int>();
  ASSERT_EQ(int(grads.size()), steps);
  for (int t = 0; t < steps; ++t) {
    hp.lr = test::double_from_repr(c["lr"][std::size_t(t)]);
    const std::vector<float> g = floats_from_hex(grads[std::size_t(t)]);
    ASSERT_TRUE(adamw_step(p, g, state, hp).is_ok());
    if (t == 0) {
      const auto d = bit_diff(p, floats_from_hex(c["p_after_step1"]));
      EXPECT_EQ(d.count, 0u) << "p after step 1 differs, first at " << d.first;
    }
  }
  EXPECT_EQ(state.step, steps);
  const auto dp = bit_diff(p, floats_from_hex(c["p"]));
  const auto dm = bit_diff(state.m, floats_from_hex(c["m"]));
  const auto dv = bit_diff(state.v, floats_from_hex(c["v"]));
  EXPECT_EQ(dp.count, 0u) << "params differ from torch's, first at " << dp.first;
  EXPECT_EQ(dm.count, 0u) << "exp_avg differs from torch's, first at " << dm.first;
  EXPECT_EQ(dv.count, 0u) << "exp_avg_sq differs from torch's, first at " << dv.first;
}

TEST(AdamW, MatchesTorchBitForBit) {
  const auto& section = test::optim_golden()["adamw"];
  ASSERT_EQ(section["cases"].size(), 20u);  // 5 hyper-parameter sets x 2 moments x 2 roundings
  for (const auto& c : section["cases"]) replay_case(section, c);
}

// The golden variants really differ, so matching all four is not luck: a
// wrong rounding choice would fail somewhere above.
TEST(AdamW, RoundingVariantsAreDistinguishable) {
  const auto& section = test::optim_golden()["adamw"];
  std::vector<float> fused, unfused, lerp, muladd;
  for (const auto& c : section["cases"]) {
    if (c["name"] != "torch_defaults") continue;
    const auto p = floats_from_hex(c["p"]);
    if (c["moment"] == "mul_add") (c["fma"].get<bool>() ? fused : unfused) = p;
    if (c["fma"].get<bool>()) (c["moment"] == "lerp" ? lerp : muladd) = p;
  }
  EXPECT_GT(bit_diff(fused, unfused).count, 0u);
  EXPECT_GT(bit_diff(lerp, muladd).count, 0u);
}

TEST(AdamW, StepScalarsRoundTorchsDoubles) {
  AdamWHyperParams hp;
  hp.lr = 2e-4;
  hp.weight_decay = 0.01;
  auto s = adamw_step_scalars(hp, 1);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->decay, float(1.0 - 2e-4 * 0.01));
  EXPECT_EQ(s->one_minus_beta1, 0.1f);  // 1 - 0.9 = 0.09999999999999998 rounds to 0.1f
  EXPECT_EQ(s->one_minus_beta2, float(1.0 - 0.999));
  EXPECT_EQ(s->bias_correction2_sqrt, float(std::sqrt(1.0 - 0.999)));
  EXPECT_EQ(s->neg_step_size, float(-(2e-4 / (1.0 - 0.9))));
  EXPECT_EQ(s->eps, 1e-8f);
  // Late in training the bias corrections vanish: step_size -> lr.
  s = adamw_step_scalars(hp, 100000);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->neg_step_size, -2e-4f);
  EXPECT_EQ(s->bias_correction2_sqrt, 1.0f);
}

// With grad 0 and fresh state, only weight decay acts: p * (1 - lr*wd).
TEST(AdamW, ZeroGradientOnlyDecays) {
  AdamWHyperParams hp;
  hp.lr = 0.1;
  hp.weight_decay = 0.5;
  std::vector<float> p = {1.0f, -2.0f, 0.0f};
  const std::vector<float> g(3, 0.0f);
  AdamWState st = AdamWState::zeros(3);
  ASSERT_TRUE(adamw_step(p, g, st, hp).is_ok());
  EXPECT_EQ(p[0], 0.95f);
  EXPECT_EQ(p[1], -1.9f);
  EXPECT_EQ(p[2], 0.0f);
  EXPECT_EQ(st.m[0], 0.0f);
  EXPECT_EQ(st.v[0], 0.0f);
}

// The first step moves each parameter by about lr * sign(g) (m_hat / sqrt(v_hat) = ±1).
TEST(AdamW, FirstStepIsSignTimesLr) {
  AdamWHyperParams hp;
  hp.lr = 1e-3;
  std::vector<float> p = {0.5f, 0.5f};
  const std::vector<float> g = {3.0f, -1e-3f};
  AdamWState st = AdamWState::zeros(2);
  ASSERT_TRUE(adamw_step(p, g, st, hp).is_ok());
  EXPECT_NEAR(p[0], 0.5f - 1e-3f, 1e-7f);
  EXPECT_NEAR(p[1], 0.5f + 1e-3f, 1e-7f);
}

/// Random parameters/gradients big enough for several parallel_for chunks.
struct Buffers {
  std::vector<float> p, g;
};
Buffers random_buffers(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Buffers b{std::vector<float>(n), std::vector<float>(n)};
  for (std::size_t i = 0; i < n; ++i) {
    b.p[i] = 0.02f * normal(rng);
    b.g[i] = 1e-3f * normal(rng) * std::exp(normal(rng));
  }
  return b;
}

TEST(AdamW, ResultIndependentOfThreadCount) {
  const std::size_t n = 7 * kAdamWGrain + 123;  // up to 8 chunks, uneven split
  for (FmaRounding fma : {FmaRounding::kFused, FmaRounding::kUnfused}) {
    AdamWHyperParams hp;
    hp.lr = 2e-4;
    hp.weight_decay = 0.01;
    hp.fma = fma;
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3, 8}) {
      ThreadPool pool(threads);
      Buffers b = random_buffers(n, 42);
      AdamWState st = AdamWState::zeros(n);
      for (int t = 0; t < 3; ++t) ASSERT_TRUE(adamw_step(b.p, b.g, st, hp, pool).is_ok());
      results.push_back(b.p);
      results.push_back(st.m);
      results.push_back(st.v);
    }
    for (std::size_t r = 3; r < results.size(); ++r)
      EXPECT_EQ(bit_diff(results[r], results[r % 3]).count, 0u) << "run " << r / 3 << " array " << r % 3;
  }
}

TEST(AdamW, RejectsBadArgumentsWithoutTouchingAnything) {
  std::vector<float> p = {1.0f, 2.0f};
  const std::vector<float> g = {0.5f, 0.5f};
  AdamWState st = AdamWState::zeros(2);
  AdamWHyperParams hp;

  const std::vector<float> short_g = {0.5f};
  Status s = adamw_step(p, short_g, st, hp);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("1 gradients for 2 parameters"), std::string::npos) << s.message();

  AdamWState other = AdamWState::zeros(3);
  s = adamw_step(p, g, other, hp);
  EXPECT_NE(s.message().find("3 exp_avg"), std::string::npos) << s.message();

  for (auto mutate : {+[](AdamWHyperParams& h) { h.beta1 = 1.0; }, +[](AdamWHyperParams& h) { h.beta2 = -0.1; },
                      +[](AdamWHyperParams& h) { h.lr = -1e-3; },
                      +[](AdamWHyperParams& h) { h.lr = std::numeric_limits<double>::quiet_NaN(); },
                      +[](AdamWHyperParams& h) { h.eps = -1.0; },
                      +[](AdamWHyperParams& h) { h.weight_decay = std::numeric_limits<double>::infinity(); }}) {
    AdamWHyperParams bad;
    mutate(bad);
    EXPECT_EQ(adamw_step(p, g, st, bad).code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(adamw_step_scalars(hp, 0).is_ok());

  EXPECT_EQ(st.step, 0);  // nothing above took a step
  EXPECT_EQ(p[0], 1.0f);
  EXPECT_EQ(st.m[0], 0.0f);
}

// A restored state continues exactly where the saved one left off.
TEST(AdamW, RestoredStateContinuesIdentically) {
  Buffers b = random_buffers(1000, 7);
  AdamWHyperParams hp;
  hp.lr = 1e-3;
  AdamWState st = AdamWState::zeros(b.p.size());
  std::vector<float> p = b.p;
  for (int t = 0; t < 4; ++t) ASSERT_TRUE(adamw_step(p, b.g, st, hp).is_ok());
  AdamWState saved = st;  // what a checkpoint writes
  std::vector<float> p_saved = p;
  for (int t = 0; t < 3; ++t) ASSERT_TRUE(adamw_step(p, b.g, st, hp).is_ok());
  ASSERT_TRUE(saved.check(p_saved.size()).is_ok());
  for (int t = 0; t < 3; ++t) ASSERT_TRUE(adamw_step(p_saved, b.g, saved, hp).is_ok());
  EXPECT_EQ(bit_diff(p, p_saved).count, 0u);
  EXPECT_EQ(saved.step, 7);
}

}  // namespace
}  // namespace qlora::optim
