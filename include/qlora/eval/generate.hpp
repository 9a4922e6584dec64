// qlora/eval/generate.hpp — text generation with a decoder: greedy or seeded
// sampling, stop conditions, UTF-8-safe streaming, and per-call timing.
//
// Sampling, in this order (llama.cpp's default chain minus the samplers we do
// not have: top-k -> top-p -> temperature -> draw):
//   temperature <= 0     greedy: the arg-max logit (lowest id on ties), no RNG.
//   top_k > 0            keep the k largest logits (ties broken by lower id).
//   top_p < 1            keep the smallest prefix of the probability-sorted
//                        candidates whose mass reaches top_p, with
//                        probabilities at temperature 1 (as llama.cpp, where
//                        temperature comes after top-p).
//   temperature          softmax(logits / T) over the survivors, then one draw.
// The RNG is our own (xoshiro256** seeded through splitmix64) and the draw is
// a plain inverse-CDF walk, so a seed gives the same tokens on every platform
// and standard library (std:: distributions are implementation-defined).
//
// Stopping: an end-of-generation token (BpeTokenizer::is_eog: EOS, EOT and the
// usual end-of-turn names), a stop string (the output ends before it; it is
// not emitted), max_new_tokens, a full KV cache, or the callback asking to stop.
//
// Streaming: TextStreamer holds back bytes that might still become a stop
// string and an unfinished UTF-8 sequence at the end of the text; a byte
// sequence that can never be valid UTF-8 (a model can sample any byte token)
// is emitted as U+FFFD per bad byte. So every piece the callback receives is
// valid UTF-8, and Generation::text is exactly the concatenation of them.
//
// Stats per call: the paper's s/Q (seconds, prompt evaluation included) and
// "Avg Length" (output_chars, Unicode code points of the output text), plus
// prompt and generation tokens per second. generated_tokens counts every
// sampled token, including a final EOG token.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/core/rng.hpp"
#include "qlora/core/status.hpp"
#include "qlora/model/decoder.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"
#include "qlora/text/utf8.hpp"

namespace qlora::eval {

using text::TokenId;

// ---------------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------------

/// The sampler's generator (core/rng.hpp).
using Rng = Xoshiro256;

// ---------------------------------------------------------------------------------
// Sampler
// ---------------------------------------------------------------------------------

struct SamplingOptions {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // <= 0: off
  float top_p = 1.0f;        // >= 1: off
  std::uint64_t seed = 0;
};

/// Index of the largest value (lowest index on ties).
inline TokenId argmax(std::span<const float> logits) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return TokenId(best);
}

class Sampler {
 public:
  explicit Sampler(SamplingOptions o = {}) : opt_(o), rng_(o.seed) {}
  const SamplingOptions& options() const { return opt_; }

  TokenId sample(std::span<const float> logits) {
    if (opt_.temperature <= 0.0f || logits.size() == 1) return argmax(logits);
    const std::size_t n = logits.size();
    cand_.resize(n);
    std::iota(cand_.begin(), cand_.end(), TokenId(0));
    auto higher = [&](TokenId a, TokenId b) {
      return logits[std::size_t(a)] > logits[std::size_t(b)] || (logits[std::size_t(a)] == logits[std::size_t(b)] && a < b);
    };
    std::size_t keep = n;
    if (opt_.top_k > 0 && std::size_t(opt_.top_k) < n) keep = std::size_t(opt_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + std::ptrdiff_t(keep), cand_.end(), higher);
    cand_.resize(keep);
    const float mx = logits[std::size_t(cand_[0])];
    if (opt_.top_p < 1.0f) {
      // Probabilities at temperature 1 over the top-k survivors.
      p_.resize(keep);
      double sum = 0.0;
      for (std::size_t i = 0; i < keep; ++i) sum += (p_[i] = std::exp(double(logits[std::size_t(cand_[i])]) - mx));
      double cum = 0.0;
      std::size_t cut = keep;
      for (std::size_t i = 0; i < keep; ++i) {
        cum += p_[i] / sum;
        if (cum >= double(opt_.top_p)) {
          cut = i + 1;
          break;
        }
      }
      cand_.resize(cut);
    }
    p_.resize(cand_.size());
    const double inv_t = 1.0 / double(opt_.temperature);
    double sum = 0.0;
    for (std::size_t i = 0; i < cand_.size(); ++i)
      sum += (p_[i] = std::exp((double(logits[std::size_t(cand_[i])]) - mx) * inv_t));
    const double u = rng_.uniform() * sum;
    double cum = 0.0;
    for (std::size_t i = 0; i < cand_.size(); ++i) {
      cum += p_[i];
      if (u < cum) return cand_[i];
    }
    return cand_.back();  // u == sum up to rounding
  }

 private:
  SamplingOptions opt_;
  Rng rng_;
  std::vector<TokenId> cand_;
  std::vector<double> p_;
};

// ---------------------------------------------------------------------------------
// Streaming text: stop strings and UTF-8
// ---------------------------------------------------------------------------------

/// Append `s` to `out` as valid UTF-8: each byte that does not start a valid
/// sequence becomes U+FFFD.
inline void append_sanitized(std::string& out, std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const text::Utf8Step st = text::utf8_decode_at(s, i);
    if (st.len == 0) {
      text::append_utf8(out, text::kReplacementChar);
      ++i;
    } else {
      out.append(s.substr(i, st.len));
      i += st.len;
    }
  }
}

/// Turns token pieces into emitted text (see the file comment).
class TextStreamer {
 public:
  /// Stop strings must be non-empty valid UTF-8.
  static Result<TextStreamer> create(std::vector<std::string> stops) {
    for (std::size_t i = 0; i < stops.size(); ++i) {
      if (stops[i].empty()) return Status::invalid("stop string " + std::to_string(i) + " is empty");
      if (Status st = text::validate_utf8(stops[i]); !st) return st.with_context("stop string " + std::to_string(i));
    }
    TextStreamer t;
    t.stops_ = std::move(stops);
    return t;
  }

  /// Add a piece; returns the text that is now safe to emit (possibly empty).
  /// After a stop string is seen, stopped() is true and later pieces are ignored.
  std::string push(std::string_view piece) {
    std::string out;
    if (stopped_) return out;
    pending_.append(piece);
    std::size_t hit = std::string::npos;
    for (std::size_t i = 0; i < stops_.size(); ++i) {
      const std::size_t at = pending_.find(stops_[i]);
      if (at < hit) {
        hit = at;
        matched_ = i;
      }
    }
    if (hit != std::string::npos) {
      stopped_ = true;
      emit(out, hit);
      pending_.clear();
      return out;
    }
    std::size_t hold = text::utf8_incomplete_tail(pending_);
    for (const std::string& s : stops_) hold = std::max(hold, partial_suffix(pending_, s));
    emit(out, pending_.size() - hold);
    return out;
  }

  /// Whatever is still held back (at the end of generation), made valid.
  std::string flush() {
    std::string out;
    if (!stopped_) emit(out, pending_.size());
    pending_.clear();
    return out;
  }

  bool stopped() const { return stopped_; }
  /// The stop string that matched (when stopped()).
  const std::string& matched() const { return stops_.at(matched_); }
  /// Everything emitted so far.
  const std::string& text() const { return text_; }

 private:
  // Length of the longest proper prefix of `stop` that `s` ends with.
  static std::size_t partial_suffix(std::string_view s, std::string_view stop) {
    for (std::size_t k = std::min(s.size(), stop.size() - 1); k > 0; --k)
      if (s.substr(s.size() - k) == stop.substr(0, k)) return k;
    return 0;
  }
  void emit(std::string& out, std::size_t n) {
    append_sanitized(out, std::string_view(pending_).substr(0, n));
    pending_.erase(0, n);
    text_ += out;
  }

  std::vector<std::string> stops_;
  std::string pending_, text_;
  bool stopped_ = false;
  std::size_t matched_ = 0;
};

// ---------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------

enum class StopReason : std::uint8_t { kEog, kStopString, kMaxTokens, kContextFull, kCallback };

inline const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog: return "eog";
    case StopReason::kStopString: return "stop-string";
    case StopReason::kMaxTokens: return "max-tokens";
    case StopReason::kContextFull: return "context-full";
    case StopReason::kCallback: return "callback";
  }
  return "?";
}

struct GenerateOptions {
  SamplingOptions sampling;
  std::size_t max_new_tokens = 128;
  std::vector<std::string> stop;  // stop strings
  bool stop_on_eog = true;
  /// Streamed text, valid UTF-8; return false to stop generating.
  std::function<bool(std::string_view)> on_text;
};

struct GenerationStats {
  std::size_t prompt_tokens = 0, generated_tokens = 0;
  std::size_t output_chars = 0;    // code points of Generation::text ("Avg Length")
  double seconds = 0.0;            // whole call ("s/Q")
  double prompt_seconds = 0.0;     // evaluating the prompt
  double generation_seconds = 0.0; // sampling + single-token steps
  double prompt_tokens_per_second() const { return prompt_seconds > 0 ? double(prompt_tokens) / prompt_seconds : 0.0; }
  double generation_tokens_per_second() const {
    return generation_seconds > 0 ? double(generated_tokens) / generation_seconds : 0.0;
  }
};

struct Generation {
  std::string text;             // what was streamed
  std::vector<TokenId> tokens;  // every sampled token (a final EOG token included)
  StopReason stop = StopReason::kMaxTokens;
  std::string stop_string;      // when stop == kStopString
  GenerationStats stats;
};

inline std::size_t count_code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

/// Generate after `prompt` (evaluated from an empty cache).
inline Result<Generation> generate(model::Decoder& dec, const text::BpeTokenizer& tok, std::span<const TokenId> prompt,
                                   const GenerateOptions& opt = {}) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty()) return Status::invalid("generate: empty prompt (nothing to condition on)");
  if (prompt.size() > dec.cache().capacity())
    return Status::invalid("generate: prompt of " + std::to_string(prompt.size()) + " tokens exceeds the context of " +
                           std::to_string(dec.cache().capacity()));
  auto streamer = TextStreamer::create(opt.stop);
  if (!streamer) return streamer.status();
  Generation g;
  g.stats.prompt_tokens = prompt.size();
  Sampler sampler(opt.sampling);
  const std::size_t V = dec.config().n_vocab;
  std::vector<float> logits;

  const auto t0 = clock::now();
  dec.cache().clear();
  QLORA_TRY(dec.forward(prompt, logits, /*all_logits=*/false));
  const auto t1 = clock::now();

  bool more = true;
  auto deliver = [&](const std::string& s) {
    g.text += s;
    if (!s.empty() && opt.on_text && !opt.on_text(s)) more = false;
  };
  for (std::size_t i = 0;; ++i) {
    if (i == opt.max_new_tokens) {
      g.stop = StopReason::kMaxTokens;
      break;
    }
    if (i > 0) {
      if (dec.cache().size() >= dec.cache().capacity()) {
        g.stop = StopReason::kContextFull;
        break;
      }
      const TokenId last = g.tokens.back();
      QLORA_TRY(dec.forward(std::span<const TokenId>(&last, 1), logits, false));
    }
    const TokenId id = sampler.sample(std::span<const float>(logits.data(), V));
    g.tokens.push_back(id);
    if (opt.stop_on_eog && tok.is_eog(id)) {
      g.stop = StopReason::kEog;
      break;
    }
    deliver(streamer->push(tok.token_to_piece(id, /*render_special=*/true)));
    if (streamer->stopped()) {
      g.stop = StopReason::kStopString;
      g.stop_string = streamer->matched();
      break;
    }
    if (!more) {
      g.stop = StopReason::kCallback;
      break;
    }
  }
  deliver(streamer->flush());
  const auto t2 = clock::now();
  g.stats.generated_tokens = g.tokens.size();
  g.stats.output_chars = count_code_points(g.text);
  g.stats.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
  g.stats.generation_seconds = std::chrono::duration<double>(t2 - t1).count();
  g.stats.seconds = std::chrono::duration<double>(t2 - t0).count();
  return g;
}

/// Token ids of a chat prompt: the conversation rendered with the template
/// plus the assistant's generation header, tokenized as the model was trained
/// (special-token texts parsed, no extra BOS: the template holds it).
inline Result<std::vector<TokenId>> encode_chat_prompt(const text::BpeTokenizer& tok, const text::ChatTemplate& tmpl,
                                                       std::span<const text::ChatMessage> messages) {
  auto s = tmpl.apply(messages, /*add_generation_prompt=*/true);
  if (!s) return s.status();
  return tok.encode(*s, /*add_special=*/false, /*parse_special=*/true);
}

}  // namespace qlora::eval
