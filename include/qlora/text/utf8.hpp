// qlora/text/utf8.hpp — strict UTF-8 decode / encode / validate.
//
// "Strict" = RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), no
// code points above U+10FFFF, no truncated sequences. Errors name the byte
// offset of the first bad byte and why it is bad, so a caller can point at the
// exact spot in a multi-megabyte corpus. Nothing here allocates except the
// functions that return containers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/core/status.hpp"

namespace qlora::text {

inline constexpr char32_t kMaxCodePoint = 0x10FFFF;
inline constexpr char32_t kReplacementChar = 0xFFFD;

/// Why a byte sequence is not UTF-8 (kOk when it is).
enum class Utf8Error : std::uint8_t { kOk, kBadLead, kTruncated, kBadContinuation, kOverlong, kSurrogate, kTooLarge };

inline const char* utf8_error_name(Utf8Error e) {
  switch (e) {
    case Utf8Error::kOk: return "ok";
    case Utf8Error::kBadLead: return "byte cannot start a UTF-8 sequence";
    case Utf8Error::kTruncated: return "sequence truncated by end of input";
    case Utf8Error::kBadContinuation: return "expected a continuation byte (10xxxxxx)";
    case Utf8Error::kOverlong: return "overlong encoding";
    case Utf8Error::kSurrogate: return "encodes a UTF-16 surrogate (U+D800..U+DFFF)";
    case Utf8Error::kTooLarge: return "code point above U+10FFFF";
  }
  return "?";
}

/// One decoded code point, or the reason decoding failed at that position.
struct Utf8Step {
  char32_t cp = 0;
  std::uint8_t len = 0;  // bytes consumed (1..4); 0 on error
  Utf8Error error = Utf8Error::kOk;
};

/// Decode the code point starting at byte `pos` (pos < s.size()).
inline Utf8Step utf8_decode_at(std::string_view s, std::size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const std::size_t avail = s.size() - pos;
  const unsigned b0 = p[0];
  if (b0 < 0x80) return {b0, 1, Utf8Error::kOk};
  int n;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) { n = 2; cp = b0 & 0x1F; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { n = 3; cp = b0 & 0x0F; min = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { n = 4; cp = b0 & 0x07; min = 0x10000; }
  else return {0, 0, Utf8Error::kBadLead};
  for (int i = 1; i < n; ++i) {
    if (static_cast<std::size_t>(i) >= avail) return {0, 0, Utf8Error::kTruncated};
    if ((p[i] & 0xC0) != 0x80) return {0, 0, Utf8Error::kBadContinuation};
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min) return {0, 0, Utf8Error::kOverlong};
  if (cp >= 0xD800 && cp <= 0xDFFF) return {0, 0, Utf8Error::kSurrogate};
  if (cp > kMaxCodePoint) return {0, 0, Utf8Error::kTooLarge};
  return {cp, static_cast<std::uint8_t>(n), Utf8Error::kOk};
}

namespace detail {
inline Status utf8_status(std::string_view s, std::size_t pos, Utf8Error e) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(s[pos])));
  return Status::invalid("invalid UTF-8 at byte offset " + std::to_string(pos) + " (byte " + hex +
                         "): " + utf8_error_name(e));
}
}  // namespace detail

/// Byte offset of the first invalid sequence, or s.size() when all of `s` is valid.
inline std::size_t utf8_find_invalid(std::string_view s, Utf8Error* why = nullptr) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    // ASCII fast path, 8 bytes at a time.
    while (pos + 8 <= s.size()) {
      std::uint64_t w;
      __builtin_memcpy(&w, s.data() + pos, 8);
      if (w & 0x8080808080808080ull) break;
      pos += 8;
    }
    if (pos >= s.size()) break;
    const Utf8Step st = utf8_decode_at(s, pos);
    if (st.len == 0) {
      if (why) *why = st.error;
      return pos;
    }
    pos += st.len;
  }
  if (why) *why = Utf8Error::kOk;
  return s.size();
}

/// Ok, or an error "invalid UTF-8 at byte offset N (byte 0xXX): reason".
inline Status validate_utf8(std::string_view s) {
  Utf8Error why;
  const std::size_t bad = utf8_find_invalid(s, &why);
  return bad == s.size() ? Status::ok() : detail::utf8_status(s, bad, why);
}

/// Decode all of `s` into code points; `byte_offsets` (optional) receives the
/// start offset of every code point plus a final s.size().
inline Status decode_utf8(std::string_view s, std::vector<char32_t>& out,
                          std::vector<std::uint32_t>* byte_offsets = nullptr) {
  out.clear();
  out.reserve(s.size());
  if (byte_offsets) {
    byte_offsets->clear();
    byte_offsets->reserve(s.size() + 1);
  }
  std::size_t pos = 0;
  while (pos < s.size()) {
    const Utf8Step st = utf8_decode_at(s, pos);
    if (st.len == 0) return detail::utf8_status(s, pos, st.error);
    out.push_back(st.cp);
    if (byte_offsets) byte_offsets->push_back(static_cast<std::uint32_t>(pos));
    pos += st.len;
  }
  if (byte_offsets) byte_offsets->push_back(static_cast<std::uint32_t>(s.size()));
  return Status::ok();
}

inline Result<std::u32string> decode_utf8(std::string_view s) {
  std::vector<char32_t> v;
  if (Status st = decode_utf8(s, v); !st) return st;
  return std::u32string(v.begin(), v.end());
}

/// Number of bytes `cp` takes in UTF-8 (0 if it is not a Unicode scalar value).
inline int utf8_length(char32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  if (cp < 0x10000) return 3;
  if (cp <= kMaxCodePoint) return 4;
  return 0;
}

/// The code point of a \uXXXX escape's four hex digits (TOML and YAML
/// configs); nullopt when they are not four hex digits or name a surrogate,
/// which is not a character on its own.
inline std::optional<char32_t> parse_u_escape(std::string_view hex4) {
  if (hex4.size() != 4) return std::nullopt;
  char32_t cp = 0;
  for (char h : hex4) {
    const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
    if (d < 0) return std::nullopt;
    cp = cp * 16 + char32_t(d);
  }
  if (utf8_length(cp) == 0) return std::nullopt;
  return cp;
}

/// Append `cp` (a Unicode scalar value; checked by the caller) as UTF-8.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Encode code points; an error names the index of a surrogate or out-of-range value.
inline Result<std::string> encode_utf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (std::size_t i = 0; i < cps.size(); ++i) {
    if (utf8_length(cps[i]) == 0) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(cps[i]));
      return Status::invalid("cannot encode code point " + std::string(hex) + " at index " + std::to_string(i) +
                             " as UTF-8 (surrogate or above U+10FFFF)");
    }
    append_utf8(out, cps[i]);
  }
  return out;
}

/// Bytes at the end of `s` that start a valid but unfinished sequence (0..3).
/// Streaming decoders hold these back until the next token completes them.
inline std::size_t utf8_incomplete_tail(std::string_view s) {
  const std::size_t n = s.size();
  for (std::size_t k = 1; k <= 3 && k <= n; ++k) {
    const auto b = static_cast<unsigned char>(s[n - k]);
    if ((b & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    int need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
    return need > static_cast<int>(k) ? k : 0;
  }
  return 0;
}

}  // namespace qlora::text
