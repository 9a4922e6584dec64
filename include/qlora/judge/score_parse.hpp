// qlora/judge/score_parse.hpp — the 0–3 score out of a judge model's free text.
//
// Judges are asked for JSON ({"score": 2, "reason": "..."}), but LLMs answer
// in every form: markdown ("**Score: 2**"), Japanese labels ("評価：２点"),
// fractions ("2/3"), a bare digit, reasoning that mentions other numbers
// ("第3章 is cited ... therefore the score is 2"). The parser looks for the
// verdict in decreasing order of explicitness and, within one kind, takes the
// LAST occurrence — judges reason first and conclude at the end. Numbers that
// are part of something else (第3章, 13, 2.5, 3節) are never read as scores.
// When nothing qualifies the result says so, and the caller retries: a score
// is never guessed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qlora::judge {

/// How a score was found, for the raw-judgement record.
enum class ScoreSource { kJson, kLabel, kFraction, kPoints, kBare, kNone };

inline const char* score_source_name(ScoreSource s) {
  switch (s) {
    case ScoreSource::kJson: return "json";
    case ScoreSource::kLabel: return "label";
    case ScoreSource::kFraction: return "fraction";
    case ScoreSource::kPoints: return "points";
    case ScoreSource::kBare: return "bare";
    case ScoreSource::kNone: return "none";
  }
  return "none";
}

struct ParsedScore {
  std::optional<int> score;  // 0..3, or nullopt when the text holds no verdict
  ScoreSource source = ScoreSource::kNone;
};

namespace score_detail {

/// Full-width digits, colons and slashes -> ASCII; markdown emphasis and
/// quotes dropped; ASCII letters lower-cased. Other bytes pass through, so
/// Japanese labels survive for the keyword search.
inline std::string normalize(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size();) {
    const auto c = static_cast<unsigned char>(in[i]);
    // U+FF10..U+FF19 (０-９) are EF BC 90..99; U+FF1A (：) EF BC 9A; U+FF0F (／) EF BC 8F.
    if (c == 0xEF && i + 2 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0xBC) {
      const auto d = static_cast<unsigned char>(in[i + 2]);
      if (d >= 0x90 && d <= 0x99) { out += char('0' + (d - 0x90)); i += 3; continue; }
      if (d == 0x9A) { out += ':'; i += 3; continue; }
      if (d == 0x8F) { out += '/'; i += 3; continue; }
    }
    if (c == '*' || c == '`' || c == '#' || c == '_') { ++i; continue; }
    out += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : char(c);
    ++i;
  }
  return out;
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// A digit at `pos` that stands alone: no digit or decimal point around it.
inline bool lone_digit(const std::string& s, std::size_t pos) {
  if (pos >= s.size() || !is_digit(s[pos])) return false;
  if (pos > 0 && (is_digit(s[pos - 1]) || s[pos - 1] == '.')) return false;
  if (pos + 1 < s.size() && is_digit(s[pos + 1])) return false;
  if (pos + 2 < s.size() && s[pos + 1] == '.' && is_digit(s[pos + 2])) return false;  // 2.5
  return true;
}

inline bool in_range(char c) { return c >= '0' && c <= '3'; }

/// After a label: skip spaces, quotes, ':' '=' and "は"/"：" style glue (at
/// most `max_skip` bytes), then read a lone digit 0..3.
inline std::optional<int> digit_after(const std::string& s, std::size_t pos, std::size_t max_skip = 12) {
  const std::size_t end = std::min(s.size(), pos + max_skip);
  for (std::size_t i = pos; i < end; ++i) {
    const char c = s[i];
    if (is_digit(c)) return lone_digit(s, i) && in_range(c) ? std::optional<int>(c - '0') : std::nullopt;
    const auto u = static_cast<unsigned char>(c);
    const bool glue = c == ' ' || c == ':' || c == '=' || c == '"' || c == '\'' || c == '\t' || c == '[' ||
                      c == '(' || u >= 0x80;  // multibyte glue such as は, 「, ＝
    if (!glue) return std::nullopt;
  }
  return std::nullopt;
}

/// Last score that follows any of `labels`.
inline std::optional<int> last_after_labels(const std::string& s, std::initializer_list<std::string_view> labels,
                                            std::size_t max_skip) {
  std::optional<int> found;
  std::size_t best = std::string::npos;
  for (std::string_view label : labels) {
    for (std::size_t p = s.find(label); p != std::string::npos; p = s.find(label, p + 1)) {
      auto d = digit_after(s, p + label.size(), max_skip);
      if (d && (best == std::string::npos || p > best)) {
        best = p;
        found = d;
      }
    }
  }
  return found;
}

}  // namespace score_detail

/// The judge's verdict in `reply`, or nullopt (source kNone) if there is none.
inline ParsedScore parse_score(std::string_view reply) {
  using namespace score_detail;
  const std::string s = normalize(reply);
  // 1. JSON: "score": N (the key quoted, as asked for).
  if (auto d = last_after_labels(s, {"\"score\""}, 8)) return {d, ScoreSource::kJson};
  // 2. A labelled verdict. Japanese labels are 3 bytes per character, so
  //    they allow more glue bytes ("評価は「2」").
  if (auto d = last_after_labels(s, {"final score", "score", "rating", "grade"}, 6)) return {d, ScoreSource::kLabel};
  if (auto d = last_after_labels(s, {"総合評価", "評価", "スコア", "点数", "得点", "判定"}, 15))
    return {d, ScoreSource::kLabel};
  // 3. A fraction of the maximum: "2/3", "2 / 3".
  {
    std::optional<int> last;
    for (std::size_t p = s.find('/'); p != std::string::npos; p = s.find('/', p + 1)) {
      std::size_t a = p;
      while (a > 0 && s[a - 1] == ' ') --a;
      std::size_t b = p + 1;
      while (b < s.size() && s[b] == ' ') ++b;
      if (a > 0 && lone_digit(s, a - 1) && in_range(s[a - 1]) && b < s.size() && s[b] == '3' && lone_digit(s, b))
        last = s[a - 1] - '0';
    }
    if (last) return {last, ScoreSource::kFraction};
  }
  // 4. Points: "2点" (点 = E7 82 B9), but not "第2点" style ordinals.
  {
    std::optional<int> last;
    for (std::size_t p = s.find("\xE7\x82\xB9"); p != std::string::npos; p = s.find("\xE7\x82\xB9", p + 1)) {
      std::size_t a = p;
      while (a > 0 && s[a - 1] == ' ') --a;
      if (a == 0 || !lone_digit(s, a - 1) || !in_range(s[a - 1])) continue;
      if (a >= 4 && s.compare(a - 4, 3, "\xE7\xAC\xAC") == 0) continue;  // 第
      last = s[a - 1] - '0';
    }
    if (last) return {last, ScoreSource::kPoints};
  }
  // 5. The whole reply is one digit (with punctuation or whitespace).
  {
    std::optional<int> only;
    int digits = 0;
    bool other = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (is_digit(c)) {
        ++digits;
        if (in_range(c)) only = c - '0';
      } else if (!(c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '.' || c == '"')) {
        other = true;
      }
    }
    if (!other && digits == 1 && only) return {only, ScoreSource::kBare};
  }
  return {};
}

}  // namespace qlora::judge
