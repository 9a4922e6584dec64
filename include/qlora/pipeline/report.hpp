// qlora/pipeline/report.hpp — the tables and plots of a pipeline run, in
// the form of the paper's (Table 2: loss and time per scale; Table 3: NLL/PPL
// per scale; Table 4: model comparison; Table 5: quantization), from the
// results the stages collect. Pure functions of those results: the stage
// commands gather numbers, these turn them into markdown, CSV and SVG, and
// the tests pin the tables without running a model.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qlora/judge/score_summary.hpp"
#include "qlora/pipeline/scale_curve.hpp"
#include "qlora/report/svg_plot.hpp"

namespace qlora::pipeline {

namespace report_detail {
/// Mean of `values` in `buckets` equal runs (fewer when there are fewer values).
inline std::vector<double> bucket_means(const std::vector<double>& values, std::size_t buckets) {
  std::vector<double> out;
  if (values.empty() || buckets == 0) return out;
  buckets = std::min(buckets, values.size());
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t lo = b * values.size() / buckets, hi = (b + 1) * values.size() / buckets;
    double s = 0;
    for (std::size_t i = lo; i < hi; ++i) s += values[i];
    out.push_back(s / double(hi - lo));
  }
  return out;
}
}  // namespace report_detail

// ------------------------------------------------------------------ Stage 1

/// Training loss, time and test NLL/PPL per subset size (Tables 2 and 3 in
/// one), with the minimum marked and the overfitting flags. `base_nll` is the
/// untrained adapter's test NLL (the n = 0 row), NaN when unknown.
inline std::string scale_table(const ScaleAnalysis& a, double base_nll) {
  const auto fmt = report::table_number;
  std::string t =
      "| n (pairs) | seeds | train loss (last epoch) | test NLL | ± sd | test PPL | train time (s) | notes |\n"
      "|---|---|---|---|---|---|---|---|\n";
  if (std::isfinite(base_nll))
    t += "| 0 (base) | — | — | " + fmt("%.4f", base_nll) + " | — | " + fmt("%.3f", std::exp(base_nll)) +
         " | — | untrained adapter |\n";
  for (std::size_t i = 0; i < a.points.size(); ++i) {
    const ScalePoint& p = a.points[i];
    std::string notes;
    if (i == a.best) notes += "**minimum**";
    if (p.overfit_in_training) notes += std::string(notes.empty() ? "" : "; ") + "test NLL rose between epochs";
    if (p.overfit_across_scale) notes += std::string(notes.empty() ? "" : "; ") + "overfitting: NLL up, train loss down";
    const std::string nll = fmt("%.4f", p.nll_mean);
    t += "| " + std::to_string(p.n) + " | " + std::to_string(p.seeds) + " | " + fmt("%.4f", p.train_loss_mean) +
         " | " + (i == a.best ? "**" + nll + "**" : nll) + " | " + (p.seeds > 1 ? fmt("%.4f", p.nll_sd) : "—") +
         " | " + fmt("%.3f", p.ppl) + " | " + fmt("%.0f", p.seconds_mean) + " | " + notes + " |\n";
  }
  return t;
}

/// Every run, one row each (stage1/runs.csv).
inline std::string scale_runs_csv(const std::vector<ScaleRun>& runs) {
  std::string t = "n,seed,steps,train_loss_last_epoch,test_nll,test_ppl,seconds\n";
  char b[256];
  for (const ScaleRun& r : runs) {
    std::snprintf(b, sizeof b, "%lld,%lld,%lld,%.6f,%.6f,%.4f,%.1f\n", (long long)r.n, (long long)r.seed,
                  (long long)r.steps, r.train_loss(), r.test_nll, std::exp(r.test_nll), r.seconds);
    t += b;
  }
  return t;
}

/// The U-curve: test NLL and PPL against n (± the seed spread), n = 0 first
/// when the base's NLL is known.
inline std::string u_curve_svg(const ScaleAnalysis& a, double base_nll) {
  report::LineChart nll, ppl;
  nll.title = "Test NLL by training-set size (mean over seeds, ± sd)";
  nll.y_label = "answer NLL (nats/token)";
  ppl.title = "Test perplexity by training-set size";
  ppl.y_label = "PPL";
  nll.series = {"test NLL"};
  ppl.series = {"test PPL"};
  nll.values.resize(1);
  nll.spread.resize(1);
  ppl.values.resize(1);
  if (std::isfinite(base_nll)) {
    nll.x_labels.push_back("0 (base)");
    ppl.x_labels.push_back("0 (base)");
    nll.values[0].push_back(base_nll);
    nll.spread[0].push_back(0);
    ppl.values[0].push_back(std::exp(base_nll));
  }
  for (const ScalePoint& p : a.points) {
    const std::string x = "n=" + std::to_string(p.n);
    nll.x_labels.push_back(x);
    ppl.x_labels.push_back(x);
    nll.values[0].push_back(p.nll_mean);
    nll.spread[0].push_back(p.nll_sd);
    ppl.values[0].push_back(p.ppl);
  }
  return report::stack_charts({report::render_line_chart(nll), report::render_line_chart(ppl)});
}

/// Training-loss curves of every run over the course of training (x: share of
/// its steps done, in 20 buckets, so runs of different lengths overlay).
inline std::string loss_curves_svg(const std::vector<ScaleRun>& runs) {
  constexpr std::size_t kBuckets = 20;
  report::LineChart c;
  c.title = "Training loss over training (bucket means), one line per run";
  c.y_label = "train loss (nats/token)";
  for (std::size_t b = 0; b < kBuckets; ++b) c.x_labels.push_back(std::to_string((b + 1) * 100 / kBuckets) + "%");
  for (const ScaleRun& r : runs) {
    c.series.push_back("n=" + std::to_string(r.n) + " seed " + std::to_string(r.seed));
    std::vector<double> m = report_detail::bucket_means(r.step_loss, kBuckets);
    // Short runs (fewer steps than buckets): repeat each value over its span.
    std::vector<double> line(kBuckets, NAN);
    for (std::size_t b = 0; b < kBuckets && !m.empty(); ++b) line[b] = m[b * m.size() / kBuckets];
    c.values.push_back(std::move(line));
  }
  return report::render_line_chart(c);
}

// ------------------------------------------------------------------ Stage 2

/// One base model's training and test NLL (beside the judge's table).
struct ModelRow {
  std::string label;
  bool tuned = true;          // false: the untuned base, the reference row
  double test_nll = NAN;
  double train_loss = NAN;    // last epoch
  double train_seconds = NAN;
  double start_nll = NAN;     // test NLL before training: the base as the adapter sees it (e.g. NF4)
};

inline std::string model_table(const std::vector<ModelRow>& rows) {
  const auto fmt = report::table_number;
  std::string t =
      "| model | fine-tuned | train loss (last epoch) | train time (s) | test NLL before training | test NLL | test PPL "
      "|\n|---|---|---|---|---|---|---|\n";
  for (const ModelRow& r : rows)
    t += "| " + r.label + " | " + (r.tuned ? "yes" : "no (base)") + " | " + fmt("%.4f", r.train_loss) + " | " +
         fmt("%.0f", r.train_seconds) + " | " + fmt("%.4f", r.start_nll) + " | " + fmt("%.4f", r.test_nll) + " | " +
         fmt("%.3f", std::exp(r.test_nll)) + " |\n";
  return t;
}

// ------------------------------------------------------------------ Stage 3

/// One model in one format.
struct FormatRow {
  std::string model, format;    // format: f16, q8_0, q4_k_m
  std::uint64_t bytes = 0;      // file size
  double test_nll = NAN;
  judge::ScoreSummary score;
  std::vector<std::string> question_ids;
  std::vector<double> question_nll;               // per test question, same order as question_ids
  std::vector<std::optional<int>> question_score;
};

namespace report_detail {
inline const FormatRow* reference_of(const std::vector<FormatRow>& rows, const FormatRow& r) {
  for (const FormatRow& f : rows)
    if (f.model == r.model && f.format == "f16") return &f;
  return nullptr;
}
}  // namespace report_detail

/// The paper's Table 5 in form: per model and format, the score and its
/// change against F16, s/Q and the speed-up over F16, the file size (and its
/// share of F16's), and the test NLL.
inline std::string quant_table(const std::vector<FormatRow>& rows) {
  const auto fmt = report::table_number;
  std::string t =
      "| model | format | avg score | Δ vs F16 | perfect (3) | s/Q | speed-up | size (MiB) | size vs F16 | test NLL | "
      "test PPL | avg length |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const FormatRow& r : rows) {
    const FormatRow* ref = report_detail::reference_of(rows, r);
    const double mib = double(r.bytes) / (1024.0 * 1024.0);
    std::string delta = "—", speed = "—", size = "—";
    if (ref != nullptr && ref != &r) {
      delta = fmt("%+.2f", r.score.mean_score - ref->score.mean_score);
      if (r.score.seconds_per_question > 0)
        speed = fmt("%.2fx", ref->score.seconds_per_question / r.score.seconds_per_question);
      if (ref->bytes > 0) size = fmt("%.0f%%", 100.0 * double(r.bytes) / double(ref->bytes));
    }
    t += "| " + r.model + " | " + r.format + " | " + fmt("%.2f", r.score.mean_score) + " | " + delta + " | " +
         fmt("%.0f%%", 100.0 * r.score.perfect_rate) + " | " + fmt("%.2f", r.score.seconds_per_question) + " | " +
         speed + " | " + fmt("%.1f", mib) + " | " + size + " | " + fmt("%.4f", r.test_nll) + " | " +
         fmt("%.3f", std::exp(r.test_nll)) + " | " + fmt("%.0f", r.score.mean_chars) + " |\n";
  }
  return t;
}

inline std::string quant_csv(const std::vector<FormatRow>& rows) {
  std::string t = "model,format,bytes,test_nll,mean_score,perfect_rate,seconds_per_question,mean_chars\n";
  char b[512];
  for (const FormatRow& r : rows) {
    std::snprintf(b, sizeof b, ",%llu,%.6f,%.4f,%.4f,%.4f,%.1f\n", (unsigned long long)r.bytes, r.test_nll,
                  r.score.mean_score, r.score.perfect_rate, r.score.seconds_per_question, r.score.mean_chars);
    t += r.model + "," + r.format + b;
  }
  return t;
}

/// F16 vs Q8_0 vs Q4_K_M side by side: score, seconds per question, size.
inline std::string formats_svg(const std::vector<FormatRow>& rows) {
  std::vector<std::string> models, formats;
  auto index = [](std::vector<std::string>& v, const std::string& s) {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i] == s) return i;
    v.push_back(s);
    return v.size() - 1;
  };
  for (const FormatRow& r : rows) index(models, r.model), index(formats, r.format);
  auto chart = [&](const std::string& title, const std::string& y, auto value) {
    report::BarChart c;
    c.title = title;
    c.y_label = y;
    c.groups = formats;
    c.series = models;
    c.values.assign(models.size(), std::vector<double>(formats.size(), NAN));
    for (const FormatRow& r : rows) c.values[index(models, r.model)][index(formats, r.format)] = value(r);
    return report::render_bar_chart(c);
  };
  return report::stack_charts({
      chart("Average judge score by format", "score (0-3)", [](const FormatRow& r) { return r.score.mean_score; }),
      chart("Seconds per question by format", "s/Q", [](const FormatRow& r) { return r.score.seconds_per_question; }),
      chart("File size by format", "MiB", [](const FormatRow& r) { return double(r.bytes) / (1024.0 * 1024.0); }),
      chart("Test NLL by format", "nats/token", [](const FormatRow& r) { return r.test_nll; }),
  });
}

/// Per question: each quantized format against F16 of the same model — the
/// judge's score (jittered: scores are 0–3) and the answer NLL. Points on the
/// diagonal are questions quantization did not change.
inline std::string question_scatter_svg(const std::vector<FormatRow>& rows) {
  report::ScatterChart sc, nl;
  sc.title = "Per-question judge score: quantized vs F16";
  sc.x_label = "F16 score";
  sc.y_label = "quantized score";
  sc.diagonal = true;
  sc.jitter = 0.3;
  sc.range_lo = 0;  // the rubric's scale
  sc.range_hi = 3;
  nl.title = "Per-question answer NLL: quantized vs F16";
  nl.x_label = "F16 NLL (nats/token)";
  nl.y_label = "quantized NLL";
  nl.diagonal = true;
  for (const FormatRow& r : rows) {
    const FormatRow* ref = report_detail::reference_of(rows, r);
    if (ref == nullptr || ref == &r) continue;
    const std::string name = r.model + " " + r.format;
    std::map<std::string, std::size_t> at;
    for (std::size_t i = 0; i < ref->question_ids.size(); ++i) at[ref->question_ids[i]] = i;
    std::vector<double> sx, sy, nx, ny;
    std::vector<std::string> sl, nlab;
    for (std::size_t i = 0; i < r.question_ids.size(); ++i) {
      auto it = at.find(r.question_ids[i]);
      if (it == at.end()) continue;
      const std::size_t j = it->second;
      if (i < r.question_score.size() && j < ref->question_score.size() && r.question_score[i] &&
          ref->question_score[j]) {
        sx.push_back(*ref->question_score[j]);
        sy.push_back(*r.question_score[i]);
        sl.push_back(r.question_ids[i]);
      }
      if (i < r.question_nll.size() && j < ref->question_nll.size()) {
        nx.push_back(ref->question_nll[j]);
        ny.push_back(r.question_nll[i]);
        nlab.push_back(r.question_ids[i]);
      }
    }
    sc.series.push_back(name), sc.x.push_back(sx), sc.y.push_back(sy), sc.labels.push_back(sl);
    nl.series.push_back(name), nl.x.push_back(nx), nl.y.push_back(ny), nl.labels.push_back(nlab);
  }
  return report::stack_charts({report::render_scatter_chart(sc), report::render_scatter_chart(nl)});
}

}  // namespace qlora::pipeline
