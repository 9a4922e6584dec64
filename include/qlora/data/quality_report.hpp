// qlora/data/quality_report.hpp — the paper's Figures 2–4 for a set of nested
// subsets, as tables (Markdown, CSV) and SVG plots:
//   Fig. 2  relation-type distribution per subset (relations.svg),
//   Fig. 3  answer length, mean ± standard deviation per subset (lengths.svg),
//   Fig. 4  category coverage per subset (categories.svg),
// plus the coefficient of variation (CV) of each relation's share across the
// subsets — the paper's stability claim is CV < 3%.
//
// Conventions: lengths are UTF-8 code points (what "characters" means for
// Japanese text); standard deviations and CVs are population statistics
// (divide by n, numpy's default), since the subsets are the whole population
// being described, not a sample of one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "qlora/data/knowledge_graph.hpp"
#include "qlora/data/qa_generate.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/data/rebalance.hpp"
#include "qlora/report/svg_plot.hpp"

namespace qlora::data {

/// Statistics of one set of QA pairs (the pool or one subset).
struct SubsetStats {
  std::string name;                                  // "pool", "subset_merged_1000", ...
  std::size_t size = 0;
  std::map<std::string, std::size_t> relations, categories;
  double answer_mean = 0, answer_std = 0;            // code points
  std::size_t answer_min = 0, answer_max = 0;
  double question_mean = 0, question_std = 0;

  double relation_share(const std::string& r) const {
    auto it = relations.find(r);
    return size && it != relations.end() ? double(it->second) / double(size) : 0.0;
  }
  double category_share(const std::string& c) const {
    auto it = categories.find(c);
    return size && it != categories.end() ? double(it->second) / double(size) : 0.0;
  }
};

/// Population mean and standard deviation.
inline void mean_std(const std::vector<double>& v, double& mean, double& sd) {
  mean = sd = 0;
  if (v.empty()) return;
  for (double x : v) mean += x;
  mean /= double(v.size());
  for (double x : v) sd += (x - mean) * (x - mean);
  sd = std::sqrt(sd / double(v.size()));
}

/// Coefficient of variation: population standard deviation / mean (0 when the mean is 0).
inline double coefficient_of_variation(const std::vector<double>& v) {
  double m, sd;
  mean_std(v, m, sd);
  return m != 0 ? sd / m : 0.0;
}

/// Statistics of pool[indices[0..n)] (or of the whole pool when indices is null).
inline SubsetStats subset_stats(std::string name, const std::vector<QaPair>& pool,
                                const std::vector<std::size_t>* indices = nullptr, std::size_t n = 0) {
  SubsetStats s;
  s.name = std::move(name);
  s.size = indices ? std::min(n, indices->size()) : pool.size();
  std::vector<double> alen, qlen;
  alen.reserve(s.size);
  qlen.reserve(s.size);
  for (std::size_t i = 0; i < s.size; ++i) {
    const QaPair& p = pool[indices ? (*indices)[i] : i];
    s.relations[p.relation]++;
    s.categories[p.category]++;
    alen.push_back(double(utf8_length(p.answer)));
    qlen.push_back(double(utf8_length(p.question)));
  }
  mean_std(alen, s.answer_mean, s.answer_std);
  mean_std(qlen, s.question_mean, s.question_std);
  if (!alen.empty()) {
    s.answer_min = std::size_t(*std::min_element(alen.begin(), alen.end()));
    s.answer_max = std::size_t(*std::max_element(alen.begin(), alen.end()));
  }
  return s;
}

struct QualityReport {
  SubsetStats pool;                       // the rebalanced pool the subsets are cut from
  std::vector<SubsetStats> subsets;       // ascending size
  std::vector<std::string> relations;     // row order: the paper's 11 first, then any others
  std::vector<std::string> categories;    // the eight in the paper's order, then any others
  std::map<std::string, double> cv;       // relation → CV of its share across subsets
  double max_cv = 0;
  double cv_target = 0.03;

  bool cv_ok() const { return max_cv < cv_target; }

  /// Figures 2–4 as Markdown tables.
  std::string markdown() const {
    std::string m = "# Dataset quality report\n\n";
    auto header = [&](const char* first, bool with_cv) {
      std::string h = std::string("| ") + first + " | " + pool.name;
      std::string sep = "|---|---:";
      for (const auto& s : subsets) h += " | " + std::to_string(s.size), sep += "|---:";
      if (with_cv) h += " | CV", sep += "|---:";
      return h + " |\n" + sep + "|\n";
    };
    m += "## Relation distribution (share of each subset; Figure 2)\n\n" + header("relation", true);
    for (const auto& r : relations) {
      m += "| " + r + " | " + pct(pool.relation_share(r)) + " (" + count(pool.relations, r) + ")";
      for (const auto& s : subsets) m += " | " + pct(s.relation_share(r)) + " (" + count(s.relations, r) + ")";
      m += " | " + pct(cv.count(r) ? cv.at(r) : 0.0) + " |\n";
    }
    m += "\nLargest CV across subsets: " + pct(max_cv) + " (target < " + pct(cv_target) + "): " +
         (cv_ok() ? "met" : "NOT met") + ".\n\n";
    m += "## Answer length in characters (UTF-8 code points; Figure 3)\n\n"
         "| set | pairs | answer mean | answer sd | min | max | question mean | question sd |\n"
         "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    std::vector<const SubsetStats*> all{&pool};
    for (const auto& s : subsets) all.push_back(&s);
    for (const SubsetStats* s : all)
      m += "| " + s->name + " | " + std::to_string(s->size) + " | " + num(s->answer_mean) + " | " + num(s->answer_std) +
           " | " + std::to_string(s->answer_min) + " | " + std::to_string(s->answer_max) + " | " + num(s->question_mean) +
           " | " + num(s->question_std) + " |\n";
    m += "\n## Category coverage (share of each subset; Figure 4)\n\n" + header("category", false);
    for (const auto& c : categories) {
      m += "| " + c + " | " + pct(pool.category_share(c)) + " (" + count(pool.categories, c) + ")";
      for (const auto& s : subsets) m += " | " + pct(s.category_share(c)) + " (" + count(s.categories, c) + ")";
      m += " |\n";
    }
    return m;
  }

  /// Everything as one tidy CSV: table,set,key,value.
  std::string csv() const {
    std::string c = "table,set,key,value\n";
    std::vector<const SubsetStats*> all{&pool};
    for (const auto& s : subsets) all.push_back(&s);
    for (const SubsetStats* s : all) {
      for (const auto& r : relations) {
        c += "relation_count," + s->name + "," + r + "," + count(s->relations, r) + "\n";
        c += "relation_share," + s->name + "," + r + "," + num(s->relation_share(r), "%.6f") + "\n";
      }
      for (const auto& k : categories) c += "category_count," + s->name + "," + k + "," + count(s->categories, k) + "\n";
      c += "answer_length," + s->name + ",mean," + num(s->answer_mean, "%.3f") + "\n";
      c += "answer_length," + s->name + ",sd," + num(s->answer_std, "%.3f") + "\n";
      c += "answer_length," + s->name + ",min," + std::to_string(s->answer_min) + "\n";
      c += "answer_length," + s->name + ",max," + std::to_string(s->answer_max) + "\n";
      c += "question_length," + s->name + ",mean," + num(s->question_mean, "%.3f") + "\n";
    }
    for (const auto& r : relations) c += "relation_share_cv,subsets," + r + "," + num(cv.count(r) ? cv.at(r) : 0.0, "%.6f") + "\n";
    return c;
  }

  /// Figure 2: grouped bars, one group per relation, one bar per subset (share %).
  std::string relations_svg() const {
    report::BarChart b;
    b.title = "Relation-type distribution per subset";
    b.y_label = "share of subset, %";
    b.groups = relations;
    for (const auto& s : subsets) {
      b.series.push_back(s.name);
      b.values.emplace_back();
      for (const auto& r : relations) b.values.back().push_back(100.0 * s.relation_share(r));
    }
    return report::render_bar_chart(b);
  }
  /// Figure 3: answer (and question) length, mean ± sd per subset.
  std::string lengths_svg() const {
    report::LineChart l;
    l.title = "Length per subset (mean ± sd, characters)";
    l.y_label = "UTF-8 code points";
    l.series = {"answer", "question"};
    l.values.resize(2);
    l.spread.resize(2);
    for (const auto& s : subsets) {
      l.x_labels.push_back(s.name);
      l.values[0].push_back(s.answer_mean);
      l.spread[0].push_back(s.answer_std);
      l.values[1].push_back(s.question_mean);
      l.spread[1].push_back(s.question_std);
    }
    return report::render_line_chart(l);
  }
  /// Figure 4: stacked bars of category shares, one bar per subset.
  std::string categories_svg() const {
    report::BarChart b;
    b.title = "Category coverage per subset";
    b.y_label = "share of subset, %";
    b.stacked = true;
    for (const auto& s : subsets) b.groups.push_back(s.name);
    for (const auto& c : categories) {
      b.series.push_back(c);
      b.values.emplace_back();
      for (const auto& s : subsets) b.values.back().push_back(100.0 * s.category_share(c));
    }
    return report::render_bar_chart(b);
  }

 private:
  static std::string pct(double v) { return num(100.0 * v, "%.2f") + "%"; }
  static std::string num(double v, const char* f = "%.1f") {
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
  }
  static std::string count(const std::map<std::string, std::size_t>& m, const std::string& k) {
    auto it = m.find(k);
    return std::to_string(it == m.end() ? 0 : it->second);
  }
};

/// The report for a pool and its nested subsets.
inline QualityReport make_quality_report(const std::vector<QaPair>& pool, const NestedSubsets& ns,
                                         double cv_target = 0.03) {
  QualityReport q;
  q.cv_target = cv_target;
  q.pool = subset_stats("pool", pool);
  for (std::size_t n : ns.sizes) {
    std::string name = NestedSubsets::file_name(n);
    name = name.substr(0, name.size() - 6);  // drop ".jsonl"
    q.subsets.push_back(subset_stats(std::move(name), pool, &ns.order, n));
  }
  for (const char* r : kRelationTypes)
    if (q.pool.relations.count(r)) q.relations.push_back(r);
  for (const auto& [r, n] : q.pool.relations)
    if (std::find(q.relations.begin(), q.relations.end(), r) == q.relations.end()) q.relations.push_back(r);
  for (Category c : kCategories) q.categories.push_back(category_name(c));
  for (const auto& [c, n] : q.pool.categories)
    if (std::find(q.categories.begin(), q.categories.end(), c) == q.categories.end()) q.categories.push_back(c);
  for (const auto& r : q.relations) {
    std::vector<double> shares;
    for (const auto& s : q.subsets) shares.push_back(s.relation_share(r));
    q.cv[r] = coefficient_of_variation(shares);
    q.max_cv = std::max(q.max_cv, q.cv[r]);
  }
  return q;
}

}  // namespace qlora::data
