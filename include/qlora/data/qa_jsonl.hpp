// qlora/data/qa_jsonl.hpp — question/answer records as JSON lines: the three
// training forms the generator writes, one reader for all of them (ours or
// anyone else's), and the test-set records. Forms (docs/dataset.md):
//
//   plain     {"id","question","answer","relation","category","source"}
//   alpaca    {"instruction":Q,"input":"","output":A,
//              "metadata":{"id","relation","category","source"}}
//   messages  {"messages":[{"role":"user","content":Q},
//                          {"role":"assistant","content":A}],
//              "metadata":{"id","relation","category","source"}}
//   test set  {"id","category","question","reference_answer","citation"}
//
// Writers emit keys in exactly that order, one object per line, UTF-8 with
// ensure_ascii off (Japanese stays readable in the file), LF line ends.
//
// The reader decides the form per line by its keys: "messages" -> messages,
// else "instruction" -> alpaca, else "question" -> plain; so mixed files
// work. Foreign files are accepted as they usually come:
//   - Alpaca with a non-empty "input": question = instruction + "\n" + input;
//     a missing "input" is the same as "".
//   - messages: leading "system" turns are allowed (the first one is kept in
//     QaPair::system); then the first turn must be "user" and the next
//     "assistant"; later turns are ignored and reported in
//     QaReadSummary::notes (file:line). Content may be a string or a list of
//     {"type":"text","text":...} parts (OpenAI style), which are concatenated.
//   - metadata fields are read from "metadata" and, failing that, from the
//     top level; all are optional; an integer id is accepted as text.
// Hard errors, each "file:line[:column]: ...": invalid UTF-8, malformed
// JSON, a line that is not an object or matches no form, a field of the
// wrong JSON type, an empty (or all-whitespace) question or answer, a
// duplicate non-empty id (both lines named). Blank lines are not records.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/data/apoc_jsonl.hpp"  // for_each_json_line, parse_json_line (JSON-lines primitives)
#include "qlora/data/csv.hpp"         // find_invalid_utf8
#include "qlora/data/knowledge_graph.hpp"

namespace qlora::data {

struct QaPair {
  std::string id;        // unique per file when non-empty
  std::string question;
  std::string answer;
  std::string relation;  // relationship type the pair was generated from (HAS_CHAPTER, ...)
  std::string category;  // one of the eight categories (English or Japanese spelling)
  std::string source;    // "start_id -TYPE-> end_id"
  std::string system;    // a leading system message of the messages form; "" if none
};

enum class QaFormat { Plain, Alpaca, Messages };

inline const char* qa_format_name(QaFormat f) {
  switch (f) {
    case QaFormat::Plain: return "plain";
    case QaFormat::Alpaca: return "alpaca";
    case QaFormat::Messages: return "messages";
  }
  return "?";
}

/// "plain" / "alpaca" / "messages" (the generator's --format values).
inline std::optional<QaFormat> parse_qa_format(std::string_view s) {
  for (QaFormat f : {QaFormat::Plain, QaFormat::Alpaca, QaFormat::Messages})
    if (s == qa_format_name(f)) return f;
  return std::nullopt;
}

/// One test-set question (data/test_set.jsonl).
struct TestItem {
  std::string id, category, question, reference_answer, citation;
};

/// What read_qa_jsonl saw, beyond the records themselves.
struct QaReadSummary {
  std::size_t plain = 0, alpaca = 0, messages = 0;  // records per detected form
  std::vector<std::string> notes;                    // file:line: what was ignored (extra turns)
};

namespace qa_detail {

using ojson = nlohmann::ordered_json;  // keeps keys in the documented order

/// All ASCII whitespace or ideographic spaces (U+3000, E3 80 80). Byte-wise
/// is exact here: in valid UTF-8 the only sequence made of E3/80 bytes alone
/// is U+3000 itself.
inline bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n\xE3\x80") == std::string::npos; }

/// Checks that every string we are about to write is UTF-8 (nlohmann would
/// otherwise throw while dumping) and names the offender.
inline Status check_utf8(std::initializer_list<std::pair<const char*, const std::string*>> fields,
                         const std::string& what) {
  for (const auto& [name, s] : fields) {
    const char* why = "";
    if (const std::size_t bad = find_invalid_utf8(*s, &why); bad != std::string_view::npos)
      return Status::invalid(what + ": field \"" + name + "\" is not valid UTF-8 (" + why + " at byte " +
                             std::to_string(bad) + ")");
  }
  return Status::ok();
}

inline std::string dump(const ojson& j) { return j.dump(-1, ' ', /*ensure_ascii=*/false); }

/// Writes lines to `path` through a temporary file, so a failed write never
/// leaves half a dataset behind.
inline Status write_lines(const std::string& path, const std::vector<std::string>& lines) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::io(tmp + ": cannot create: " + std::strerror(errno));
  bool ok = true;
  for (const auto& l : lines) {
    ok = ok && std::fwrite(l.data(), 1, l.size(), f) == l.size();
    ok = ok && std::fputc('\n', f) != EOF;
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return Status::io(tmp + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::io(path + ": cannot rename from " + tmp + ": " + std::strerror(errno));
  }
  return Status::ok();
}

/// A string-valued field: absent or null -> "", string -> itself, integer ->
/// its text when `allow_int` (ids), anything else -> error.
inline Status get_string(const nlohmann::json& obj, const char* key, const std::string& at, std::string* out,
                         bool allow_int = false, bool* found = nullptr) {
  if (found) *found = false;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::ok();
  if (it->is_string()) *out = it->get<std::string>();
  else if (allow_int && it->is_number_integer()) *out = it->dump();
  else return Status::corrupt(at + ": \"" + key + "\" is " + std::string(it->type_name()) + ", want a string");
  if (found) *found = true;
  return Status::ok();
}

/// Message content: a string, or OpenAI-style parts [{"type":"text","text":...}].
inline Status get_content(const nlohmann::json& msg, const std::string& at, std::size_t index, std::string* out) {
  auto it = msg.find("content");
  const std::string where = at + ": messages[" + std::to_string(index) + "]";
  if (it == msg.end()) return Status::corrupt(where + " has no \"content\"");
  if (it->is_string()) {
    *out = it->get<std::string>();
    return Status::ok();
  }
  if (it->is_array()) {
    out->clear();
    for (const auto& part : *it) {
      auto t = part.is_object() ? part.find("text") : part.end();
      if (!part.is_object() || t == part.end() || !t->is_string())
        return Status::corrupt(where + ".content has a part without a \"text\" string");
      *out += t->get<std::string>();
    }
    return Status::ok();
  }
  return Status::corrupt(where + ".content is " + std::string(it->type_name()) + ", want a string");
}

/// id/relation/category/source from "metadata", else from the top level.
inline Status read_metadata(const nlohmann::json& j, const std::string& at, QaPair& q) {
  const nlohmann::json* meta = &j;
  std::string meta_at = at;
  if (auto m = j.find("metadata"); m != j.end() && !m->is_null()) {
    if (!m->is_object()) return Status::corrupt(at + ": \"metadata\" is " + std::string(m->type_name()) + ", want an object");
    meta = &*m;
    meta_at = at + ": metadata";
  }
  struct Field {
    const char* key;
    std::string* out;
  };
  for (Field f : {Field{"id", &q.id}, Field{"relation", &q.relation}, Field{"category", &q.category},
                  Field{"source", &q.source}}) {
    bool found = false;
    QLORA_TRY(get_string(*meta, f.key, meta_at, f.out, std::string_view(f.key) == "id", &found));
    if (!found && meta != &j) QLORA_TRY(get_string(j, f.key, at, f.out, std::string_view(f.key) == "id"));
  }
  return Status::ok();
}

inline Status read_messages(const nlohmann::json& j, const std::string& at, QaPair& q, QaReadSummary& sum) {
  const auto& m = j["messages"];
  if (!m.is_array()) return Status::corrupt(at + ": \"messages\" is " + std::string(m.type_name()) + ", want an array");
  auto role_of = [&](std::size_t i, std::string* role) -> Status {
    if (!m[i].is_object()) return Status::corrupt(at + ": messages[" + std::to_string(i) + "] is not an object");
    QLORA_TRY(get_string(m[i], "role", at + ": messages[" + std::to_string(i) + "]", role));
    return Status::ok();
  };
  std::size_t i = 0;
  std::string role;
  for (; i < m.size(); ++i) {  // leading system turns
    QLORA_TRY(role_of(i, &role));
    if (role != "system") break;
    if (q.system.empty()) QLORA_TRY(get_content(m[i], at, i, &q.system));
  }
  if (i >= m.size() || role != "user")
    return Status::corrupt(at + ": messages: want a \"user\" turn (after optional \"system\" turns), got " +
                           (i >= m.size() ? std::string("none") : "\"" + role + "\""));
  QLORA_TRY(get_content(m[i], at, i, &q.question));
  ++i;
  if (i < m.size()) QLORA_TRY(role_of(i, &role));
  if (i >= m.size() || role != "assistant")
    return Status::corrupt(at + ": messages: want an \"assistant\" turn after the first \"user\" turn, got " +
                           (i >= m.size() ? std::string("none") : "\"" + role + "\""));
  QLORA_TRY(get_content(m[i], at, i, &q.answer));
  if (++i < m.size())
    sum.notes.push_back(at + ": " + std::to_string(m.size() - i) +
                        " later message(s) ignored (only the first user/assistant exchange is read)");
  return Status::ok();
}

}  // namespace qa_detail

/// One record as a JSON line (no trailing newline). Errors on invalid UTF-8
/// or an empty question/answer: the writer never emits what the reader rejects.
inline Result<std::string> qa_to_json(const QaPair& q, QaFormat form) {
  using qa_detail::ojson;
  const std::string what = "QA record '" + q.id + "'";
  QLORA_TRY(qa_detail::check_utf8({{"id", &q.id},
                                   {"question", &q.question},
                                   {"answer", &q.answer},
                                   {"relation", &q.relation},
                                   {"category", &q.category},
                                   {"source", &q.source},
                                   {"system", &q.system}},
                                  what));
  if (qa_detail::blank(q.question)) return Status::invalid(what + ": empty question");
  if (qa_detail::blank(q.answer)) return Status::invalid(what + ": empty answer");
  ojson meta = {{"id", q.id}, {"relation", q.relation}, {"category", q.category}, {"source", q.source}};
  ojson j;
  switch (form) {
    case QaFormat::Plain:
      j = {{"id", q.id},           {"question", q.question}, {"answer", q.answer},
           {"relation", q.relation}, {"category", q.category}, {"source", q.source}};
      break;
    case QaFormat::Alpaca:
      j = {{"instruction", q.question}, {"input", ""}, {"output", q.answer}, {"metadata", std::move(meta)}};
      break;
    case QaFormat::Messages: {
      ojson msgs = ojson::array();
      if (!q.system.empty()) msgs.push_back({{"role", "system"}, {"content", q.system}});
      msgs.push_back({{"role", "user"}, {"content", q.question}});
      msgs.push_back({{"role", "assistant"}, {"content", q.answer}});
      j = {{"messages", std::move(msgs)}, {"metadata", std::move(meta)}};
      break;
    }
  }
  return qa_detail::dump(j);
}

/// Writes `pairs` in one form (see the header comment).
inline Status write_qa_jsonl(const std::string& path, const std::vector<QaPair>& pairs, QaFormat form) {
  std::vector<std::string> lines;
  lines.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    auto l = qa_to_json(pairs[i], form);
    if (!l) return l.status().with_context(path + ": record " + std::to_string(i + 1));
    lines.push_back(std::move(l).value());
  }
  return qa_detail::write_lines(path, lines);
}

/// One parsed line in any of the three forms; `at` ("file:line") prefixes
/// errors. `form` receives the detected form when not null.
inline Result<QaPair> qa_from_json(const nlohmann::json& j, const std::string& at, QaReadSummary* summary = nullptr,
                                   QaFormat* form = nullptr) {
  namespace d = qa_detail;
  QaReadSummary local;
  QaReadSummary& sum = summary ? *summary : local;
  if (!j.is_object()) return Status::corrupt(at + ": line is " + std::string(j.type_name()) + ", want an object");
  QaPair q;
  QaFormat f;
  if (j.contains("messages")) {
    f = QaFormat::Messages;
    QLORA_TRY(d::read_messages(j, at, q, sum));
  } else if (j.contains("instruction")) {
    f = QaFormat::Alpaca;
    std::string input;
    QLORA_TRY(d::get_string(j, "instruction", at, &q.question));
    QLORA_TRY(d::get_string(j, "input", at, &input));
    QLORA_TRY(d::get_string(j, "output", at, &q.answer));
    if (!d::blank(input)) q.question += "\n" + input;
  } else if (j.contains("question")) {
    f = QaFormat::Plain;
    QLORA_TRY(d::get_string(j, "question", at, &q.question));
    QLORA_TRY(d::get_string(j, "answer", at, &q.answer));
  } else {
    return Status::corrupt(at + ": not a QA record (want \"question\"/\"answer\", \"instruction\"/\"output\", or "
                                "\"messages\")");
  }
  QLORA_TRY(d::read_metadata(j, at, q));
  const char* qkey = f == QaFormat::Messages ? "user content" : f == QaFormat::Alpaca ? "instruction" : "question";
  const char* akey = f == QaFormat::Messages ? "assistant content" : f == QaFormat::Alpaca ? "output" : "answer";
  if (d::blank(q.question)) return Status::corrupt(at + ": empty " + qkey + " (the question)");
  if (d::blank(q.answer)) return Status::corrupt(at + ": empty or missing " + akey + " (the answer)");
  if (form) *form = f;
  switch (f) {
    case QaFormat::Plain: ++sum.plain; break;
    case QaFormat::Alpaca: ++sum.alpaca; break;
    case QaFormat::Messages: ++sum.messages; break;
  }
  return q;
}

/// Reads a QA file in any mix of the three forms.
inline Result<std::vector<QaPair>> read_qa_jsonl(const std::string& path, QaReadSummary* summary = nullptr) {
  std::vector<QaPair> out;
  std::unordered_map<std::string, std::size_t> id_line;
  QLORA_TRY(for_each_json_line(path, [&](std::size_t line, const nlohmann::json& j) -> Status {
    const std::string at = path + ":" + std::to_string(line);
    auto q = qa_from_json(j, at, summary);
    if (!q) return q.status();
    if (!q->id.empty()) {
      auto [it, fresh] = id_line.emplace(q->id, line);
      if (!fresh) return Status::corrupt(at + ": duplicate id '" + q->id + "' (first at line " + std::to_string(it->second) + ")");
    }
    out.push_back(std::move(q).value());
    return Status::ok();
  }));
  return out;
}

////////////////////////////////////////////////////////////////////////////////
// Test set
////////////////////////////////////////////////////////////////////////////////

/// One test item as a JSON line (keys in the documented order).
inline Result<std::string> test_item_to_json(const TestItem& t) {
  const std::string what = "test item '" + t.id + "'";
  QLORA_TRY(qa_detail::check_utf8({{"id", &t.id},
                                   {"category", &t.category},
                                   {"question", &t.question},
                                   {"reference_answer", &t.reference_answer},
                                   {"citation", &t.citation}},
                                  what));
  qa_detail::ojson j = {{"id", t.id},
                        {"category", t.category},
                        {"question", t.question},
                        {"reference_answer", t.reference_answer},
                        {"citation", t.citation}};
  return qa_detail::dump(j);
}

inline Status write_test_set(const std::string& path, const std::vector<TestItem>& items) {
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto l = test_item_to_json(items[i]);
    if (!l) return l.status().with_context(path + ": item " + std::to_string(i + 1));
    lines.push_back(std::move(l).value());
  }
  return qa_detail::write_lines(path, lines);
}

/// Reads test items. Every field is required: id, question,
/// reference_answer and citation non-empty, category one of the eight (either
/// spelling, kept as written); ids unique. Errors name file and line.
inline Result<std::vector<TestItem>> read_test_set(const std::string& path) {
  std::vector<TestItem> out;
  std::unordered_map<std::string, std::size_t> id_line;
  QLORA_TRY(for_each_json_line(path, [&](std::size_t line, const nlohmann::json& j) -> Status {
    const std::string at = path + ":" + std::to_string(line);
    if (!j.is_object()) return Status::corrupt(at + ": line is " + std::string(j.type_name()) + ", want an object");
    TestItem t;
    struct Field {
      const char* key;
      std::string* out;
    };
    for (Field f : {Field{"id", &t.id}, Field{"category", &t.category}, Field{"question", &t.question},
                    Field{"reference_answer", &t.reference_answer}, Field{"citation", &t.citation}}) {
      QLORA_TRY(qa_detail::get_string(j, f.key, at, f.out, std::string_view(f.key) == "id"));
      if (qa_detail::blank(*f.out)) return Status::corrupt(at + ": missing or empty \"" + f.key + "\"");
    }
    if (!parse_category(t.category))
      return Status::corrupt(at + ": unknown category '" + t.category + "' (want one of the eight, English or Japanese)");
    auto [it, fresh] = id_line.emplace(t.id, line);
    if (!fresh) return Status::corrupt(at + ": duplicate id '" + t.id + "' (first at line " + std::to_string(it->second) + ")");
    out.push_back(std::move(t));
    return Status::ok();
  }));
  return out;
}

}  // namespace qlora::data
