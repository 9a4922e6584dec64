// Pins eval/generate.hpp: greedy decoding is deterministic and equals stepping
// the decoder by arg-max by hand; a seed fixes a sample; top-k 1 and a tiny
// top-p collapse to greedy; generation stops on EOG tokens and on stop strings
// (which are not emitted, even when split across tokens); streamed pieces are
// always valid UTF-8 and concatenate to the result; stats count what happened.
#include "qlora/eval/generate.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "eval/tiny_lm.hpp"

namespace {

using namespace qlora;
using eval_test::load;
using eval_test::make_tiny_lm;

std::vector<text::TokenId> prompt_of(const eval_test::Loaded& L, const std::string& s) {
  auto ids = L.tok.encode(s, false, false);
  EXPECT_TRUE(ids.is_ok());
  return *ids;
}

bool valid_utf8(std::string_view s) { return text::validate_utf8(s).is_ok(); }

TEST(Generate, GreedyIsDeterministicAndEqualsArgmaxStepping) {
  auto m = make_tiny_lm(21);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const auto prompt = prompt_of(*L, "the river and the sediment");
  eval::GenerateOptions opt;
  opt.max_new_tokens = 24;
  opt.stop_on_eog = false;
  auto a = eval::generate(L->dec, L->tok, prompt, opt);
  auto b = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->text, b->text);
  EXPECT_EQ(a->tokens.size(), 24u);
  EXPECT_EQ(a->stop, eval::StopReason::kMaxTokens);

  // By hand.
  L->dec.cache().clear();
  std::vector<float> logits;
  ASSERT_TRUE(L->dec.forward(prompt, logits, false).is_ok());
  std::vector<text::TokenId> want;
  for (int i = 0; i < 24; ++i) {
    const auto id = eval::argmax(logits);
    want.push_back(id);
    ASSERT_TRUE(L->dec.forward(std::span<const text::TokenId>(&id, 1), logits, false).is_ok());
  }
  EXPECT_EQ(a->tokens, want);

  // Stats.
  EXPECT_EQ(a->stats.prompt_tokens, prompt.size());
  EXPECT_EQ(a->stats.generated_tokens, 24u);
  EXPECT_EQ(a->stats.output_chars, eval::count_code_points(a->text));
  EXPECT_GT(a->stats.seconds, 0.0);
  EXPECT_GE(a->stats.seconds, a->stats.prompt_seconds);
  EXPECT_GT(a->stats.generation_tokens_per_second(), 0.0);
  EXPECT_TRUE(valid_utf8(a->text));
}

TEST(Generate, SeedFixesTheSampleAndSamplersCollapseToGreedy) {
  auto m = make_tiny_lm(22);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const auto prompt = prompt_of(*L, "sediment");
  eval::GenerateOptions opt;
  opt.max_new_tokens = 32;
  opt.stop_on_eog = false;
  opt.sampling = {1.0f, 40, 0.95f, 1234};
  auto a = eval::generate(L->dec, L->tok, prompt, opt);
  auto b = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->tokens, b->tokens);
  opt.sampling.seed = 99;
  auto c = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(c.is_ok());
  EXPECT_NE(a->tokens, c->tokens);

  // top-k 1 and a vanishing top-p keep only the arg-max.
  eval::GenerateOptions g = opt;
  g.sampling = {};
  auto greedy = eval::generate(L->dec, L->tok, prompt, g);
  ASSERT_TRUE(greedy.is_ok());
  g.sampling = {1.5f, 1, 1.0f, 5};
  auto k1 = eval::generate(L->dec, L->tok, prompt, g);
  g.sampling = {1.5f, 0, 1e-6f, 6};
  auto p0 = eval::generate(L->dec, L->tok, prompt, g);
  ASSERT_TRUE(k1.is_ok() && p0.is_ok());
  EXPECT_EQ(k1->tokens, greedy->tokens);
  EXPECT_EQ(p0->tokens, greedy->tokens);
}

TEST(Sampler, FrequenciesFollowTheTemperedDistribution) {
  // Three logits; at T = 1 the probabilities are softmax(0, 1, 2).
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  eval::Sampler s({1.0f, 0, 1.0f, 42});
  std::vector<int> n(3);
  for (int i = 0; i < 20000; ++i) n[std::size_t(s.sample(logits))]++;
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  EXPECT_NEAR(n[0] / 20000.0, 1 / z, 0.01);
  EXPECT_NEAR(n[2] / 20000.0, std::exp(2.0) / z, 0.015);
  // top-p 0.7: {2} has 0.665 < 0.7, so {2, 1} survive; 0 never drawn.
  eval::Sampler tp({1.0f, 0, 0.7f, 43});
  for (int i = 0; i < 2000; ++i) EXPECT_NE(tp.sample(logits), 0);
  // Greedy ties: the lowest id.
  EXPECT_EQ(eval::argmax(std::vector<float>{1.0f, 3.0f, 3.0f}), 1);
}

TEST(Generate, StopsOnEogTokens) {
  auto m = make_tiny_lm(23);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const auto prompt = prompt_of(*L, "the dam");
  eval::GenerateOptions opt;
  opt.max_new_tokens = 20;
  opt.stop_on_eog = false;
  auto free_run = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(free_run.is_ok());
  // A tokenizer for the same vocabulary whose EOS is the 6th generated token.
  auto spec = m.vocab;
  const text::TokenId stop_id = free_run->tokens[5];
  spec.eos = stop_id;
  auto tok = text::BpeTokenizer::from_spec(spec);
  ASSERT_TRUE(tok.is_ok());
  ASSERT_TRUE(tok->is_eog(stop_id));
  opt.stop_on_eog = true;
  auto g = eval::generate(L->dec, *tok, prompt, opt);
  ASSERT_TRUE(g.is_ok());
  const std::size_t first = std::size_t(std::find(free_run->tokens.begin(), free_run->tokens.end(), stop_id) -
                                        free_run->tokens.begin());
  EXPECT_EQ(g->stop, eval::StopReason::kEog);
  ASSERT_EQ(g->tokens.size(), first + 1);  // the EOG token is recorded ...
  EXPECT_EQ(g->tokens.back(), stop_id);
  auto text_before = L->tok.decode(std::span(free_run->tokens).first(first));
  ASSERT_TRUE(text_before.is_ok());
  std::string want;
  eval::append_sanitized(want, *text_before);
  EXPECT_EQ(g->text, want);  // ... but its text is not emitted
}

TEST(Generate, StopStringEndsTheOutputBeforeIt) {
  auto m = make_tiny_lm(24);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const auto prompt = prompt_of(*L, "the river");
  eval::GenerateOptions opt;
  opt.max_new_tokens = 40;
  opt.stop_on_eog = false;
  auto free_run = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(free_run.is_ok());
  const std::string& t = free_run->text;
  // A stop string: two printable ASCII characters from the middle of the output.
  std::string stop;
  for (std::size_t i = 3; i + 1 < t.size() && stop.empty(); ++i)
    if (t[i] > ' ' && t[i] < 127 && t[i + 1] > ' ' && t[i + 1] < 127) stop = t.substr(i, 2);
  for (std::size_t i = 1; i < t.size() && stop.empty(); ++i)
    if (t[i] > ' ' && t[i] < 127) stop = t.substr(i, 1);
  ASSERT_FALSE(stop.empty()) << "no ASCII in the output";
  opt.stop = {"\xE3\x81\x82never", stop};
  std::string streamed;
  opt.on_text = [&](std::string_view s) {
    streamed += s;
    return true;
  };
  auto g = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g->stop, eval::StopReason::kStopString);
  EXPECT_EQ(g->stop_string, stop);
  EXPECT_EQ(g->text, t.substr(0, t.find(stop)));
  EXPECT_EQ(streamed, g->text);
  EXPECT_EQ(g->text.find(stop), std::string::npos);

  // The callback can stop generation.
  int calls = 0;
  opt.stop.clear();
  opt.on_text = [&](std::string_view) { return ++calls < 2; };
  auto cb = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(cb.is_ok());
  EXPECT_EQ(cb->stop, eval::StopReason::kCallback);
  EXPECT_LT(cb->tokens.size(), 40u);
}

TEST(TextStreamer, HoldsBackSplitCodePointsAndSplitStopStrings) {
  auto s = eval::TextStreamer::create({"。終"});
  ASSERT_TRUE(s.is_ok());
  const std::string text = "砂防は大切です。終わり";
  std::string out;
  // One byte at a time: every emitted piece is whole code points.
  for (char c : text) {
    const std::string piece = s->push(std::string_view(&c, 1));
    EXPECT_TRUE(valid_utf8(piece)) << piece;
    out += piece;
    if (s->stopped()) break;
  }
  EXPECT_TRUE(s->stopped());
  EXPECT_EQ(out, "砂防は大切です");  // "。" was held back as the stop string's start
  EXPECT_EQ(s->text(), out);

  auto z = eval::TextStreamer::create({});
  ASSERT_TRUE(z.is_ok());
  std::string o;
  o += z->push("\xE6\x97");  // first two bytes of 日
  EXPECT_EQ(o, "");
  o += z->push("\xA5\xE6");  // completes 日, starts another
  EXPECT_EQ(o, "日");
  o += z->push("\xFF");       // garbage: both bad bytes become U+FFFD
  o += z->flush();
  EXPECT_EQ(o, "日\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(valid_utf8(o));
  // A truncated sequence at the very end becomes U+FFFD too.
  auto e = eval::TextStreamer::create({});
  std::string t = e->push("ab\xE6\x97");
  t += e->flush();
  EXPECT_EQ(t, "ab\xEF\xBF\xBD\xEF\xBF\xBD");

  EXPECT_FALSE(eval::TextStreamer::create({""}).is_ok());
  EXPECT_FALSE(eval::TextStreamer::create({"\xE6\x97"}).is_ok());
}

TEST(Generate, StreamingNeverEmitsABrokenCodePoint) {
  // Hot sampling over 256 byte tokens emits many partial and invalid sequences.
  auto m = make_tiny_lm(25);
  auto L = load(m.path);
  ASSERT_TRUE(L);
  const auto prompt = prompt_of(*L, "土砂");
  eval::GenerateOptions opt;
  opt.max_new_tokens = 120;
  opt.stop_on_eog = false;
  opt.sampling = {3.0f, 0, 1.0f, 77};
  std::string streamed;
  int pieces = 0;
  opt.on_text = [&](std::string_view s) {
    EXPECT_TRUE(valid_utf8(s)) << "broken piece at " << pieces;
    streamed += s;
    ++pieces;
    return true;
  };
  auto g = eval::generate(L->dec, L->tok, prompt, opt);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(streamed, g->text);
  EXPECT_TRUE(valid_utf8(g->text));
  EXPECT_EQ(g->stats.output_chars, eval::count_code_points(g->text));
  // Where the raw bytes are valid UTF-8, the text is exactly them.
  auto raw = L->tok.decode(g->tokens);
  ASSERT_TRUE(raw.is_ok());
  std::string clean;
  eval::append_sanitized(clean, *raw);
  EXPECT_EQ(g->text, clean);
}

TEST(Generate, ErrorsAndContextLimit) {
  auto m = make_tiny_lm(26);
  auto L = load(m.path, 16);
  ASSERT_TRUE(L);
  EXPECT_FALSE(eval::generate(L->dec, L->tok, std::vector<text::TokenId>{}).is_ok());
  std::vector<text::TokenId> p(17, 65);
  EXPECT_FALSE(eval::generate(L->dec, L->tok, p).is_ok());
  p.resize(10);
  eval::GenerateOptions opt;
  opt.stop_on_eog = false;
  opt.max_new_tokens = 100;
  auto g = eval::generate(L->dec, L->tok, p, opt);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g->stop, eval::StopReason::kContextFull);
  EXPECT_EQ(g->tokens.size(), 7u);  // 10 prompt + 6 fed back fill 16; the 7th is sampled from the last logits
}

// The real model, when present: a chat answer, greedy (agreement with
// llama.cpp is measured by tools/compare_llama_eval.py).
TEST(GenerateSmolLM2, ChatGreedy) {
  const std::string path = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "SmolLM2 model absent: run tools/fetch_model.sh";
  auto L = load(path, 256);
  ASSERT_TRUE(L);
  std::vector<text::ChatMessage> msgs = {{"user", "What is the capital of France?"}};
  auto prompt = eval::encode_chat_prompt(L->tok, L->tmpl, msgs);
  ASSERT_TRUE(prompt.is_ok());
  eval::GenerateOptions opt;
  opt.max_new_tokens = 24;
  auto g = eval::generate(L->dec, L->tok, *prompt, opt);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_TRUE(valid_utf8(g->text));
  EXPECT_FALSE(g->text.empty());  // (Q4_1 SmolLM2 answers "L'Étoile, ..." here, as llama.cpp's greedy does)
  std::printf("[ smollm2 q4_1 ] %s (%zu tokens, %s, %.1f tok/s)\n", g->text.c_str(), g->tokens.size(),
              eval::stop_reason_name(g->stop), g->stats.generation_tokens_per_second());
}

}  // namespace
