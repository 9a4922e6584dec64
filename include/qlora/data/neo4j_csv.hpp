// qlora/data/neo4j_csv.hpp — load node and relationship CSV files written in
// the neo4j-admin import convention into a KnowledgeGraph.
//
// Header entries (one per column, `name:kind`):
//   node files          `id:ID`, `name:ID` (that property is kept too), `:ID`
//                       (not kept as a property), `…:ID(Space)`; `:LABEL`
//                       (labels separated by the array delimiter, ';');
//   relationship files  `:START_ID`, `:END_ID` (each optionally `(Space)`),
//                       `:TYPE`;
//   both                `prop` or `prop:type` with type one of int, long,
//                       short, byte, float, double, boolean, char, string,
//                       point, date, time, localtime, datetime,
//                       localdatetime, duration, or `type[]` (an array,
//                       elements separated by ';'); `:IGNORE` columns are
//                       skipped. Keywords and types are case-insensitive.
// Id spaces: ids are unique per space (as neo4j-admin requires), and a
// relationship's `:START_ID(Space)` looks its id up in that space only; no
// space is the default space. KnowledgeGraph has ONE id namespace (QA
// sources cite node ids), so the same id in two spaces is an error too.
//
// Values: everything is stored as text (KnowledgeGraph properties are
// strings). Typed values are validated (integers with their range, finite or
// NaN/Infinity floats, true/false, one code point for char), trimmed of
// spaces, and stored trimmed; arrays are stored with ';' between elements
// whatever the delimiter was, which is also how the APOC loader stores JSON
// arrays, so both forms give the same graph. Temporal and point values are
// only checked for valid UTF-8. As in neo4j-admin, an unquoted empty field
// means "no property", a quoted "" is an empty string (string columns only).
//
// Policy — hard error (the load fails, message says file:line[:column]):
//   I/O, invalid UTF-8, CSV syntax, a record with the wrong number of fields,
//   a bad header (unknown type, duplicate column, missing :ID / :START_ID /
//   :END_ID / :TYPE, relationship keywords in a node file or vice versa),
//   an invalid typed value, an empty node id, a duplicate node id (both
//   lines named), a node without `name` (our schema requires it), an empty
//   relationship type or endpoint.
// Skipped and counted in LoadSummary::skipped ("file:line: reason"):
//   a relationship whose endpoint id is not among the loaded nodes — partial
//   exports produce these routinely, the rest of the graph is still sound,
//   and each one is listed, so nothing disappears silently.
// Completely empty lines are not records (see csv.hpp).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/data/csv.hpp"
#include "qlora/data/knowledge_graph.hpp"

namespace qlora::data {

struct Neo4jCsvOptions {
  char delimiter = ',';        // neo4j-admin --delimiter
  char array_delimiter = ';';  // neo4j-admin --array-delimiter (also splits :LABEL)
  char quote = '"';            // neo4j-admin --quote
};

namespace neo4j_csv_detail {

enum class Role { Property, Id, Label, Ignore, StartId, EndId, Type };
enum class ValueType { String, Int, Float, Boolean, Char, Unchecked };

/// One parsed header entry.
struct Column {
  Role role = Role::Property;
  std::string property;  // property name ("" for `:ID`, keywords)
  ValueType type = ValueType::String;
  std::string type_name = "string";  // as written, lower-case, for messages
  bool array = false;
  long long min = 0, max = 0;  // integer range for Int
  std::string space;           // id space for Id / StartId / EndId
  std::string header;          // the entry as written
};

inline std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline std::string where(const std::string& file, std::size_t line) { return file + ":" + std::to_string(line); }
inline std::string where(const std::string& file, const CsvField& f) {
  return file + ":" + std::to_string(f.line) + ":" + std::to_string(f.column);
}

/// Sets the value type from a (lower-case) type name; false if unknown.
inline bool set_type(Column& c, const std::string& t) {
  struct IntRange {
    const char* name;
    long long min, max;
  };
  static constexpr IntRange kInts[] = {
      {"byte", std::numeric_limits<std::int8_t>::min(), std::numeric_limits<std::int8_t>::max()},
      {"short", std::numeric_limits<std::int16_t>::min(), std::numeric_limits<std::int16_t>::max()},
      {"int", std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()},
      {"long", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}};
  c.type_name = t;
  for (const auto& r : kInts)
    if (t == r.name) {
      c.type = ValueType::Int, c.min = r.min, c.max = r.max;
      return true;
    }
  if (t == "float" || t == "double") c.type = ValueType::Float;
  else if (t == "boolean") c.type = ValueType::Boolean;
  else if (t == "char") c.type = ValueType::Char;
  else if (t == "string") c.type = ValueType::String;
  else if (t == "point" || t == "date" || t == "time" || t == "localtime" || t == "datetime" ||
           t == "localdatetime" || t == "duration")
    c.type = ValueType::Unchecked;  // their syntax is Cypher's; we keep the text as written
  else
    return false;
  return true;
}

/// Parses one header entry; `where_` prefixes error messages.
inline Result<Column> parse_column(const std::string& entry, const std::string& where_) {
  Column c;
  c.header = entry;
  auto bad = [&](const std::string& why) {
    return Status::corrupt(where_ + ": header column '" + entry + "': " + why);
  };
  const std::size_t colon = entry.rfind(':');
  if (colon == std::string::npos) {
    if (entry.empty()) return bad("empty column name");
    c.property = entry;
    return c;
  }
  c.property = entry.substr(0, colon);
  std::string kind = entry.substr(colon + 1);
  // An id space is written as a suffix in parentheses: ID(Chapter).
  const std::size_t paren = kind.find('(');
  if (paren != std::string::npos) {
    if (kind.back() != ')') return bad("malformed id space (want KEYWORD(Space))");
    c.space = kind.substr(paren + 1, kind.size() - paren - 2);
    kind.resize(paren);
  }
  const std::string k = lower(kind);
  const bool spaced = !c.space.empty();
  if (k == "id") c.role = Role::Id;
  else if (k == "start_id") c.role = Role::StartId;
  else if (k == "end_id") c.role = Role::EndId;
  else if (spaced) return bad("only ID, START_ID and END_ID take an id space");
  else if (k == "label") c.role = Role::Label;
  else if (k == "type") c.role = Role::Type;
  else if (k == "ignore") c.role = Role::Ignore;
  else {
    if (c.property.empty()) return bad("a property column needs a name before ':'");
    std::string t = k;
    if (t.size() > 2 && t.compare(t.size() - 2, 2, "[]") == 0) {
      c.array = true;
      t.resize(t.size() - 2);
    }
    if (!set_type(c, t))
      return bad("unknown type '" + kind +
                 "' (want int, long, short, byte, float, double, boolean, char, string, point, date, time, "
                 "localtime, datetime, localdatetime, duration, optionally with [], or ID, LABEL, IGNORE, "
                 "START_ID, END_ID, TYPE)");
    return c;
  }
  // Keywords keep their name only for :ID (neo4j-admin stores `name:ID` as a property).
  if (c.role != Role::Id) c.property.clear();
  return c;
}

/// Checks one scalar against the column type; "" if fine, else the reason.
inline std::string check_scalar(const Column& c, std::string_view v) {
  switch (c.type) {
    case ValueType::Int: {
      long long x = 0;
      std::string_view s = v;
      if (!s.empty() && s.front() == '+') s.remove_prefix(1);  // Java's parseLong accepts '+'
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
      if (s.empty() || ec == std::errc::invalid_argument || p != s.data() + s.size())
        return "is not a valid " + c.type_name;
      if (ec == std::errc::result_out_of_range || x < c.min || x > c.max)
        return "is out of range for " + c.type_name;
      return "";
    }
    case ValueType::Float: {
      // Java's Double.parseDouble spellings: decimal/exponent, NaN, Infinity.
      if (v == "NaN" || v == "Infinity" || v == "-Infinity" || v == "+Infinity") return "";
      std::string_view s = v;
      if (!s.empty() && s.front() == '+') s.remove_prefix(1);
      double x = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
      // Out of range is fine: Java reads 1e999 as Infinity and 1e-999 as 0.
      if (s.empty() || ec == std::errc::invalid_argument || p != s.data() + s.size() || std::isnan(x) ||
          std::isinf(x))
        return "is not a valid " + c.type_name;
      return "";
    }
    case ValueType::Boolean: {
      const std::string l = lower(v);
      return l == "true" || l == "false" ? "" : "is not a valid boolean (want true or false)";
    }
    case ValueType::Char: {
      // Exactly one code point (the text is already valid UTF-8).
      std::size_t cps = 0;
      for (char ch : v) cps += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
      return cps == 1 ? "" : "is not a single character";
    }
    case ValueType::String:
    case ValueType::Unchecked: return "";
  }
  return "";
}

/// The text to store for a property field, or nothing (no property). On a
/// bad value returns an error naming file:line:column and the column.
inline Status property_value(const Column& c, std::size_t index, const CsvField& f, const std::string& file,
                             char array_delim, bool* present, std::string* out) {
  *present = false;
  if (f.text.empty() && !(f.quoted && c.type == ValueType::String && !c.array)) return Status::ok();
  auto bad = [&](std::string_view value, const std::string& why) {
    return Status::corrupt(where(file, f) + ": column " + std::to_string(index + 1) + " (" + c.header + "): '" +
                           std::string(value) + "' " + why);
  };
  if (!c.array) {
    if (c.type == ValueType::String) {
      *out = f.text;  // strings are kept byte for byte (neo4j-admin does not trim by default)
    } else {
      const std::string_view v = trim(f.text);
      if (v.empty()) return Status::ok();  // only blanks: no value, as for an empty field
      if (auto why = check_scalar(c, v); !why.empty()) return bad(v, why);
      *out = std::string(v);
    }
    *present = true;
    return Status::ok();
  }
  // Arrays: split, check each element, store joined with ';'.
  out->clear();
  std::string_view rest = f.text;
  bool first = true;
  for (;;) {
    const std::size_t cut = rest.find(array_delim);
    std::string_view e = rest.substr(0, cut);
    if (c.type != ValueType::String) {
      e = trim(e);
      if (auto why = check_scalar(c, e); !why.empty())
        return bad(e, why + " (array element of " + c.type_name + "[])");
    }
    if (!first) out->push_back(';');
    out->append(e);
    first = false;
    if (cut == std::string_view::npos) break;
    rest.remove_prefix(cut + 1);
  }
  *present = true;
  return Status::ok();
}

enum class FileKind { Nodes, Relationships, Neither, Both };

inline FileKind classify(const std::vector<Column>& cols) {
  bool id = false, rel = false;
  for (const auto& c : cols) {
    id |= c.role == Role::Id;
    rel |= c.role == Role::StartId || c.role == Role::EndId;
  }
  if (id && rel) return FileKind::Both;
  if (id) return FileKind::Nodes;
  if (rel) return FileKind::Relationships;
  return FileKind::Neither;
}

/// Parses and sanity-checks a whole header.
inline Result<std::vector<Column>> parse_header(const CsvTable& t) {
  std::vector<Column> cols;
  const std::string w = where(t.name, t.header.line);
  std::map<std::string, std::size_t> seen;  // property name -> column, to catch duplicates
  int counts[7] = {};
  for (std::size_t i = 0; i < t.header.fields.size(); ++i) {
    auto c = parse_column(t.header.fields[i].text, w + ":" + std::to_string(t.header.fields[i].column));
    if (!c) return c.status();
    counts[static_cast<int>(c->role)]++;
    if (!c->property.empty()) {
      auto [it, fresh] = seen.emplace(c->property, i);
      if (!fresh)
        return Status::corrupt(w + ": property '" + c->property + "' appears in header columns " +
                               std::to_string(it->second + 1) + " and " + std::to_string(i + 1));
    }
    cols.push_back(std::move(c).value());
  }
  auto count = [&](Role r) { return counts[static_cast<int>(r)]; };
  switch (classify(cols)) {
    case FileKind::Both:
      return Status::corrupt(w + ": header has both an :ID column and :START_ID/:END_ID (node or relationship file?)");
    case FileKind::Neither:
      return Status::corrupt(w + ": header has neither an :ID column (node file) nor :START_ID/:END_ID "
                                 "(relationship file)");
    case FileKind::Nodes:
      if (count(Role::Id) != 1) return Status::corrupt(w + ": node header has more than one :ID column");
      if (count(Role::Type)) return Status::corrupt(w + ": node header has a :TYPE column");
      break;
    case FileKind::Relationships:
      if (count(Role::StartId) != 1 || count(Role::EndId) != 1 || count(Role::Type) != 1)
        return Status::corrupt(w + ": relationship header needs exactly one each of :START_ID, :END_ID and :TYPE");
      if (count(Role::Label)) return Status::corrupt(w + ": relationship header has a :LABEL column");
      break;
  }
  return cols;
}

/// Where a node id was defined, for duplicate messages and space lookups.
struct IdOrigin {
  std::string space;
  std::string file;
  std::size_t line = 0;
  std::size_t index = 0;  // into KnowledgeGraph::nodes
};

inline std::string space_name(const std::string& s) { return s.empty() ? "(default)" : "'" + s + "'"; }

inline Status load_nodes(KnowledgeGraph& g, const CsvTable& t, const std::vector<Column>& cols, char array_delim,
                         std::unordered_map<std::string, IdOrigin>& ids, LoadSummary& sum) {
  for (const CsvRecord& rec : t.rows) {
    ++sum.nodes_read;
    const std::string at = where(t.name, rec.line);
    Node n;
    const Column* id_col = nullptr;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      const Column& c = cols[i];
      const CsvField& f = rec.fields[i];
      switch (c.role) {
        case Role::Id:
          id_col = &c;
          n.id = f.text;
          if (!c.property.empty() && !f.text.empty()) n.properties[c.property] = f.text;
          break;
        case Role::Label: {
          std::string_view rest = f.text;
          while (!rest.empty()) {
            const std::size_t cut = rest.find(array_delim);
            const std::string l(rest.substr(0, cut));
            if (!l.empty() && !n.has_label(l)) n.labels.push_back(l);
            if (cut == std::string_view::npos) break;
            rest.remove_prefix(cut + 1);
          }
          break;
        }
        case Role::Property: {
          bool present = false;
          std::string v;
          QLORA_TRY(property_value(c, i, f, t.name, array_delim, &present, &v));
          if (present) n.properties[c.property] = std::move(v);
          break;
        }
        default: break;  // :IGNORE
      }
    }
    if (n.id.empty()) return Status::corrupt(at + ": node has an empty id (column " + id_col->header + ")");
    if (auto it = ids.find(n.id); it != ids.end()) {
      const IdOrigin& o = it->second;
      if (o.space == id_col->space)
        return Status::corrupt(at + ": duplicate node id '" + n.id + "' in id space " + space_name(o.space) +
                               " (first defined at " + where(o.file, o.line) + ")");
      return Status::corrupt(at + ": node id '" + n.id + "' (id space " + space_name(id_col->space) +
                             ") is also used in id space " + space_name(o.space) + " at " + where(o.file, o.line) +
                             "; the graph needs ids that are unique across spaces");
    }
    if (g.find(n.id))
      return Status::corrupt(at + ": duplicate node id '" + n.id + "' (already in the graph from an earlier load)");
    if (n.prop("name").empty())
      return Status::corrupt(at + ": node '" + n.id + "' has no name (every node needs a `name` property)");
    ids.emplace(n.id, IdOrigin{id_col->space, t.name, rec.line, g.nodes.size()});
    QLORA_TRY(g.add_node(std::move(n)).with_context(at));
    ++sum.nodes_kept;
  }
  return Status::ok();
}

inline Status load_relationships(KnowledgeGraph& g, const CsvTable& t, const std::vector<Column>& cols,
                                 char array_delim, const std::unordered_map<std::string, IdOrigin>& ids,
                                 LoadSummary& sum) {
  for (const CsvRecord& rec : t.rows) {
    ++sum.relationships_read;
    const std::string at = where(t.name, rec.line);
    std::string type, start, end;
    const Column *start_col = nullptr, *end_col = nullptr;
    std::map<std::string, std::string> props;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      const Column& c = cols[i];
      const CsvField& f = rec.fields[i];
      switch (c.role) {
        case Role::StartId: start = f.text, start_col = &c; break;
        case Role::EndId: end = f.text, end_col = &c; break;
        case Role::Type: type = f.text; break;
        case Role::Property: {
          bool present = false;
          std::string v;
          QLORA_TRY(property_value(c, i, f, t.name, array_delim, &present, &v));
          if (present) props[c.property] = std::move(v);
          break;
        }
        default: break;  // :IGNORE
      }
    }
    if (type.empty()) return Status::corrupt(at + ": relationship has an empty :TYPE");
    if (start.empty() || end.empty())
      return Status::corrupt(at + ": relationship " + type + " has an empty " + (start.empty() ? ":START_ID" : ":END_ID"));
    // Resolve each endpoint in its id space; a miss skips the record (see policy).
    auto resolve = [&](const std::string& id, const Column& c, const char* which, std::size_t* idx) -> std::string {
      auto it = ids.find(id);
      if (it != ids.end() && it->second.space == c.space) {
        *idx = it->second.index;
        return "";
      }
      std::string why = which + std::string(" id '") + id + "' not found in id space " + space_name(c.space);
      if (it != ids.end()) why += " (it exists in id space " + space_name(it->second.space) + ")";
      return why;
    };
    std::size_t s = 0, e = 0;
    std::string why = resolve(start, *start_col, "start", &s);
    if (why.empty()) why = resolve(end, *end_col, "end", &e);
    if (!why.empty()) {
      sum.skipped.push_back(at + ": skipped relationship " + start + " -" + type + "-> " + end + ": " + why);
      continue;
    }
    g.relationships.push_back({std::move(type), s, e, std::move(props)});
    ++sum.relationships_kept;
  }
  return Status::ok();
}

/// Loads already-read tables: all node tables, then all relationship tables.
inline Status load_tables(KnowledgeGraph& g, const std::vector<CsvTable>& node_tables,
                          const std::vector<CsvTable>& rel_tables, const Neo4jCsvOptions& opt, LoadSummary& sum) {
  std::unordered_map<std::string, IdOrigin> ids;
  ids.reserve(g.nodes.size() + 1024);
  for (const auto& t : node_tables) {
    auto cols = parse_header(t);
    if (!cols) return cols.status();
    if (classify(*cols) != FileKind::Nodes)
      return Status::corrupt(t.name + ": given as a node file but its header has no :ID column");
    QLORA_TRY(load_nodes(g, t, *cols, opt.array_delimiter, ids, sum));
  }
  for (const auto& t : rel_tables) {
    auto cols = parse_header(t);
    if (!cols) return cols.status();
    if (classify(*cols) != FileKind::Relationships)
      return Status::corrupt(t.name + ": given as a relationship file but its header has no :START_ID/:END_ID");
    QLORA_TRY(load_relationships(g, t, *cols, opt.array_delimiter, ids, sum));
  }
  return Status::ok();
}

inline CsvOptions csv_options(const Neo4jCsvOptions& o) {
  CsvOptions c;
  c.delimiter = o.delimiter;
  c.quote = o.quote;
  return c;
}

inline Result<std::vector<CsvTable>> read_all(const std::vector<std::string>& files, const Neo4jCsvOptions& opt) {
  std::vector<CsvTable> out;
  for (const auto& f : files) {
    auto t = read_csv(f, csv_options(opt));
    if (!t) return t.status();
    out.push_back(std::move(t).value());
  }
  return out;
}

}  // namespace neo4j_csv_detail

/// Adds the nodes of `node_files` and then the relationships of `rel_files`
/// to `g` (relationships may point at nodes of any of the node files, not at
/// nodes already in `g`, which belong to no id space). `summary` is
/// accumulated into (counts added, skips appended) when not null.
inline Status append_neo4j_csv(KnowledgeGraph& g, const std::vector<std::string>& node_files,
                               const std::vector<std::string>& rel_files, LoadSummary* summary = nullptr,
                               const Neo4jCsvOptions& opt = {}) {
  namespace d = neo4j_csv_detail;
  auto nodes = d::read_all(node_files, opt);
  if (!nodes) return nodes.status();
  auto rels = d::read_all(rel_files, opt);
  if (!rels) return rels.status();
  LoadSummary local;
  LoadSummary& sum = summary ? *summary : local;
  return d::load_tables(g, *nodes, *rels, opt, sum);
}

/// A new graph from node and relationship files (see the policy above).
inline Result<KnowledgeGraph> load_neo4j_csv(const std::vector<std::string>& node_files,
                                             const std::vector<std::string>& rel_files,
                                             LoadSummary* summary = nullptr, const Neo4jCsvOptions& opt = {}) {
  KnowledgeGraph g;
  QLORA_TRY(append_neo4j_csv(g, node_files, rel_files, summary, opt));
  return g;
}

enum class Neo4jCsvKind { Nodes, Relationships };

/// Whether a CSV file holds nodes (an :ID column) or relationships
/// (:START_ID/:END_ID), from its header; a header that is neither or both,
/// or is malformed, is an error.
inline Result<Neo4jCsvKind> classify_neo4j_csv_file(const std::string& path, const Neo4jCsvOptions& opt = {}) {
  namespace d = neo4j_csv_detail;
  auto r = CsvReader::open(path, d::csv_options(opt));
  if (!r) return r.status();
  if (r->at_end()) return Status::corrupt(path + ": empty CSV file (no header line)");
  CsvTable t;
  t.name = path;
  QLORA_TRY(r->next(t.header));
  auto cols = d::parse_header(t);
  if (!cols) return cols.status();
  return d::classify(*cols) == d::FileKind::Nodes ? Neo4jCsvKind::Nodes : Neo4jCsvKind::Relationships;
}

/// The `.csv` files of a directory (not recursive, sorted by name), split by
/// header. A CSV whose header is neither kind is an error rather than ignored.
struct Neo4jCsvFiles {
  std::vector<std::string> node_files, rel_files;
};

inline Status classify_neo4j_csv_into(const std::string& path, Neo4jCsvFiles& out, const Neo4jCsvOptions& opt = {}) {
  auto kind = classify_neo4j_csv_file(path, opt);
  if (!kind) return kind.status();
  (*kind == Neo4jCsvKind::Nodes ? out.node_files : out.rel_files).push_back(path);
  return Status::ok();
}

inline Result<Neo4jCsvFiles> classify_neo4j_csv_dir(const std::string& dir, const Neo4jCsvOptions& opt = {}) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (neo4j_csv_detail::lower(p.extension().string()) == ".csv" && it->is_regular_file())
      files.push_back(p.string());
  }
  if (ec) return Status::io(dir + ": cannot list directory: " + ec.message());
  if (files.empty()) return Status::invalid(dir + ": no .csv files");
  std::sort(files.begin(), files.end());
  Neo4jCsvFiles out;
  for (const auto& f : files) QLORA_TRY(classify_neo4j_csv_into(f, out, opt));
  return out;
}

/// load_neo4j_csv over every .csv file of `dir`, classified by header.
inline Result<KnowledgeGraph> load_neo4j_csv_dir(const std::string& dir, LoadSummary* summary = nullptr,
                                                 const Neo4jCsvOptions& opt = {}) {
  auto files = classify_neo4j_csv_dir(dir, opt);
  if (!files) return files.status();
  return load_neo4j_csv(files->node_files, files->rel_files, summary, opt);
}

}  // namespace qlora::data
