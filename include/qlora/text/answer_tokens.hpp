// qlora/text/answer_tokens.hpp — one question/answer exchange as the model
// sees it, and which of its tokens are "the answer".
//
// Training (the loss of the paper's equation 4) and evaluation (answer-only
// NLL) must score exactly the same tokens, so both call tokenize_qa_turn:
// the exchange [system?, user: question, assistant: answer] is rendered with
// the model's chat template, prompt and answer tokenized separately exactly as
// inference sees them (ChatTemplate::tokenize_answer), and the answer span is
// the answer content plus the end-of-turn token ("<|im_end|>") — knowing when
// to stop is part of answering — but not the separator the template writes
// after it ("\n"), which the model never produces because generation stops at
// the end-of-turn token. score_end_of_turn = false leaves the end-of-turn out.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::text {

/// The scored token range [begin, end) of an exchange's ids and whether it
/// ends with the end-of-turn token.
struct AnswerSpan {
  std::size_t begin = 0, end = 0;
  bool has_end_of_turn = false;
};

inline AnswerSpan answer_span(const PromptAnswerTokens& pa, const BpeTokenizer& tok, const ChatTemplate& tmpl,
                              bool score_end_of_turn) {
  AnswerSpan s{pa.n_prompt, pa.ids.size(), false};
  const TokenId eot = tok.find_token(tmpl.end_of_turn());
  if (eot == kNoToken) return s;  // no end-of-turn token: the whole rendered answer is scored
  for (std::size_t i = pa.ids.size(); i > pa.n_prompt; --i)
    if (pa.ids[i - 1] == eot) {
      s.end = score_end_of_turn ? i : i - 1;
      s.has_end_of_turn = score_end_of_turn;
      break;
    }
  return s;
}

/// An exchange's tokens (prompt then answer) and its answer span.
struct QaTurnTokens {
  PromptAnswerTokens tokens;
  AnswerSpan span;
};

/// Render and tokenize [system (if not empty), user: question, assistant: answer].
inline Result<QaTurnTokens> tokenize_qa_turn(const BpeTokenizer& tok, const ChatTemplate& tmpl,
                                             std::string_view system, std::string_view question,
                                             std::string_view answer, bool score_end_of_turn = true) {
  std::vector<ChatMessage> msgs;
  if (!system.empty()) msgs.push_back({"system", std::string(system)});
  msgs.push_back({"user", std::string(question)});
  msgs.push_back({"assistant", std::string(answer)});
  auto pa = tmpl.tokenize_answer(tok, msgs);
  if (!pa) return pa.status();
  QaTurnTokens r;
  r.span = answer_span(*pa, tok, tmpl, score_end_of_turn);
  r.tokens = std::move(*pa);
  return r;
}

}  // namespace qlora::text
