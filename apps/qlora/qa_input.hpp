// apps/qlora/qa_input.hpp — QA pairs from any file a command accepts as data:
// a training-form JSONL (plain, Alpaca or messages; data/qa_jsonl.hpp) or a
// test set (data/test_set.jsonl form, whose reference_answer is the answer).
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/data/qa_jsonl.hpp"

namespace qlora::app {

/// The first non-blank record decides which form the file is in.
inline Result<std::vector<data::QaPair>> read_pairs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io(path + ": cannot open");
  std::string line;
  bool test_set = false;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    test_set = j.is_object() && j.contains("reference_answer") && !j.contains("answer");
    break;
  }
  if (!test_set) return data::read_qa_jsonl(path);
  auto items = data::read_test_set(path);
  if (!items) return items.status();
  std::vector<data::QaPair> out;
  for (auto& t : *items) {
    data::QaPair q;
    q.id = t.id;
    q.question = t.question;
    q.answer = t.reference_answer;
    q.category = t.category;
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace qlora::app
