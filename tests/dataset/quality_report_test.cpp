// Pins data/quality_report.hpp (and the bar/line charts it adds to
// report/svg_plot.hpp): CV and length statistics on hand-checkable numbers,
// tables that name every relation and category, and well-formed SVG.
#include "qlora/data/quality_report.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace {

using namespace qlora::data;

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

QaPair pair(std::string rel, std::string cat, std::string answer) {
  QaPair p;
  p.id = rel + answer;
  p.question = "問？";
  p.answer = std::move(answer);
  p.relation = std::move(rel);
  p.category = std::move(cat);
  return p;
}

TEST(QualityReport, CoefficientOfVariationByHand) {
  // shares 0.1, 0.2, 0.3: mean 0.2, population sd sqrt(0.02/3) = 0.08165, CV 0.40825.
  EXPECT_NEAR(coefficient_of_variation({0.1, 0.2, 0.3}), 0.408248, 1e-6);
  EXPECT_DOUBLE_EQ(coefficient_of_variation({0.25, 0.25, 0.25}), 0.0);
  EXPECT_DOUBLE_EQ(coefficient_of_variation({0.0, 0.0}), 0.0);
  EXPECT_DOUBLE_EQ(coefficient_of_variation({}), 0.0);
}

TEST(QualityReport, LengthsAreCodePointsWithPopulationSd) {
  // Answers of 2, 4, 4, 6 characters (Japanese, 3 bytes each): mean 4, sd sqrt(2).
  std::vector<QaPair> pool = {pair("HAS_ITEM", "Survey", "砂防"), pair("HAS_ITEM", "Survey", "砂防堰堤"),
                              pair("MITIGATES", "Hazard", "土石流対"), pair("MITIGATES", "Hazard", "土石流対策工")};
  const SubsetStats s = subset_stats("pool", pool);
  EXPECT_EQ(s.size, 4u);
  EXPECT_DOUBLE_EQ(s.answer_mean, 4.0);
  EXPECT_NEAR(s.answer_std, std::sqrt(2.0), 1e-12);
  EXPECT_EQ(s.answer_min, 2u);
  EXPECT_EQ(s.answer_max, 6u);
  EXPECT_DOUBLE_EQ(s.relation_share("MITIGATES"), 0.5);
  EXPECT_DOUBLE_EQ(s.category_share("Hazard"), 0.5);
}

TEST(QualityReport, TablesAndPlotsForNestedSubsets) {
  // 6 HAS_CHAPTER + 3 MITIGATES + 1 PRECEDES; subsets of 5 and 10.
  std::vector<QaPair> pool;
  for (int i = 0; i < 6; ++i) pool.push_back(pair("HAS_CHAPTER", "Survey", "答" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) pool.push_back(pair("MITIGATES", "Comparative/Cross-Cutting", "答" + std::to_string(i)));
  pool.push_back(pair("PRECEDES", "Planning", "答"));
  auto ns = nested_subsets(pool, {5, 10}, 3);
  ASSERT_TRUE(ns.is_ok());
  const QualityReport q = make_quality_report(pool, *ns);
  ASSERT_EQ(q.subsets.size(), 2u);
  EXPECT_EQ(q.subsets[0].name, "subset_merged_5");
  EXPECT_EQ(q.relations, (std::vector<std::string>{"HAS_CHAPTER", "MITIGATES", "PRECEDES"}));  // paper order
  EXPECT_EQ(q.categories.size(), 8u);
  // Stratified prefix of 5 from 6:3:1 holds 3 HAS_CHAPTER (Webster rounding of 3.0).
  EXPECT_EQ(q.subsets[0].relations.at("HAS_CHAPTER"), 3u);
  // CV of HAS_CHAPTER's share: shares 0.6 and 0.6 → 0.
  EXPECT_DOUBLE_EQ(q.cv.at("HAS_CHAPTER"), 0.0);
  const std::vector<double> mit = {q.subsets[0].relation_share("MITIGATES"), q.subsets[1].relation_share("MITIGATES")};
  EXPECT_DOUBLE_EQ(q.cv.at("MITIGATES"), coefficient_of_variation(mit));
  EXPECT_GE(q.max_cv, q.cv.at("MITIGATES"));

  const std::string md = q.markdown();
  EXPECT_NE(md.find("## Relation distribution"), std::string::npos);
  EXPECT_NE(md.find("| HAS_CHAPTER | 60.00% (6) | 60.00% (3) | 60.00% (6) | 0.00% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Maintenance-Sabo |"), std::string::npos);  // uncovered categories still listed
  const std::string csv = q.csv();
  EXPECT_EQ(csv.rfind("table,set,key,value\n", 0), 0u);
  EXPECT_NE(csv.find("relation_count,subset_merged_10,HAS_CHAPTER,6\n"), std::string::npos);
  EXPECT_NE(csv.find("relation_share_cv,subsets,HAS_CHAPTER,0.000000\n"), std::string::npos);

  const std::string rel = q.relations_svg(), len = q.lengths_svg(), cat = q.categories_svg();
  for (const std::string* svg : {&rel, &len, &cat}) {
    EXPECT_EQ(svg->rfind("<svg", 0), 0u);
    EXPECT_NE(svg->find("</svg>"), std::string::npos);
  }
  EXPECT_EQ(count(rel, "<title>"), 3u * 2u);   // one bar per relation and subset
  EXPECT_EQ(count(cat, "<title>"), 8u * 2u);   // one stacked segment per category and subset
  EXPECT_EQ(count(len, "<circle"), 2u * 2u);   // answer and question, per subset
  EXPECT_NE(cat.find("Comparative/Cross-Cutting"), std::string::npos);
}

TEST(SvgCharts, NiceAxisAndEscaping) {
  double top, step;
  qlora::report::detail::nice_axis(23.0, top, step);
  EXPECT_DOUBLE_EQ(step, 5.0);
  EXPECT_DOUBLE_EQ(top, 25.0);
  qlora::report::BarChart b{"a<b", "y", {"g&1"}, {"s"}, {{1.0}}, {{0.5}}, false};
  const std::string svg = qlora::report::render_bar_chart(b);
  EXPECT_NE(svg.find("a&lt;b"), std::string::npos);
  EXPECT_NE(svg.find("g&amp;1"), std::string::npos);
  // bar + error 1.5 → axis 0..1.5 in steps of 0.5: 4 grid lines, 2 axes, 1 whisker.
  EXPECT_EQ(count(svg, "<line x1=\""), 4u + 2u + 1u);
}

}  // namespace
