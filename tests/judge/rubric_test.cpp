// judge/rubric.hpp: the prompts carry the four levels, the answer, and the
// reference only when grading is reference-guided.
#include "qlora/judge/rubric.hpp"

#include <gtest/gtest.h>

namespace qlora::judge {
namespace {

TEST(Rubric, SystemPromptStatesTheFourLevelsAndTheFormat) {
  const std::string s = rubric_system_prompt();
  for (const char* level : {"3:", "2:", "1:", "0:"}) EXPECT_NE(s.find(level), std::string::npos) << level;
  EXPECT_NE(s.find("\"score\""), std::string::npos);
  EXPECT_NE(s.find("河川砂防技術基準"), std::string::npos);
}

TEST(Rubric, ReferenceOnlyWhenGuided) {
  const std::string plain = rubric_user_prompt("質問A", "回答B", "参考C", "調査編 第2章");
  EXPECT_NE(plain.find("質問A"), std::string::npos);
  EXPECT_NE(plain.find("回答B"), std::string::npos);
  EXPECT_EQ(plain.find("参考C"), std::string::npos);
  RubricOptions guided;
  guided.reference_guided = true;
  const std::string g = rubric_user_prompt("質問A", "回答B", "参考C", "調査編 第2章", guided);
  EXPECT_NE(g.find("参考C"), std::string::npos);
  EXPECT_NE(g.find("調査編 第2章"), std::string::npos);
  EXPECT_NE(rubric_user_prompt("q", "").find("空の回答"), std::string::npos);
}

}  // namespace
}  // namespace qlora::judge
