// qlora/pipeline/toml.hpp — a strict reader for the TOML our configs use.
//
// Pipeline configs are TOML because every field carries a comment in the
// shipped examples, which JSON cannot. We read the subset a config needs —
// comments, [table] and [a.b] headers, `key = value` with bare or quoted keys,
// basic and literal strings, integers (with _ separators), floats, booleans,
// arrays (nested, multi-line, trailing comma) and inline tables — into a JSON
// value, so TOML and JSON configs share one schema check (config.hpp). What
// the subset lacks (dates, arrays of tables, multi-line strings, dotted keys
// on the left of `=`) is an error naming the line, never a silent misread; so
// are duplicate keys. The line of every key is recorded, so schema errors can
// point at the line the user has to edit.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/text/utf8.hpp"

namespace qlora::pipeline {

struct TomlDocument {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  std::map<std::string, std::size_t> lines;  // "stage1.subsets" -> line of its key (1-based)
};

namespace toml_detail {

class Parser {
 public:
  Parser(std::string_view text, std::string file) : s_(text), file_(std::move(file)) {}

  Result<TomlDocument> parse() {
    TomlDocument doc;
    nlohmann::ordered_json* table = &doc.root;
    std::string prefix;
    while (pos_ < s_.size()) {
      skip_space();
      if (at_end_of_line()) {
        next_line();
        continue;
      }
      if (s_[pos_] == '[') {
        if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '[') return fail("arrays of tables ([[...]]) are not supported");
        ++pos_;
        std::string path;
        nlohmann::ordered_json* t = &doc.root;
        for (;;) {
          skip_space();
          auto key = read_key();
          if (!key) return key.status();
          path += (path.empty() ? "" : ".") + *key;
          if (!t->contains(*key)) (*t)[*key] = nlohmann::ordered_json::object();
          t = &(*t)[*key];
          if (!t->is_object()) return fail("'" + path + "' is already a value, not a table");
          skip_space();
          if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            continue;
          }
          break;
        }
        if (pos_ >= s_.size() || s_[pos_] != ']') return fail("expected ']' after the table name");
        ++pos_;
        if (doc.lines.count(path)) return fail("table [" + path + "] defined twice");
        doc.lines[path] = line_;
        table = t;
        prefix = path;
        QLORA_TRY(expect_end_of_line());
        continue;
      }
      auto key = read_key();
      if (!key) return key.status();
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '.') return fail("dotted keys are not supported; use a [table]");
      if (pos_ >= s_.size() || s_[pos_] != '=') return fail("expected '=' after key '" + *key + "'");
      ++pos_;
      skip_space();
      const std::string full = prefix.empty() ? *key : prefix + "." + *key;
      if (table->contains(*key)) return fail("key '" + full + "' defined twice");
      const std::size_t key_line = line_;
      auto v = read_value();
      if (!v) return v.status();
      (*table)[*key] = std::move(*v);
      doc.lines[full] = key_line;
      QLORA_TRY(expect_end_of_line());
    }
    return doc;
  }

 private:
  Status fail(const std::string& m) const { return Status::invalid(file_ + ":" + std::to_string(line_) + ": " + m); }

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool at_end_of_line() const { return pos_ >= s_.size() || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '#'; }
  void next_line() {
    while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
    if (pos_ < s_.size()) {
      ++pos_;
      ++line_;
    }
  }
  Status expect_end_of_line() {
    skip_space();
    if (!at_end_of_line()) return fail("unexpected text after the value: '" + std::string(rest_of_line()) + "'");
    next_line();
    return Status::ok();
  }
  std::string_view rest_of_line() const {
    const std::size_t e = s_.find('\n', pos_);
    return s_.substr(pos_, e == std::string_view::npos ? std::string_view::npos : e - pos_);
  }
  /// Inside arrays and inline tables: whitespace, newlines and comments.
  void skip_blank() {
    for (;;) {
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      }
      if (pos_ < s_.size() && (s_[pos_] == '\n' || s_[pos_] == '\r')) {
        if (s_[pos_] == '\n') ++line_;
        ++pos_;
        continue;
      }
      return;
    }
  }

  Result<std::string> read_key() {
    if (pos_ < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'')) return read_string();
    const std::size_t b = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '-'))
      ++pos_;
    if (pos_ == b) return fail("expected a key");
    return std::string(s_.substr(b, pos_ - b));
  }

  Result<std::string> read_string() {
    const char q = s_[pos_];
    if (s_.substr(pos_, 3) == std::string_view(q == '"' ? "\"\"\"" : "'''"))
      return fail("multi-line strings are not supported");
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != q) {
      const char c = s_[pos_];
      if (c == '\n') return fail("unterminated string");
      if (q == '"' && c == '\\') {
        if (++pos_ >= s_.size()) break;
        const char e = s_[pos_];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case 'u': {
            const auto cp = pos_ + 4 < s_.size() ? text::parse_u_escape(s_.substr(pos_ + 1, 4)) : std::nullopt;
            if (!cp) return fail("bad \\u escape (four hex digits of a character, not a surrogate)");
            pos_ += 4;
            text::append_utf8(out, *cp);
            break;
          }
          default: return fail(std::string("unknown escape \\") + e);
        }
        ++pos_;
        continue;
      }
      out += c;
      ++pos_;
    }
    if (pos_ >= s_.size()) return fail("unterminated string");
    ++pos_;
    return out;
  }

  Result<nlohmann::ordered_json> read_value() {
    if (pos_ >= s_.size() || at_end_of_line()) return fail("missing value");
    const char c = s_[pos_];
    if (c == '"' || c == '\'') {
      auto s = read_string();
      if (!s) return s.status();
      return nlohmann::ordered_json(std::move(*s));
    }
    if (c == '[') {
      ++pos_;
      nlohmann::ordered_json a = nlohmann::ordered_json::array();
      for (;;) {
        skip_blank();
        if (pos_ < s_.size() && s_[pos_] == ']') {
          ++pos_;
          return a;
        }
        auto v = read_value();
        if (!v) return v.status();
        a.push_back(std::move(*v));
        skip_blank();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        skip_blank();
        if (pos_ < s_.size() && s_[pos_] == ']') {
          ++pos_;
          return a;
        }
        return fail("expected ',' or ']' in an array");
      }
    }
    if (c == '{') {
      ++pos_;
      nlohmann::ordered_json t = nlohmann::ordered_json::object();
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return t;
      }
      for (;;) {
        skip_space();
        auto key = read_key();
        if (!key) return key.status();
        skip_space();
        if (pos_ >= s_.size() || s_[pos_] != '=') return fail("expected '=' in an inline table");
        ++pos_;
        skip_space();
        auto v = read_value();
        if (!v) return v.status();
        if (t.contains(*key)) return fail("key '" + *key + "' defined twice in an inline table");
        t[*key] = std::move(*v);
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] == '}') {
          ++pos_;
          return t;
        }
        return fail("expected ',' or '}' in an inline table");
      }
    }
    // A bare token: boolean or number.
    const std::size_t b = pos_;
    while (pos_ < s_.size() && !std::isspace(static_cast<unsigned char>(s_[pos_])) && s_[pos_] != ',' &&
           s_[pos_] != ']' && s_[pos_] != '}' && s_[pos_] != '#')
      ++pos_;
    std::string tok(s_.substr(b, pos_ - b));
    if (tok == "true") return nlohmann::ordered_json(true);
    if (tok == "false") return nlohmann::ordered_json(false);
    std::string digits;
    for (std::size_t i = 0; i < tok.size(); ++i) {
      if (tok[i] != '_') digits += tok[i];
      else if (i == 0 || i + 1 == tok.size() || !std::isdigit(static_cast<unsigned char>(tok[i - 1])) ||
               !std::isdigit(static_cast<unsigned char>(tok[i + 1])))
        return fail("misplaced '_' in number '" + tok + "'");
    }
    const bool is_float = digits.find_first_of(".eE") != std::string::npos || digits == "inf" || digits == "nan" ||
                          digits == "+inf" || digits == "-inf";
    try {
      std::size_t used = 0;
      if (is_float) {
        const double d = std::stod(digits, &used);
        if (used == digits.size()) return nlohmann::ordered_json(d);
      } else {
        const long long v = std::stoll(digits, &used, 10);
        if (used == digits.size()) return nlohmann::ordered_json(std::int64_t(v));
      }
    } catch (...) {
    }
    return fail("cannot read value '" + tok + "' (strings need quotes)");
  }

  std::string_view s_;
  std::string file_;
  std::size_t pos_ = 0, line_ = 1;
};

}  // namespace toml_detail

/// Parse TOML text; `file` names it in errors ("file:line: message").
inline Result<TomlDocument> parse_toml(std::string_view text, const std::string& file) {
  return toml_detail::Parser(text, file).parse();
}

}  // namespace qlora::pipeline
