// qlora/eval/answer_set.hpp — answer every question of a test set.
//
// Stages 2 and 3 score what a model *says*: each test question goes through
// the chat template (user turn + generation prompt) and the generator
// (greedy by default, as the paper's comparison), and per question we keep
// what the paper's tables report — the answer, seconds per question ("s/Q")
// and its length in characters ("Avg Length") — plus tokens and the stop
// reason, so an answer cut by the token limit is visible rather than scored
// as if complete. The records are JSONL, one per question, in test-set order.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/data/apoc_jsonl.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/eval/generate.hpp"
#include "qlora/model/decoder.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::eval {

struct AnswerRecord {
  std::string id, category, question;
  std::string answer;
  double seconds = 0.0;          // prompt + generation ("s/Q")
  std::size_t chars = 0;         // code points of the answer ("Avg Length")
  std::size_t prompt_tokens = 0, answer_tokens = 0;
  std::string stop;              // eog, max-tokens, stop-string, context-full
};

struct AnswerOptions {
  GenerateOptions generate;  // greedy unless sampling is set; max_new_tokens
  std::string system;        // optional system message
  /// Called after each question with (done, total, record).
  std::function<void(std::size_t, std::size_t, const AnswerRecord&)> on_answer;
};

inline Result<std::vector<AnswerRecord>> answer_test_set(model::Decoder& dec, const text::BpeTokenizer& tok,
                                                         const text::ChatTemplate& tmpl,
                                                         const std::vector<data::TestItem>& items,
                                                         const AnswerOptions& opt = {}) {
  std::vector<AnswerRecord> out;
  out.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const data::TestItem& it = items[i];
    std::vector<text::ChatMessage> msgs;
    if (!opt.system.empty()) msgs.push_back({"system", opt.system});
    msgs.push_back({"user", it.question});
    auto prompt = encode_chat_prompt(tok, tmpl, msgs);
    if (!prompt) return Status::invalid("question " + it.id + ": " + prompt.status().message());
    auto g = generate(dec, tok, *prompt, opt.generate);
    if (!g) return Status::invalid("question " + it.id + ": " + g.status().message());
    AnswerRecord r;
    r.id = it.id;
    r.category = it.category;
    r.question = it.question;
    r.answer = g->text;
    r.seconds = g->stats.seconds;
    r.chars = g->stats.output_chars;
    r.prompt_tokens = g->stats.prompt_tokens;
    r.answer_tokens = g->stats.generated_tokens;
    r.stop = stop_reason_name(g->stop);
    out.push_back(std::move(r));
    if (opt.on_answer) opt.on_answer(i + 1, items.size(), out.back());
  }
  return out;
}

inline nlohmann::ordered_json answer_to_json(const AnswerRecord& r) {
  nlohmann::ordered_json j;
  j["id"] = r.id;
  j["category"] = r.category;
  j["question"] = r.question;
  j["answer"] = r.answer;
  j["seconds"] = r.seconds;
  j["chars"] = r.chars;
  j["prompt_tokens"] = r.prompt_tokens;
  j["answer_tokens"] = r.answer_tokens;
  j["stop"] = r.stop;
  return j;
}

inline Status write_answers(const std::string& path, const std::vector<AnswerRecord>& records) {
  std::vector<std::string> lines;
  lines.reserve(records.size());
  for (const AnswerRecord& r : records) lines.push_back(answer_to_json(r).dump(-1, ' ', false));
  return data::qa_detail::write_lines(path, lines);
}

/// Read answers.jsonl back; errors name the file and line.
inline Result<std::vector<AnswerRecord>> read_answers(const std::string& path) {
  std::vector<AnswerRecord> out;
  Status st = data::for_each_json_line(path, [&](std::size_t line, const nlohmann::json& j) -> Status {
    const std::string at = path + ":" + std::to_string(line);
    if (!j.is_object()) return Status::invalid(at + ": expected a JSON object");
    AnswerRecord r;
    for (const char* key : {"id", "answer"})
      if (!j.contains(key) || !j[key].is_string())
        return Status::invalid(at + ": field '" + std::string(key) + "' missing or not a string");
    r.id = j["id"].get<std::string>();
    r.answer = j["answer"].get<std::string>();
    r.category = j.value("category", std::string());
    r.question = j.value("question", std::string());
    if (j.contains("seconds") && !j["seconds"].is_number())
      return Status::invalid(at + ": field 'seconds' is not a number");
    r.seconds = j.value("seconds", 0.0);
    r.chars = j.contains("chars") && j["chars"].is_number_unsigned() ? j["chars"].get<std::size_t>()
                                                                     : count_code_points(r.answer);
    r.prompt_tokens = j.value("prompt_tokens", std::size_t(0));
    r.answer_tokens = j.value("answer_tokens", std::size_t(0));
    r.stop = j.value("stop", std::string());
    out.push_back(std::move(r));
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return out;
}

}  // namespace qlora::eval
