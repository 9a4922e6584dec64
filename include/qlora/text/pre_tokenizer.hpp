// qlora/text/pre_tokenizer.hpp — the regex pre-tokenizers of byte-level BPE
// models, as hand-written matchers over Unicode categories.
//
// A byte-level BPE tokenizer first splits text into "words" with a regex, then
// runs BPE inside each word. The regexes use \p{L}, \p{N} and \s, which
// std::regex cannot express (and it is slow), so each supported regex is a
// small state machine here, written to give exactly llama.cpp's splits
// (src/unicode.cpp, which also hand-codes them). Categories come from
// unicode_tables.hpp (Unicode 15.1, identical to llama.cpp's tables).
//
// Supported GGUF `tokenizer.ggml.pre` names and their regex pipelines (each
// stage splits the pieces of the previous one; "isolate X" cuts every match of
// X into its own piece and keeps the text between matches as pieces too):
//
//   gpt-2 (gpt2)  GPT2  = 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm        isolate \p{N} (every digit alone), then GPT2
//   llama-bpe     LLAMA3 = (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//   (llama3,               | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//    llama-v3)
//   qwen2         LLAMA3 with \p{N} instead of \p{N}{1,3}
//   default       isolate [\p{P}$+<=>^~|]+, then GPT2, then isolate \p{N}+,
//                 then isolate [0-9][0-9][0-9]
//
// Matching rules shared with llama.cpp (and the regexes): a piece never crosses
// a boundary made by an earlier stage (the lookahead (?!\S) sees the end of the
// current piece as "end of text"); \s is Unicode White_Space; code points
// outside every category (unassigned) count as "other" ([^\s\p{L}\p{N}]).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/text/unicode_tables.hpp"
#include "qlora/text/utf8.hpp"

namespace qlora::text {

/// Bits of unicode_flags(): one general category plus White_Space.
struct CpFlags {
  static constexpr std::uint16_t kUnassigned = 0x001;  // Cn
  static constexpr std::uint16_t kNumber = 0x002;      // \p{N}
  static constexpr std::uint16_t kLetter = 0x004;      // \p{L}
  static constexpr std::uint16_t kSeparator = 0x008;   // \p{Z}
  static constexpr std::uint16_t kMark = 0x010;        // \p{M}
  static constexpr std::uint16_t kPunct = 0x020;       // \p{P}
  static constexpr std::uint16_t kSymbol = 0x040;      // \p{S}
  static constexpr std::uint16_t kControl = 0x080;     // \p{C} except Cn
  static constexpr std::uint16_t kWhitespace = 0x100;  // \s (Unicode White_Space)
};

namespace detail {
inline std::uint16_t unicode_flags_search(char32_t cp) {
  const auto* first = tables::kCategoryRanges;
  const auto* last = first + tables::kCategoryRangeCount;
  const auto* it = std::upper_bound(first, last, static_cast<std::uint32_t>(cp),
                                    [](std::uint32_t v, const tables::CategoryRange& r) { return v < r.first; });
  return (it - 1)->flags;
}
inline constexpr std::array<std::uint16_t, 128> make_ascii_flags() {
  std::array<std::uint16_t, 128> a{};
  int r = 0;
  for (std::uint32_t c = 0; c < 128; ++c) {
    while (r + 1 < tables::kCategoryRangeCount && tables::kCategoryRanges[r + 1].first <= c) ++r;
    a[c] = tables::kCategoryRanges[r].flags;
  }
  return a;
}
inline constexpr std::array<std::uint16_t, 128> kAsciiFlags = make_ascii_flags();
}  // namespace detail

/// CpFlags of a code point (unassigned for anything above U+10FFFF).
inline std::uint16_t unicode_flags(char32_t cp) {
  if (cp < 128) return detail::kAsciiFlags[cp];
  if (cp > kMaxCodePoint) return CpFlags::kUnassigned;
  return detail::unicode_flags_search(cp);
}

/// Simple lowercase of `cp` if that is an ASCII letter, else `cp` unchanged:
/// all the case folding (?i:'s|'t|...) needs.
inline char32_t fold_to_ascii_lower(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp < 128) return cp;
  for (const auto& f : tables::kAsciiLowerFold)
    if (f.cp == cp) return static_cast<char32_t>(f.ascii_lower);
  return cp;
}

/// Which regex pipeline a PreTokenizer runs.
enum class PreTokenizerKind : std::uint8_t { kDefault, kGpt2, kSmolLM, kLlama3, kQwen2 };

/// Splits UTF-8 text into the words BPE works on (see the file comment).
class PreTokenizer {
 public:
  /// Reusable buffers for split(); keep one per thread in hot loops.
  struct Scratch {
    std::vector<char32_t> cps;
    std::vector<std::uint16_t> flags;
    std::vector<std::uint32_t> offsets;  // byte offset of each code point, plus the end
    std::vector<std::uint32_t> cuts, next_cuts;
  };

  PreTokenizer() = default;
  explicit PreTokenizer(PreTokenizerKind kind) : kind_(kind) {}

  /// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value; unknown names
  /// are an error listing the supported ones.
  static Result<PreTokenizer> from_name(std::string_view name) {
    for (const auto& a : kAliases)
      if (a.name == name) return PreTokenizer(a.kind);
    return Status::unsupported("unknown pre-tokenizer '" + std::string(name) + "'; supported: " +
                               supported_names());
  }

  /// "default, gpt-2 (gpt2), smollm, llama-bpe (llama3, llama-v3), qwen2".
  static std::string supported_names() { return "default, gpt-2 (gpt2), smollm, llama-bpe (llama3, llama-v3), qwen2"; }

  PreTokenizerKind kind() const { return kind_; }
  /// Canonical GGUF name of this pre-tokenizer.
  std::string_view name() const {
    switch (kind_) {
      case PreTokenizerKind::kDefault: return "default";
      case PreTokenizerKind::kGpt2: return "gpt-2";
      case PreTokenizerKind::kSmolLM: return "smollm";
      case PreTokenizerKind::kLlama3: return "llama-bpe";
      case PreTokenizerKind::kQwen2: return "qwen2";
    }
    return "?";
  }

  /// Split `text` into pieces (views into `text`, in order, covering all of it).
  /// Invalid UTF-8 is an error naming the byte offset.
  Status split(std::string_view text, std::vector<std::string_view>& pieces, Scratch& s) const {
    pieces.clear();
    QLORA_TRY(decode(text, s));
    const auto n = static_cast<std::uint32_t>(s.cps.size());
    if (n == 0) return Status::ok();
    s.cuts.assign(1, n);  // one piece: the whole text
    switch (kind_) {
      case PreTokenizerKind::kGpt2:
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) { match_gpt2(s, b, e, out); });
        break;
      case PreTokenizerKind::kSmolLM:
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) {
          isolate(s, b, e, out, /*runs=*/false, [](char32_t, std::uint16_t f) { return (f & CpFlags::kNumber) != 0; });
        });
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) { match_gpt2(s, b, e, out); });
        break;
      case PreTokenizerKind::kLlama3:
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) { match_llama3(s, b, e, out, 3); });
        break;
      case PreTokenizerKind::kQwen2:
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) { match_llama3(s, b, e, out, 1); });
        break;
      case PreTokenizerKind::kDefault:
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) {
          isolate(s, b, e, out, /*runs=*/true, [](char32_t c, std::uint16_t f) {
            return (f & CpFlags::kPunct) != 0 || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
                   c == '^' || c == '~' || c == '|';
          });
        });
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) { match_gpt2(s, b, e, out); });
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) {
          isolate(s, b, e, out, /*runs=*/true, [](char32_t, std::uint16_t f) { return (f & CpFlags::kNumber) != 0; });
        });
        run(s, [&](std::uint32_t b, std::uint32_t e, auto& out) { isolate_ascii_digit_triples(s, b, e, out); });
        break;
    }
    pieces.reserve(s.cuts.size());
    std::uint32_t begin = 0;
    for (std::uint32_t end : s.cuts) {
      const std::uint32_t ob = s.offsets[begin], oe = s.offsets[end];
      pieces.emplace_back(text.data() + ob, oe - ob);
      begin = end;
    }
    return Status::ok();
  }

  Status split(std::string_view text, std::vector<std::string_view>& pieces) const {
    Scratch s;
    return split(text, pieces, s);
  }

  /// Convenience for tests and tools: the pieces as strings.
  Result<std::vector<std::string>> split_to_strings(std::string_view text) const {
    std::vector<std::string_view> v;
    if (Status st = split(text, v); !st) return st;
    return std::vector<std::string>(v.begin(), v.end());
  }

 private:
  struct Alias {
    std::string_view name;
    PreTokenizerKind kind;
  };
  static constexpr Alias kAliases[] = {
      {"default", PreTokenizerKind::kDefault}, {"gpt-2", PreTokenizerKind::kGpt2},
      {"gpt2", PreTokenizerKind::kGpt2},       {"smollm", PreTokenizerKind::kSmolLM},
      {"llama-bpe", PreTokenizerKind::kLlama3}, {"llama3", PreTokenizerKind::kLlama3},
      {"llama-v3", PreTokenizerKind::kLlama3}, {"qwen2", PreTokenizerKind::kQwen2},
  };


  static Status decode(std::string_view text, Scratch& s) {
    s.cps.clear();
    s.flags.clear();
    s.offsets.clear();
    s.cps.reserve(text.size());
    s.flags.reserve(text.size());
    s.offsets.reserve(text.size() + 1);
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto b = static_cast<unsigned char>(text[pos]);
      if (b < 0x80) {
        s.cps.push_back(b);
        s.flags.push_back(detail::kAsciiFlags[b]);
        s.offsets.push_back(static_cast<std::uint32_t>(pos));
        ++pos;
        continue;
      }
      const Utf8Step st = utf8_decode_at(text, pos);
      if (st.len == 0) return detail::utf8_status(text, pos, st.error);
      s.cps.push_back(st.cp);
      s.flags.push_back(detail::unicode_flags_search(st.cp));
      s.offsets.push_back(static_cast<std::uint32_t>(pos));
      pos += st.len;
    }
    s.offsets.push_back(static_cast<std::uint32_t>(text.size()));
    return Status::ok();
  }

  // Apply one stage to every current piece: s.cuts -> s.cuts.
  template <class Stage>
  static void run(Scratch& s, Stage&& stage) {
    s.next_cuts.clear();
    std::uint32_t b = 0;
    for (std::uint32_t e : s.cuts) {
      stage(b, e, s.next_cuts);
      b = e;
    }
    s.cuts.swap(s.next_cuts);
  }

  // Regex `X` (runs=false) or `X+` (runs=true) with "isolated" behaviour.
  template <class Pred>
  static void isolate(const Scratch& s, std::uint32_t b, std::uint32_t e, std::vector<std::uint32_t>& out, bool runs,
                      Pred&& is_x) {
    std::uint32_t pos = b;
    while (pos < e) {
      if (is_x(s.cps[pos], s.flags[pos])) {
        ++pos;
        if (runs)
          while (pos < e && is_x(s.cps[pos], s.flags[pos])) ++pos;
      } else {
        while (pos < e && !is_x(s.cps[pos], s.flags[pos])) ++pos;
      }
      out.push_back(pos);
    }
  }

  // Regex [0-9][0-9][0-9]: leftmost non-overlapping triples of ASCII digits.
  static void isolate_ascii_digit_triples(const Scratch& s, std::uint32_t b, std::uint32_t e,
                                          std::vector<std::uint32_t>& out) {
    auto digit = [&](std::uint32_t i) { return i < e && s.cps[i] >= '0' && s.cps[i] <= '9'; };
    std::uint32_t last = b;
    std::uint32_t pos = b;
    while (pos < e) {
      if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
        if (pos > last) out.push_back(pos);
        pos += 3;
        out.push_back(pos);
        last = pos;
      } else {
        ++pos;
      }
    }
    if (last < e) out.push_back(e);
  }

  // ---- GPT2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  static void match_gpt2(const Scratch& s, std::uint32_t b, std::uint32_t e, std::vector<std::uint32_t>& out) {
    constexpr char32_t kNone = 0xFFFFFFFF;
    auto cp = [&](std::uint32_t i) { return i < e ? s.cps[i] : kNone; };
    auto fl = [&](std::uint32_t i) -> std::uint16_t { return i < e ? s.flags[i] : 0; };
    constexpr std::uint16_t kWLN = CpFlags::kWhitespace | CpFlags::kLetter | CpFlags::kNumber;
    std::uint32_t pos = b;
    while (pos < e) {
      const char32_t c = s.cps[pos];
      if (c == '\'' && pos + 1 < e) {
        const char32_t c1 = cp(pos + 1);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
          pos += 2;
          out.push_back(pos);
          continue;
        }
        if (pos + 2 < e) {
          const char32_t c2 = cp(pos + 2);
          if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
            pos += 3;
            out.push_back(pos);
            continue;
          }
        }
      }
      const std::uint32_t start = pos + (c == ' ' ? 1 : 0);  // optional leading space
      const std::uint16_t f = fl(start);
      if (f & CpFlags::kLetter) {
        pos = start;
        while (fl(pos) & CpFlags::kLetter) ++pos;
        out.push_back(pos);
        continue;
      }
      if (f & CpFlags::kNumber) {
        pos = start;
        while (fl(pos) & CpFlags::kNumber) ++pos;
        out.push_back(pos);
        continue;
      }
      if (!(f & kWLN) && f != 0) {
        pos = start;
        while (!(fl(pos) & kWLN) && fl(pos) != 0) ++pos;
        out.push_back(pos);
        continue;
      }
      std::uint32_t nws = 0;
      while (fl(pos + nws) & CpFlags::kWhitespace) ++nws;
      if (nws > 1 && pos + nws < e) {  // \s+(?!\S): leave the last space for the next word
        pos += nws - 1;
        out.push_back(pos);
        continue;
      }
      pos += nws > 0 ? nws : 1;  // \s+, or a lone unmatched code point
      out.push_back(pos);
    }
  }

  // ---- LLAMA3 (max_digits 3) / QWEN2 (max_digits 1), see the file comment.
  static void match_llama3(const Scratch& s, std::uint32_t b, std::uint32_t e, std::vector<std::uint32_t>& out,
                           std::uint32_t max_digits) {
    constexpr char32_t kNone = 0xFFFFFFFF;
    auto cp = [&](std::uint32_t i) { return i < e ? s.cps[i] : kNone; };
    auto fl = [&](std::uint32_t i) -> std::uint16_t { return i < e ? s.flags[i] : 0; };
    constexpr std::uint16_t kWLN = CpFlags::kWhitespace | CpFlags::kLetter | CpFlags::kNumber;
    std::uint32_t pos = b;
    while (pos < e) {
      const char32_t c = s.cps[pos];
      const std::uint16_t f = s.flags[pos];
      // (?i:'s|'t|'re|'ve|'m|'ll|'d)
      if (c == '\'' && pos + 1 < e) {
        const char32_t c1 = fold_to_ascii_lower(cp(pos + 1));
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
          pos += 2;
          out.push_back(pos);
          continue;
        }
        if (pos + 2 < e) {
          const char32_t c2 = fold_to_ascii_lower(cp(pos + 2));
          if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
            pos += 3;
            out.push_back(pos);
            continue;
          }
        }
      }
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!(c == '\r' || c == '\n' || (f & CpFlags::kNumber))) {
        if ((f & CpFlags::kLetter) || (fl(pos + 1) & CpFlags::kLetter)) {
          ++pos;
          while (fl(pos) & CpFlags::kLetter) ++pos;
          out.push_back(pos);
          continue;
        }
      }
      // \p{N}{1,max_digits}
      if (f & CpFlags::kNumber) {
        std::uint32_t run = 0;
        while ((fl(pos) & CpFlags::kNumber) && run < max_digits) {
          ++pos;
          ++run;
        }
        out.push_back(pos);
        continue;
      }
      // ' '?[^\s\p{L}\p{N}]+[\r\n]*
      const std::uint32_t start = pos + (c == ' ' ? 1 : 0);
      const std::uint16_t f2 = fl(start);
      // (For a " " that ends the piece, f2 == 0 and this yields the lone " ",
      // as llama.cpp does; the \s+ rule would give the same piece.)
      if (!(f2 & kWLN)) {
        pos = start;
        while (!(fl(pos) & kWLN) && fl(pos) != 0) ++pos;
        while (cp(pos) == '\r' || cp(pos) == '\n') ++pos;
        out.push_back(pos);
        continue;
      }
      // \s*[\r\n]+ | \s+(?!\S) | \s+
      std::uint32_t nws = 0;
      std::uint32_t last_rn_end = 0;
      while (fl(pos + nws) & CpFlags::kWhitespace) {
        const char32_t w = cp(pos + nws);
        if (w == '\r' || w == '\n') last_rn_end = pos + nws + 1;
        ++nws;
      }
      if (last_rn_end > 0) {
        pos = last_rn_end;
        out.push_back(pos);
        continue;
      }
      if (nws > 1 && pos + nws < e) {
        pos += nws - 1;
        out.push_back(pos);
        continue;
      }
      pos += nws > 0 ? nws : 1;
      out.push_back(pos);
    }
  }

  PreTokenizerKind kind_ = PreTokenizerKind::kGpt2;
};

}  // namespace qlora::text
