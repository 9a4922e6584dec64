// Pins convert/hf_config.hpp: config.json read as transformers' AutoConfig
// fills it (llama always has head_dim; qwen2's missing num_key_value_heads
// is 32; RoPE theta from rope_parameters over the top level), the
// generation_config sampling keys, and errors naming the field.
#include "qlora/convert/hf_config.hpp"

#include <gtest/gtest.h>

namespace {

using namespace qlora::convert;
using nlohmann::json;

TEST(HfConfig, LlamaDefaultsAsAutoConfigFillsThem) {
  auto c = parse_hf_config(json{{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 576},
                                {"num_attention_heads", 9}, {"num_key_value_heads", 3}},
                           "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->arch, HfArch::kLlama);
  ASSERT_TRUE(c->head_dim.has_value());  // LlamaConfig computes it, so the GGUF gets key_length
  EXPECT_EQ(*c->head_dim, 64);
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_EQ(c->vocab_size, 32000);
  EXPECT_DOUBLE_EQ(c->rope.theta, 10000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
}

TEST(HfConfig, Qwen2HasNoHeadDimAndItsOwnDefaults) {
  auto c = parse_hf_config(json{{"architectures", {"Qwen2ForCausalLM"}}, {"hidden_size", 896},
                                {"num_attention_heads", 32}},
                           "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_FALSE(c->head_dim.has_value());
  EXPECT_EQ(c->head_size(), 28);
  EXPECT_EQ(c->num_key_value_heads, 32);  // the class default, not "= heads"
  EXPECT_EQ(c->max_position_embeddings, 32768);
  auto n = parse_hf_config(json{{"architectures", {"Qwen2ForCausalLM"}}, {"num_attention_heads", 16},
                                {"num_key_value_heads", nullptr}},
                           "config.json");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(n->num_key_value_heads, 16);  // explicit null: one KV head per query head
}

TEST(HfConfig, RopeParametersWinOverTopLevelTheta) {
  auto c = parse_hf_config(json{{"architectures", {"LlamaForCausalLM"}}, {"rope_theta", 10000.0},
                                {"rope_parameters", {{"rope_theta", 500000.0}, {"rope_type", "llama3"}, {"factor", 8}}}},
                           "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  EXPECT_EQ(c->rope.type, "llama3");
  EXPECT_DOUBLE_EQ(*c->rope.factor, 8.0);
  auto legacy = parse_hf_config(json{{"architectures", {"LlamaForCausalLM"}}, {"rope_scaling", {{"type", "linear"}, {"factor", 2}}}},
                                "config.json");
  ASSERT_TRUE(legacy.is_ok());
  EXPECT_EQ(legacy->rope.type, "linear");  // "type" is read as "rope_type"
}

TEST(HfConfig, ErrorsNameTheField) {
  auto a = parse_hf_config(json{{"architectures", {"GPT2LMHeadModel"}}}, "d/config.json");
  ASSERT_FALSE(a.is_ok());
  EXPECT_NE(a.status().message().find("d/config.json: architecture 'GPT2LMHeadModel' is not supported"), std::string::npos);
  auto t = parse_hf_config(json{{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64.5}}, "c.json");
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("field 'hidden_size' must be an integer"), std::string::npos);
  auto g = parse_hf_config(json{{"architectures", {"LlamaForCausalLM"}}, {"num_attention_heads", 6},
                                {"num_key_value_heads", 4}},
                           "c.json");
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("not a multiple of num_key_value_heads"), std::string::npos);
  auto h = parse_hf_config(json{{"architectures", {"Qwen2ForCausalLM"}}, {"hidden_size", 65},
                                {"num_attention_heads", 4}, {"num_key_value_heads", 4}},
                           "c.json");
  ASSERT_FALSE(h.is_ok());
  EXPECT_NE(h.status().message().find("c.json: hidden_size is not a multiple of num_attention_heads"), std::string::npos);
}

TEST(HfConfig, SamplingDefaultsInTheReferenceOrder) {
  auto s = hf_sampling_defaults(json{{"temperature", 0.7}, {"top_k", 20}, {"repetition_penalty", 1.05},
                                     {"top_p", nullptr}, {"do_sample", true}},
                                "generation_config.json");
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_STREQ((*s)[0].key->gguf_key, "general.sampling.top_k");
  EXPECT_STREQ((*s)[1].key->gguf_key, "general.sampling.temp");
  EXPECT_STREQ((*s)[2].key->gguf_key, "general.sampling.penalty_repeat");
  auto bad = hf_sampling_defaults(json{{"top_k", 2.5}}, "generation_config.json");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("field 'top_k' has the wrong type"), std::string::npos);
}

}  // namespace
