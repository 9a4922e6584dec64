// Tests for qlora/train/sft_dataset.hpp: the loss mask covers exactly the
// tokens the answer-only NLL evaluator scores, truncation and skips are
// counted, and errors name the pair.
#include "qlora/train/sft_dataset.hpp"

#include <gtest/gtest.h>

#include "eval/tiny_lm.hpp"
#include "qlora/eval/nll.hpp"

namespace {

using namespace qlora;

std::vector<data::QaPair> pairs() {
  return {
      {"q1", "What is the river?", "the river is long and the water is in it", "", "", "", ""},
      {"q2", "砂防とは何ですか?", "土砂災害を防ぐための対策です。", "", "", "", ""},
      {"", "Say hi", "hi", "", "", "", "Be brief."},
  };
}

TEST(SftDataset, MaskScoresWhatTheEvaluatorScores) {
  auto m = eval_test::make_tiny_lm(21);
  auto lm = eval_test::load(m.path);
  ASSERT_TRUE(lm);
  auto ds = train::build_sft_dataset(pairs(), lm->tok, lm->tmpl);
  ASSERT_TRUE(ds.is_ok()) << ds.status().message();
  ASSERT_EQ(ds->examples.size(), 3u);
  EXPECT_EQ(ds->examples[2].id, "#2");
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& ex = ds->examples[i];
    ASSERT_EQ(ex.mask.size() + 1, ex.ids.size());
    // The evaluator's count of answer tokens for the same pair.
    lm->dec.cache().clear();
    auto nll = eval::answer_nll(lm->dec, lm->tok, lm->tmpl, pairs()[i]);
    ASSERT_TRUE(nll.is_ok());
    EXPECT_EQ(std::size_t(ex.n_scored), nll->answer_tokens);
    // The scored positions are one contiguous run ending at the end-of-turn.
    std::size_t first = 0;
    while (!ex.mask[first]) ++first;
    EXPECT_EQ(first + 1, nll->prompt_tokens);
    EXPECT_EQ(ex.ids[first + std::size_t(ex.n_scored)], lm->tok.find_token("<|im_end|>"));
  }
  EXPECT_EQ(ds->stats.truncated, 0u);
  EXPECT_EQ(ds->stats.skipped_no_answer, 0u);
}

TEST(SftDataset, TruncationIsCountedAndEmptyAnswersSkipped) {
  auto m = eval_test::make_tiny_lm(22);
  auto lm = eval_test::load(m.path);
  ASSERT_TRUE(lm);
  auto full = train::build_sft_dataset(pairs(), lm->tok, lm->tmpl);
  ASSERT_TRUE(full.is_ok());
  const auto& ex0 = full->examples[0];
  std::size_t prompt = 0;
  while (!ex0.mask[prompt]) ++prompt;
  ++prompt;  // tokens before the first answer token
  train::SftOptions opt;
  opt.max_seq_len = prompt + 3;  // 3 answer tokens survive in pair 0
  auto cut = train::build_sft_dataset(pairs(), lm->tok, lm->tmpl, opt);
  ASSERT_TRUE(cut.is_ok());
  EXPECT_EQ(cut->examples[0].ids.size(), prompt + 3);
  EXPECT_EQ(cut->examples[0].n_scored, 3);
  EXPECT_GE(cut->stats.truncated, 1u);
  // Every answer token is either still scored or counted as dropped.
  EXPECT_EQ(cut->stats.scored + cut->stats.dropped_answer_tokens, full->stats.scored);
  opt.max_seq_len = prompt;  // pair 0 keeps no answer token: skipped, counted
  auto none = train::build_sft_dataset({pairs()[0]}, lm->tok, lm->tmpl, opt);
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->examples.empty());
  EXPECT_EQ(none->stats.skipped_no_answer, 1u);
  EXPECT_EQ(none->stats.dropped_answer_tokens, std::size_t(ex0.n_scored));
}

}  // namespace
