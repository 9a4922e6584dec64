// Chat templates: equal to jinja2's rendering of SmolLM2's own GGUF template
// and of the reference Qwen2.5 / Llama-3 templates
// (tests/data/tokenizer/chat_templates.json, tools/gen_tokenizer_golden.py);
// detection from Jinja source; the prompt/answer split used for loss masking.
#include "qlora/text/chat_template.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace qlora::text {
namespace {

const std::string kDataDir = std::string(QLORA_TEST_DATA_DIR) + "/tokenizer";
const std::string kModel = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";

nlohmann::json golden() {
  std::ifstream in(kDataDir + "/chat_templates.json");
  return nlohmann::json::parse(in);
}

std::vector<ChatMessage> conversation(const nlohmann::json& j) {
  std::vector<ChatMessage> v;
  for (const auto& m : j) v.push_back({m.at("role"), m.at("content")});
  return v;
}

TEST(ChatTemplate, MatchesJinjaRendering) {
  const auto g = golden();
  int n = 0;
  for (const auto& c : g.at("cases")) {
    const std::string name = c.at("template");
    auto t = ChatTemplate::from_name(name);
    ASSERT_TRUE(t) << t.status().message();
    const auto msgs = conversation(g.at("conversations").at(c.at("conversation").get<int>()));
    auto text = t->apply(msgs, c.at("add_generation_prompt").get<bool>());
    ASSERT_TRUE(text) << text.status().message();
    EXPECT_EQ(*text, c.at("text").get<std::string>()) << name << " conversation " << c.at("conversation");
    ++n;
  }
  EXPECT_EQ(n, 30);
}

TEST(ChatTemplate, DetectsTemplatesFromJinja) {
  const auto g = golden();
  auto smol = ChatTemplate::detect(g.at("templates").at("smollm2").get<std::string>());
  ASSERT_TRUE(smol);
  EXPECT_EQ(smol->name, "smollm2");
  EXPECT_EQ(smol->default_system, kSmolLM2SystemPrompt);
  auto qwen = ChatTemplate::detect(g.at("templates").at("qwen2.5").get<std::string>());
  ASSERT_TRUE(qwen);
  EXPECT_EQ(qwen->name, "qwen2.5");
  EXPECT_EQ(qwen->default_system, kQwen25SystemPrompt);
  auto llama = ChatTemplate::detect(g.at("templates").at("llama3").get<std::string>());
  ASSERT_TRUE(llama);
  EXPECT_EQ(llama->format, ChatFormat::kLlama3);
  EXPECT_EQ(llama->default_system, "");
  auto l31 = ChatTemplate::detect("{{ '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: ' }}");
  ASSERT_FALSE(l31);
  EXPECT_NE(l31.status().message().find("Llama-3.1"), std::string::npos);
  auto other = ChatTemplate::detect("{{ '[INST] ' + message['content'] + ' [/INST]' }}");
  ASSERT_FALSE(other);
  EXPECT_NE(other.status().message().find("supported: chatml"), std::string::npos) << other.status().message();
  EXPECT_FALSE(ChatTemplate::from_name("mistral"));
}

TEST(ChatTemplate, FromRealGguf) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not found";
  auto g = io::GgufFile::open(kModel);
  ASSERT_TRUE(g);
  auto t = ChatTemplate::from_gguf(*g);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->name, "smollm2");
}

TEST(ChatTemplate, Llama3TrimsLikePythonStrip) {
  auto t = ChatTemplate::from_name("elyza");
  std::vector<ChatMessage> m = {{"system", std::string(kElyzaSystemPrompt)}, {"user", "\u3000 堤防とは？\n\x1c"}};
  EXPECT_EQ(*t->apply(m, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + std::string(kElyzaSystemPrompt) +
                "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n堤防とは？<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, JapaneseAlpaca) {
  auto t = ChatTemplate::from_name("tanuki");
  ASSERT_TRUE(t);
  std::vector<ChatMessage> m = {{"user", "砂防とは？"}, {"assistant", "土砂災害を防ぐことです。"}};
  EXPECT_EQ(*t->apply(m, false), "<s>" + std::string(kTanukiSystemPrompt) +
                                     "\n\n### 指示:\n砂防とは？\n\n### 応答:\n土砂災害を防ぐことです。</s>\n\n");
  EXPECT_EQ(*t->apply(std::span(m).first(1), true),
            "<s>" + std::string(kTanukiSystemPrompt) + "\n\n### 指示:\n砂防とは？\n\n### 応答:\n");
  std::vector<ChatMessage> bad = {{"tool", "x"}};
  auto r = t->apply(bad, false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("role 'tool'"), std::string::npos);
  auto d = ChatTemplate::detect("{{ '### 指示:\\n' + message['content'] }}");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->format, ChatFormat::kJapaneseAlpaca);
}

TEST(ChatTemplate, SplitAnswerForEveryFormat) {
  const std::vector<ChatMessage> m = {{"user", "堤防の余裕高とは？"}, {"assistant", "計画高水位に加える余裕の高さです。"}};
  for (const char* name : {"smollm2", "qwen2.5", "llama3", "tanuki", "chatml"}) {
    auto t = ChatTemplate::from_name(name);
    auto pa = t->split_answer(m);
    ASSERT_TRUE(pa) << name << ": " << pa.status().message();
    EXPECT_EQ(pa->prompt(), *t->apply(std::span(m).first(1), true)) << name;
    EXPECT_EQ(pa->text, *t->apply(m, false)) << name;
    EXPECT_EQ(pa->answer().substr(0, 6), "計画") << name;
  }
  auto t = ChatTemplate::from_name("smollm2");
  EXPECT_EQ(t->split_answer(m)->answer(), "計画高水位に加える余裕の高さです。<|im_end|>\n");
  EXPECT_FALSE(t->split_answer(std::span(m).first(1)));
  EXPECT_FALSE(t->apply({}, true));
  std::vector<ChatMessage> bad_utf8 = {{"user", "ok\xFF"}};
  auto r = t->apply(bad_utf8, true);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("chat message 0 content: invalid UTF-8 at byte offset 2"), std::string::npos)
      << r.status().message();
}

TEST(ChatTemplate, TokenizedAnswerMask) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not found";
  auto g = io::GgufFile::open(kModel);
  ASSERT_TRUE(g);
  auto tok = BpeTokenizer::from_gguf(*g);
  ASSERT_TRUE(tok);
  auto t = ChatTemplate::from_gguf(*g);
  const std::vector<ChatMessage> m = {{"user", "砂防えん堤の目的は？"}, {"assistant", "土石流を捕捉することです。"}};
  auto pt = t->tokenize_answer(*tok, m);
  ASSERT_TRUE(pt) << pt.status().message();
  EXPECT_TRUE(pt->same_as_joint);
  ASSERT_GT(pt->ids.size(), pt->n_prompt);
  EXPECT_EQ(pt->ids[0], 1);                  // <|im_start|> parsed as a special token
  EXPECT_EQ(pt->ids[pt->n_prompt - 1], 198);  // "\n" after "assistant"
  EXPECT_EQ(pt->ids[pt->ids.size() - 2], 2);  // <|im_end|> closes the answer
  auto answer = tok->decode(std::span(pt->ids).subspan(pt->n_prompt));
  EXPECT_EQ(*answer, "土石流を捕捉することです。<|im_end|>\n");
}

}  // namespace
}  // namespace qlora::text
