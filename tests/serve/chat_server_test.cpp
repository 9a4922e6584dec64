// serve/chat_server.hpp with SmolLM2 behind a real loopback server: every
// endpoint streamed and not, 4xx answers, concurrent clients each getting
// their solo output, and the judge client of `qlora judge` talking to it.
#include "qlora/serve/chat_server.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "qlora/judge/chat_backend.hpp"
#include "qlora/net/http_client.hpp"

namespace qlora::serve {
namespace {

const std::string kModel = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Served {
  explicit Served(io::GgufFile f) : file(std::move(f)) {}
  io::GgufFile file;
  std::optional<text::BpeTokenizer> tok;
  std::optional<text::ChatTemplate> tmpl;
  std::optional<model::Decoder> dec;
  std::unique_ptr<ChatServer> chat;
  net::HttpServer http;
  std::string url;
};

std::unique_ptr<Served> serve_smollm2() {
  auto f = io::GgufFile::open(kModel);
  if (!f) return nullptr;
  auto s = std::make_unique<Served>(std::move(*f));
  auto tok = text::BpeTokenizer::from_gguf(s->file);
  auto tmpl = text::ChatTemplate::from_gguf(s->file);
  auto dec = model::Decoder::open(s->file, {512});
  if (!tok || !tmpl || !dec) return nullptr;
  s->tok.emplace(std::move(*tok));
  s->tmpl.emplace(std::move(*tmpl));
  s->dec.emplace(std::move(*dec));
  s->chat = std::make_unique<ChatServer>(*s->dec, *s->tok, *s->tmpl, ModelInfo{"smol", 1, "llama", "Q4_1"});
  EXPECT_TRUE(s->http.start({}, [c = s->chat.get()](const net::HttpRequest& r, net::ResponseWriter& w) {
                 c->handle(r, w);
               }).is_ok());
  s->url = "http://127.0.0.1:" + std::to_string(s->http.port());
  return s;
}

nlohmann::json post(const Served& s, const std::string& path, const std::string& body, int* status = nullptr) {
  auto r = net::http_post_json(s.url + path, body);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  if (status) *status = r->status;
  return nlohmann::json::parse(r->body, nullptr, false);
}

TEST(ChatServer, EndpointsStreamedAndNot) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  auto s = serve_smollm2();
  ASSERT_TRUE(s);
  const std::string msgs = R"("messages":[{"role":"user","content":"What is 2+2?"}])";
  auto full = post(*s, "/api/chat", "{" + msgs + R"(,"stream":false,"options":{"num_predict":8}})");
  const std::string text = full["message"]["content"];
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(full["done"], true);
  EXPECT_EQ(full["eval_count"], 8);
  // Streamed NDJSON pieces concatenate to the same greedy text.
  auto r = net::http_post_json(s->url + "/api/chat", "{" + msgs + R"(,"options":{"num_predict":8}})");
  ASSERT_TRUE(r.is_ok());
  std::string joined;
  std::size_t lines = 0;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    joined += j["message"]["content"].get<std::string>();
    ++lines;
    if (j["done"] == true) EXPECT_EQ(j["done_reason"], "length");
  }
  EXPECT_EQ(joined, text);
  EXPECT_GE(lines, 3u);
  // OpenAI, non-streamed and streamed.
  auto oa = post(*s, "/v1/chat/completions", "{" + msgs + R"(,"max_tokens":8,"model":"smol"})");
  EXPECT_EQ(oa["choices"][0]["message"]["content"], text);
  EXPECT_EQ(oa["usage"]["completion_tokens"], 8);
  r = net::http_post_json(s->url + "/v1/chat/completions", "{" + msgs + R"(,"max_tokens":8,"stream":true})");
  ASSERT_TRUE(r.is_ok());
  EXPECT_NE(r->body.find("data: [DONE]\n\n"), std::string::npos);
  EXPECT_NE(r->body.find("\"finish_reason\":\"length\""), std::string::npos);
  auto tags = net::http_get(s->url + "/api/tags");
  ASSERT_TRUE(tags.is_ok());
  EXPECT_EQ(nlohmann::json::parse(tags->body)["models"][0]["name"], "smol");
  auto gen = post(*s, "/api/generate", R"({"prompt":"What is 2+2?","stream":false,"options":{"num_predict":8}})");
  EXPECT_EQ(gen["response"], text);  // the prompt becomes the same user turn
}

TEST(ChatServer, ClientErrors) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  auto s = serve_smollm2();
  ASSERT_TRUE(s);
  int status = 0;
  auto e = post(*s, "/api/chat", "{broken", &status);
  EXPECT_EQ(status, 400);
  EXPECT_TRUE(e.contains("error"));
  post(*s, "/api/chat", R"({"model":"llama3:70b","messages":[{"role":"user","content":"x"}]})", &status);
  EXPECT_EQ(status, 404);
  post(*s, "/api/unknown", "{}", &status);
  EXPECT_EQ(status, 404);
  auto g = net::http_get(s->url + "/api/chat");
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g->status, 405);
}

TEST(ChatServer, ConcurrentClientsGetTheirSoloOutput) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  auto s = serve_smollm2();
  ASSERT_TRUE(s);
  const std::string prompts[] = {"Name a fruit.", "砂防ダムとは？", "Count to three."};
  std::string solo[3], together[3];
  auto ask = [&](int i) {
    auto j = post(*s, "/v1/chat/completions",
                  R"({"max_tokens":10,"messages":[{"role":"user","content":")" + prompts[i] + "\"}]}");
    return j["choices"][0]["message"]["content"].get<std::string>();
  };
  for (int i = 0; i < 3; ++i) solo[i] = ask(i);
  std::vector<std::thread> th;
  for (int i = 0; i < 3; ++i) th.emplace_back([&, i] { together[i] = ask(i); });
  for (auto& t : th) t.join();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(together[i], solo[i]) << prompts[i];
}

TEST(ChatServer, TheJudgeClientTalksToIt) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  auto s = serve_smollm2();
  ASSERT_TRUE(s);
  for (judge::JudgeApi api : {judge::JudgeApi::kOllama, judge::JudgeApi::kOpenAI}) {
    judge::JudgeEndpoint e;
    e.api = api;
    e.base_url = s->url;
    e.model = "smol";
    e.max_attempts = 1;
    // A 135M model is no judge: what is pinned is the exchange — a reply
    // came back and was recorded, scored or not.
    const judge::JudgeRecord r = judge::judge_once(e, "Reply with a score from 0 to 3.", "Score: ");
    EXPECT_EQ(r.attempts, 1);
    EXPECT_FALSE(r.raw.empty());
    EXPECT_EQ(r.error.find("HTTP"), std::string::npos) << r.error;
  }
}

}  // namespace
}  // namespace qlora::serve
