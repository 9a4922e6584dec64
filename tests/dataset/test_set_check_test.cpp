// Pins data/test_set_check.hpp: n-gram overlap, long shared runs and exact
// (normalized) copies are reported; unrelated questions pass.
#include "qlora/data/test_set_check.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace qlora::data;

QaPair q(std::string id, std::string question) {
  QaPair p;
  p.id = std::move(id);
  p.question = std::move(question);
  p.answer = "答え";
  return p;
}
TestItem t(std::string id, std::string question) {
  TestItem x;
  x.id = std::move(id);
  x.question = std::move(question);
  return x;
}

const std::vector<QaPair> kPool = {
    q("qa-1", "砂防堰堤は土石流をどのように軽減しますか？"),
    q("qa-2", "河川整備基本方針に基づく計画高水流量の設定方法を教えてください。"),
    q("qa-3", "砂防とは"),
    q("qa-4", "ダムの定期点検ではどのような項目を確認しますか？"),
};

TEST(TestSetCheck, LongestCommonRun) {
  EXPECT_EQ(detail::longest_common_run(U"abcde", U"xbcdy"), 3u);
  EXPECT_EQ(detail::longest_common_run(U"", U"abc"), 0u);
  EXPECT_EQ(detail::longest_common_run(U"砂防堰堤", U"砂防堰堤"), 4u);
}

TEST(TestSetCheck, ReportsCopiesRunsAndShortExactMatches) {
  const std::vector<TestItem> tests = {
      t("t-copy", "砂防堰堤は、土石流をどのように軽減しますか"),                 // punctuation differs only
      t("t-run", "堤防設計の前提として、河川整備基本方針に基づく計画高水流量の設定方法が重要な理由は"),  // 23-char run, 48% of 8-grams
      t("t-short", "砂防とは？"),                                                // shorter than n, equal after normalization
      t("t-clean", "急傾斜地崩壊防止施設の点検で特に注意すべき変状は何ですか？"),
  };
  const OverlapReport r = check_test_overlap(tests, kPool);
  EXPECT_EQ(r.tests_checked, 4u);
  EXPECT_EQ(r.pool_size, 4u);
  ASSERT_EQ(r.findings.size(), 3u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.findings[0].test_id, "t-copy");
  EXPECT_EQ(r.findings[0].pool_id, "qa-1");
  EXPECT_DOUBLE_EQ(r.findings[0].fraction, 1.0);
  EXPECT_EQ(r.findings[1].test_id, "t-run");
  EXPECT_EQ(r.findings[1].pool_id, "qa-2");
  EXPECT_EQ(r.findings[1].shared_run, 23u);
  EXPECT_NEAR(r.findings[1].fraction, 16.0 / 33.0, 1e-12);  // below 0.5: caught by the run alone
  EXPECT_EQ(r.findings[2].test_id, "t-short");
  EXPECT_EQ(r.findings[2].pool_id, "qa-3");
  const std::string d = describe_overlaps(r);
  EXPECT_NE(d.find("t-run"), std::string::npos);
  EXPECT_NE(d.find("qa-2"), std::string::npos);
}

TEST(TestSetCheck, ThresholdsAreOptions) {
  const std::vector<TestItem> tests = {
      t("t-run", "堤防設計の前提として、河川整備基本方針に基づく計画高水流量の設定方法が重要な理由は")};
  OverlapOptions o;
  o.max_shared_run = 30;  // the 23-character run is now allowed, and 48% < 50%
  EXPECT_TRUE(check_test_overlap(tests, kPool, o).ok());
  o.max_fraction = 0.4;   // but 48% is more than 40%
  EXPECT_FALSE(check_test_overlap(tests, kPool, o).ok());
  const std::vector<TestItem> clean = {t("t-clean", "急傾斜地崩壊防止施設の点検で特に注意すべき変状は何ですか？")};
  const OverlapReport r = check_test_overlap(clean, kPool);
  EXPECT_TRUE(r.ok());
  EXPECT_LT(r.max_fraction_seen, 0.5);
}

}  // namespace
