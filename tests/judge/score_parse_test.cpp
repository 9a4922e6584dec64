// judge/score_parse.hpp: the verdict out of the forms judges actually write,
// and no verdict where there is none.
#include "qlora/judge/score_parse.hpp"

#include <gtest/gtest.h>

namespace qlora::judge {
namespace {

struct Case {
  const char* reply;
  int score;
  ScoreSource source;
};

TEST(ScoreParse, FindsTheVerdict) {
  const Case cases[] = {
      {R"({"score": 2, "reason": "正しいが根拠がない"})", 2, ScoreSource::kJson},
      {"```json\n{\n  \"reason\": \"第3章を引用\",\n  \"score\": 3\n}\n```", 3, ScoreSource::kJson},
      {R"({"score":"1"})", 1, ScoreSource::kJson},
      {"**Score: 2**", 2, ScoreSource::kLabel},
      {"Reasoning: the answer cites chapter 3 and section 2.\nFinal score: 1", 1, ScoreSource::kLabel},
      {"Rating = 0 (empty answer)", 0, ScoreSource::kLabel},
      {"評価：２", 2, ScoreSource::kLabel},
      {"回答は第3章第2節を引用しており正確です。\n評価: 3", 3, ScoreSource::kLabel},
      {"スコアは「1」です。", 1, ScoreSource::kLabel},
      {"総合評価 ３点", 3, ScoreSource::kLabel},
      {"This deserves 2/3.", 2, ScoreSource::kFraction},
      {"部分的に正しい。1 / 3", 1, ScoreSource::kFraction},
      {"根拠の引用はありませんが内容は正しいので2点とします。", 2, ScoreSource::kPoints},
      {"3", 3, ScoreSource::kBare},
      {" 0.\n", 0, ScoreSource::kBare},
      // The last verdict wins over earlier mentions.
      {"Score: 3 would need a citation. It has none, so Score: 2", 2, ScoreSource::kLabel},
  };
  for (const Case& c : cases) {
    const ParsedScore p = parse_score(c.reply);
    ASSERT_TRUE(p.score.has_value()) << c.reply;
    EXPECT_EQ(*p.score, c.score) << c.reply;
    EXPECT_EQ(p.source, c.source) << c.reply << " parsed as " << score_source_name(p.source);
  }
}

TEST(ScoreParse, NumbersThatAreNotVerdictsAreIgnored) {
  const char* none[] = {
      "",
      "The answer mentions 第3章 and 第2節 but I cannot decide.",
      "Score: 5",            // outside the rubric
      "Score: 2.5",          // not a rubric value
      "score: 13",           // part of a larger number
      "第2点目として",        // an ordinal, not points
      "1 2 3",               // several bare digits
      "評価できません",       // a label without a number
      "10/3",
  };
  for (const char* r : none) {
    const ParsedScore p = parse_score(r);
    EXPECT_FALSE(p.score.has_value()) << r << " -> " << *p.score;
    EXPECT_EQ(p.source, ScoreSource::kNone) << r;
  }
}

}  // namespace
}  // namespace qlora::judge
