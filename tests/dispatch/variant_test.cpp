// dispatch/variant.hpp: the compile-time shape of a preset, the checks a
// variant runs on a model file, and its description.
#include "qlora/dispatch/variant.hpp"

#include <gtest/gtest.h>

namespace qlora::dispatch {
namespace {

using Smol = Variant<preset::Smollm2_135M, quant::scheme::Q4_K_M, model::attn::GQA, 32>;
using Swallow = Variant<preset::Swallow8B, quant::scheme::NF4, model::attn::GQA, 16>;

// The shapes are compile-time constants from the presets.
static_assert(PresetShape<preset::Swallow8B>::kHeads == 32 && PresetShape<preset::Swallow8B>::kKvHeads == 8);
static_assert(PresetShape<preset::Qwen25_7B>::kHeads == 28 && PresetShape<preset::Qwen25_7B>::kKvHeads == 4);
static_assert(PresetShape<preset::Smollm2_135M>::kGqa && PresetShape<preset::Smollm2_135M>::kHeadDim == 64);
static_assert(Smol::kRank == 32 && !Smol::kNf4 && Smol::kQuant == "q4_k_m");
static_assert(Swallow::kRank == 16 && Swallow::kNf4 && Swallow::kAttention == "gqa");

TEST(Variant, PresetShapeEqualsThePreset) {
  const model::ModelConfig c = model::presets::tanuki_8b();
  using S = PresetShape<preset::Tanuki8B>;
  EXPECT_EQ(S::kLayers, c.n_layer);
  EXPECT_EQ(S::kEmbd, c.n_embd);
  EXPECT_EQ(S::kFf, c.n_ff);
  EXPECT_EQ(S::kVocab, c.n_vocab);
  EXPECT_EQ(S::kHeadDim, c.head_dim);
}

TEST(Variant, AcceptsItsPresetAndNamesTheFirstDifference) {
  model::ModelConfig m = model::presets::smollm2_135m();
  EXPECT_TRUE(Smol::check_model(m, "m.gguf").is_ok());
  m.n_head_kv = 9;  // an MHA model of the same width
  Status s = Smol::check_model(m, "m.gguf");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("m.gguf"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("KV heads is 9 in the file, 3 in the preset"), std::string::npos) << s.message();
  const model::ModelConfig tiny = model::presets::tiny();
  s = Swallow::check_model(tiny, "tiny.gguf");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("layers is 2 in the file, 32 in the preset"), std::string::npos) << s.message();
  model::ModelConfig q = model::presets::smollm2_135m();
  q.arch = "qwen2";
  EXPECT_NE(Smol::check_model(q, "q.gguf").message().find("architecture is qwen2"), std::string::npos);
}

TEST(Variant, DescribesWhatIsBakedIn) {
  const std::string d = Smol::describe();
  EXPECT_EQ(Smol::name(), "smollm2-135m q4_k_m gqa r32");
  EXPECT_NE(d.find("SmolLM2-135M-Instruct"), std::string::npos) << d;
  EXPECT_NE(d.find("9 query / 3 KV heads of 64"), std::string::npos) << d;
  EXPECT_NE(d.find("Attention<GQA> (3 query heads per KV head)"), std::string::npos) << d;
  EXPECT_NE(d.find("QuantScheme<q4_k_m>"), std::string::npos) << d;
  EXPECT_NE(d.find("LoRARank<32>"), std::string::npos) << d;
  EXPECT_NE(Swallow::describe().find("NF4 with double quantization"), std::string::npos);
}

}  // namespace
}  // namespace qlora::dispatch
