// qlora/pipeline/scale_curve.hpp — Stage 1's question: how much data? One
// adapter per nested subset size n (and per seed) gives a test NLL; the
// paper picks n at the minimum of that curve (a U: too little data
// underfits, more of the same templated data overfits).
//
// Two things keep a user from reading noise as a U. Seeds: with several, each
// n has a mean and a standard deviation, and the minimum is called "resolved"
// only when it sits below each neighbour by more than their spreads combined.
// Overfitting flags: test NLL rising while training loss falls — between
// epochs of one run, and between neighbouring sizes across the sweep.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qlora/train/trainer.hpp"

namespace qlora::pipeline {

/// One training run of the sweep.
struct ScaleRun {
  std::int64_t n = 0;     // training pairs
  std::int64_t seed = 0;
  double test_nll = NAN;  // answer-token NLL on the test set after training
  double seconds = 0.0;   // training wall time
  std::int64_t steps = 0;
  std::vector<double> epoch_train_loss;  // mean step loss per epoch
  std::vector<double> epoch_test_nll;    // test NLL at each epoch's end (NaN where not evaluated)
  std::vector<double> step_loss;         // every optimizer step's loss (the loss curve)
  double train_loss() const { return epoch_train_loss.empty() ? NAN : epoch_train_loss.back(); }
};

/// Per-epoch means of the step losses and the evaluation at each epoch's end,
/// from a run's log (epoch e holds the steps with e-1 < epoch <= e).
inline void fill_epochs(ScaleRun& run, const std::vector<train::StepRecord>& steps) {
  run.epoch_train_loss.clear();
  run.epoch_test_nll.clear();
  run.step_loss.clear();
  run.steps = steps.empty() ? 0 : steps.back().step;
  std::map<std::int64_t, std::pair<double, std::size_t>> loss;
  std::map<std::int64_t, double> eval;
  for (const auto& s : steps) {
    const auto e = std::max<std::int64_t>(1, std::int64_t(std::ceil(s.epoch - 1e-9)));
    run.step_loss.push_back(s.loss);
    loss[e].first += s.loss;
    ++loss[e].second;
    if (!std::isnan(s.eval_nll)) eval[e] = s.eval_nll;
  }
  for (const auto& [e, v] : loss) {
    run.epoch_train_loss.push_back(v.first / double(v.second));
    auto it = eval.find(e);
    run.epoch_test_nll.push_back(it == eval.end() ? NAN : it->second);
  }
}

/// One subset size, over its seeds.
struct ScalePoint {
  std::int64_t n = 0;
  std::size_t seeds = 0;
  double nll_mean = NAN, nll_sd = 0.0;  // sample standard deviation over seeds (0 with one)
  double ppl = NAN;                     // exp(nll_mean)
  double train_loss_mean = NAN, train_loss_sd = 0.0;
  double seconds_mean = 0.0;
  bool overfit_in_training = false;  // a seed's test NLL rose between epochs while its train loss fell
  bool overfit_across_scale = false; // NLL above the next smaller n's while train loss is below it
};

enum class CurveShape { kFalling, kRising, kU, kSingle };

inline const char* curve_shape_name(CurveShape s) {
  switch (s) {
    case CurveShape::kFalling: return "still falling (minimum at the largest n)";
    case CurveShape::kRising: return "rising (minimum at the smallest n)";
    case CurveShape::kU: return "U-shaped (minimum inside the range)";
    case CurveShape::kSingle: return "a single size";
  }
  return "";
}

struct ScaleAnalysis {
  std::vector<ScalePoint> points;  // by increasing n
  std::size_t best = 0;            // index of the lowest mean test NLL
  CurveShape shape = CurveShape::kSingle;
  bool resolved = false;           // the minimum beats each neighbour by more than their combined spread
  std::string verdict;             // one sentence for the report
};

namespace scale_detail {
inline void mean_sd(const std::vector<double>& v, double& mean, double& sd) {
  mean = NAN;
  sd = 0.0;
  if (v.empty()) return;
  double s = 0;
  for (double x : v) s += x;
  mean = s / double(v.size());
  if (v.size() < 2) return;
  double q = 0;
  for (double x : v) q += (x - mean) * (x - mean);
  sd = std::sqrt(q / double(v.size() - 1));
}
}  // namespace scale_detail

inline ScaleAnalysis analyze_scale(const std::vector<ScaleRun>& runs) {
  ScaleAnalysis a;
  std::map<std::int64_t, std::vector<const ScaleRun*>> by_n;
  for (const auto& r : runs)
    if (std::isfinite(r.test_nll)) by_n[r.n].push_back(&r);
  for (const auto& [n, rs] : by_n) {
    ScalePoint p;
    p.n = n;
    p.seeds = rs.size();
    std::vector<double> nll, loss;
    for (const ScaleRun* r : rs) {
      nll.push_back(r->test_nll);
      if (std::isfinite(r->train_loss())) loss.push_back(r->train_loss());
      p.seconds_mean += r->seconds / double(rs.size());
      for (std::size_t e = 1; e < r->epoch_test_nll.size(); ++e)
        if (r->epoch_test_nll[e] > r->epoch_test_nll[e - 1] && r->epoch_train_loss[e] < r->epoch_train_loss[e - 1])
          p.overfit_in_training = true;
    }
    scale_detail::mean_sd(nll, p.nll_mean, p.nll_sd);
    scale_detail::mean_sd(loss, p.train_loss_mean, p.train_loss_sd);
    p.ppl = std::exp(p.nll_mean);
    a.points.push_back(p);
  }
  if (a.points.empty()) {
    a.verdict = "no finished runs to compare";
    return a;
  }
  for (std::size_t i = 1; i < a.points.size(); ++i) {
    const ScalePoint &prev = a.points[i - 1];
    ScalePoint& cur = a.points[i];
    cur.overfit_across_scale = cur.nll_mean > prev.nll_mean && cur.train_loss_mean < prev.train_loss_mean;
  }
  for (std::size_t i = 1; i < a.points.size(); ++i)
    if (a.points[i].nll_mean < a.points[a.best].nll_mean) a.best = i;
  const std::size_t last = a.points.size() - 1;
  a.shape = a.points.size() == 1 ? CurveShape::kSingle
            : a.best == last     ? CurveShape::kFalling
            : a.best == 0        ? CurveShape::kRising
                                 : CurveShape::kU;
  const ScalePoint& b = a.points[a.best];
  const bool many_seeds = b.seeds > 1;
  a.resolved = many_seeds && a.points.size() > 1;
  for (std::size_t j : {a.best - 1, a.best + 1})
    if (j < a.points.size()) {
      const ScalePoint& o = a.points[j];
      if (!(o.nll_mean - b.nll_mean > o.nll_sd + b.nll_sd) || o.seeds < 2) a.resolved = false;
    }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.4f (PPL %.3f)", b.nll_mean, b.ppl);
  a.verdict = "lowest test NLL at n = " + std::to_string(b.n) + ": " + buf + "; the curve is " +
              curve_shape_name(a.shape) + ". ";
  if (a.points.size() > 1)
    a.verdict += !many_seeds ? "One seed per size: the spread is unknown, so differences between sizes may be noise "
                               "(run.seeds adds seeds)."
                 : a.resolved ? "The minimum is resolved: it beats each neighbour by more than their seed spreads."
                              : "The minimum is not resolved: a neighbour lies within the seed spread.";
  return a;
}

}  // namespace qlora::pipeline
