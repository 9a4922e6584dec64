// pipeline/scale_curve.hpp: per-epoch numbers from a train log, the minimum
// of the NLL curve and its shape, when the minimum is resolved by the seed
// spread, and both overfitting flags.
#include "qlora/pipeline/scale_curve.hpp"

#include <gtest/gtest.h>

namespace qlora::pipeline {
namespace {

ScaleRun run(std::int64_t n, std::int64_t seed, double nll, double loss) {
  ScaleRun r;
  r.n = n;
  r.seed = seed;
  r.test_nll = nll;
  r.epoch_train_loss = {loss};
  r.epoch_test_nll = {nll};
  return r;
}

TEST(ScaleCurve, EpochsFromTheStepLog) {
  std::vector<train::StepRecord> log(6);
  const double epoch[] = {0.5, 1.0, 1.5, 2.0, 2.5, 3.0}, loss[] = {3, 2, 1.5, 1.5, 1, 1};
  for (int i = 0; i < 6; ++i) {
    log[i].step = i + 1;
    log[i].epoch = epoch[i];
    log[i].loss = loss[i];
  }
  log[1].eval_nll = 2.5;
  log[5].eval_nll = 2.7;
  ScaleRun r;
  fill_epochs(r, log);
  EXPECT_EQ(r.steps, 6);
  ASSERT_EQ(r.epoch_train_loss.size(), 3u);
  EXPECT_DOUBLE_EQ(r.epoch_train_loss[0], 2.5);
  EXPECT_DOUBLE_EQ(r.epoch_train_loss[2], 1.0);
  EXPECT_DOUBLE_EQ(r.train_loss(), 1.0);
  EXPECT_DOUBLE_EQ(r.epoch_test_nll[0], 2.5);
  EXPECT_TRUE(std::isnan(r.epoch_test_nll[1]));
  EXPECT_EQ(r.step_loss.size(), 6u);
}

TEST(ScaleCurve, UShapeResolvedBySeeds) {
  // n=2000 is lowest by more than the combined spread of each neighbour.
  std::vector<ScaleRun> runs = {run(1000, 1, 2.00, 1.5), run(1000, 2, 2.02, 1.5), run(2000, 1, 1.80, 1.2),
                                run(2000, 2, 1.81, 1.2), run(3000, 1, 1.95, 1.0), run(3000, 2, 1.97, 1.0)};
  const ScaleAnalysis a = analyze_scale(runs);
  ASSERT_EQ(a.points.size(), 3u);
  EXPECT_EQ(a.points[a.best].n, 2000);
  EXPECT_EQ(a.shape, CurveShape::kU);
  EXPECT_TRUE(a.resolved);
  EXPECT_NEAR(a.points[1].nll_mean, 1.805, 1e-12);
  EXPECT_NEAR(a.points[1].nll_sd, 0.0070710678, 1e-8);
  EXPECT_NEAR(a.points[1].ppl, std::exp(1.805), 1e-12);
  // Past the minimum: NLL up while training loss keeps falling.
  EXPECT_FALSE(a.points[1].overfit_across_scale);
  EXPECT_TRUE(a.points[2].overfit_across_scale);
  EXPECT_NE(a.verdict.find("n = 2000"), std::string::npos);
  EXPECT_NE(a.verdict.find("resolved"), std::string::npos);
}

TEST(ScaleCurve, NoisyMinimumIsNotResolved) {
  std::vector<ScaleRun> runs = {run(1, 1, 2.0, 1), run(1, 2, 2.4, 1), run(2, 1, 1.9, 1), run(2, 2, 2.3, 1),
                                run(3, 1, 2.0, 1), run(3, 2, 2.3, 1)};
  const ScaleAnalysis a = analyze_scale(runs);
  EXPECT_EQ(a.points[a.best].n, 2);
  EXPECT_FALSE(a.resolved);
  EXPECT_NE(a.verdict.find("not resolved"), std::string::npos);
}

TEST(ScaleCurve, OneSeedSaysTheSpreadIsUnknownAndShapeIsNamed) {
  const ScaleAnalysis falling = analyze_scale({run(16, 42, 2.5, 2), run(32, 42, 2.3, 1.9), run(64, 42, 2.1, 1.8)});
  EXPECT_EQ(falling.shape, CurveShape::kFalling);
  EXPECT_FALSE(falling.resolved);
  EXPECT_NE(falling.verdict.find("One seed"), std::string::npos);
  EXPECT_EQ(analyze_scale({run(16, 42, 2.0, 2), run(32, 42, 2.3, 1.9)}).shape, CurveShape::kRising);
  EXPECT_EQ(analyze_scale({run(16, 42, 2.0, 2)}).shape, CurveShape::kSingle);
  // Runs without a test NLL are left out rather than read as zero.
  const ScaleAnalysis partial = analyze_scale({run(16, 42, NAN, 2), run(32, 42, 2.3, 1.9)});
  ASSERT_EQ(partial.points.size(), 1u);
  EXPECT_EQ(partial.points[0].n, 32);
}

TEST(ScaleCurve, TestNllRisingBetweenEpochsIsFlagged) {
  ScaleRun r = run(100, 1, 2.2, 1.0);
  r.epoch_train_loss = {1.5, 1.2, 1.0};
  r.epoch_test_nll = {2.1, 2.0, 2.2};
  EXPECT_TRUE(analyze_scale({r}).points[0].overfit_in_training);
  r.epoch_test_nll = {2.3, 2.2, 2.1};
  EXPECT_FALSE(analyze_scale({r}).points[0].overfit_in_training);
}

}  // namespace
}  // namespace qlora::pipeline
