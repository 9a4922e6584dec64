// judge/chat_backend.hpp: request bodies as Ollama and OpenAI expect them,
// retries on what is worth retrying, and a real round trip over HTTP to a
// fake judge server on loopback.
#include "qlora/judge/chat_backend.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>

#include "qlora/net/http_server.hpp"

namespace qlora::judge {
namespace {

JudgeEndpoint fast(JudgeApi api) {
  JudgeEndpoint e;
  e.api = api;
  e.backoff_s = 0.0;
  e.max_attempts = 3;
  return e;
}

TEST(ChatBackend, RequestBodies) {
  JudgeEndpoint e = fast(JudgeApi::kOllama);
  e.base_url = "http://h:1/";
  EXPECT_EQ(chat_url(e), "http://h:1/api/chat");
  auto j = nlohmann::json::parse(chat_request_body(e, "sys", "user 質問"));
  EXPECT_EQ(j["model"], "qwen2.5:14b");
  EXPECT_EQ(j["messages"][0]["role"], "system");
  EXPECT_EQ(j["messages"][1]["content"], "user 質問");
  EXPECT_EQ(j["stream"], false);
  EXPECT_EQ(j["options"]["temperature"], 0);
  e.api = JudgeApi::kOpenAI;
  EXPECT_EQ(chat_url(e), "http://h:1/v1/chat/completions");
  j = nlohmann::json::parse(chat_request_body(e, "s", "u"));
  EXPECT_EQ(j["temperature"], 0);
  EXPECT_FALSE(j.contains("options"));
  EXPECT_FALSE(parse_judge_api("claude").is_ok());
}

/// A poster that replays canned responses and counts calls.
struct Script {
  std::deque<Result<net::HttpResponse>> replies;
  int calls = 0;
  ChatPoster poster() {
    return [this](const std::string&, const std::string&, double) {
      ++calls;
      auto r = std::move(replies.front());
      replies.pop_front();
      return r;
    };
  }
};

net::HttpResponse ok_ollama(const std::string& content) {
  nlohmann::json j;
  j["message"] = {{"role", "assistant"}, {"content", content}};
  return {200, j.dump(), {}};
}

TEST(ChatBackend, RetriesTransportErrors5xxAndUnparseableReplies) {
  Script s;
  s.replies.push_back(Status::io("connection refused"));
  s.replies.push_back(net::HttpResponse{503, "busy", {}});
  s.replies.push_back(ok_ollama("{\"score\": 2, \"reason\": \"根拠なし\"}"));
  JudgeRecord r = judge_once(fast(JudgeApi::kOllama), "s", "u", s.poster());
  EXPECT_EQ(s.calls, 3);
  ASSERT_TRUE(r.score.has_value());
  EXPECT_EQ(*r.score, 2);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_TRUE(r.error.empty());
  EXPECT_NE(r.raw.find("根拠なし"), std::string::npos);

  Script t;
  t.replies.push_back(ok_ollama("I think it is fine."));
  t.replies.push_back(ok_ollama("Score: 3"));
  r = judge_once(fast(JudgeApi::kOllama), "s", "u", t.poster());
  EXPECT_EQ(*r.score, 3);
  EXPECT_EQ(r.attempts, 2);
}

TEST(ChatBackend, ClientErrorsAreNotRetriedAndFailuresAreRecorded) {
  Script s;
  s.replies.push_back(net::HttpResponse{404, "{\"error\":\"model 'x' not found\"}", {}});
  JudgeRecord r = judge_once(fast(JudgeApi::kOllama), "s", "u", s.poster());
  EXPECT_EQ(s.calls, 1);
  EXPECT_FALSE(r.score.has_value());
  EXPECT_NE(r.error.find("HTTP 404"), std::string::npos) << r.error;
  Script t;
  for (int i = 0; i < 3; ++i) t.replies.push_back(ok_ollama("no idea"));
  r = judge_once(fast(JudgeApi::kOllama), "s", "u", t.poster());
  EXPECT_EQ(t.calls, 3);
  EXPECT_FALSE(r.score.has_value());
  EXPECT_EQ(r.attempts, 3);
  EXPECT_NE(r.error.find("no 0-3 score"), std::string::npos);
}

TEST(ChatBackend, RealHttpToOllamaAndOpenAIShapedServers) {
  std::atomic<int> n{0};
  net::HttpServer server;
  ASSERT_TRUE(server.start({}, [&](const net::HttpRequest& req, net::ResponseWriter& w) {
                     auto j = nlohmann::json::parse(req.body);
                     const std::string user = j["messages"][1]["content"];
                     const std::string verdict = user.find("良い回答") != std::string::npos ? "評価: 3" : "Score: 1";
                     ++n;
                     if (req.target == "/api/chat") {
                       (void)w.respond(200, "application/json", ok_ollama(verdict).body);
                     } else if (req.target == "/v1/chat/completions") {
                       nlohmann::json o;
                       o["choices"] = {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", verdict}}}}};
                       (void)w.respond(200, "application/json", o.dump());
                     } else {
                       (void)w.respond(404, "application/json", net::json_error("no route"));
                     }
                   })
                  .is_ok());
  JudgeEndpoint e = fast(JudgeApi::kOllama);
  e.base_url = "http://127.0.0.1:" + std::to_string(server.port());
  EXPECT_EQ(*judge_once(e, "s", "良い回答です").score, 3);
  e.api = JudgeApi::kOpenAI;
  EXPECT_EQ(*judge_once(e, "s", "悪い").score, 1);
  EXPECT_EQ(n.load(), 2);
}

}  // namespace
}  // namespace qlora::judge
