// qlora/serve/chat_server.hpp — the routes of `qlora serve` over one model.
//
// The decoder holds one KV cache, so generations are serialized by a mutex:
// concurrent clients queue and each gets exactly the output it would get
// alone (tested), which for one CPU-bound model is also the fastest schedule.
// Streaming responses are written as the generator produces text; a client
// that disconnects stops its generation at the next piece.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "qlora/eval/generate.hpp"
#include "qlora/model/decoder.hpp"
#include "qlora/net/http_server.hpp"
#include "qlora/serve/chat_api.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::serve {

/// What /api/tags reports about the model.
struct ModelInfo {
  std::string name;          // the name clients use ("model" field)
  std::uint64_t size = 0;    // file bytes
  std::string family;        // llama, qwen2
  std::string quantization;  // e.g. Q4_K_M
};

class ChatServer {
 public:
  ChatServer(model::Decoder& dec, const text::BpeTokenizer& tok, const text::ChatTemplate& tmpl, ModelInfo info)
      : dec_(dec), tok_(tok), tmpl_(tmpl), info_(std::move(info)) {}

  /// The net::Handler.
  void handle(const net::HttpRequest& req, net::ResponseWriter& w) {
    const std::string path = req.target.substr(0, req.target.find('?'));
    auto route = [&](const char* method) {
      if (req.method == method) return true;
      (void)w.respond(405, "application/json", net::json_error(path + " takes " + method + ", not " + req.method));
      return false;
    };
    if (path == "/api/tags" || path == "/v1/models") {
      if (route("GET")) (void)w.respond(200, "application/json", dump(path == "/api/tags" ? tags() : models()));
      return;
    }
    if (path == "/" || path == "/api/version") {
      if (route("GET"))
        (void)w.respond(200, "application/json", path == "/" ? "{\"status\":\"qlora is running\"}"
                                                             : "{\"version\":\"qlora-0.1\"}");
      return;
    }
    Api api;
    if (path == "/api/chat") api = Api::kOllamaChat;
    else if (path == "/api/generate") api = Api::kOllamaGenerate;
    else if (path == "/v1/chat/completions") api = Api::kOpenAIChat;
    else {
      (void)w.respond(404, "application/json", net::json_error("no such endpoint: " + path));
      return;
    }
    if (!route("POST")) return;
    ChatCall call;
    if (auto err = parse_call(api, req.body, call)) {
      (void)w.respond(err->status, "application/json", net::json_error(err->message));
      return;
    }
    if (!call.model.empty() && call.model != info_.name) {
      (void)w.respond(404, "application/json",
                      net::json_error("model '" + call.model + "' not found; this server has '" + info_.name + "'"));
      return;
    }
    run(call, w);
  }

  Json tags() const {
    Json m;
    m["name"] = info_.name;
    m["model"] = info_.name;
    m["modified_at"] = utc_now();
    m["size"] = info_.size;
    m["digest"] = "";
    m["details"] = {{"format", "gguf"}, {"family", info_.family}, {"quantization_level", info_.quantization}};
    return Json{{"models", Json::array({m})}};
  }

  Json models() const {
    return Json{{"object", "list"},
                {"data", Json::array({{{"id", info_.name}, {"object", "model"}, {"owned_by", "qlora"}}})}};
  }

 private:
  void run(ChatCall& call, net::ResponseWriter& w) {
    const bool openai = call.api == Api::kOpenAIChat;
    const std::string id = "chatcmpl-" + std::to_string(++counter_);
    std::vector<text::TokenId> prompt;
    if (call.raw) {
      auto p = tok_.encode(call.raw_prompt, /*add_special=*/true, /*parse_special=*/true);
      if (p) prompt = std::move(*p);
    } else {
      auto p = eval::encode_chat_prompt(tok_, tmpl_, call.messages);
      if (!p) {
        (void)w.respond(400, "application/json", net::json_error(p.status().message()));
        return;
      }
      prompt = std::move(*p);
    }
    if (call.stream) {
      if (!w.begin_stream(200, openai ? "text/event-stream" : "application/x-ndjson").is_ok()) return;
      call.gen.on_text = [&](std::string_view piece) {
        const std::string s(piece);
        const std::string line = openai ? "data: " + dump(openai_chunk(id, info_.name, &s, nullptr)) + "\n\n"
                                        : dump(ollama_object(call, info_.name, s, nullptr)) + "\n";
        return w.write_chunk(line).is_ok();  // false: the client left, stop generating
      };
    }
    std::lock_guard<std::mutex> lk(mu_);
    auto g = eval::generate(dec_, tok_, prompt, call.gen);
    if (!g) {
      if (call.stream) (void)w.write_chunk(net::json_error(g.status().message()) + "\n");
      else (void)w.respond(400, "application/json", net::json_error(g.status().message()));
      return;
    }
    if (!call.stream) {
      (void)w.respond(200, "application/json",
                      dump(openai ? openai_completion(id, info_.name, *g) : ollama_object(call, info_.name, g->text, &*g)));
      return;
    }
    if (openai) {
      (void)w.write_chunk("data: " + dump(openai_chunk(id, info_.name, nullptr, finish_reason(g->stop))) + "\n\n");
      (void)w.write_chunk("data: [DONE]\n\n");
    } else {
      (void)w.write_chunk(dump(ollama_object(call, info_.name, "", &*g)) + "\n");
    }
  }

  model::Decoder& dec_;
  const text::BpeTokenizer& tok_;
  const text::ChatTemplate& tmpl_;
  ModelInfo info_;
  std::mutex mu_;
  std::atomic<std::uint64_t> counter_{0};
};

}  // namespace qlora::serve
