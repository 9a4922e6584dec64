// The method on the real model: QLoRA-training a fresh adapter on QA pairs
// generated from the shipped sample graph lowers SmolLM2-135M-Instruct's
// answer NLL on held-out pairs. A small slice (one epoch over 24 pairs, cut at 320 tokens: SmolLM2's
// English BPE spends ~2.5 tokens per Japanese character) so CI
// stays fast; the full figures are in docs/benchmarks.md (training section).
#include "qlora/train/trainer.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "qlora/data/load_graph.hpp"
#include "qlora/data/qa_generate.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qlora;

TEST(Smollm2Train, AdapterLowersHeldOutNll) {
  const fs::path model = fs::path(QLORA_MODEL_CACHE_DIR) / "SmolLM2-135M-Instruct.Q4_1.gguf";
  const fs::path kg = fs::path(QLORA_TEST_DATA_DIR) / ".." / ".." / "data" / "kg" / "csv";
  if (!fs::exists(model)) GTEST_SKIP() << "model not fetched: " << model;
  if (!fs::exists(kg)) GTEST_SKIP() << "no sample graph at " << kg;

  auto g = data::load_graph({kg.string()});
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  data::GenerateOptions gen;
  gen.paraphrases = false;
  auto pool = data::generate_qa(*g, gen);
  ASSERT_TRUE(pool.is_ok());
  std::vector<data::QaPair> pairs = pool->pairs;
  seeded_shuffle(pairs, 7);
  ASSERT_GE(pairs.size(), 32u);
  const std::vector<data::QaPair> train_pairs(pairs.begin(), pairs.begin() + 24);
  const std::vector<data::QaPair> eval_pairs(pairs.begin() + 24, pairs.begin() + 32);

  auto f = io::GgufFile::open(model.string());
  ASSERT_TRUE(f.is_ok());
  auto tok = text::BpeTokenizer::from_gguf(*f);
  auto tmpl = text::ChatTemplate::from_gguf(*f);
  ASSERT_TRUE(tok.is_ok() && tmpl.is_ok());
  train::SftOptions sft;
  sft.max_seq_len = 320;
  auto tr = train::build_sft_dataset(train_pairs, *tok, *tmpl, sft);
  auto ev = train::build_sft_dataset(eval_pairs, *tok, *tmpl, sft);
  ASSERT_TRUE(tr.is_ok() && ev.is_ok());

  auto dec = train::TrainableDecoder::open(*f, {});  // NF4 base, double-quantized scales
  ASSERT_TRUE(dec.is_ok()) << dec.status().message();
  train::TrainConfig cfg;  // the paper's recipe (r 16, alpha 16, AdamW, cosine, warmup 10%) ...
  cfg.epochs = 1;          // ... on a slice: one epoch, 6 steps of 4
  cfg.batch_size = 4;
  cfg.grad_accum = 1;
  cfg.lr = 1e-3;
  auto t = train::Trainer::create(*dec, *tr, &*ev, cfg);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  auto s = t->run();
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  std::printf("[ smollm2 qlora ] %lld steps, %lld tokens in %.1f s (%.0f tok/s); held-out answer NLL %.4f -> %.4f "
              "(PPL %.2f -> %.2f) over %lld tokens\n",
              (long long)s->steps_done, (long long)s->tokens, s->seconds, double(s->tokens) / s->seconds,
              s->initial_eval.nll, s->final_eval.nll, s->initial_eval.ppl, s->final_eval.ppl,
              (long long)s->final_eval.tokens);
  EXPECT_TRUE(s->finished);
  EXPECT_LT(s->final_eval.nll, s->initial_eval.nll - 0.2);
}

}  // namespace
