// qlora/optim/lr_schedule.hpp — learning-rate schedules and step counts as
// Hugging Face transformers computes them.
//
// HF wraps a torch LambdaLR around a factor function of the number of
// optimizer steps already taken (transformers/optimization.py):
//
//   warmup (s < W):  s / max(1, W)                            linear, cosine, constant_with_warmup
//   linear:          max(0, (T - s) / max(1, T - W))
//   cosine:          max(0, 0.5 * (1 + cos(pi * num_cycles * 2 * (s - W) / max(1, T - W))))
//   constant:        1                                          (get_scheduler passes no warmup!)
//
// and the optimizer's lr is base_lr * factor(s), all in double. The update
// that is the optimizer's k-th (1-based) uses factor(k - 1): the scheduler
// steps after the optimizer, so with warmup the first update runs at lr 0.
//
// Where W and T come from (TrainingArguments, Trainer; single process):
//   warmup steps W = warmup_steps if given (> 0), else ceil(T * warmup_ratio),
//       with T * warmup_ratio a double product (300 * 0.07 = 21.000000000000004
//       gives 22 warmup steps, not 21).
//   batches per epoch B = ceil(N / per_device_batch), or floor with
//       dataloader_drop_last.
//   updates per epoch U = max(1, ceil(B / grad_accum)) since transformers 4.52
//       (PR #37923: the last, short accumulation group of an epoch is an update),
//       max(1, floor(B / grad_accum)) before.
//   total steps T = max_steps if > 0, else ceil(num_train_epochs * U) (epochs
//       may be fractional).
//
// QLoRA's own scripts pass lr_scheduler_type="constant" with warmup_ratio
// 0.03; through get_scheduler that runs with NO warmup, which kConstant
// reproduces. Use "constant_with_warmup" for a warmup.
//
// tests/optim/lr_schedule_test.cpp checks every factor of several schedules,
// the warmup counts and the step counts against the formulas evaluated in
// Python (tools/gen_optim_golden.py): equal as doubles.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>

#include "qlora/core/status.hpp"

namespace qlora::optim {

/// The HF lr_scheduler_type values we implement.
enum class LrScheduleKind : std::uint8_t {
  kLinear,              // "linear" (HF's default)
  kCosine,              // "cosine" (num_cycles 0.5: one half-wave from 1 to 0)
  kConstant,            // "constant" (no warmup, as get_scheduler does)
  kConstantWithWarmup,  // "constant_with_warmup"
};

struct LrScheduleName {
  LrScheduleKind kind;
  std::string_view name;  // HF's SchedulerType value
};
inline constexpr LrScheduleName kLrScheduleNames[] = {
    {LrScheduleKind::kLinear, "linear"},
    {LrScheduleKind::kCosine, "cosine"},
    {LrScheduleKind::kConstant, "constant"},
    {LrScheduleKind::kConstantWithWarmup, "constant_with_warmup"},
};

inline std::string_view lr_schedule_name(LrScheduleKind k) {
  for (const auto& n : kLrScheduleNames)
    if (n.kind == k) return n.name;
  return "?";
}

/// "cosine" -> kCosine. Names are HF's, case-sensitive as HF's SchedulerType.
/// Other HF schedules are kUnsupported, anything else kInvalidArgument; both
/// messages list what is implemented.
inline Result<LrScheduleKind> parse_lr_schedule(std::string_view name) {
  std::string known;
  for (const auto& n : kLrScheduleNames) {
    if (n.name == name) return n.kind;
    known += (known.empty() ? "" : ", ") + std::string(n.name);
  }
  constexpr std::string_view kOtherHf[] = {"cosine_with_restarts", "polynomial",         "inverse_sqrt",
                                           "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                                           "warmup_stable_decay"};
  for (std::string_view other : kOtherHf)
    if (other == name)
      return Status::unsupported("learning-rate schedule \"" + std::string(name) +
                                 "\" is a transformers schedule qlora does not implement (implemented: " + known + ")");
  return Status::invalid("unknown learning-rate schedule \"" + std::string(name) + "\" (known: " + known + ")");
}

/// TrainingArguments.get_warmup_steps for a ratio: ceil(total_steps * ratio),
/// the product in double exactly as Python forms it.
inline Result<std::int64_t> warmup_steps_from_ratio(std::int64_t total_steps, double warmup_ratio) {
  if (total_steps < 0) return Status::invalid("warmup: negative total step count " + std::to_string(total_steps));
  if (!(warmup_ratio >= 0.0 && warmup_ratio <= 1.0))
    return Status::invalid("warmup ratio " + std::to_string(warmup_ratio) + " is not in [0, 1]");
  return std::int64_t(std::ceil(double(total_steps) * warmup_ratio));
}

/// How many micro-batches of an epoch make optimizer updates.
enum class UpdateStepRounding : std::uint8_t {
  kCeil,   // transformers >= 4.52: a short last accumulation group is an update
  kFloor,  // transformers < 4.52
};

/// The TrainingArguments that decide the number of optimizer steps.
/// Defaults are HF's.
struct StepPlan {
  std::int64_t num_examples = 0;       // training examples (len(train_dataset))
  std::int64_t per_device_batch = 8;   // per_device_train_batch_size
  std::int64_t grad_accum = 1;         // gradient_accumulation_steps
  double epochs = 3.0;                 // num_train_epochs (may be fractional)
  std::int64_t max_steps = -1;         // > 0 overrides epochs
  bool drop_last = false;              // dataloader_drop_last
  UpdateStepRounding rounding = UpdateStepRounding::kCeil;
};

/// What the HF Trainer derives from a StepPlan.
struct StepCount {
  std::int64_t batches_per_epoch = 0;  // len(train_dataloader)
  std::int64_t updates_per_epoch = 0;  // num_update_steps_per_epoch
  std::int64_t total_steps = 0;        // max_steps: the schedule's T
  std::int64_t epochs = 0;             // num_train_epochs as an epoch-loop count
};

/// The Trainer's arithmetic (see the file comment), single process.
inline Result<StepCount> count_optimizer_steps(const StepPlan& plan) {
  if (plan.num_examples <= 0) return Status::invalid("training set is empty");
  if (plan.per_device_batch <= 0 || plan.grad_accum <= 0)
    return Status::invalid("batch size " + std::to_string(plan.per_device_batch) + " and gradient accumulation " +
                           std::to_string(plan.grad_accum) + " must be positive");
  StepCount c;
  c.batches_per_epoch = plan.drop_last ? plan.num_examples / plan.per_device_batch
                                       : (plan.num_examples + plan.per_device_batch - 1) / plan.per_device_batch;
  if (c.batches_per_epoch == 0)
    return Status::invalid(std::to_string(plan.num_examples) + " examples make no full batch of " +
                           std::to_string(plan.per_device_batch) + " with drop_last");
  const std::int64_t whole = c.batches_per_epoch / plan.grad_accum;
  const bool partial = c.batches_per_epoch % plan.grad_accum != 0;
  c.updates_per_epoch = std::max<std::int64_t>(
      whole + (plan.rounding == UpdateStepRounding::kCeil && partial ? 1 : 0), 1);
  if (plan.max_steps > 0) {
    c.total_steps = plan.max_steps;
    c.epochs = plan.max_steps / c.updates_per_epoch + (plan.max_steps % c.updates_per_epoch > 0 ? 1 : 0);
  } else {
    if (!(plan.epochs > 0.0) || !std::isfinite(plan.epochs))
      return Status::invalid("num_train_epochs " + std::to_string(plan.epochs) + " must be positive (or set max_steps)");
    c.total_steps = std::int64_t(std::ceil(plan.epochs * double(c.updates_per_epoch)));
    c.epochs = std::int64_t(std::ceil(plan.epochs));
  }
  return c;
}

/// A schedule: base_lr * factor(steps already taken), as HF's LambdaLR.
class LrSchedule {
 public:
  /// Errors: base_lr negative or not finite, total_steps < 1, warmup_steps < 0.
  /// warmup_steps may exceed total_steps (HF allows it: the warmup then never ends).
  static Result<LrSchedule> create(LrScheduleKind kind, double base_lr, std::int64_t total_steps,
                                   std::int64_t warmup_steps, double num_cycles = 0.5) {
    if (!(base_lr >= 0.0) || !std::isfinite(base_lr))
      return Status::invalid("learning rate " + std::to_string(base_lr) + " must be finite and >= 0");
    if (total_steps < 1) return Status::invalid("schedule over " + std::to_string(total_steps) + " steps");
    if (warmup_steps < 0) return Status::invalid("negative warmup step count " + std::to_string(warmup_steps));
    if (!std::isfinite(num_cycles)) return Status::invalid("cosine num_cycles is not finite");
    LrSchedule s;
    s.kind_ = kind;
    s.base_lr_ = base_lr;
    s.total_ = total_steps;
    s.warmup_ = warmup_steps;
    s.num_cycles_ = num_cycles;
    return s;
  }

  /// The lr multiplier after `step` optimizer steps (HF's lr_lambda(step)).
  /// Defined past total_steps as HF's is: linear stays 0, cosine rises again.
  double factor(std::int64_t step) const {
    if (kind_ == LrScheduleKind::kConstant) return 1.0;
    if (step < warmup_) {
      // constant_with_warmup divides by max(1.0, W), the others by max(1, W): the same double.
      return double(step) / double(std::max<std::int64_t>(1, warmup_));
    }
    switch (kind_) {
      case LrScheduleKind::kLinear:
        return std::max(0.0, double(total_ - step) / double(std::max<std::int64_t>(1, total_ - warmup_)));
      case LrScheduleKind::kCosine: {
        const double progress = double(step - warmup_) / double(std::max<std::int64_t>(1, total_ - warmup_));
        // Python evaluates math.pi * num_cycles * 2.0 * progress left to right.
        return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles_ * 2.0 * progress)));
      }
      default:
        return 1.0;  // constant_with_warmup after the warmup
    }
  }

  /// The learning rate of the optimizer update that follows `step` completed
  /// updates (the k-th update, 1-based, uses lr(k - 1)); with AdamWState that
  /// is `hp.lr = schedule.lr(state.step)` right before adamw_step.
  double lr(std::int64_t step) const { return base_lr_ * factor(step); }

  LrScheduleKind kind() const { return kind_; }
  double base_lr() const { return base_lr_; }
  std::int64_t total_steps() const { return total_; }
  std::int64_t warmup_steps() const { return warmup_; }

 private:
  LrSchedule() = default;
  LrScheduleKind kind_ = LrScheduleKind::kLinear;
  double base_lr_ = 0.0;
  std::int64_t total_ = 1;
  std::int64_t warmup_ = 0;
  double num_cycles_ = 0.5;
};

}  // namespace qlora::optim
