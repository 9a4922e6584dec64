// qlora/judge/score_summary.hpp — judged answers -> the paper's comparison rows.
//
// Per model (or per quantization format): average score, perfect-score rate
// (share of 3s), the 0–3 distribution, average answer length in characters,
// seconds per question, and the average per test-set category. Tables come
// out as markdown and CSV, the plots as SVG: mean-score bars, the stacked 0–3
// distribution, and a category x model heatmap. Every table names the judge
// that produced the scores (an LLM judge, or the offline scorer's label), so
// a reader can never mistake one for the other. Answers the judge could not
// score are counted apart (n_unscored), not as zeros.
#pragma once

#include <array>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/eval/answer_set.hpp"
#include "qlora/report/svg_plot.hpp"

namespace qlora::judge {

struct ScoreSummary {
  std::string label;                  // model or format name
  std::size_t n = 0;                  // answers
  std::size_t n_unscored = 0;         // the judge gave no parseable score
  double mean_score = 0.0;            // over scored answers
  double perfect_rate = 0.0;          // share of 3s among scored answers
  std::array<std::size_t, 4> distribution{};  // count of 0, 1, 2, 3
  double mean_chars = 0.0;            // "Avg Length"
  double seconds_per_question = 0.0;  // "s/Q"
  std::map<std::string, double> category_mean;  // category -> mean score
};

inline ScoreSummary summarize(const std::string& label, const std::vector<eval::AnswerRecord>& answers,
                              const std::vector<std::optional<int>>& scores) {
  ScoreSummary s;
  s.label = label;
  s.n = answers.size();
  std::map<std::string, std::pair<double, std::size_t>> cat;
  double total = 0.0, chars = 0.0, seconds = 0.0;
  std::size_t scored = 0;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    chars += double(answers[i].chars);
    seconds += answers[i].seconds;
    const std::optional<int> sc = i < scores.size() ? scores[i] : std::nullopt;
    if (!sc || *sc < 0 || *sc > 3) {
      ++s.n_unscored;
      continue;
    }
    ++scored;
    total += *sc;
    ++s.distribution[std::size_t(*sc)];
    auto& c = cat[answers[i].category.empty() ? "(none)" : answers[i].category];
    c.first += *sc;
    ++c.second;
  }
  if (scored) {
    s.mean_score = total / double(scored);
    s.perfect_rate = double(s.distribution[3]) / double(scored);
  }
  if (s.n) {
    s.mean_chars = chars / double(s.n);
    s.seconds_per_question = seconds / double(s.n);
  }
  for (const auto& [k, v] : cat) s.category_mean[k] = v.first / double(v.second);
  return s;
}

/// The comparison table (the paper's Table 3/5 in form).
inline std::string markdown_table(const std::vector<ScoreSummary>& rows, std::string_view judge_label) {
  const auto fmt = report::table_number;
  std::string t = "Scores by: " + std::string(judge_label) + "\n\n";
  t += "| model | avg score | perfect (3) | 0 | 1 | 2 | 3 | unscored | avg length (chars) | s/Q |\n";
  t += "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const ScoreSummary& r : rows) {
    t += "| " + r.label + " | " + fmt("%.2f", r.mean_score) + " | " + fmt("%.0f%%", 100.0 * r.perfect_rate);
    for (std::size_t k = 0; k < 4; ++k) t += " | " + std::to_string(r.distribution[k]);
    t += " | " + std::to_string(r.n_unscored) + " | " + fmt("%.0f", r.mean_chars) + " | " +
         fmt("%.2f", r.seconds_per_question) + " |\n";
  }
  return t;
}

/// Per-category mean scores: one row per category, one column per model.
inline std::string category_table(const std::vector<ScoreSummary>& rows) {
  const auto fmt = report::table_number;
  std::map<std::string, bool> cats;
  for (const auto& r : rows)
    for (const auto& [c, v] : r.category_mean) cats[c] = true;
  std::string t = "| category |";
  for (const auto& r : rows) t += " " + r.label + " |";
  t += "\n|---|";
  for (std::size_t i = 0; i < rows.size(); ++i) t += "---|";
  t += "\n";
  for (const auto& [c, unused] : cats) {
    t += "| " + c + " |";
    for (const auto& r : rows) {
      auto it = r.category_mean.find(c);
      t += " " + (it == r.category_mean.end() ? std::string("—") : fmt("%.2f", it->second)) + " |";
    }
    t += "\n";
  }
  return t;
}

inline std::string csv_table(const std::vector<ScoreSummary>& rows) {
  const auto fmt = report::table_number;
  std::string t = "model,n,unscored,mean_score,perfect_rate,n0,n1,n2,n3,mean_chars,seconds_per_question\n";
  for (const ScoreSummary& r : rows) {
    t += r.label + "," + std::to_string(r.n) + "," + std::to_string(r.n_unscored) + "," + fmt("%.4f", r.mean_score) +
         "," + fmt("%.4f", r.perfect_rate);
    for (std::size_t k = 0; k < 4; ++k) t += "," + std::to_string(r.distribution[k]);
    t += "," + fmt("%.1f", r.mean_chars) + "," + fmt("%.4f", r.seconds_per_question) + "\n";
  }
  return t;
}

/// scores.svg (mean score per model), distribution.svg (stacked 0–3 shares),
/// categories.svg (category x model heatmap) in `dir`.
inline Status write_score_plots(const std::string& dir, const std::vector<ScoreSummary>& rows,
                                std::string_view judge_label) {
  report::BarChart mean;
  mean.title = "Average score (" + std::string(judge_label) + ")";
  mean.y_label = "score (0-3)";
  mean.series = {"average score"};
  mean.values.resize(1);
  report::BarChart dist;
  dist.title = "Score distribution";
  dist.y_label = "share of answers";
  dist.series = {"0", "1", "2", "3"};
  dist.values.assign(4, {});
  dist.stacked = true;
  for (const ScoreSummary& r : rows) {
    mean.groups.push_back(r.label);
    dist.groups.push_back(r.label);
    mean.values[0].push_back(r.mean_score);
    const std::size_t scored = r.n - r.n_unscored;
    for (std::size_t k = 0; k < 4; ++k)
      dist.values[k].push_back(scored ? double(r.distribution[k]) / double(scored) : 0.0);
  }
  report::Heatmap heat;
  heat.title = "Average score by category";
  std::map<std::string, bool> cats;
  for (const auto& r : rows)
    for (const auto& [c, v] : r.category_mean) cats[c] = true;
  for (const auto& r : rows) heat.col_labels.push_back(r.label);
  for (const auto& [c, unused] : cats) {
    heat.row_labels.push_back(c);
    std::vector<double> line;
    for (const auto& r : rows) {
      auto it = r.category_mean.find(c);
      line.push_back(it == r.category_mean.end() ? NAN : it->second);
    }
    heat.values.push_back(std::move(line));
  }
  QLORA_TRY(report::write_text_file(dir + "/scores.svg", report::render_bar_chart(mean)));
  QLORA_TRY(report::write_text_file(dir + "/distribution.svg", report::render_bar_chart(dist)));
  return report::write_text_file(dir + "/categories.svg",
                                 report::render_heatmaps({heat}, "average score", /*log_scale=*/false));
}

}  // namespace qlora::judge
