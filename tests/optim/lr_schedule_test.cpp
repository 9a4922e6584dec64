// Pins optim/lr_schedule.hpp: factors, warmup counts and optimizer step
// counts equal what transformers computes. The golden values are HF's formulas
// evaluated by Python (tools/gen_optim_golden.py; transformers itself is not
// installed), so the comparison is exact: both sides do the same double
// operations in the same order with the same libm cos.
#include "qlora/optim/lr_schedule.hpp"

#include <gtest/gtest.h>

#include <string>

#include "optim/optim_golden.hpp"

namespace qlora::optim {
namespace {

TEST(LrSchedule, FactorsMatchTransformersAtEveryStep) {
  const auto& cases = test::optim_golden()["schedules"]["cases"];
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const std::string kind_name = c["kind"];
    const std::int64_t total = c["total_steps"];
    SCOPED_TRACE(kind_name + " total=" + std::to_string(total));
    auto kind = parse_lr_schedule(kind_name);
    ASSERT_TRUE(kind.is_ok()) << kind.status().message();
    auto warmup = warmup_steps_from_ratio(total, c["warmup_ratio"].get<double>());
    ASSERT_TRUE(warmup.is_ok());
    EXPECT_EQ(*warmup, c["warmup_steps"].get<std::int64_t>());
    auto sched = LrSchedule::create(*kind, 2e-4, total, *warmup);
    ASSERT_TRUE(sched.is_ok()) << sched.status().message();
    const auto& factors = c["factor"];
    for (std::size_t s = 0; s < factors.size(); ++s) {
      const double want = test::double_from_repr(factors[s]);
      EXPECT_EQ(sched->factor(std::int64_t(s)), want) << "step " << s;
      EXPECT_EQ(sched->lr(std::int64_t(s)), 2e-4 * want) << "step " << s;  // LambdaLR: base_lr * lambda
    }
  }
}

// The brief's reference shape: 100 steps, ratio 0.1 -> 10 warmup steps.
TEST(LrSchedule, CosineWithWarmupShape) {
  auto s = LrSchedule::create(LrScheduleKind::kCosine, 1.0, 100, *warmup_steps_from_ratio(100, 0.1));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->warmup_steps(), 10);
  EXPECT_EQ(s->factor(0), 0.0);   // the first update runs at lr 0
  EXPECT_EQ(s->factor(5), 0.5);
  EXPECT_EQ(s->factor(10), 1.0);  // peak right after the warmup
  EXPECT_NEAR(s->factor(55), 0.5, 1e-15);
  EXPECT_EQ(s->factor(100), 0.0);
  EXPECT_GT(s->factor(105), 0.0);  // HF's cosine is not clamped past the end
}

TEST(LrSchedule, ConstantIgnoresWarmupLikeGetScheduler) {
  auto c = LrSchedule::create(LrScheduleKind::kConstant, 2e-4, 100, 3);
  auto w = LrSchedule::create(LrScheduleKind::kConstantWithWarmup, 2e-4, 100, 3);
  ASSERT_TRUE(c.is_ok() && w.is_ok());
  EXPECT_EQ(c->lr(0), 2e-4);
  EXPECT_EQ(w->lr(0), 0.0);
  EXPECT_EQ(w->factor(1), 1.0 / 3.0);
  EXPECT_EQ(w->lr(3), 2e-4);
}

TEST(LrSchedule, WarmupStepsFromRatioAsTrainingArguments) {
  for (const auto& c : test::optim_golden()["schedules"]["warmup"]) {
    auto w = warmup_steps_from_ratio(c["total_steps"], c["warmup_ratio"].get<double>());
    ASSERT_TRUE(w.is_ok());
    EXPECT_EQ(*w, c["warmup_steps"].get<std::int64_t>()) << c.dump();
  }
  EXPECT_EQ(*warmup_steps_from_ratio(300, 0.07), 22);  // 21.000000000000004 rounds up
  EXPECT_FALSE(warmup_steps_from_ratio(100, 1.5).is_ok());
  EXPECT_FALSE(warmup_steps_from_ratio(100, -0.1).is_ok());
  EXPECT_FALSE(warmup_steps_from_ratio(-1, 0.1).is_ok());
}

TEST(LrSchedule, OptimizerStepCountsAsTrainer) {
  const auto& cases = test::optim_golden()["schedules"]["step_counts"];
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.dump());
    StepPlan plan;
    plan.num_examples = c["examples"];
    plan.per_device_batch = c["per_device_batch"];
    plan.grad_accum = c["grad_accum"];
    plan.epochs = c["epochs"];
    plan.max_steps = c["max_steps"];
    plan.drop_last = c["drop_last"];
    plan.rounding = c["rounding"] == "ceil" ? UpdateStepRounding::kCeil : UpdateStepRounding::kFloor;
    auto n = count_optimizer_steps(plan);
    ASSERT_TRUE(n.is_ok()) << n.status().message();
    EXPECT_EQ(n->batches_per_epoch, c["batches_per_epoch"].get<std::int64_t>());
    EXPECT_EQ(n->updates_per_epoch, c["updates_per_epoch"].get<std::int64_t>());
    EXPECT_EQ(n->total_steps, c["total_steps"].get<std::int64_t>());
    EXPECT_EQ(n->epochs, c["num_train_epochs"].get<std::int64_t>());
  }
}

TEST(LrSchedule, StepCountRejectsImpossiblePlans) {
  StepPlan p;
  EXPECT_FALSE(count_optimizer_steps(p).is_ok());  // no examples
  p.num_examples = 5;
  p.per_device_batch = 8;
  p.drop_last = true;
  auto r = count_optimizer_steps(p);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no full batch"), std::string::npos);
  p.drop_last = false;
  p.grad_accum = 0;
  EXPECT_FALSE(count_optimizer_steps(p).is_ok());
  p.grad_accum = 1;
  p.epochs = 0.0;
  EXPECT_FALSE(count_optimizer_steps(p).is_ok());
  p.max_steps = 10;  // max_steps makes epochs irrelevant
  EXPECT_TRUE(count_optimizer_steps(p).is_ok());
}

TEST(LrSchedule, ParsesHfNamesWithClearErrors) {
  EXPECT_EQ(*parse_lr_schedule("cosine"), LrScheduleKind::kCosine);
  EXPECT_EQ(*parse_lr_schedule("linear"), LrScheduleKind::kLinear);
  EXPECT_EQ(*parse_lr_schedule("constant"), LrScheduleKind::kConstant);
  EXPECT_EQ(*parse_lr_schedule("constant_with_warmup"), LrScheduleKind::kConstantWithWarmup);
  for (const auto& n : kLrScheduleNames) EXPECT_EQ(*parse_lr_schedule(lr_schedule_name(n.kind)), n.kind);

  auto typo = parse_lr_schedule("cosin");
  ASSERT_FALSE(typo.is_ok());
  EXPECT_EQ(typo.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(typo.status().message().find("\"cosin\""), std::string::npos);
  EXPECT_NE(typo.status().message().find("linear, cosine, constant, constant_with_warmup"), std::string::npos);

  auto other = parse_lr_schedule("polynomial");
  ASSERT_FALSE(other.is_ok());
  EXPECT_EQ(other.status().code(), ErrorCode::kUnsupported);
  EXPECT_FALSE(parse_lr_schedule("Cosine").is_ok());  // HF's names are case-sensitive
}

TEST(LrSchedule, CreateValidates) {
  EXPECT_FALSE(LrSchedule::create(LrScheduleKind::kLinear, -1.0, 10, 0).is_ok());
  EXPECT_FALSE(LrSchedule::create(LrScheduleKind::kLinear, 1e-4, 0, 0).is_ok());
  EXPECT_FALSE(LrSchedule::create(LrScheduleKind::kLinear, 1e-4, 10, -1).is_ok());
  auto long_warmup = LrSchedule::create(LrScheduleKind::kLinear, 1.0, 10, 20);
  ASSERT_TRUE(long_warmup.is_ok());
  EXPECT_EQ(long_warmup->factor(10), 0.5);  // still warming up past the end, as in HF
}

}  // namespace
}  // namespace qlora::optim
