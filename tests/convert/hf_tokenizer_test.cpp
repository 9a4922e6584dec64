// Pins convert/hf_tokenizer.hpp on small tokenizer.json files: the
// pre-tokenizer named from the pipeline declared (Llama-3, Qwen2, GPT-2,
// SmolLM spellings), token types (control, user-defined, unused padding),
// pair merges, and the special-token rules of gguf-py's SpecialVocab — a
// Llama-3 style TemplateProcessing adds BOS and writes add_sep = false.
#include "qlora/convert/hf_tokenizer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "qlora/convert/convert_hf.hpp"  // hf_id_to_title, gguf_size_label

namespace {

namespace fs = std::filesystem;
using namespace qlora;
using namespace qlora::convert;
using nlohmann::json;

json split_then_bytelevel(std::string_view regex) {
  return {{"type", "Sequence"},
          {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                             {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
}

TEST(HfTokenizer, PreTokenizerNames) {
  auto name = [](json pre) {
    auto r = hf_pre_tokenizer_name(json{{"pre_tokenizer", pre}}, "tokenizer.json");
    return r.is_ok() ? *r : "error: " + r.status().message();
  };
  EXPECT_EQ(name(split_then_bytelevel(kHfLlama3Regex)), "llama-bpe");
  EXPECT_EQ(name(split_then_bytelevel(kHfQwen2Regex)), "qwen2");
  EXPECT_EQ(name({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}), "gpt-2");
  EXPECT_EQ(name({{"type", "Sequence"},
                  {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, {{"type", "ByteLevel"}}}}}),
            "smollm");
  EXPECT_EQ(name(split_then_bytelevel("\\s+")).rfind("error: tokenizer.json: pre_tokenizer", 0), 0u);
  EXPECT_EQ(name({{"type", "ByteLevel"}, {"add_prefix_space", true}}).rfind("error:", 0), 0u);
}

class HfTokenizerDir : public ::testing::Test {
 protected:
  fs::path dir_ = fs::temp_directory_path() / ("qlora-hf-tok-" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& f, const json& j) { std::ofstream(dir_ / f) << j.dump(); }
};

TEST_F(HfTokenizerDir, Llama3StyleVocabulary) {
  // Five model tokens, three added ones, ids up to 9: 8 is nobody's.
  write("tokenizer.json",
        {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"\xC4\xA0" "a", 3}, {"c", 4}}},
                    {"merges", json::array({json::array({"a", "b"}), json::array({" ", "a"})})}}},
         {"added_tokens", {{{"id", 5}, {"content", "<|begin_of_text|>"}, {"special", true}},
                           {{"id", 6}, {"content", "<|eot_id|>"}, {"special", true}},
                           {{"id", 7}, {"content", "\xE2\x96\x81tool"}, {"special", false}},
                           {{"id", 9}, {"content", "<|reserved_0|>"}, {"special", false}}}},
         {"pre_tokenizer", split_then_bytelevel(kHfLlama3Regex)},
         {"post_processor", {{"type", "Sequence"}, {"processors", {
             {{"type", "ByteLevel"}},
             {{"type", "TemplateProcessing"},
              {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}}}}, {{"Sequence", {{"id", "A"}}}}}},
              {"pair", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}}}}, {{"Sequence", {{"id", "A"}}}},
                        {{"SpecialToken", {{"id", "<|begin_of_text|>"}}}}, {{"Sequence", {{"id", "B"}}}}}}}}}}}});
  write("tokenizer_config.json", {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"},
                                  {"chat_template", "{{ messages }}"}});
  HfModelConfig cfg;
  cfg.arch = HfArch::kLlama;
  cfg.vocab_size = 10;
  auto r = read_hf_tokenizer(dir_, cfg, json{{"bos_token_id", 5}, {"eos_token_id", {6, 1}}});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->pre, "llama-bpe");
  const auto& tokens = *r->kvs.find("tokenizer.ggml.tokens")->array_if<std::string>();
  const auto& types = *r->kvs.find("tokenizer.ggml.token_type")->array_if<std::int32_t>();
  EXPECT_EQ(tokens[7], " tool");    // user-defined: SentencePiece's ▁ back to a space
  EXPECT_EQ(tokens[8], "[PAD8]");   // no token has id 8
  EXPECT_EQ(types, (std::vector<std::int32_t>{1, 1, 1, 1, 1, 3, 3, 4, 5, 3}));  // <|reserved_0|> looks special
  EXPECT_EQ(*r->kvs.find("tokenizer.ggml.merges")->array_if<std::string>(),
            (std::vector<std::string>{"a b", "\xC4\xA0 a"}));  // a space inside a pair part becomes U+0120
  EXPECT_EQ(*r->kvs.find("tokenizer.ggml.bos_token_id")->scalar_if<std::uint32_t>(), 5u);
  EXPECT_EQ(*r->kvs.find("tokenizer.ggml.eos_token_id")->scalar_if<std::uint32_t>(), 6u);
  EXPECT_EQ(*r->kvs.find("tokenizer.ggml.add_bos_token")->scalar_if<bool>(), true);
  EXPECT_EQ(*r->kvs.find("tokenizer.ggml.add_eos_token")->scalar_if<bool>(), false);
  EXPECT_EQ(*r->kvs.find("tokenizer.ggml.add_sep_token")->scalar_if<bool>(), false);
  EXPECT_EQ(*r->kvs.find("tokenizer.chat_template")->scalar_if<std::string>(), "{{ messages }}");
  // Key order as the reference writes them.
  std::vector<std::string> keys;
  for (const auto& kv : r->kvs.items()) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                                            "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                                            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                            "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                                            "tokenizer.ggml.add_sep_token", "tokenizer.chat_template"}));
}

TEST_F(HfTokenizerDir, IdOutsideVocabIsNamed) {
  write("tokenizer.json", {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 12}}}}},
                           {"pre_tokenizer", {{"type", "ByteLevel"}}}});
  HfModelConfig cfg;
  cfg.vocab_size = 4;
  auto r = read_hf_tokenizer(dir_, cfg, json::object());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("model.vocab id 12 of 'b' is outside config.json's vocab_size 4"), std::string::npos)
      << r.status().message();
}

TEST(HfMetadata, TitleAndSizeLabelAsGgufPy) {
  EXPECT_EQ(hf_id_to_title("hf"), "Hf");
  EXPECT_EQ(hf_id_to_title("SmolLM2-135M-Instruct"), "SmolLM2 135M Instruct");
  EXPECT_EQ(hf_id_to_title("tiny-llama-v1.2-2x"), "Tiny Llama v1.2 2x");
  EXPECT_EQ(gguf_size_label(6'400'000), "6.4M");
  EXPECT_EQ(gguf_size_label(134'515'008), "135M");
  EXPECT_EQ(gguf_size_label(8'030'261'248), "8.0B");
  EXPECT_EQ(gguf_size_label(500), "0.50K");
}

}  // namespace
