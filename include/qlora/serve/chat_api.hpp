// qlora/serve/chat_api.hpp — the wire formats of `qlora serve`: Ollama's
// /api/chat, /api/generate and /api/tags, and OpenAI's /v1/chat/completions.
//
// Pure functions from request JSON to a ChatCall (messages + sampling +
// streaming) and from generation results to response JSON, so the protocol is
// tested without a model. Field names and shapes follow what the clients
// people use read: Ollama streams NDJSON objects ending with "done": true and
// its counters (durations in nanoseconds); OpenAI streams server-sent events
// ("data: {chunk}\n\n") ending with "data: [DONE]". Anything malformed — bad
// JSON, a missing or mistyped field — is a ChatError with the HTTP status and
// a message naming the field.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/eval/generate.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::serve {

enum class Api { kOllamaChat, kOllamaGenerate, kOpenAIChat };

/// A request, decoded.
struct ChatCall {
  Api api = Api::kOllamaChat;
  std::string model;
  std::vector<text::ChatMessage> messages;  // chat, or the prompt as a user turn
  std::string raw_prompt;                   // /api/generate with "raw": true
  bool raw = false;
  bool stream = true;
  eval::GenerateOptions gen;  // sampling, max tokens, stop strings (on_text set by the server)
};

struct ChatError {
  int status = 400;
  std::string message;
};

using Json = nlohmann::ordered_json;

namespace api_detail {

inline std::optional<ChatError> type_error(const char* field, const char* want, const nlohmann::json& v) {
  return ChatError{400, std::string("field '") + field + "' must be " + want + ", got " + v.type_name()};
}

/// Sampling options shared by both APIs; `o` is Ollama's "options" object or
/// the OpenAI request itself (with its own names).
inline std::optional<ChatError> read_sampling(const nlohmann::json& o, bool openai, eval::GenerateOptions& g) {
  auto number = [&](const char* key, auto& out) -> std::optional<ChatError> {
    if (!o.contains(key) || o[key].is_null()) return std::nullopt;
    if (!o[key].is_number()) return type_error(key, "a number", o[key]);
    out = o[key].get<std::remove_reference_t<decltype(out)>>();
    return std::nullopt;
  };
  if (auto e = number("temperature", g.sampling.temperature)) return e;
  if (auto e = number("top_p", g.sampling.top_p)) return e;
  if (auto e = number("seed", g.sampling.seed)) return e;
  if (!openai)
    if (auto e = number("top_k", g.sampling.top_k)) return e;
  std::int64_t max_tokens = -1;
  if (auto e = number(openai ? "max_tokens" : "num_predict", max_tokens)) return e;
  if (openai && max_tokens < 0)
    if (auto e = number("max_completion_tokens", max_tokens)) return e;
  if (max_tokens >= 0) g.max_new_tokens = std::size_t(max_tokens);
  if (o.contains("stop") && !o["stop"].is_null()) {
    const auto& s = o["stop"];
    if (s.is_string()) {
      g.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      for (const auto& x : s) {
        if (!x.is_string()) return type_error("stop", "a string or an array of strings", s);
        g.stop.push_back(x.get<std::string>());
      }
    } else {
      return type_error("stop", "a string or an array of strings", s);
    }
  }
  return std::nullopt;
}

inline std::optional<ChatError> read_messages(const nlohmann::json& j, std::vector<text::ChatMessage>& out) {
  if (!j.contains("messages")) return ChatError{400, "field 'messages' is required"};
  const auto& m = j["messages"];
  if (!m.is_array() || m.empty()) return ChatError{400, "field 'messages' must be a non-empty array"};
  for (std::size_t i = 0; i < m.size(); ++i) {
    const auto& x = m[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!x.is_object() || !x.contains("role") || !x["role"].is_string())
      return ChatError{400, at + ": needs a string 'role'"};
    if (!x.contains("content") || !x["content"].is_string())
      return ChatError{400, at + ": needs a string 'content'"};
    out.push_back({x["role"].get<std::string>(), x["content"].get<std::string>()});
  }
  return std::nullopt;
}

}  // namespace api_detail

/// Decode a request body for `api`.
inline std::optional<ChatError> parse_call(Api api, const std::string& body, ChatCall& call) {
  using namespace api_detail;
  call.api = api;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return ChatError{400, "request body is not valid JSON"};
  if (!j.is_object()) return ChatError{400, "request body must be a JSON object"};
  if (j.contains("model")) {
    if (!j["model"].is_string()) return type_error("model", "a string", j["model"]);
    call.model = j["model"].get<std::string>();
  }
  const bool openai = api == Api::kOpenAIChat;
  call.stream = !openai;  // Ollama streams unless told not to; OpenAI the other way round
  if (j.contains("stream")) {
    if (!j["stream"].is_boolean()) return type_error("stream", "a boolean", j["stream"]);
    call.stream = j["stream"].get<bool>();
  }
  call.gen.max_new_tokens = 256;
  if (openai) {
    if (auto e = read_sampling(j, true, call.gen)) return e;
  } else if (j.contains("options")) {
    if (!j["options"].is_object()) return type_error("options", "an object", j["options"]);
    if (auto e = read_sampling(j["options"], false, call.gen)) return e;
  }
  if (api == Api::kOllamaGenerate) {
    if (!j.contains("prompt") || !j["prompt"].is_string()) return ChatError{400, "field 'prompt' (a string) is required"};
    if (j.contains("raw")) {
      if (!j["raw"].is_boolean()) return type_error("raw", "a boolean", j["raw"]);
      call.raw = j["raw"].get<bool>();
    }
    if (call.raw) {
      call.raw_prompt = j["prompt"].get<std::string>();
    } else {
      if (j.contains("system")) {
        if (!j["system"].is_string()) return type_error("system", "a string", j["system"]);
        call.messages.push_back({"system", j["system"].get<std::string>()});
      }
      call.messages.push_back({"user", j["prompt"].get<std::string>()});
    }
    return std::nullopt;
  }
  return read_messages(j, call.messages);
}

/// ISO-8601 UTC time with nanoseconds, as Ollama writes "created_at".
inline std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::time_t t = std::time_t(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[64];
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ns % 1000000000));
  return b;
}

/// "stop" when the model ended its turn (or a stop string), "length" when the
/// token budget or context ran out — the value both APIs use.
inline const char* finish_reason(eval::StopReason r) {
  return r == eval::StopReason::kMaxTokens || r == eval::StopReason::kContextFull ? "length" : "stop";
}

/// One Ollama object: a streamed piece (done = false) or the final one.
inline Json ollama_object(const ChatCall& c, const std::string& model, const std::string& text,
                          const eval::Generation* final_gen) {
  Json j;
  j["model"] = model;
  j["created_at"] = utc_now();
  if (c.api == Api::kOllamaGenerate) j["response"] = text;
  else j["message"] = {{"role", "assistant"}, {"content", text}};
  j["done"] = final_gen != nullptr;
  if (final_gen) {
    const auto ns = [](double s) { return std::int64_t(s * 1e9); };
    j["done_reason"] = finish_reason(final_gen->stop);
    j["total_duration"] = ns(final_gen->stats.seconds);
    j["load_duration"] = 0;
    j["prompt_eval_count"] = final_gen->stats.prompt_tokens;
    j["prompt_eval_duration"] = ns(final_gen->stats.prompt_seconds);
    j["eval_count"] = final_gen->stats.generated_tokens;
    j["eval_duration"] = ns(final_gen->stats.generation_seconds);
  }
  return j;
}

/// OpenAI chat.completion (non-streamed).
inline Json openai_completion(const std::string& id, const std::string& model, const eval::Generation& g) {
  Json j;
  j["id"] = id;
  j["object"] = "chat.completion";
  j["created"] = std::int64_t(std::time(nullptr));
  j["model"] = model;
  j["choices"] = Json::array(
      {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", g.text}}}, {"finish_reason", finish_reason(g.stop)}}});
  j["usage"] = {{"prompt_tokens", g.stats.prompt_tokens},
                {"completion_tokens", g.stats.generated_tokens},
                {"total_tokens", g.stats.prompt_tokens + g.stats.generated_tokens}};
  return j;
}

/// OpenAI chat.completion.chunk: a delta, or the last chunk with finish_reason.
inline Json openai_chunk(const std::string& id, const std::string& model, const std::string* delta,
                         const char* finish) {
  Json j;
  j["id"] = id;
  j["object"] = "chat.completion.chunk";
  j["created"] = std::int64_t(std::time(nullptr));
  j["model"] = model;
  Json choice;
  choice["index"] = 0;
  choice["delta"] = delta ? Json{{"role", "assistant"}, {"content", *delta}} : Json::object();
  choice["finish_reason"] = finish ? Json(finish) : Json(nullptr);
  j["choices"] = Json::array({choice});
  return j;
}

inline std::string dump(const Json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace qlora::serve
