// serve/chat_api.hpp: requests of both APIs decoded with their defaults, every
// malformed field named, and responses in the shapes clients read.
#include "qlora/serve/chat_api.hpp"

#include <gtest/gtest.h>

namespace qlora::serve {
namespace {

TEST(ChatApi, OllamaChatDefaultsAndOptions) {
  ChatCall c;
  ASSERT_FALSE(parse_call(Api::kOllamaChat,
                          R"({"model":"m","messages":[{"role":"user","content":"質問"}],
                              "options":{"temperature":0.5,"top_k":40,"top_p":0.9,"seed":7,"num_predict":12,
                                         "stop":["\n\n"]}})",
                          c));
  EXPECT_TRUE(c.stream);  // Ollama streams unless told not to
  EXPECT_EQ(c.model, "m");
  ASSERT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(c.messages[0].content, "質問");
  EXPECT_FLOAT_EQ(c.gen.sampling.temperature, 0.5f);
  EXPECT_EQ(c.gen.sampling.top_k, 40);
  EXPECT_EQ(c.gen.sampling.seed, 7u);
  EXPECT_EQ(c.gen.max_new_tokens, 12u);
  ASSERT_EQ(c.gen.stop.size(), 1u);
}

TEST(ChatApi, OpenAIAndGenerate) {
  ChatCall c;
  ASSERT_FALSE(parse_call(Api::kOpenAIChat, R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}],
                                               "max_tokens":5,"stop":"END","temperature":0})",
                          c));
  EXPECT_FALSE(c.stream);  // OpenAI does not stream unless asked
  EXPECT_EQ(c.gen.max_new_tokens, 5u);
  EXPECT_EQ(c.gen.stop, std::vector<std::string>{"END"});
  ChatCall g;
  ASSERT_FALSE(parse_call(Api::kOllamaGenerate, R"({"prompt":"p","system":"s","stream":false})", g));
  ASSERT_EQ(g.messages.size(), 2u);
  EXPECT_EQ(g.messages[1].role, "user");
  ChatCall raw;
  ASSERT_FALSE(parse_call(Api::kOllamaGenerate, R"({"prompt":"<|im_start|>x","raw":true})", raw));
  EXPECT_TRUE(raw.raw);
  EXPECT_EQ(raw.raw_prompt, "<|im_start|>x");
}

TEST(ChatApi, MalformedRequestsNameTheField) {
  const std::pair<Api, const char*> bad[] = {
      {Api::kOllamaChat, "{not json"},
      {Api::kOllamaChat, "[1,2]"},
      {Api::kOllamaChat, R"({"model":"m"})"},
      {Api::kOllamaChat, R"({"messages":[]})"},
      {Api::kOllamaChat, R"({"messages":[{"role":"user"}]})"},
      {Api::kOllamaChat, R"({"messages":[{"role":"user","content":1}]})"},
      {Api::kOllamaChat, R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})"},
      {Api::kOllamaChat, R"({"messages":[{"role":"user","content":"x"}],"options":{"temperature":"hot"}})"},
      {Api::kOpenAIChat, R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})"},
      {Api::kOllamaGenerate, R"({"system":"s"})"},
      {Api::kOllamaChat, R"({"model":3,"messages":[{"role":"user","content":"x"}]})"},
  };
  const char* fields[] = {"JSON", "object", "messages", "messages", "content", "content",
                          "stream", "temperature", "stop", "prompt", "model"};
  for (std::size_t i = 0; i < std::size(bad); ++i) {
    ChatCall c;
    auto e = parse_call(bad[i].first, bad[i].second, c);
    ASSERT_TRUE(e.has_value()) << bad[i].second;
    EXPECT_EQ(e->status, 400);
    EXPECT_NE(e->message.find(fields[i]), std::string::npos) << bad[i].second << " -> " << e->message;
  }
}

TEST(ChatApi, ResponseShapes) {
  eval::Generation g;
  g.text = "答え";
  g.stop = eval::StopReason::kEog;
  g.stats.prompt_tokens = 10;
  g.stats.generated_tokens = 3;
  g.stats.seconds = 0.5;
  ChatCall c;
  const Json o = ollama_object(c, "m", "", &g);
  EXPECT_EQ(o["done"], true);
  EXPECT_EQ(o["done_reason"], "stop");
  EXPECT_EQ(o["eval_count"], 3);
  EXPECT_EQ(o["total_duration"], 500000000);
  EXPECT_EQ(o["message"]["role"], "assistant");
  const Json oa = openai_completion("id1", "m", g);
  EXPECT_EQ(oa["choices"][0]["message"]["content"], "答え");
  EXPECT_EQ(oa["usage"]["total_tokens"], 13);
  g.stop = eval::StopReason::kMaxTokens;
  EXPECT_EQ(openai_chunk("id1", "m", nullptr, finish_reason(g.stop))["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(utc_now().size(), 30u);  // 2026-11-22T13:08:30.009848377Z
}

}  // namespace
}  // namespace qlora::serve
