// qlora/judge/rubric.hpp — the paper's 0–3 grading rubric as judge prompts.
//
// The paper scores answers about Japan's River and Sediment Control Technical
// Standards with an LLM judge on four levels: 3 = technically accurate,
// specific, and cites the standard (volume, chapter, term); 2 = correct but
// without support from the standard; 1 = partly correct; 0 = wrong or empty.
// The prompts below state that rubric in Japanese (the language of the
// questions and answers) in our own words, and ask for a JSON verdict that
// judge/score_parse.hpp reads (it also copes when the judge ignores the
// format). Reference-guided grading — the test set's reference answer and
// citation shown to the judge — is an option: it makes small judges far more
// consistent, but it is not what the paper describes, so reports say which
// mode produced a score.
#pragma once

#include <string>
#include <string_view>

namespace qlora::judge {

struct RubricOptions {
  bool reference_guided = false;  // include the reference answer and its citation
};

/// The system message: the judge's role and the rubric.
inline std::string rubric_system_prompt() {
  return "あなたは「河川砂防技術基準」に精通した審査員です。"
         "質問に対する回答を読み、次の基準で 0〜3 の整数で採点してください。\n"
         "3: 技術的に正確かつ具体的で、基準の該当箇所（編・章・節や用語）を示して根拠づけている。\n"
         "2: 内容は正しいが、基準の該当箇所による裏づけがない、または具体性に欠ける。\n"
         "1: 一部は正しいが、誤りや重要な欠落を含む。\n"
         "0: 誤っている、質問に答えていない、または回答が空である。\n"
         "回答の長さそのものは評価に含めないでください。"
         "出力は次の JSON 1 行のみとします: {\"score\": <0〜3の整数>, \"reason\": \"<短い理由>\"}";
}

/// The user message for one answer.
inline std::string rubric_user_prompt(std::string_view question, std::string_view answer,
                                      std::string_view reference_answer = {}, std::string_view citation = {},
                                      const RubricOptions& opt = {}) {
  std::string s;
  s += "【質問】\n";
  s += question;
  s += "\n\n【回答】\n";
  s += answer.empty() ? std::string_view("（空の回答）") : answer;
  s += "\n";
  if (opt.reference_guided && !reference_answer.empty()) {
    s += "\n【参考解答】（採点の参考。表現が異なっていても内容が一致すれば正しいとみなす）\n";
    s += reference_answer;
    s += "\n";
    if (!citation.empty()) {
      s += "【参考解答の出典】";
      s += citation;
      s += "\n";
    }
  }
  s += "\n上の基準で採点し、JSON 1 行で答えてください。";
  return s;
}

}  // namespace qlora::judge
