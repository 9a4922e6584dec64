// Tests for qlora/convert/merge_gguf.hpp and lora/merge.hpp: a merged GGUF
// computes what the base + adapter computed (within the output format's
// rounding) for both merge targets, untargeted tensors are exactly what the
// plain quantizer writes, and a mismatched adapter is refused.
#include "qlora/convert/merge_gguf.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qlora/train/trainable_decoder.hpp"
#include "train/tiny_model.hpp"

namespace {

using namespace qlora;

struct Setup {
  std::string base_path;
  io::GgufFile base;
  lora::LoraAdapter ad;
  std::vector<std::int32_t> tok;
  std::vector<std::uint8_t> mask;
};

std::unique_ptr<Setup> setup(const std::string& tag) {
  auto s = std::make_unique<Setup>();
  train_test::TinySpec spec;
  spec.tag = "merge_" + tag;
  s->base_path = train_test::write_tiny_model(spec);
  auto f = io::GgufFile::open(s->base_path);
  EXPECT_TRUE(f.is_ok());
  s->base = std::move(*f);
  auto cfg = model::config_from_gguf(s->base);
  lora::LoraConfig lc;
  lc.rank = 4;
  lc.alpha = 8;
  auto a = lora::LoraAdapter::create(*cfg, lc);
  EXPECT_TRUE(a.is_ok());
  s->ad = std::move(*a);
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 0.1f);
  for (const auto& sl : s->ad.slots())
    for (std::int64_t i = 0; i < sl.out * 4; ++i) s->ad.b(sl)[i] = g(rng);
  for (int i = 0; i < 32; ++i) s->tok.push_back(std::int32_t((i * 37 + 11) % 64));
  s->mask.assign(31, 1);
  return s;
}

double loss(const std::string& path, train::BaseStorage storage, const lora::LoraAdapter* ad,
            const std::vector<std::int32_t>& tok, const std::vector<std::uint8_t>& mask) {
  auto f = io::GgufFile::open(path);
  EXPECT_TRUE(f.is_ok());
  train::TrainableOptions o;
  o.storage = storage;
  o.compute = cpu::Compute::kF32;  // the comparison is about weights, not product precision
  auto d = train::TrainableDecoder::open(*f, o);
  EXPECT_TRUE(d.is_ok()) << d.status().message();
  auto r = d->loss(tok, mask, ad);
  EXPECT_TRUE(r.is_ok());
  return r->nll_sum / double(r->n_scored);
}

TEST(MergeGguf, MergedModelComputesBasePlusAdapter) {
  auto s = setup("a");
  const auto dir = test::process_temp_dir("qlora_merge");
  const std::string nf4 = (dir / "merged_nf4.gguf").string(), orig = (dir / "merged_orig.gguf").string();
  ASSERT_TRUE(convert::merge_lora_gguf<quant::scheme::F16>(s->base, s->ad, lora::MergeTarget::kNf4, nf4).is_ok());
  ASSERT_TRUE(convert::merge_lora_gguf<quant::scheme::F16>(s->base, s->ad, lora::MergeTarget::kOriginal, orig).is_ok());

  const double trained = loss(s->base_path, train::BaseStorage::kNf4, &s->ad, s->tok, s->mask);  // what training saw
  const double exact = loss(s->base_path, train::BaseStorage::kFileFormat, &s->ad, s->tok, s->mask);
  const double base = loss(s->base_path, train::BaseStorage::kFileFormat, nullptr, s->tok, s->mask);
  const double m_nf4 = loss(nf4, train::BaseStorage::kFileFormat, nullptr, s->tok, s->mask);
  const double m_orig = loss(orig, train::BaseStorage::kFileFormat, nullptr, s->tok, s->mask);
  // The adapter matters...
  EXPECT_GT(std::fabs(exact - base), 0.01 * base);
  // ... each merge reproduces its own target up to f16 rounding of the weights,
  // (the tiny model's tied random embedding gives large logits: NLL ~ 40)
  EXPECT_NEAR(m_nf4, trained, 1e-4 * trained);
  EXPECT_NEAR(m_orig, exact, 1e-4 * exact);
  // ... and the two targets differ by the NF4 quantization error.
  EXPECT_GT(std::fabs(m_nf4 - m_orig), 2 * std::max(std::fabs(m_nf4 - trained), std::fabs(m_orig - exact)));
}

TEST(MergeGguf, UntargetedTensorsAreWhatThePlainQuantizerWrites) {
  auto s = setup("b");
  const auto dir = test::process_temp_dir("qlora_merge");
  const std::string merged = (dir / "merged_b.gguf").string(), plain = (dir / "plain_b.gguf").string();
  lora::LoraConfig lc;
  lc.rank = 4;
  lc.targets = lora::bit(lora::Target::kQ) | lora::bit(lora::Target::kDown);
  auto ad = lora::LoraAdapter::create(s->ad.model(), lc);
  ASSERT_TRUE(ad.is_ok());
  for (float& p : ad->params()) p = 0.01f;
  auto r = convert::merge_lora_gguf<quant::scheme::Q8_0>(s->base, *ad, lora::MergeTarget::kOriginal, merged);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_TRUE(convert::quantize_gguf<quant::scheme::Q8_0>(s->base, plain).is_ok());
  auto a = io::GgufFile::open(merged), b = io::GgufFile::open(plain);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  int changed = 0;
  for (std::size_t i = 0; i < a->tensors().size(); ++i) {
    const auto& x = a->tensors()[i];
    const auto& y = b->tensors()[i];
    ASSERT_EQ(x.name, y.name);
    ASSERT_EQ(x.type, y.type);
    const bool same = std::equal(x.data.begin(), x.data.end(), y.data.begin(), y.data.end());
    const bool targeted = convert::slot_for_tensor(*ad, x.name) != nullptr;
    EXPECT_EQ(same, !targeted) << x.name;
    changed += !same;
  }
  EXPECT_EQ(changed, 4);  // q and down of 2 layers
}

TEST(MergeGguf, AdapterOfAnotherModelIsRefused) {
  auto s = setup("c");
  model::ModelConfig other = s->ad.model();
  other.n_ff = 256;
  auto ad = lora::LoraAdapter::create(other, {});
  ASSERT_TRUE(ad.is_ok());
  const auto dir = test::process_temp_dir("qlora_merge");
  auto r = convert::merge_lora_gguf<quant::scheme::F16>(s->base, *ad, lora::MergeTarget::kNf4,
                                                        (dir / "never.gguf").string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("another shape"), std::string::npos) << r.status().message();
}

}  // namespace
