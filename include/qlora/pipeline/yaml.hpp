// qlora/pipeline/yaml.hpp — a strict reader for the YAML a pipeline config
// needs, for users whose experiment configs are YAML (Hydra, Axolotl and
// PEFT recipes are).
//
// The subset: block mappings (`key: value`, `key:` + an indented block),
// block sequences (`- value`, `- key: value` items that are mappings), flow
// sequences and mappings on one line (`[16, 32]`, `{name: a, path: b}`),
// plain, 'single' and "double" quoted scalars, comments, and a leading `---`.
// Plain scalars resolve by YAML 1.2's core schema: true/false, null/~,
// integers, floats (so `5e-4` is a number, as in YAML 1.2 — PyYAML, on 1.1,
// reads it as a string), and strings otherwise. What the subset lacks —
// anchors and aliases, tags, block scalars (| >), multi-line flow
// collections, several documents — is an error naming the line, never a
// silent misread; so are tabs in indentation and duplicate keys. As with
// TOML (toml.hpp), the line of every key is kept for schema errors.
#pragma once

#include <cctype>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/text/utf8.hpp"

namespace qlora::pipeline {

struct YamlDocument {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  std::map<std::string, std::size_t> lines;  // "train.lr" -> line of its key (1-based)
};

namespace yaml_detail {

using Json = nlohmann::ordered_json;

struct Line {
  std::size_t no = 0;  // 1-based
  std::size_t indent = 0;
  std::string text;    // after the indentation, comment and trailing space removed
};

class Parser {
 public:
  Parser(std::string_view text, std::string file) : file_(std::move(file)) { split(text); }

  Result<YamlDocument> parse() {
    if (!error_.is_ok()) return error_;
    YamlDocument doc;
    lines_out_ = &doc.lines;
    if (lines_.empty()) return doc;
    if (lines_[0].indent != 0) return fail(lines_[0].no, "the document must start at column 1");
    auto root = block(0, "");
    if (!root) return root.status();
    if (pos_ < lines_.size()) return fail(lines_[pos_].no, "unexpected indentation or content");
    if (!root->is_object()) return fail(lines_[0].no, "the document must be a mapping (key: value)");
    doc.root = std::move(*root);
    return doc;
  }

 private:
  Status fail(std::size_t line, const std::string& m) const {
    return Status::invalid(file_ + ":" + std::to_string(line) + ": " + m);
  }

  /// Lines with content, comments stripped (a # outside quotes that starts
  /// the line or follows a space).
  void split(std::string_view text) {
    std::size_t no = 0, start = 0;
    while (start <= text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string l(text.substr(start, end - start));
      start = end + 1;
      ++no;
      if (!l.empty() && l.back() == '\r') l.pop_back();
      std::size_t ind = 0;
      while (ind < l.size() && l[ind] == ' ') ++ind;
      if (ind < l.size() && l[ind] == '\t') {
        error_ = fail(no, "tabs cannot indent YAML; use spaces");
        return;
      }
      std::string body = strip_comment(l.substr(ind));
      while (!body.empty() && (body.back() == ' ' || body.back() == '\t')) body.pop_back();
      if (body.empty()) {
        if (end == text.size()) break;
        continue;
      }
      if (body == "---" && lines_.empty()) continue;
      if (body == "---" || body == "...") {
        error_ = fail(no, "only one YAML document is read; '" + body + "' starts or ends another");
        return;
      }
      lines_.push_back({no, ind, body});
      if (end == text.size()) break;
    }
  }

  static std::string strip_comment(const std::string& s) {
    char quote = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (quote) {
        if (quote == '"' && c == '\\') ++i;
        else if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        if (i == 0 || s[i - 1] == ' ' || s[i - 1] == '[' || s[i - 1] == '{' || s[i - 1] == ',' || s[i - 1] == ':' ||
            s[i - 1] == '-')
          quote = c;
      } else if (c == '#' && (i == 0 || s[i - 1] == ' ')) {
        return s.substr(0, i);
      }
    }
    return s;
  }

  static bool is_item(const std::string& t) { return t == "-" || t.rfind("- ", 0) == 0; }

  /// The block starting at pos_, whose lines are indented by `indent`.
  Result<Json> block(std::size_t indent, const std::string& path) {
    return is_item(lines_[pos_].text) ? sequence(indent, path) : mapping(indent, path);
  }

  /// Where `key: rest` splits: the first ': ' (or a final ':') outside quotes.
  static std::size_t colon_at(const std::string& t) {
    char quote = 0;
    int depth = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      const char c = t[i];
      if (quote) {
        if (quote == '"' && c == '\\') ++i;
        else if (c == quote) quote = 0;
      } else if ((c == '"' || c == '\'') && i == 0) {
        quote = c;
      } else if (c == '[' || c == '{') {
        ++depth;
      } else if (c == ']' || c == '}') {
        --depth;
      } else if (c == ':' && depth == 0 && (i + 1 == t.size() || t[i + 1] == ' ')) {
        return i;
      }
    }
    return std::string::npos;
  }

  Result<Json> mapping(std::size_t indent, const std::string& path) {
    Json obj = Json::object();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && !is_item(lines_[pos_].text)) {
      const Line line = lines_[pos_];
      const std::size_t c = colon_at(line.text);
      if (c == std::string::npos) return fail(line.no, "expected 'key: value', got '" + line.text + "'");
      auto key = scalar_text(line.text.substr(0, c), line.no);
      if (!key) return key.status();
      if (key->empty()) return fail(line.no, "empty key");
      const std::string name = path.empty() ? *key : path + "." + *key;
      if (obj.contains(*key)) return fail(line.no, "duplicate key '" + name + "'");
      (*lines_out_)[name] = line.no;
      std::string rest = line.text.substr(c + 1);
      rest.erase(0, rest.find_first_not_of(' '));
      ++pos_;
      if (!rest.empty()) {
        auto v = value(rest, line.no);
        if (!v) return v.status();
        obj[*key] = std::move(*v);
      } else if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
        auto v = block(lines_[pos_].indent, name);
        if (!v) return v.status();
        obj[*key] = std::move(*v);
      } else if (pos_ < lines_.size() && lines_[pos_].indent == indent && is_item(lines_[pos_].text)) {
        auto v = sequence(indent, name);  // "key:\n- a": a sequence may sit at its key's indentation
        if (!v) return v.status();
        obj[*key] = std::move(*v);
      } else {
        obj[*key] = nullptr;
      }
    }
    if (pos_ < lines_.size() && lines_[pos_].indent > indent)
      return fail(lines_[pos_].no, "unexpected indentation");
    return obj;
  }

  Result<Json> sequence(std::size_t indent, const std::string& path) {
    Json arr = Json::array();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && is_item(lines_[pos_].text)) {
      Line& line = lines_[pos_];
      std::size_t off = 1;
      while (off < line.text.size() && line.text[off] == ' ') ++off;
      const std::string content = line.text.substr(off);
      if (content.empty()) {
        ++pos_;
        if (pos_ >= lines_.size() || lines_[pos_].indent <= indent)
          arr.push_back(nullptr);
        else {
          auto v = block(lines_[pos_].indent, path);
          if (!v) return v.status();
          arr.push_back(std::move(*v));
        }
      } else if (content[0] != '[' && content[0] != '{' && colon_at(content) != std::string::npos) {
        // "- key: value": a mapping whose keys line up with `key`.
        line.indent = indent + off;
        line.text = content;
        auto v = mapping(line.indent, path);
        if (!v) return v.status();
        arr.push_back(std::move(*v));
      } else {
        ++pos_;
        auto v = value(content, line.no);
        if (!v) return v.status();
        arr.push_back(std::move(*v));
      }
    }
    if (pos_ < lines_.size() && lines_[pos_].indent > indent)
      return fail(lines_[pos_].no, "unexpected indentation");
    return arr;
  }

  /// A value on the rest of a line: a flow collection or a scalar.
  Result<Json> value(const std::string& s, std::size_t no) {
    const char c = s[0];
    if (c == '&' || c == '*') return fail(no, "anchors and aliases are not supported");
    if (c == '!') return fail(no, "tags are not supported");
    if (c == '|' || c == '>') return fail(no, "block scalars (| and >) are not supported; quote the string");
    if (c == '[' || c == '{') {
      std::size_t i = 0;
      auto v = flow(s, i, no);
      if (!v) return v.status();
      while (i < s.size() && s[i] == ' ') ++i;
      if (i != s.size()) return fail(no, "unexpected '" + s.substr(i) + "' after a flow collection");
      return v;
    }
    return scalar(s, no);
  }

  Result<Json> flow(const std::string& s, std::size_t& i, std::size_t no) {
    const char open = s[i], close = open == '[' ? ']' : '}';
    Json out = open == '[' ? Json::array() : Json::object();
    ++i;
    for (;;) {
      while (i < s.size() && s[i] == ' ') ++i;
      if (i >= s.size()) return fail(no, std::string("unclosed '") + open + "' (flow collections must fit on one line)");
      if (s[i] == close) {
        ++i;
        return out;
      }
      std::string key;
      if (open == '{') {
        const std::size_t k0 = i;
        auto k = token(s, i, no, /*in_key=*/true);
        if (!k) return k.status();
        if (i >= s.size() || s[i] != ':') return fail(no, "expected ':' after key '" + s.substr(k0, i - k0) + "'");
        ++i;
        auto kt = scalar_text(*k, no);
        if (!kt) return kt.status();
        key = *kt;
        if (out.contains(key)) return fail(no, "duplicate key '" + key + "'");
        while (i < s.size() && s[i] == ' ') ++i;
      }
      Json v;
      if (i < s.size() && (s[i] == '[' || s[i] == '{')) {
        auto f = flow(s, i, no);
        if (!f) return f.status();
        v = std::move(*f);
      } else {
        auto t = token(s, i, no, false);
        if (!t) return t.status();
        auto sc = scalar(*t, no);
        if (!sc) return sc.status();
        v = std::move(*sc);
      }
      if (open == '[') out.push_back(std::move(v));
      else out[key] = std::move(v);
      while (i < s.size() && s[i] == ' ') ++i;
      if (i < s.size() && s[i] == ',') ++i;
      else if (i < s.size() && s[i] != close) return fail(no, std::string("expected ',' or '") + close + "'");
    }
  }

  /// One scalar inside a flow collection, quotes kept (scalar() reads them).
  Result<std::string> token(const std::string& s, std::size_t& i, std::size_t no, bool in_key) {
    const std::size_t start = i;
    if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
      const char q = s[i++];
      for (; i < s.size(); ++i) {
        if (q == '"' && s[i] == '\\') ++i;
        else if (s[i] == q) {
          if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') ++i;
          else break;
        }
      }
      if (i >= s.size()) return fail(no, "unclosed quoted string");
      ++i;
      return s.substr(start, i - start);
    }
    while (i < s.size() && s[i] != ',' && s[i] != ']' && s[i] != '}' && !(in_key && s[i] == ':')) ++i;
    std::string t = s.substr(start, i - start);
    while (!t.empty() && t.back() == ' ') t.pop_back();
    if (t.empty()) return fail(no, "empty entry in a flow collection");
    return t;
  }

  /// A key or quoted string's text.
  Result<std::string> scalar_text(const std::string& s, std::size_t no) {
    auto v = scalar(s, no);
    if (!v) return v.status();
    if (v->is_string()) return v->get<std::string>();
    std::string t = s;  // a plain key like 42 or true stays as written
    return t;
  }

  Result<Json> scalar(const std::string& s, std::size_t no) {
    if (s.empty()) return Json(nullptr);
    if (s[0] == '"') return double_quoted(s, no);
    if (s[0] == '\'') {
      if (s.size() < 2 || s.back() != '\'') return fail(no, "unclosed quoted string");
      std::string out;
      for (std::size_t i = 1; i + 1 < s.size(); ++i) {
        out += s[i];
        if (s[i] == '\'') {
          if (s[i + 1] != '\'' || i + 2 >= s.size()) return fail(no, "a ' inside a single-quoted string is written ''");
          ++i;
        }
      }
      return Json(out);
    }
    if (s[0] == '&' || s[0] == '*' || s[0] == '!' || s[0] == '|' || s[0] == '>') return value(s, no);
    if (s == "true" || s == "True" || s == "TRUE") return Json(true);
    if (s == "false" || s == "False" || s == "FALSE") return Json(false);
    if (s == "null" || s == "Null" || s == "NULL" || s == "~") return Json(nullptr);
    if (is_int(s)) {
      try {
        return Json(std::stoll(s));
      } catch (...) {
        return fail(no, "integer out of range: " + s);
      }
    }
    if (is_float(s)) return Json(std::stod(s));
    return Json(s);
  }

  static bool is_int(const std::string& s) {
    std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i >= s.size()) return false;
    for (; i < s.size(); ++i)
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    return true;
  }

  /// YAML 1.2 core schema: [-+]? (\.[0-9]+ | [0-9]+(\.[0-9]*)?) ([eE][-+]?[0-9]+)?
  static bool is_float(const std::string& s) {
    std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    auto digits = [&] {
      const std::size_t a = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      return i - a;
    };
    if (i < s.size() && s[i] == '.') {
      ++i;
      if (digits() == 0) return false;
    } else {
      if (digits() == 0) return false;
      if (i < s.size() && s[i] == '.') ++i, digits();
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
      if (digits() == 0) return false;
    }
    return i == s.size();
  }

  Result<Json> double_quoted(const std::string& s, std::size_t no) {
    if (s.size() < 2 || s.back() != '"') return fail(no, "unclosed quoted string");
    std::string out;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
      char c = s[i];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i + 2 >= s.size()) return fail(no, "a \\ ends the string");
      c = s[++i];
      switch (c) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case '0': out += '\0'; break;
        case 'u': {
          const auto cp = i + 5 < s.size() ? text::parse_u_escape(std::string_view(s).substr(i + 1, 4)) : std::nullopt;
          if (!cp) return fail(no, "\\u needs four hex digits of a character (not a surrogate)");
          i += 4;
          text::append_utf8(out, *cp);
          break;
        }
        default: return fail(no, std::string("unknown escape \\") + c);
      }
    }
    return Json(out);
  }

  std::string file_;
  std::vector<Line> lines_;
  std::size_t pos_ = 0;
  Status error_ = Status::ok();
  std::map<std::string, std::size_t>* lines_out_ = nullptr;
};

}  // namespace yaml_detail

/// Parse YAML text; `file` names it in errors.
inline Result<YamlDocument> parse_yaml(std::string_view text, const std::string& file) {
  return yaml_detail::Parser(text, file).parse();
}

}  // namespace qlora::pipeline
