// qlora/data/csv.hpp — an RFC 4180 CSV reader, plus the text-file checks
// (read whole file, strict UTF-8, line iteration) that every data loader
// shares.
//
// Grammar (RFC 4180, with the usual relaxations real exporters need):
//   record  = field *(DELIM field)        DELIM is configurable (',' by default)
//   field   = quoted / bare
//   quoted  = '"' *(any byte except '"' / '""') '"'     may span lines
//   bare    = *(any byte except DELIM, '"', CR, LF)
//   records end at LF or CRLF; the last one may lack a line break.
// Relaxations: LF alone ends a line (RFC says CRLF); a UTF-8 BOM at the very
// start is dropped; completely empty lines are not records (neo4j-admin skips
// them too) and are counted in empty_lines_skipped().
// Strictness: a quote inside a bare field, text after a closing quote, a quote
// left open at end of file, and a bare CR outside quotes are errors — a
// lenient reader would silently merge or split records there, and the graph
// loaders must never guess. The whole file must be valid UTF-8 (no overlongs,
// no surrogates, nothing above U+10FFFF); errors say file:line:column, where
// column counts bytes from 1.
//
// Lines are physical lines (1-based). Each record reports the line where it
// STARTS, and each field its own start line and byte column, so an error in a
// field of a multi-line record still points at the right place.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/core/text_file.hpp"

namespace qlora::data {

////////////////////////////////////////////////////////////////////////////////
// Text-file primitives shared by the CSV and JSON-lines loaders.
////////////////////////////////////////////////////////////////////////////////

using qlora::read_text_file;

/// Position of the first invalid UTF-8 sequence, or npos (byte offset).
/// `why` receives a short reason. Checks the Unicode 15 well-formedness
/// table: no overlongs (C0, C1, E0 80-9F, F0 80-8F), no UTF-16 surrogates
/// (ED A0-BF), nothing above U+10FFFF (F4 90+, F5-FF), no stray continuation
/// bytes, no truncated sequences.
inline std::size_t find_invalid_utf8(std::string_view s, const char** why = nullptr) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  auto fail = [&](std::size_t at, const char* reason) {
    if (why) *why = reason;
    return at;
  };
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {  // ASCII fast path: most of our files are mostly ASCII markup
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // below: overlong
      if (c == 0xED) hi = 0x9F;  // above: surrogates D800-DFFF
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // below: overlong
      if (c == 0xF4) hi = 0x8F;  // above: beyond U+10FFFF
    } else if (c >= 0x80 && c <= 0xBF) {
      return fail(i, "unexpected continuation byte");
    } else if (c == 0xC0 || c == 0xC1) {
      return fail(i, "overlong encoding");
    } else {
      return fail(i, "byte not allowed in UTF-8 (code point above U+10FFFF)");
    }
    if (i + 1 >= n) return fail(i, "truncated sequence at end of input");
    const unsigned char c1 = p[i + 1];
    if (c1 < lo || c1 > hi) {
      if (c1 < 0x80 || c1 > 0xBF) return fail(i, "truncated sequence");
      if (c == 0xED) return fail(i, "UTF-16 surrogate encoded in UTF-8");
      if (c == 0xF4) return fail(i, "code point above U+10FFFF");
      return fail(i, "overlong encoding");
    }
    for (std::size_t k = 2; k < len; ++k)
      if (i + k >= n || p[i + k] < 0x80 || p[i + k] > 0xBF) return fail(i, "truncated sequence");
    i += len;
  }
  return std::string_view::npos;
}

/// 1-based line and byte column of byte offset `pos` in `text` (lines end at LF).
inline std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t pos) {
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < pos && i < text.size(); ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  return {line, pos - line_start + 1};
}

/// Ok, or "name:line:col: invalid UTF-8 (reason)". `first_line` shifts the
/// line numbers when `text` is one line of a bigger file.
inline Status validate_utf8(std::string_view text, const std::string& name, std::size_t first_line = 1) {
  const char* why = "";
  const std::size_t bad = find_invalid_utf8(text, &why);
  if (bad == std::string_view::npos) return Status::ok();
  auto [line, col] = line_and_column(text, bad);
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[bad])));
  return Status::corrupt(name + ":" + std::to_string(line + first_line - 1) + ":" + std::to_string(col) +
                         ": invalid UTF-8 (" + why + ", byte " + hex + ")");
}

/// True (and removes it) if `text` starts with the UTF-8 byte-order mark.
inline bool strip_utf8_bom(std::string& text) {
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) {
    text.erase(0, 3);
    return true;
  }
  return false;
}

/// Calls fn(line_number, line) for each LF-terminated line, without the LF
/// and without a trailing CR (so CRLF files read the same as LF files). A
/// final line without a break is included; an empty tail after the last LF
/// is not a line. fn returns Status; the first error stops the walk.
template <class Fn>
Status for_each_line(std::string_view text, Fn&& fn) {
  std::size_t line = 1, start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(start, end - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    QLORA_TRY(fn(line, l));
    ++line;
    start = end + 1;
  }
  return Status::ok();
}

////////////////////////////////////////////////////////////////////////////////
// CSV
////////////////////////////////////////////////////////////////////////////////

struct CsvOptions {
  char delimiter = ',';          // ',' for neo4j-admin, '\t' for TSV, ';' for some locales
  char quote = '"';
  bool skip_empty_lines = true;  // a zero-length line is not a record (neo4j-admin agrees)
};

struct CsvField {
  std::string text;              // unquoted, "" un-doubled; line breaks inside quotes kept as written
  std::size_t line = 0;          // physical line where the field starts (1-based)
  std::size_t column = 0;        // byte column where it starts (1-based, the quote if quoted)
  bool quoted = false;           // neo4j-admin distinguishes "" (empty string) from nothing (no value)
};

struct CsvRecord {
  std::size_t line = 0;          // physical line where the record starts
  std::vector<CsvField> fields;
};

/// Pull-style reader over an in-memory file. Usage:
///   auto r = CsvReader::open(path);            // or from_text(...)
///   CsvRecord rec;
///   while (!r->at_end()) { QLORA_TRY(r->next(rec)); ... }
class CsvReader {
 public:
  /// Reads and UTF-8-checks the file (the BOM, if any, is dropped after the check).
  static Result<CsvReader> open(const std::string& path, CsvOptions opt = {}) {
    auto text = read_text_file(path);
    if (!text) return text.status();
    return from_text(std::move(text).value(), path, opt);
  }
  /// `name` is what error messages call the input (usually its path).
  static Result<CsvReader> from_text(std::string text, std::string name, CsvOptions opt = {}) {
    if (opt.delimiter == opt.quote || opt.delimiter == '\n' || opt.delimiter == '\r' || opt.quote == '\n' ||
        opt.quote == '\r')
      return Status::invalid(name + ": CSV delimiter and quote must differ and must not be line breaks");
    QLORA_TRY(validate_utf8(text, name));
    CsvReader r;
    r.column_shift_ = strip_utf8_bom(text) ? 3 : 0;  // columns stay file-relative on line 1
    r.text_ = std::move(text);
    r.name_ = std::move(name);
    r.opt_ = opt;
    return r;
  }

  const std::string& name() const { return name_; }
  std::size_t empty_lines_skipped() const { return empty_lines_; }

  /// True when no record is left (skips trailing empty lines first).
  bool at_end() {
    skip_empty_lines();
    return pos_ >= text_.size();
  }

  /// Reads the next record into `out` (reusing its storage). Call only when
  /// !at_end().
  Status next(CsvRecord& out) {
    skip_empty_lines();
    out.line = line_;
    std::size_t nf = 0;  // fields filled so far; `out.fields` keeps capacity across calls
    const char d = opt_.delimiter, q = opt_.quote;
    const std::size_t n = text_.size();
    for (;;) {
      if (nf == out.fields.size()) out.fields.emplace_back();
      CsvField& f = out.fields[nf++];
      f.text.clear();
      f.line = line_;
      f.column = column();
      f.quoted = pos_ < n && text_[pos_] == q;
      if (f.quoted) {
        ++pos_;
        for (;;) {
          if (pos_ >= n)
            return error(f.line, f.column, "unterminated quoted field (the quote opened here is never closed)");
          // Copy the run up to the next quote or LF in one go (fast path).
          const char stops[2] = {q, '\n'};
          std::size_t stop = text_.find_first_of(stops, pos_, 2);
          if (stop == std::string::npos) stop = n;
          f.text.append(text_, pos_, stop - pos_);
          pos_ = stop;
          if (pos_ >= n) continue;
          if (text_[pos_] == '\n') {  // a line break inside quotes is data
            f.text.push_back('\n');
            ++pos_;
            ++line_;
            line_start_ = pos_;
            continue;
          }
          // A quote: doubled means a literal quote, otherwise the field ends.
          if (pos_ + 1 < n && text_[pos_ + 1] == q) {
            f.text.push_back(q);
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        const bool crlf = pos_ + 1 < n && text_[pos_] == '\r' && text_[pos_ + 1] == '\n';
        if (pos_ < n && text_[pos_] != d && text_[pos_] != '\n' && !crlf)
          return error(line_, column(),
                       "unexpected character after a closing quote (quotes inside a field must be doubled)");
      } else {
        const std::size_t begin = pos_;
        while (pos_ < n) {
          const char c = text_[pos_];
          if (c == d || c == '\n') break;
          if (c == '\r') {
            if (pos_ + 1 < n && text_[pos_ + 1] == '\n') break;
            return error(line_, column(), "bare carriage return outside quotes (line breaks must be LF or CRLF)");
          }
          if (c == q)
            return error(line_, column(),
                         "stray quote inside an unquoted field (quote the whole field and double the quote)");
          ++pos_;
        }
        f.text.assign(text_, begin, pos_ - begin);
      }
      // After a field: delimiter (another field follows), line break or EOF.
      if (pos_ >= n) break;
      if (text_[pos_] == d) {
        ++pos_;
        continue;
      }
      pos_ += text_[pos_] == '\r' ? 2 : 1;  // CRLF or LF
      ++line_;
      line_start_ = pos_;
      break;
    }
    out.fields.resize(nf);
    return Status::ok();
  }

 private:
  CsvReader() = default;

  std::size_t column() const { return pos_ - line_start_ + 1 + (line_ == 1 ? column_shift_ : 0); }

  void skip_empty_lines() {
    if (!opt_.skip_empty_lines) return;
    while (pos_ < text_.size()) {
      std::size_t brk = 0;
      if (text_[pos_] == '\n') brk = 1;
      else if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') brk = 2;
      if (!brk) return;
      pos_ += brk;
      ++line_;
      line_start_ = pos_;
      ++empty_lines_;
    }
  }

  Status error(std::size_t line, std::size_t col, const std::string& what) const {
    return Status::corrupt(name_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
  }

  std::string text_, name_;
  CsvOptions opt_;
  std::size_t pos_ = 0, line_ = 1, line_start_ = 0, column_shift_ = 0, empty_lines_ = 0;
};

/// A header plus data records, every record checked to have the header's
/// number of fields.
struct CsvTable {
  std::string name;
  CsvRecord header;
  std::vector<CsvRecord> rows;
  std::size_t empty_lines_skipped = 0;
};

/// Reads all records of `reader`; the first one is the header. An empty
/// input (no header) is an error: a CSV file in a graph export always has one.
inline Result<CsvTable> read_csv_table(CsvReader& reader) {
  CsvTable t;
  t.name = reader.name();
  if (reader.at_end()) return Status::corrupt(reader.name() + ": empty CSV file (no header line)");
  QLORA_TRY(reader.next(t.header));
  const std::size_t want = t.header.fields.size();
  CsvRecord rec;
  while (!reader.at_end()) {
    QLORA_TRY(reader.next(rec));
    if (rec.fields.size() != want)
      return Status::corrupt(reader.name() + ":" + std::to_string(rec.line) + ": record has " +
                             std::to_string(rec.fields.size()) + " fields, the header (line " +
                             std::to_string(t.header.line) + ") has " + std::to_string(want));
    t.rows.push_back(std::move(rec));
    rec = CsvRecord{};
  }
  t.empty_lines_skipped = reader.empty_lines_skipped();
  return t;
}

/// read_csv_table over a file.
inline Result<CsvTable> read_csv(const std::string& path, CsvOptions opt = {}) {
  auto r = CsvReader::open(path, opt);
  if (!r) return r.status();
  return read_csv_table(*r);
}

/// read_csv_table over text already in memory; `name` labels errors.
inline Result<CsvTable> parse_csv(std::string text, std::string name, CsvOptions opt = {}) {
  auto r = CsvReader::from_text(std::move(text), std::move(name), opt);
  if (!r) return r.status();
  return read_csv_table(*r);
}

}  // namespace qlora::data
