// Tests for qlora/train/trainer.hpp and checkpoint.hpp: training lowers the
// loss, the step plan follows HF Trainer, an interrupted and resumed run ends
// with the same adapter bit for bit, a mismatched resume is refused, and a
// non-finite loss stops the run without touching the adapter.
#include "qlora/train/trainer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "eval/tiny_lm.hpp"
#include "temp_dir.hpp"

namespace {

using namespace qlora;

struct Env {
  eval_test::TinyLm lm;
  std::unique_ptr<eval_test::Loaded> loaded;
  train::TrainableDecoder dec;
  train::SftDataset train, eval;
};

std::vector<data::QaPair> qa(int n, int offset) {
  std::vector<data::QaPair> v;
  const char* answers[] = {"the river is long", "sabo dams hold sediment", "levees stop floods",
                           "rain gauges measure rain", "dams store water"};
  for (int i = 0; i < n; ++i) {
    data::QaPair p;
    p.id = "p" + std::to_string(offset + i);
    p.question = "question " + std::to_string((offset + i) % 5);
    p.answer = answers[(offset + i) % 5];
    v.push_back(p);
  }
  return v;
}

std::unique_ptr<Env> make_env(unsigned seed, train::BaseStorage storage = train::BaseStorage::kNf4) {
  auto env = std::make_unique<Env>();
  env->lm = eval_test::make_tiny_lm(seed, false, 256, 128);
  env->loaded = eval_test::load(env->lm.path);
  EXPECT_TRUE(env->loaded);
  train::TrainableOptions o;
  o.storage = storage;
  auto d = train::TrainableDecoder::open(env->loaded->file, o);
  EXPECT_TRUE(d.is_ok()) << d.status().message();
  env->dec = std::move(*d);
  auto tr = train::build_sft_dataset(qa(10, 0), env->loaded->tok, env->loaded->tmpl);
  auto ev = train::build_sft_dataset(qa(5, 100), env->loaded->tok, env->loaded->tmpl);
  EXPECT_TRUE(tr.is_ok() && ev.is_ok());
  env->train = std::move(*tr);
  env->eval = std::move(*ev);
  return env;
}

train::TrainConfig small_config(const std::string& out) {
  train::TrainConfig c;
  c.lora.rank = 4;
  c.lora.alpha = 8;
  c.lora.dropout = 0.05f;
  c.lr = 1e-2;
  c.out_dir = out;
  return c;
}

TEST(Trainer, StepPlanFollowsHfTrainer) {
  auto env = make_env(31);
  auto t = train::Trainer::create(env->dec, env->train, nullptr, small_config(""));
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  // 10 examples, batch 2 -> 5 micro-batches; accumulation 4 -> 2 updates per
  // epoch (the short last group counts, transformers >= 4.52); 3 epochs.
  EXPECT_EQ(t->step_count().batches_per_epoch, 5);
  EXPECT_EQ(t->step_count().updates_per_epoch, 2);
  EXPECT_EQ(t->step_count().total_steps, 6);
  EXPECT_EQ(t->schedule().warmup_steps(), 1);  // ceil(0.1 * 6)
  EXPECT_EQ(t->step_examples(1).size(), 8u);
  EXPECT_EQ(t->step_examples(2).size(), 2u);
  // Every example once per epoch.
  auto a = t->step_examples(3), b = t->step_examples(4);
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], i);
}

TEST(Trainer, TrainingLowersTheLoss) {
  auto env = make_env(32);
  auto cfg = small_config("");
  cfg.epochs = 8;
  cfg.lora.dropout = 0.0f;
  auto t = train::Trainer::create(env->dec, env->train, &env->train, cfg);
  ASSERT_TRUE(t.is_ok());
  std::vector<double> losses;
  auto s = t->run([&](const train::StepRecord& r) { losses.push_back(r.loss); });
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_TRUE(s->finished);
  ASSERT_EQ(losses.size(), 16u);
  EXPECT_LT(s->final_eval.nll, 0.7 * s->initial_eval.nll);
  EXPECT_LT(losses.back(), losses.front());
}

TEST(Trainer, ResumedRunEqualsUninterruptedRun) {
  const auto dir = test::process_temp_dir("qlora_trainer");
  auto env = make_env(33);
  // Uninterrupted.
  auto cfg_a = small_config((dir / "a").string());
  auto a = train::Trainer::create(env->dec, env->train, &env->eval, cfg_a);
  ASSERT_TRUE(a.is_ok());
  auto sa = a->run();
  ASSERT_TRUE(sa.is_ok()) << sa.status().message();
  // Interrupted after 2 steps (a checkpoint is written on the way out)...
  auto cfg_b = small_config((dir / "b").string());
  cfg_b.stop_after = 2;
  auto b1 = train::Trainer::create(env->dec, env->train, &env->eval, cfg_b);
  ASSERT_TRUE(b1.is_ok());
  auto sb1 = b1->run();
  ASSERT_TRUE(sb1.is_ok());
  EXPECT_FALSE(sb1->finished);
  EXPECT_EQ(sb1->steps_done, 2);
  // ... then a fresh process-like trainer resumes from the latest checkpoint.
  cfg_b.stop_after = -1;
  auto b2 = train::Trainer::create(env->dec, env->train, &env->eval, cfg_b);
  ASSERT_TRUE(b2.is_ok());
  const std::string ck = train::latest_checkpoint(cfg_b.out_dir);
  ASSERT_EQ(ck, train::checkpoint_path(cfg_b.out_dir, 2));
  ASSERT_TRUE(b2->resume(ck).is_ok());
  auto sb2 = b2->run();
  ASSERT_TRUE(sb2.is_ok()) << sb2.status().message();
  EXPECT_TRUE(sb2->finished);
  const auto pa = a->adapter().params(), pb = b2->adapter().params();
  ASSERT_EQ(pa.size(), pb.size());
  EXPECT_TRUE(std::equal(pa.begin(), pa.end(), pb.begin())) << "adapters differ after resume";
  EXPECT_EQ(sa->final_eval.nll, sb2->final_eval.nll);
  // The logs read as one run: 6 steps each.
  auto lines = [](const std::string& p) {
    std::ifstream in(p);
    std::size_t n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  };
  EXPECT_EQ(lines(cfg_a.out_dir + "/train_log.csv"), 7u);
  EXPECT_EQ(lines(cfg_b.out_dir + "/train_log.csv"), 7u);
  EXPECT_EQ(lines(cfg_b.out_dir + "/train_log.jsonl"), 6u);
  // read_train_log gives the steps back, the evaluations at epoch ends too.
  auto log = train::read_train_log(cfg_b.out_dir + "/train_log.jsonl");
  ASSERT_TRUE(log.is_ok()) << log.status().message();
  ASSERT_EQ(log->size(), 6u);
  EXPECT_EQ(log->back().step, 6);
  EXPECT_NEAR(log->back().eval_nll, sb2->final_eval.nll, 1e-6);  // the last evaluation is the final one
  EXPECT_TRUE(std::isnan((*log)[0].eval_nll));
  std::ofstream(cfg_b.out_dir + "/train_log.jsonl", std::ios::app) << "{\"step\": oops}\n";
  log = train::read_train_log(cfg_b.out_dir + "/train_log.jsonl");
  ASSERT_FALSE(log.is_ok());
  EXPECT_NE(log.status().message().find("train_log.jsonl:7: not a train log record"), std::string::npos)
      << log.status().message();
}

TEST(Trainer, InitialEvaluationCanBeSkipped) {
  auto env = make_env(34);
  auto cfg = small_config("");
  cfg.eval_initial = false;
  auto t = train::Trainer::create(env->dec, env->train, &env->eval, cfg);
  ASSERT_TRUE(t.is_ok());
  auto s = t->run();
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ(s->initial_eval.tokens, 0);
  EXPECT_GT(s->final_eval.tokens, 0);
}

TEST(Trainer, ResumeOfAnotherRunIsRefused) {
  const auto dir = test::process_temp_dir("qlora_trainer");
  auto env = make_env(34);
  auto cfg = small_config((dir / "c").string());
  cfg.stop_after = 1;
  auto t = train::Trainer::create(env->dec, env->train, nullptr, cfg);
  ASSERT_TRUE(t.is_ok());
  ASSERT_TRUE(t->run().is_ok());
  cfg.lr = 5e-3;
  auto u = train::Trainer::create(env->dec, env->train, nullptr, cfg);
  ASSERT_TRUE(u.is_ok());
  const Status st = u->resume(train::latest_checkpoint(cfg.out_dir));
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("different run"), std::string::npos) << st.message();
  // A file that is not a checkpoint.
  const std::string junk = (dir / "junk.safetensors").string();
  std::ofstream(junk) << "not a checkpoint";
  EXPECT_FALSE(u->resume(junk).is_ok());
}

TEST(Trainer, NonFiniteLossStopsBeforeTheUpdate) {
  auto env = make_env(35);
  auto t = train::Trainer::create(env->dec, env->train, nullptr, small_config(""));
  ASSERT_TRUE(t.is_ok());
  auto params = t->adapter().params();
  const auto& s = t->adapter().slots()[3];
  params[s.b_off] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> before(params.begin(), params.end());
  auto r = t->run();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNumeric);
  EXPECT_NE(r.status().message().find("step 1"), std::string::npos) << r.status().message();
  EXPECT_EQ(t->step(), 0);
  const auto after = t->adapter().params();
  for (std::size_t i = 0; i < before.size(); ++i)
    ASSERT_TRUE(std::memcmp(&before[i], &after[i], sizeof(float)) == 0) << "parameter " << i << " changed";
}

}  // namespace
