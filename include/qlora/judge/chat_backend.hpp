// qlora/judge/chat_backend.hpp — an LLM judge over HTTP: Ollama's /api/chat
// or any OpenAI-compatible /v1/chat/completions (vLLM, llama.cpp's server,
// LM Studio, `qlora serve`).
//
// One judgement = system prompt (the rubric) + user prompt (question, answer,
// optionally the reference) at temperature 0, non-streaming. What can go
// wrong is retried with exponential backoff: transport errors and timeouts,
// 429 and 5xx replies, and replies with no parseable score (a judge that
// rambles usually answers properly the second time). 4xx errors other than
// 429 are not retried — a wrong model name will not fix itself. Every
// attempt's outcome is kept in the JudgeRecord, so the raw judgements can be
// audited next to the scores.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/judge/score_parse.hpp"
#include "qlora/net/http_client.hpp"

namespace qlora::judge {

enum class JudgeApi { kOllama, kOpenAI };

inline Result<JudgeApi> parse_judge_api(std::string_view s) {
  if (s == "ollama") return JudgeApi::kOllama;
  if (s == "openai") return JudgeApi::kOpenAI;
  return Status::invalid("unknown judge API '" + std::string(s) + "' (ollama, openai)");
}

struct JudgeEndpoint {
  JudgeApi api = JudgeApi::kOllama;
  std::string base_url = "http://127.0.0.1:11434";  // Ollama's default
  std::string model = "qwen2.5:14b";                // the paper's judge
  double timeout_s = 120.0;
  int max_attempts = 4;
  double backoff_s = 1.0;  // doubled after each failed attempt
};

/// The full URL of the chat endpoint for `e`.
inline std::string chat_url(const JudgeEndpoint& e) {
  std::string base = e.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + (e.api == JudgeApi::kOllama ? "/api/chat" : "/v1/chat/completions");
}

inline std::string chat_request_body(const JudgeEndpoint& e, const std::string& system, const std::string& user) {
  nlohmann::ordered_json j;
  j["model"] = e.model;
  j["messages"] = nlohmann::ordered_json::array(
      {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}});
  j["stream"] = false;
  if (e.api == JudgeApi::kOllama) j["options"] = {{"temperature", 0}};
  else j["temperature"] = 0;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The assistant's text out of a chat response body.
inline Result<std::string> chat_reply_text(JudgeApi api, const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid("judge reply is not JSON: " + body.substr(0, 200));
  if (api == JudgeApi::kOllama) {
    if (j.contains("message") && j["message"].is_object() && j["message"].contains("content") &&
        j["message"]["content"].is_string())
      return j["message"]["content"].get<std::string>();
  } else if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
    const auto& c = j["choices"][0];
    if (c.contains("message") && c["message"].contains("content") && c["message"]["content"].is_string())
      return c["message"]["content"].get<std::string>();
  }
  return Status::invalid("judge reply has no message content: " + body.substr(0, 200));
}

struct JudgeRecord {
  std::optional<int> score;
  ScoreSource source = ScoreSource::kNone;
  std::string raw;       // the last reply text (or error) received
  int attempts = 0;
  double seconds = 0.0;  // all attempts, backoff included
  std::string error;     // empty when a score was obtained
};

/// Sends one request: url, body, timeout -> response. Defaults to net::http_post_json;
/// tests inject fakes.
using ChatPoster = std::function<Result<net::HttpResponse>(const std::string&, const std::string&, double)>;

inline ChatPoster default_poster() {
  return [](const std::string& url, const std::string& body, double timeout_s) {
    return net::http_post_json(url, body, net::ClientOptions{timeout_s});
  };
}

/// Judge one answer: build the request, retry what is worth retrying, parse.
inline JudgeRecord judge_once(const JudgeEndpoint& e, const std::string& system, const std::string& user,
                              const ChatPoster& post = default_poster()) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  JudgeRecord rec;
  const std::string url = chat_url(e);
  const std::string body = chat_request_body(e, system, user);
  double wait = e.backoff_s;
  for (rec.attempts = 1; rec.attempts <= e.max_attempts; ++rec.attempts) {
    bool retry = true;
    auto r = post(url, body, e.timeout_s);
    if (!r) {
      rec.error = r.status().message();
      rec.raw = rec.error;
    } else if (r->status != 200) {
      rec.error = url + ": HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300);
      rec.raw = r->body;
      retry = r->status == 429 || r->status >= 500;
    } else if (auto text = chat_reply_text(e.api, r->body); !text) {
      rec.error = text.status().message();
      rec.raw = r->body;
    } else {
      rec.raw = *text;
      const ParsedScore p = parse_score(*text);
      if (p.score) {
        rec.score = p.score;
        rec.source = p.source;
        rec.error.clear();
        break;
      }
      rec.error = "no 0-3 score in the judge's reply";
    }
    if (!retry || rec.attempts == e.max_attempts) break;
    if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    wait *= 2.0;
  }
  if (rec.attempts > e.max_attempts) rec.attempts = e.max_attempts;
  rec.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return rec;
}

}  // namespace qlora::judge
