// qlora/train/sft_dataset.hpp — QA pairs as training sequences: token ids and
// the loss mask of the paper's equation 4 (answer tokens only).
//
// Each pair is rendered and tokenized by text::tokenize_qa_turn — the same
// tokens and answer span the answer-only NLL evaluator scores — so the loss
// we train and the NLL we report are the same quantity. mask[t] = 1 when the
// prediction made at position t (of token t+1) is an answer token.
//
// Over-long sequences are cut from the right to max_seq_len (as HF trainers
// truncate); every cut is counted — examples truncated, answer tokens lost —
// and an example left with no answer token is skipped and counted, never
// silently trained on as an all-masked sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/text/answer_tokens.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::train {

struct SftExample {
  std::string id;                  // the pair's id, or "#<index>" when it has none
  std::vector<std::int32_t> ids;   // prompt then answer tokens
  std::vector<std::uint8_t> mask;  // ids.size() - 1 entries: 1 = scored prediction
  std::int64_t n_scored = 0;       // number of ones in mask
};

struct SftOptions {
  std::size_t max_seq_len = 2048;  // tokens per sequence (unsloth/TRL max_seq_length)
  bool score_end_of_turn = true;   // train the end-of-turn token (text/answer_tokens.hpp)
};

struct SftStats {
  std::size_t pairs = 0;             // pairs read
  std::size_t examples = 0;          // sequences produced
  std::size_t truncated = 0;         // sequences cut at max_seq_len
  std::size_t dropped_answer_tokens = 0;
  std::size_t skipped_no_answer = 0; // nothing left to score after truncation (or an empty answer)
  std::size_t tokens = 0;            // all tokens of all sequences
  std::size_t scored = 0;            // answer tokens of all sequences
  std::size_t longest = 0;           // longest sequence after truncation
};

struct SftDataset {
  std::vector<SftExample> examples;
  SftStats stats;
};

/// Tokenize `pairs` into training sequences. Errors name the pair.
inline Result<SftDataset> build_sft_dataset(const std::vector<data::QaPair>& pairs, const text::BpeTokenizer& tok,
                                            const text::ChatTemplate& tmpl, const SftOptions& opt = {}) {
  if (opt.max_seq_len < 2) return Status::invalid("max_seq_len must be at least 2");
  SftDataset ds;
  ds.stats.pairs = pairs.size();
  ds.examples.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const data::QaPair& qa = pairs[i];
    const std::string id = qa.id.empty() ? "#" + std::to_string(i) : qa.id;
    auto turn = text::tokenize_qa_turn(tok, tmpl, qa.system, qa.question, qa.answer, opt.score_end_of_turn);
    if (!turn) return turn.status().with_context("QA pair " + id);
    std::vector<std::int32_t> ids(turn->tokens.ids.begin(), turn->tokens.ids.end());
    std::size_t begin = std::max<std::size_t>(turn->span.begin, 1), end = turn->span.end;
    if (ids.size() > opt.max_seq_len) {
      ++ds.stats.truncated;
      ids.resize(opt.max_seq_len);
      const std::size_t kept_end = std::min(end, ids.size());
      ds.stats.dropped_answer_tokens += end > kept_end ? end - std::max(kept_end, begin) : 0;
      end = kept_end;
    }
    if (end <= begin) {
      ++ds.stats.skipped_no_answer;
      continue;
    }
    SftExample ex;
    ex.id = id;
    ex.mask.assign(ids.size() - 1, 0);
    for (std::size_t p = begin; p < end; ++p) ex.mask[p - 1] = 1;  // position p-1 predicts token p
    ex.n_scored = std::int64_t(end - begin);
    ex.ids = std::move(ids);
    ds.stats.tokens += ex.ids.size();
    ds.stats.scored += std::size_t(ex.n_scored);
    ds.stats.longest = std::max(ds.stats.longest, ex.ids.size());
    ds.examples.push_back(std::move(ex));
  }
  ds.stats.examples = ds.examples.size();
  return ds;
}

}  // namespace qlora::train
