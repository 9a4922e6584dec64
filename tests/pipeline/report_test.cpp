// pipeline/report.hpp: the paper's tables in form — scale table with the
// minimum and flags, model table, quantization table with deltas, speed-up
// and size against F16 — and the plots render every point.
#include "qlora/pipeline/report.hpp"

#include <gtest/gtest.h>

namespace qlora::pipeline {
namespace {

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

std::vector<ScaleRun> sweep() {
  std::vector<ScaleRun> runs;
  for (auto [n, nll, loss] : {std::tuple{16, 2.5, 2.0}, std::tuple{32, 2.2, 1.8}, std::tuple{64, 2.3, 1.5}}) {
    ScaleRun r;
    r.n = n;
    r.seed = 42;
    r.test_nll = nll;
    r.seconds = 10.0 * n;
    r.epoch_train_loss = {loss + 0.5, loss};
    r.epoch_test_nll = {nll, nll};
    r.step_loss = {3.0, 2.5, 2.0, loss};
    runs.push_back(r);
  }
  return runs;
}

TEST(PipelineReport, ScaleTableMarksTheMinimumAndOverfitting) {
  const auto a = analyze_scale(sweep());
  const std::string t = scale_table(a, 2.72);
  EXPECT_NE(t.find("| 0 (base) | — | — | 2.7200 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| 32 | 1 | 1.8000 | **2.2000** | — | 9.025 | 320 | **minimum** |"), std::string::npos) << t;
  EXPECT_NE(t.find("| 64 | 1 | 1.5000 | 2.3000 | — | 9.974 | 640 | overfitting: NLL up, train loss down |"),
            std::string::npos)
      << t;
  const std::string csv = scale_runs_csv(sweep());
  EXPECT_EQ(csv.rfind("n,seed,steps,train_loss_last_epoch,test_nll,test_ppl,seconds\n", 0), 0u);
  EXPECT_NE(csv.find("\n32,42,0,1.800000,2.200000,9.0250,320.0\n"), std::string::npos) << csv;
  // Without the base NLL there is no n = 0 row.
  EXPECT_EQ(scale_table(a, NAN).find("(base)"), std::string::npos);
}

TEST(PipelineReport, ScalePlotsHaveEveryPointAndRun) {
  const auto runs = sweep();
  const std::string u = u_curve_svg(analyze_scale(runs), 2.72);
  EXPECT_EQ(count(u, "<circle"), 8u);  // (base + 3 sizes) x (NLL, PPL)
  EXPECT_EQ(count(u, "<svg"), 3u);     // one file, two charts
  const std::string l = loss_curves_svg(runs);
  EXPECT_NE(l.find("n=64 seed 42"), std::string::npos);
  EXPECT_EQ(count(l, "<polyline"), 3u);
}

judge::ScoreSummary summary(const std::string& label, double mean, double perfect, double spq) {
  judge::ScoreSummary s;
  s.label = label;
  s.n = 10;
  s.mean_score = mean;
  s.perfect_rate = perfect;
  s.seconds_per_question = spq;
  s.mean_chars = 120;
  return s;
}

TEST(PipelineReport, QuantTableAgainstF16) {
  std::vector<FormatRow> rows(3);
  const char* fmt[] = {"f16", "q8_0", "q4_k_m"};
  const double mean[] = {2.0, 1.95, 1.7}, spq[] = {4.0, 2.0, 1.6};
  const std::uint64_t bytes[] = {200u << 20, 100u << 20, 50u << 20};
  for (int i = 0; i < 3; ++i) {
    rows[i].model = "tuned";
    rows[i].format = fmt[i];
    rows[i].bytes = bytes[i];
    rows[i].test_nll = 1.9 + 0.01 * i;
    rows[i].score = summary("tuned " + std::string(fmt[i]), mean[i], 0.3, spq[i]);
    rows[i].question_ids = {"q1", "q2"};
    rows[i].question_nll = {1.8, 2.0 + i};
    rows[i].question_score = {3, 2 - (i == 2)};
  }
  const std::string t = quant_table(rows);
  EXPECT_NE(t.find("| tuned | f16 | 2.00 | — | 30% | 4.00 | — | 200.0 | — | 1.9000 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| tuned | q8_0 | 1.95 | -0.05 | 30% | 2.00 | 2.00x | 100.0 | 50% | 1.9100 |"), std::string::npos)
      << t;
  EXPECT_NE(t.find("| tuned | q4_k_m | 1.70 | -0.30 | 30% | 1.60 | 2.50x | 50.0 | 25% |"), std::string::npos) << t;
  EXPECT_NE(quant_csv(rows).find("tuned,q4_k_m,52428800,1.920000,1.7000"), std::string::npos);
  const std::string bars = formats_svg(rows);
  EXPECT_EQ(count(bars, "<rect x="), 4u * (3u + 1u));  // four charts: three formats and a legend entry each
  const std::string sc = question_scatter_svg(rows);
  EXPECT_NE(sc.find("tuned q4_k_m"), std::string::npos);
  EXPECT_EQ(count(sc, "<title>q"), 8u);  // 2 formats x 2 questions x (score, NLL)
}

TEST(PipelineReport, ModelTable) {
  const std::string t = model_table({{"base", false, 2.3, NAN, NAN}, {"tuned", true, 1.9, 1.5, 120, 2.7}});
  EXPECT_NE(t.find("| base | no (base) | — | — | — | 2.3000 | 9.974 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| tuned | yes | 1.5000 | 120 | 2.7000 | 1.9000 | 6.686 |"), std::string::npos) << t;
}

}  // namespace
}  // namespace qlora::pipeline
