// lora/runtime_lora.hpp through model/decoder.hpp's ProjectionAddend: the
// inference decoder with an adapter applied at run time computes what the
// training decoder computes with that adapter (same base weights, fp32), for
// the compiled ranks and a run-time rank, with and without bias (qwen2); an
// all-zero adapter changes nothing, bit for bit; detaching restores the base.
#include "qlora/lora/runtime_lora.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qlora/train/trainable_decoder.hpp"
#include "train/tiny_model.hpp"

namespace {

using namespace qlora;

/// Mean NLL of tok[1..] given the prefix, from the inference decoder.
double decoder_nll(model::Decoder& d, const std::vector<std::int32_t>& tok) {
  d.cache().clear();
  std::vector<float> logits;
  EXPECT_TRUE(d.forward(tok, logits, /*all_logits=*/true).is_ok());
  const std::size_t V = d.config().n_vocab;
  double sum = 0;
  for (std::size_t t = 0; t + 1 < tok.size(); ++t) {
    const float* row = logits.data() + t * V;
    double mx = row[0], z = 0;
    for (std::size_t i = 0; i < V; ++i) mx = std::max<double>(mx, row[i]);
    for (std::size_t i = 0; i < V; ++i) z += std::exp(double(row[i]) - mx);
    sum += mx + std::log(z) - double(row[tok[t + 1]]);
  }
  return sum / double(tok.size() - 1);
}

void check(const std::string& arch, bool bias, int rank) {
  train_test::TinySpec spec;
  spec.arch = arch;
  spec.bias = bias;
  spec.tag = "runtime_lora_" + arch + std::to_string(rank);
  const std::string path = train_test::write_tiny_model(spec);
  auto f = io::GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto cfg = model::config_from_gguf(*f);
  ASSERT_TRUE(cfg.is_ok());
  lora::LoraConfig lc;
  lc.rank = rank;
  lc.alpha = 16;
  auto ad = lora::LoraAdapter::create(*cfg, lc);
  ASSERT_TRUE(ad.is_ok());
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 0.05f);
  for (const auto& sl : ad->slots())
    for (std::int64_t i = 0; i < sl.out * rank; ++i) ad->b(sl)[i] = g(rng);
  std::vector<std::int32_t> tok;
  for (int i = 0; i < 24; ++i) tok.push_back(std::int32_t((i * 29 + 5) % 64));

  auto d = model::Decoder::open(*f);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  const double base = decoder_nll(*d, tok);
  lora::RuntimeLora rl(*ad, ThreadPool::global());
  d->set_addend(&rl);
  const double with = decoder_nll(*d, tok);

  train::TrainableOptions o;
  o.storage = train::BaseStorage::kFileFormat;
  o.compute = cpu::Compute::kF32;
  auto td = train::TrainableDecoder::open(*f, o);
  ASSERT_TRUE(td.is_ok()) << td.status().message();
  std::vector<std::uint8_t> mask(tok.size() - 1, 1);
  auto ref = td->loss(tok, mask, &*ad);
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  const double expect = ref->nll_sum / double(ref->n_scored);
  // The adapter moves the NLL; the two decoders agree on where to, up to the
  // inference decoder's fp16 KV cache (llama.cpp's), which the training
  // decoder does not round.
  EXPECT_GT(std::fabs(with - base), 0.1) << arch << " r=" << rank;
  EXPECT_LT(std::fabs(with - expect), 0.02 * std::fabs(with - base))
      << arch << " r=" << rank << ": base " << base << ", runtime LoRA " << with << ", training forward " << expect;

  // Detached: the base again, bit for bit.
  d->set_addend(nullptr);
  EXPECT_EQ(decoder_nll(*d, tok), base);
}

TEST(RuntimeLora, EqualsTheTrainingForwardWithTheAdapter) {
  check("llama", false, 16);
  check("llama", false, 32);
  check("qwen2", true, 4);  // run-time rank, biased projections
}

TEST(RuntimeLora, ZeroAdapterChangesNothing) {
  train_test::TinySpec spec;
  spec.tag = "runtime_lora_zero";
  const std::string path = train_test::write_tiny_model(spec);
  auto f = io::GgufFile::open(path);
  ASSERT_TRUE(f.is_ok());
  auto cfg = model::config_from_gguf(*f);
  lora::LoraConfig lc;
  lc.rank = 8;
  auto ad = lora::LoraAdapter::create(*cfg, lc);  // PEFT init: B = 0
  ASSERT_TRUE(ad.is_ok());
  auto d = model::Decoder::open(*f);
  ASSERT_TRUE(d.is_ok());
  std::vector<std::int32_t> tok = {1, 5, 9, 13, 17};
  std::vector<float> a, b;
  ASSERT_TRUE(d->forward(tok, a, true).is_ok());
  d->cache().clear();
  lora::RuntimeLora rl(*ad, ThreadPool::global());
  d->set_addend(&rl);
  ASSERT_TRUE(d->forward(tok, b, true).is_ok());
  EXPECT_EQ(a, b);
}

}  // namespace
