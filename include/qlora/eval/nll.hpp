// qlora/eval/nll.hpp — negative log-likelihood of text under a decoder, in two
// protocols that must never be confused (the tool says which one it used):
//
// 1. Answer-only NLL (the paper's equation), per QA pair:
//        NLL(a | q) = -(1/|a|) * sum_t log p(a_t | q, a_<t)
//    The pair is rendered as [user: question, assistant: answer] (plus the
//    pair's own system turn, else the template's default) with the model's
//    chat template and tokenized by text::tokenize_qa_turn — the same tokens
//    and answer span the trainer's loss uses (text/answer_tokens.hpp says
//    which count: the content and the end-of-turn token, not the separator
//    after it; `score_end_of_turn = false` scores the content only). The
//    decoder runs once over the tokens.
//    Over-long examples: the prompt is kept whole and the answer is cut at
//    the context limit (right truncation, as trainers do); the dropped answer
//    tokens are counted per example and in the summary. An example whose
//    prompt alone leaves no room for one answer token is skipped and counted.
//    Aggregates: token-weighted mean NLL (sum of all token NLLs / all scored
//    tokens; PPL = exp of it) and the mean over examples of per-example NLL.
//
// 2. `llama-perplexity` protocol on a text (llama.cpp tools/perplexity,
//    perplexity()): tokenize the whole text with add_special (BOS when the
//    vocabulary adds one; parse_special off); split into floor(n/n_ctx)
//    non-overlapping chunks of n_ctx tokens (the tail is dropped; at least
//    2*n_ctx tokens are required, as llama.cpp does); evaluate each chunk from
//    an empty cache with its FIRST token REPLACED by BOS (not prepended) when
//    the vocabulary adds BOS; with first = n_ctx/2, the logits at positions
//    first .. n_ctx-2 score the tokens at first+1 .. n_ctx-1, i.e. n_ctx-1-first
//    tokens per chunk (255 for n_ctx = 512). PPL = exp(mean NLL) and its
//    standard error ppl * sqrt((E[x^2] - E[x]^2) / (count - 1)), x = token NLL,
//    which is llama.cpp's "+/-" figure.
//
// Logits are requested in slices of at most kLogitRows positions so memory
// stays bounded (a 150k vocabulary at 2048 positions would be 1.2 GB).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/model/decoder.hpp"
#include "qlora/model/softmax.hpp"
#include "qlora/text/answer_tokens.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::eval {

using text::TokenId;

/// Positions whose logits are materialized at once (memory bound, see above).
inline constexpr std::size_t kLogitRows = 128;

/// -log softmax(row)[target], with the normalizer summed in double.
inline double token_nll(const float* row, std::int64_t n_vocab, TokenId target) {
  return double(model::log_sum_exp(row, n_vocab)) - double(row[target]);
}

/// Run `ids` through `dec` starting at an empty cache and score ids[p+1]
/// given ids[0..p] for every p in [first_pos, last_pos) — i.e. the tokens at
/// first_pos+1 .. last_pos. Positions before first_pos are evaluated without
/// logits. on_token(p + 1, nll) receives each scored token in order.
inline Status score_positions(model::Decoder& dec, std::span<const TokenId> ids, std::size_t first_pos,
                              std::size_t last_pos, const std::function<void(std::size_t, double)>& on_token) {
  if (last_pos > ids.size() || first_pos > last_pos || last_pos == 0)
    return Status::invalid("score_positions: bad range [" + std::to_string(first_pos) + ", " +
                           std::to_string(last_pos) + ") of " + std::to_string(ids.size()) + " tokens");
  if (last_pos > dec.cache().capacity())
    return Status::invalid("score_positions: " + std::to_string(last_pos) + " positions exceed the context of " +
                           std::to_string(dec.cache().capacity()));
  const std::int64_t V = dec.config().n_vocab;
  for (std::size_t p = first_pos + 1; p <= last_pos; ++p)
    if (ids[p] < 0 || ids[p] >= V)
      return Status::invalid("token id " + std::to_string(ids[p]) + " at index " + std::to_string(p) +
                             " is outside the model's vocabulary of " + std::to_string(V));
  dec.cache().clear();
  std::vector<float> logits;
  if (first_pos > 0) QLORA_TRY(dec.forward(ids.subspan(0, first_pos), logits, /*all_logits=*/false));
  for (std::size_t b = first_pos; b < last_pos; b += kLogitRows) {
    const std::size_t n = std::min(kLogitRows, last_pos - b);
    QLORA_TRY(dec.forward(ids.subspan(b, n), logits, /*all_logits=*/true));
    for (std::size_t r = 0; r < n; ++r)
      on_token(b + r + 1, token_nll(logits.data() + r * std::size_t(V), V, ids[b + r + 1]));
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------------
// 1. Answer-only NLL
// ---------------------------------------------------------------------------------

struct AnswerNllOptions {
  /// Longest prompt + answer evaluated per example; 0 = the decoder's context.
  std::size_t max_tokens = 0;
  /// Score the answer's end-of-turn token (see the file comment).
  bool score_end_of_turn = true;
};

/// One QA pair's result.
struct ExampleNll {
  std::string id;
  std::size_t prompt_tokens = 0;   // tokens before the answer
  std::size_t answer_tokens = 0;   // tokens scored
  std::size_t dropped_tokens = 0;  // answer tokens cut by truncation (not scored)
  bool has_end_of_turn = false;    // the end-of-turn token is among the scored tokens
  bool same_as_joint = true;       // separate tokenization == tokenizing the whole text
  bool skipped = false;            // the prompt alone fills the context: nothing scored
  double sum_nll = 0.0;            // nats
  std::vector<float> token_nll;    // per scored token, when requested
  double mean_nll() const { return answer_tokens ? sum_nll / double(answer_tokens) : 0.0; }
  bool truncated() const { return dropped_tokens > 0 || skipped; }
};

/// Aggregate over a test set.
struct NllSummary {
  std::size_t examples = 0, scored_examples = 0, truncated_examples = 0, skipped_examples = 0;
  std::size_t tokens = 0, dropped_tokens = 0, prompt_tokens = 0;
  std::size_t not_joint = 0;      // examples whose split tokenization differs from the joint one
  double sum_nll = 0.0;
  double mean_nll = 0.0;          // token-weighted: sum_nll / tokens
  double ppl = 0.0;               // exp(mean_nll)
  double example_mean_nll = 0.0;  // mean over scored examples of their mean NLL
  double seconds = 0.0;
  std::string protocol = "answer-only";
};

struct AnswerNllReport {
  std::vector<ExampleNll> examples;
  NllSummary summary;
};

/// Answer-only NLL of one pair. `keep_token_nll` fills ExampleNll::token_nll.
inline Result<ExampleNll> answer_nll(model::Decoder& dec, const text::BpeTokenizer& tok,
                                     const text::ChatTemplate& tmpl, const data::QaPair& qa,
                                     const AnswerNllOptions& opt = {}, bool keep_token_nll = false) {
  auto turn = text::tokenize_qa_turn(tok, tmpl, qa.system, qa.question, qa.answer, opt.score_end_of_turn);
  if (!turn) return turn.status();
  const text::PromptAnswerTokens* pa = &turn->tokens;
  const text::AnswerSpan span = turn->span;
  ExampleNll ex;
  ex.id = qa.id;
  ex.prompt_tokens = pa->n_prompt;
  ex.same_as_joint = pa->same_as_joint;
  const std::size_t cap = dec.cache().capacity();
  const std::size_t limit = opt.max_tokens ? std::min<std::size_t>(opt.max_tokens, cap) : cap;
  // The first answer token is predicted from the prompt's last position; a
  // prompt-less rendering (impossible with our templates) starts at 1.
  const std::size_t begin = std::max<std::size_t>(span.begin, 1);
  if (span.end <= begin) return ex;  // empty answer: nothing to score
  if (begin >= limit) {
    ex.skipped = true;
    ex.dropped_tokens = span.end - begin;
    return ex;
  }
  const std::size_t end = std::min(span.end, limit);
  ex.dropped_tokens = span.end - end;
  ex.has_end_of_turn = span.has_end_of_turn && ex.dropped_tokens == 0;
  ex.answer_tokens = end - begin;
  if (keep_token_nll) ex.token_nll.reserve(ex.answer_tokens);
  QLORA_TRY(score_positions(dec, pa->ids, begin - 1, end - 1, [&](std::size_t, double nll) {
    ex.sum_nll += nll;
    if (keep_token_nll) ex.token_nll.push_back(float(nll));
  }));
  return ex;
}

/// Progress: examples done, examples total, answer tokens scored so far.
using NllProgress = std::function<void(std::size_t done, std::size_t total, std::size_t tokens)>;

/// Fold per-example results into the summary figures.
inline NllSummary summarize(std::span<const ExampleNll> ex) {
  NllSummary s;
  s.examples = ex.size();
  double ex_sum = 0.0;
  for (const ExampleNll& e : ex) {
    s.prompt_tokens += e.prompt_tokens;
    s.dropped_tokens += e.dropped_tokens;
    s.not_joint += e.same_as_joint ? 0 : 1;
    if (e.skipped) ++s.skipped_examples;
    else if (e.dropped_tokens) ++s.truncated_examples;
    if (e.answer_tokens == 0) continue;
    ++s.scored_examples;
    s.tokens += e.answer_tokens;
    s.sum_nll += e.sum_nll;
    ex_sum += e.mean_nll();
  }
  if (s.tokens) {
    s.mean_nll = s.sum_nll / double(s.tokens);
    s.ppl = std::exp(s.mean_nll);
    s.example_mean_nll = ex_sum / double(s.scored_examples);
  }
  return s;
}

/// Answer-only NLL over a test set. An error names the example (index and id).
inline Result<AnswerNllReport> evaluate_answer_nll(model::Decoder& dec, const text::BpeTokenizer& tok,
                                                   const text::ChatTemplate& tmpl, std::span<const data::QaPair> set,
                                                   const AnswerNllOptions& opt = {},
                                                   const NllProgress& progress = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  AnswerNllReport r;
  r.examples.reserve(set.size());
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < set.size(); ++i) {
    auto e = answer_nll(dec, tok, tmpl, set[i], opt);
    if (!e) return e.status().with_context("example " + std::to_string(i) + (set[i].id.empty() ? "" : " (id " + set[i].id + ")"));
    tokens += e->answer_tokens;
    r.examples.push_back(std::move(*e));
    if (progress) progress(i + 1, set.size(), tokens);
  }
  r.summary = summarize(r.examples);
  r.summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// ---------------------------------------------------------------------------------
// 2. llama-perplexity protocol
// ---------------------------------------------------------------------------------

struct PerplexityOptions {
  std::uint32_t n_ctx = 512;  // chunk length (llama-perplexity -c)
  int max_chunks = -1;        // llama-perplexity --chunks; -1 = all
};

struct PerplexityResult {
  std::string protocol = "llama-perplexity";
  std::size_t text_tokens = 0;    // tokens of the whole text (with BOS if added)
  std::uint32_t n_ctx = 0;
  std::size_t chunks = 0;
  std::size_t scored_tokens = 0;  // chunks * (n_ctx - 1 - n_ctx/2)
  bool bos_at_chunk_start = false;
  double mean_nll = 0.0, ppl = 0.0, ppl_stderr = 0.0;
  std::vector<double> running_ppl;  // after each chunk (llama-perplexity's [i]x.xxxx line)
  double seconds = 0.0;
};

/// Progress: chunks done, chunks total.
using PerplexityProgress = std::function<void(std::size_t done, std::size_t total)>;

/// The protocol over already-tokenized text. `bos`: the token that replaces
/// each chunk's first token (nullopt when the vocabulary adds no BOS).
/// `on_token(index in tokens, nll)` (optional) sees every scored token.
inline Result<PerplexityResult> llama_perplexity_tokens(
    model::Decoder& dec, std::span<const TokenId> tokens, std::optional<TokenId> bos,
    const PerplexityOptions& opt = {}, const PerplexityProgress& progress = {},
    const std::function<void(std::size_t, double)>& on_token = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t n_ctx = opt.n_ctx;
  if (n_ctx < 4) return Status::invalid("llama-perplexity: context " + std::to_string(n_ctx) + " is too small (min 4)");
  if (n_ctx > dec.cache().capacity())
    return Status::invalid("llama-perplexity: context " + std::to_string(n_ctx) + " exceeds the decoder's " +
                           std::to_string(dec.cache().capacity()) + " positions");
  if (tokens.size() < 2 * n_ctx)
    return Status::invalid("llama-perplexity: the text tokenizes to only " + std::to_string(tokens.size()) +
                           " tokens; at least " + std::to_string(2 * n_ctx) + " (2 x context " +
                           std::to_string(n_ctx) + ") are needed");
  PerplexityResult r;
  r.text_tokens = tokens.size();
  r.n_ctx = std::uint32_t(n_ctx);
  r.bos_at_chunk_start = bos.has_value();
  std::size_t n_chunk = tokens.size() / n_ctx;
  if (opt.max_chunks >= 0) n_chunk = std::min<std::size_t>(n_chunk, std::size_t(opt.max_chunks));
  r.chunks = n_chunk;
  const std::size_t first = n_ctx / 2;
  double nll = 0.0, nll2 = 0.0;
  std::size_t count = 0;
  std::vector<TokenId> chunk(n_ctx);
  for (std::size_t c = 0; c < n_chunk; ++c) {
    const std::size_t start = c * n_ctx;
    std::copy_n(tokens.begin() + std::ptrdiff_t(start), n_ctx, chunk.begin());
    if (bos) chunk[0] = *bos;
    // Positions first .. n_ctx-2 predict tokens first+1 .. n_ctx-1.
    Status st = score_positions(dec, chunk, first, n_ctx - 1, [&](std::size_t pos, double x) {
      nll += x;
      nll2 += x * x;
      ++count;
      if (on_token) on_token(start + pos, x);
    });
    if (!st) return st.with_context("llama-perplexity chunk " + std::to_string(c));
    r.running_ppl.push_back(std::exp(nll / double(count)));
    if (progress) progress(c + 1, n_chunk);
  }
  r.scored_tokens = count;
  r.mean_nll = nll / double(count);
  r.ppl = std::exp(r.mean_nll);
  const double var = nll2 / double(count) - r.mean_nll * r.mean_nll;
  r.ppl_stderr = var > 0 && count > 1 ? std::sqrt(var / double(count - 1)) * r.ppl : 0.0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

/// The protocol on a text: tokenized as llama-perplexity does (add_special,
/// no special-token parsing), BOS at each chunk start when the vocabulary adds it.
inline Result<PerplexityResult> llama_perplexity(model::Decoder& dec, const text::BpeTokenizer& tok,
                                                 std::string_view text, const PerplexityOptions& opt = {},
                                                 const PerplexityProgress& progress = {}) {
  if (tok.add_eos())
    return Status::unsupported("llama-perplexity: the vocabulary adds EOS to every text, which llama-perplexity "
                               "rejects too");
  auto ids = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (!ids) return ids.status();
  std::optional<TokenId> bos;
  if (tok.add_bos()) bos = tok.bos_id();
  return llama_perplexity_tokens(dec, *ids, bos, opt, progress);
}

}  // namespace qlora::eval
