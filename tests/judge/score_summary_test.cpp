// judge/score_summary.hpp: the comparison rows from judged answers, by hand.
#include "qlora/judge/score_summary.hpp"

#include "qlora/judge/offline_scorer.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "temp_dir.hpp"

namespace qlora::judge {
namespace {

std::vector<eval::AnswerRecord> answers() {
  std::vector<eval::AnswerRecord> a(4);
  const char* cats[] = {"Survey", "Survey", "Design", "Design"};
  for (std::size_t i = 0; i < 4; ++i) {
    a[i].id = "q" + std::to_string(i);
    a[i].category = cats[i];
    a[i].chars = 10 * (i + 1);
    a[i].seconds = 0.5 * double(i + 1);
  }
  return a;
}

TEST(ScoreSummary, RowsOfThePapersTable) {
  const ScoreSummary s = summarize("m", answers(), {3, 2, std::nullopt, 3});
  EXPECT_EQ(s.n, 4u);
  EXPECT_EQ(s.n_unscored, 1u);  // not counted as a zero
  EXPECT_DOUBLE_EQ(s.mean_score, 8.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.perfect_rate, 2.0 / 3.0);
  EXPECT_EQ(s.distribution[3], 2u);
  EXPECT_EQ(s.distribution[2], 1u);
  EXPECT_DOUBLE_EQ(s.mean_chars, 25.0);
  EXPECT_DOUBLE_EQ(s.seconds_per_question, 1.25);
  EXPECT_DOUBLE_EQ(s.category_mean.at("Survey"), 2.5);
  EXPECT_DOUBLE_EQ(s.category_mean.at("Design"), 3.0);
}

TEST(ScoreSummary, TablesNameTheJudgeAndPlotsAreWritten) {
  const std::vector<ScoreSummary> rows{summarize("base", answers(), {0, 1, 0, 2}),
                                       summarize("tuned", answers(), {3, 2, 3, 3})};
  const std::string md = markdown_table(rows, kOfflineLabel);
  EXPECT_NE(md.find(std::string(kOfflineLabel)), std::string::npos);
  EXPECT_NE(md.find("| tuned | 2.75 | 75% | 0 | 0 | 1 | 3 | 0 | 25 | 1.25 |"), std::string::npos) << md;
  const std::string cat = category_table(rows);
  EXPECT_NE(cat.find("| Design | 1.00 | 3.00 |"), std::string::npos) << cat;
  EXPECT_NE(csv_table(rows).find("base,4,0,0.7500,0.0000,2,1,1,0,25.0,1.2500"), std::string::npos) << csv_table(rows);
  test::TempDir t("score_summary", "plots");
  ASSERT_TRUE(write_score_plots(t.dir.string(), rows, kOfflineLabel).is_ok());
  for (const char* f : {"scores.svg", "distribution.svg", "categories.svg"})
    EXPECT_GT(std::filesystem::file_size(t.dir / f), 500u) << f;
}

}  // namespace
}  // namespace qlora::judge
