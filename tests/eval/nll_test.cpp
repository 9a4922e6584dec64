// Pins eval/nll.hpp: answer-only masking scores exactly the answer tokens
// (content + end-of-turn), the NLL equals a brute-force recomputation from one
// all-logits pass, truncation is counted (never silent), the llama-perplexity
// protocol scores exactly the second half of every chunk with BOS replacing
// the chunk's first token, and malformed JSONL names the file and line.
#include "qlora/eval/nll.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "eval/tiny_lm.hpp"

namespace {

using namespace qlora;
using eval_test::load;
using eval_test::make_tiny_lm;

/// -log softmax in double, written out.
double ref_nll(const float* row, std::size_t V, int target) {
  double mx = row[0];
  for (std::size_t i = 1; i < V; ++i) mx = std::max<double>(mx, row[i]);
  double s = 0;
  for (std::size_t i = 0; i < V; ++i) s += std::exp(double(row[i]) - mx);
  return -(double(row[target]) - mx - std::log(s));
}

std::vector<data::QaPair> qa_set() {
  return {
      {"q1", "What is the river?", "the river is long and the water is in it", "", "", "", ""},
      {"q2", "砂防とは何ですか?", "土砂災害を防ぐための対策です。", "", "", "", ""},
      {"q3", "Say hi", "hi", "", "", "", "Be brief."},
  };
}

TEST(AnswerNll, ScoresExactlyTheAnswerTokensAndEqualsBruteForce) {
  auto m = make_tiny_lm(11);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const std::size_t V = L->dec.config().n_vocab;
  const text::TokenId im_end = L->tok.find_token("<|im_end|>");
  ASSERT_NE(im_end, text::kNoToken);
  for (const data::QaPair& qa : qa_set()) {
    SCOPED_TRACE(qa.id);
    auto ex = eval::answer_nll(L->dec, L->tok, L->tmpl, qa, {}, /*keep_token_nll=*/true);
    ASSERT_TRUE(ex.is_ok()) << ex.status().message();
    // Content tokens (the answer tokenized alone) plus <|im_end|>; not the "\n" after it.
    auto content = L->tok.encode(qa.answer, false, false);
    ASSERT_TRUE(content.is_ok());
    EXPECT_EQ(ex->answer_tokens, content->size() + 1);
    EXPECT_TRUE(ex->has_end_of_turn);
    EXPECT_FALSE(ex->truncated());
    EXPECT_EQ(ex->token_nll.size(), ex->answer_tokens);

    // Brute force: one all-logits pass over prompt + answer.
    std::vector<text::ChatMessage> msgs;
    if (!qa.system.empty()) msgs.push_back({"system", qa.system});
    msgs.push_back({"user", qa.question});
    msgs.push_back({"assistant", qa.answer});
    auto pa = L->tmpl.tokenize_answer(L->tok, msgs);
    ASSERT_TRUE(pa.is_ok());
    EXPECT_EQ(ex->prompt_tokens, pa->n_prompt);
    ASSERT_EQ(pa->ids[pa->n_prompt + content->size()], im_end);
    ASSERT_EQ(pa->ids.size(), pa->n_prompt + content->size() + 2);  // "\n" after <|im_end|>
    L->dec.cache().clear();
    std::vector<float> logits;
    ASSERT_TRUE(L->dec.forward(pa->ids, logits, true).is_ok());
    double sum = 0;
    for (std::size_t t = pa->n_prompt; t <= pa->n_prompt + content->size(); ++t) {
      const double x = ref_nll(logits.data() + (t - 1) * V, V, pa->ids[t]);
      EXPECT_NEAR(ex->token_nll[t - pa->n_prompt], x, 2e-3 + 1e-4 * x);
      sum += x;
    }
    EXPECT_NEAR(ex->sum_nll, sum, 1e-3 * ex->answer_tokens + 1e-5 * sum);
    EXPECT_GT(ex->mean_nll(), 0.0);

    // Without the end-of-turn token: one fewer token, the same prefix.
    auto no_eot = eval::answer_nll(L->dec, L->tok, L->tmpl, qa, {0, false});
    ASSERT_TRUE(no_eot.is_ok());
    EXPECT_EQ(no_eot->answer_tokens, content->size());
    EXPECT_FALSE(no_eot->has_end_of_turn);
  }
}

TEST(AnswerNll, AggregatesAreTokenWeightedAndExampleMean) {
  auto m = make_tiny_lm(12);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const auto set = qa_set();
  std::size_t calls = 0;
  auto r = eval::evaluate_answer_nll(L->dec, L->tok, L->tmpl, set, {},
                                     [&](std::size_t done, std::size_t total, std::size_t) {
                                       EXPECT_EQ(done, ++calls);
                                       EXPECT_EQ(total, set.size());
                                     });
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(calls, set.size());
  const auto& s = r->summary;
  EXPECT_EQ(s.protocol, "answer-only");
  EXPECT_EQ(s.examples, 3u);
  EXPECT_EQ(s.scored_examples, 3u);
  std::size_t tokens = 0;
  double sum = 0, ex_mean = 0;
  for (const auto& e : r->examples) {
    tokens += e.answer_tokens;
    sum += e.sum_nll;
    ex_mean += e.mean_nll() / 3.0;
  }
  EXPECT_EQ(s.tokens, tokens);
  EXPECT_DOUBLE_EQ(s.mean_nll, sum / double(tokens));
  EXPECT_DOUBLE_EQ(s.ppl, std::exp(sum / double(tokens)));
  EXPECT_NEAR(s.example_mean_nll, ex_mean, 1e-12);
  EXPECT_EQ(s.truncated_examples, 0u);
}

TEST(AnswerNll, TruncationIsCountedNeverSilent) {
  auto m = make_tiny_lm(13);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const auto set = qa_set();
  auto full = eval::answer_nll(L->dec, L->tok, L->tmpl, set[0], {}, true);
  ASSERT_TRUE(full.is_ok());
  ASSERT_GT(full->answer_tokens, 4u);
  // Room for the prompt and 3 answer tokens: the rest is dropped and counted,
  // and the 3 kept tokens score as before (the prompt is kept whole).
  auto cut = eval::answer_nll(L->dec, L->tok, L->tmpl, set[0], {full->prompt_tokens + 3, true}, true);
  ASSERT_TRUE(cut.is_ok());
  EXPECT_EQ(cut->answer_tokens, 3u);
  EXPECT_EQ(cut->dropped_tokens, full->answer_tokens - 3);
  EXPECT_TRUE(cut->truncated());
  EXPECT_FALSE(cut->has_end_of_turn);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(cut->token_nll[std::size_t(i)], full->token_nll[std::size_t(i)], 1e-3);
  // No room for a single answer token: skipped, counted.
  auto none = eval::answer_nll(L->dec, L->tok, L->tmpl, set[0], {full->prompt_tokens, true});
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->skipped);
  EXPECT_EQ(none->answer_tokens, 0u);
  EXPECT_EQ(none->dropped_tokens, full->answer_tokens);

  auto r = eval::evaluate_answer_nll(L->dec, L->tok, L->tmpl, set, {full->prompt_tokens + 3, true});
  ASSERT_TRUE(r.is_ok());
  EXPECT_GE(r->summary.truncated_examples + r->summary.skipped_examples, 1u);
  EXPECT_GT(r->summary.dropped_tokens, 0u);
}

TEST(LlamaPerplexity, ScoresExactlyTheSecondHalfOfEachChunkWithBos) {
  auto m = make_tiny_lm(14);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const std::size_t V = L->dec.config().n_vocab;
  std::mt19937 rng(3);
  std::vector<text::TokenId> toks(16 * 3 + 7);  // 3 chunks of 16 and a dropped tail
  for (auto& t : toks) t = text::TokenId(rng() % 256);
  const text::TokenId bos = L->tok.bos_id();
  std::vector<std::size_t> scored;
  std::vector<double> nlls;
  eval::PerplexityOptions opt;
  opt.n_ctx = 16;
  auto r = eval::llama_perplexity_tokens(L->dec, toks, bos, opt, {}, [&](std::size_t i, double x) {
    scored.push_back(i);
    nlls.push_back(x);
  });
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->chunks, 3u);
  EXPECT_EQ(r->scored_tokens, 3u * 7u);  // n_ctx - 1 - n_ctx/2 = 7 per chunk
  std::vector<std::size_t> want;
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t p = 9; p < 16; ++p) want.push_back(c * 16 + p);  // positions first+1 .. n_ctx-1
  EXPECT_EQ(scored, want);
  // Brute force: each chunk with BOS in place of its first token, all logits.
  double sum = 0, sum2 = 0;
  std::size_t k = 0;
  for (std::size_t c = 0; c < 3; ++c) {
    std::vector<text::TokenId> chunk(toks.begin() + std::ptrdiff_t(c * 16), toks.begin() + std::ptrdiff_t(c * 16 + 16));
    chunk[0] = bos;
    L->dec.cache().clear();
    std::vector<float> logits;
    ASSERT_TRUE(L->dec.forward(chunk, logits, true).is_ok());
    for (std::size_t p = 8; p < 15; ++p, ++k) {
      const double x = ref_nll(logits.data() + p * V, V, chunk[p + 1]);
      EXPECT_NEAR(nlls[k], x, 2e-3 + 1e-4 * x);
      sum += x;
      sum2 += x * x;
    }
  }
  const double mean = sum / 21.0;
  EXPECT_NEAR(r->mean_nll, mean, 1e-3);
  EXPECT_NEAR(r->ppl, std::exp(mean), 1e-3 * r->ppl);
  const double se = std::sqrt((sum2 / 21.0 - mean * mean) / 20.0) * std::exp(mean);
  EXPECT_NEAR(r->ppl_stderr, se, 1e-3 * se + 1e-6);
  EXPECT_EQ(r->running_ppl.size(), 3u);
  EXPECT_NEAR(r->running_ppl.back(), r->ppl, 1e-9);

  // Without BOS the chunks' first tokens are the text's own: a different result.
  auto nob = eval::llama_perplexity_tokens(L->dec, toks, std::nullopt, opt);
  ASSERT_TRUE(nob.is_ok());
  EXPECT_FALSE(nob->bos_at_chunk_start);
  EXPECT_NE(nob->mean_nll, r->mean_nll);
}

TEST(LlamaPerplexity, TextPathAddsBosPerVocabularyAndRejectsShortText) {
  auto m = make_tiny_lm(15, /*add_bos=*/true);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  ASSERT_TRUE(L->tok.add_bos());
  const std::string text = "the river carries sediment and the dam stops it; the water is in the river. "
                           "土砂は川を流れ、砂防堰堤が止める。";
  eval::PerplexityOptions opt;
  opt.n_ctx = 32;
  auto r = eval::llama_perplexity(L->dec, L->tok, text, opt);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_TRUE(r->bos_at_chunk_start);
  auto ids = L->tok.encode(text, true, false);
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(r->text_tokens, ids->size());
  EXPECT_EQ((*ids)[0], L->tok.bos_id());
  EXPECT_EQ(r->chunks, ids->size() / 32);
  EXPECT_EQ(r->scored_tokens, r->chunks * 15);
  EXPECT_TRUE(std::isfinite(r->ppl));

  opt.n_ctx = 128;
  auto short_text = eval::llama_perplexity(L->dec, L->tok, text, opt);
  ASSERT_FALSE(short_text.is_ok());
  EXPECT_NE(short_text.status().message().find("at least 256"), std::string::npos) << short_text.status().message();
  opt.n_ctx = 1024;  // beyond the decoder's cache
  EXPECT_FALSE(eval::llama_perplexity(L->dec, L->tok, text, opt).is_ok());
}

TEST(AnswerNll, MalformedJsonlNamesFileAndLine) {
  const auto path = (eval_test::temp_dir() / "bad.jsonl").string();
  {
    std::ofstream f(path);
    f << R"({"id":"a","question":"Q1","answer":"A1"})" << "\n";
    f << R"({"id":"b","question":"Q2","answer": )" << "\n";
  }
  auto r = data::read_qa_jsonl(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(path + ":2"), std::string::npos) << r.status().message();
}

// The real model, when present: answer-only NLL of a Japanese pair is finite
// and counts the answer's tokens plus <|im_end|>.
TEST(AnswerNllSmolLM2, JapanesePair) {
  const std::string path = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "SmolLM2 model absent: run tools/fetch_model.sh";
  auto L = load(path, 512);
  ASSERT_TRUE(L);
  data::QaPair qa{"j1", "砂防堰堤の役割は何ですか?", "土石流を止めて下流を守ることです。", "", "", "", ""};
  auto ex = eval::answer_nll(L->dec, L->tok, L->tmpl, qa);
  ASSERT_TRUE(ex.is_ok()) << ex.status().message();
  auto content = L->tok.encode(qa.answer, false, false);
  ASSERT_TRUE(content.is_ok());
  EXPECT_EQ(ex->answer_tokens, content->size() + 1);
  EXPECT_TRUE(std::isfinite(ex->mean_nll()));
  EXPECT_GT(ex->mean_nll(), 0.0);
  std::printf("[ smollm2 q4_1 ] answer-only NLL %.4f over %zu tokens (prompt %zu)\n", ex->mean_nll(),
              ex->answer_tokens, ex->prompt_tokens);
}

}  // namespace
