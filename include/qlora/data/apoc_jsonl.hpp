// qlora/data/apoc_jsonl.hpp — load the JSON-lines file that Neo4j APOC's
// `apoc.export.json.all` (and .data/.graph/.query) writes by default
// (jsonFormat: 'JSON_LINES') into a KnowledgeGraph.
//
// What APOC actually writes (core/.../export/json/JsonFormatSerializer),
// one object per line, in this key order:
//   {"type":"node","id":"12","labels":["Chapter"],"properties":{...}}
//   {"type":"relationship","id":"3","label":"HAS_CHAPTER","properties":{...},
//    "start":{"id":"7","labels":["Volume"],"properties":{...}},
//    "end":{"id":"12","labels":["Chapter"],"properties":{...}}}
// `labels` is omitted for a node without labels and `properties` when there
// are none (or writeNodeProperties is false); APOC before 4.x wrote `id` as a
// number, so both spellings are accepted. `start`/`end` repeat the endpoint
// nodes (labels, properties): only their `id` is used. Property values are
// strings, numbers, booleans, arrays of those, point maps ({"crs":...}) and
// ISO temporal strings; other keys (a future `elementId`, say) are ignored.
//
// Stored as text: strings as-is; integers in decimal; floats in the shortest
// form that round-trips (1.50 becomes "1.5"); booleans true/false; arrays
// joined with ';' (as the CSV loader stores typed arrays); maps as compact
// JSON. A null value means "no property" (Neo4j cannot store null).
//
// Ids: by default (docs/dataset.md) Node::id is APOC's `id` — Neo4j's
// internal number, "0", "1", ... — and a `properties.id` is kept as an
// ordinary property. ApocOptions::id_property = "id" makes that property the
// Node::id instead (relationships still link through APOC's ids), so a graph
// exported from a neo4j-admin import with `id:ID` comes back with the same
// ids as its CSV form; a node without that property is then an error.
//
// Order: relationships may come before the nodes they join (an export of
// several files, or a hand-made one); all nodes of all files are read first,
// then relationships are resolved.
//
// Policy (same as data/neo4j_csv.hpp) — hard error, "file:line[:column]: ...":
//   I/O, invalid UTF-8, malformed JSON, a line that is not an object, a
//   missing/unknown "type", wrong JSON types for id/labels/properties/
//   label/start/end, an empty node id, a duplicate node id or relationship id
//   (both lines named), a node without `name`, an empty relationship type, a
//   relationship without start/end id; a file in APOC's ARRAY_JSON or JSON
//   form (export again with jsonFormat:'JSON_LINES').
// Skipped and counted in LoadSummary::skipped: a relationship whose start or
// end id is not among the loaded nodes (a partial export).
// Blank lines are not records.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/data/csv.hpp"
#include "qlora/data/knowledge_graph.hpp"

namespace qlora::data {

////////////////////////////////////////////////////////////////////////////////
// JSON-lines primitives (shared with data/qa_jsonl.hpp).
////////////////////////////////////////////////////////////////////////////////

namespace jsonl_detail {

/// A SAX consumer that builds nothing and remembers where parsing failed —
/// run only after the fast DOM parse failed, to get a column without using
/// exceptions.
struct ErrorLocator : nlohmann::json_sax<nlohmann::json> {
  std::size_t position = 0;
  std::string message;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) override {
    position = pos;
    // "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error ..." -> the reason.
    message = ex.what();
    if (auto c = message.find("column "); c != std::string::npos)
      if (auto colon = message.find(": ", c); colon != std::string::npos) message.erase(0, colon + 2);
    return false;
  }
};

}  // namespace jsonl_detail

/// Parses one line of a JSON-lines file (already UTF-8 checked). An error
/// reads "file:line:column: malformed JSON: <reason>".
inline Result<nlohmann::json> parse_json_line(std::string_view line, const std::string& file, std::size_t line_no) {
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  jsonl_detail::ErrorLocator loc;
  nlohmann::json::sax_parse(line.begin(), line.end(), &loc);
  return Status::corrupt(file + ":" + std::to_string(line_no) + ":" + std::to_string(loc.position) +
                         ": malformed JSON: " + loc.message);
}

/// The type of a JSON value in words, for messages.
inline std::string json_type_name(const nlohmann::json& v) { return v.type_name(); }

/// Reads `path`, checks UTF-8, drops a BOM and calls fn(line_no, json) for
/// each non-blank line. A file that starts with '[' is rejected with a hint:
/// it is one JSON array (APOC's ARRAY_JSON), not JSON lines.
template <class Fn>
Status for_each_json_line(const std::string& path, Fn&& fn) {
  auto text = read_text_file(path);
  if (!text) return text.status();
  QLORA_TRY(validate_utf8(*text, path));
  strip_utf8_bom(*text);
  return for_each_line(*text, [&](std::size_t line_no, std::string_view line) -> Status {
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) return Status::ok();  // blank: not a record
    if (line[first] == '[')
      return Status::unsupported(path + ":" + std::to_string(line_no) +
                                 ": a JSON array, not JSON lines (one object per line); for APOC export with "
                                 "{jsonFormat:'JSON_LINES'}");
    auto j = parse_json_line(line, path, line_no);
    if (!j) return j.status();
    return fn(line_no, std::move(j).value());
  });
}

////////////////////////////////////////////////////////////////////////////////
// APOC graph loader.
////////////////////////////////////////////////////////////////////////////////

struct ApocOptions {
  std::string id_property;  // "" = APOC's id is Node::id; else this property is (see above)
};

namespace apoc_detail {

/// A property value as the text KnowledgeGraph stores (see the header comment).
inline std::string value_text(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::string: return v.get_ref<const std::string&>();
    case nlohmann::json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::null: return "";
    case nlohmann::json::value_t::array: {
      std::string s;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) s.push_back(';');
        s += value_text(v[i]);
      }
      return s;
    }
    default: return v.dump(-1, ' ', /*ensure_ascii=*/false);  // numbers, maps (points)
  }
}

/// An APOC id (string, or number in old versions) as text; "" if neither.
inline std::string id_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>();
  if (v.is_number_integer()) return v.dump();
  return "";
}

struct PendingRel {
  std::string type, start, end, file;
  std::size_t line = 0;
  std::map<std::string, std::string> props;
};

struct Origin {
  std::string file;
  std::size_t line = 0;
};

/// Reads `obj["properties"]` into `out`; `at` prefixes errors.
inline Status read_properties(const nlohmann::json& obj, const std::string& at,
                              std::map<std::string, std::string>& out) {
  auto it = obj.find("properties");
  if (it == obj.end() || it->is_null()) return Status::ok();
  if (!it->is_object()) return Status::corrupt(at + ": \"properties\" is " + json_type_name(*it) + ", want an object");
  for (auto p = it->begin(); p != it->end(); ++p)
    if (!p->is_null()) out[p.key()] = value_text(*p);
  return Status::ok();
}

/// A node or relationship id field: absent -> "", wrong type -> error.
inline Result<std::string> read_id(const nlohmann::json& obj, const std::string& at, const char* what) {
  auto it = obj.find("id");
  if (it == obj.end()) return std::string();
  if (!it->is_string() && !it->is_number_integer())
    return Status::corrupt(at + ": " + what + " \"id\" is " + json_type_name(*it) + ", want a string");
  return id_text(*it);
}

struct State {
  std::unordered_map<std::string, Origin> node_at, rel_at;  // by APOC id
  std::unordered_map<std::string, std::size_t> node_index;  // APOC id -> KnowledgeGraph::nodes index
  std::vector<PendingRel> rels;
};

inline Status read_line(KnowledgeGraph& g, State& st, const std::string& file, std::size_t line_no,
                        const nlohmann::json& j, const ApocOptions& opt, LoadSummary& sum) {
  const std::string at = file + ":" + std::to_string(line_no);
  if (!j.is_object()) return Status::corrupt(at + ": line is " + json_type_name(j) + ", want an object");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) {
    if (j.contains("nodes") || j.contains("rels"))
      return Status::unsupported(at + ": APOC's JSON form ({\"nodes\",\"rels\"}), not JSON lines; export with "
                                      "{jsonFormat:'JSON_LINES'}");
    return Status::corrupt(at + ": no \"type\" string (want \"node\" or \"relationship\")");
  }
  const std::string& type = t->get_ref<const std::string&>();
  if (type == "node") {
    ++sum.nodes_read;
    Node n;
    auto id = read_id(j, at, "node");
    if (!id) return id.status();
    n.id = std::move(id).value();
    if (n.id.empty()) return Status::corrupt(at + ": node has no \"id\" (or an empty one)");
    if (auto l = j.find("labels"); l != j.end() && !l->is_null()) {
      if (!l->is_array()) return Status::corrupt(at + ": \"labels\" is " + json_type_name(*l) + ", want an array");
      for (const auto& x : *l) {
        if (!x.is_string()) return Status::corrupt(at + ": a label is " + json_type_name(x) + ", want a string");
        const std::string& s = x.get_ref<const std::string&>();
        if (!s.empty() && !n.has_label(s)) n.labels.push_back(s);
      }
    }
    QLORA_TRY(read_properties(j, at, n.properties));
    const std::string apoc_id = n.id;
    if (auto it = st.node_at.find(apoc_id); it != st.node_at.end())
      return Status::corrupt(at + ": duplicate node id '" + apoc_id + "' (first defined at " + it->second.file + ":" +
                             std::to_string(it->second.line) + ")");
    if (!opt.id_property.empty()) {
      n.id = n.prop(opt.id_property);
      if (n.id.empty())
        return Status::corrupt(at + ": node '" + apoc_id + "' has no property '" + opt.id_property +
                               "' to use as its id");
    }
    if (g.find(n.id))
      return Status::corrupt(at + ": duplicate node id '" + n.id + "' (already in the graph" +
                             (opt.id_property.empty() ? std::string(" from an earlier load)") : ")"));
    if (n.prop("name").empty())
      return Status::corrupt(at + ": node '" + n.id + "' has no name (every node needs a `name` property)");
    st.node_at.emplace(apoc_id, Origin{file, line_no});
    st.node_index.emplace(apoc_id, g.nodes.size());
    QLORA_TRY(g.add_node(std::move(n)).with_context(at));
    ++sum.nodes_kept;
    return Status::ok();
  }
  if (type == "relationship") {
    ++sum.relationships_read;
    PendingRel r;
    r.file = file;
    r.line = line_no;
    auto id = read_id(j, at, "relationship");
    if (!id) return id.status();
    if (!id->empty()) {
      auto [it, fresh] = st.rel_at.emplace(*id, Origin{file, line_no});
      if (!fresh)
        return Status::corrupt(at + ": duplicate relationship id '" + *id + "' (first at " + it->second.file + ":" +
                               std::to_string(it->second.line) + ")");
    }
    auto l = j.find("label");
    if (l == j.end() || !l->is_string() || l->get_ref<const std::string&>().empty())
      return Status::corrupt(at + ": relationship has no \"label\" (its type) or an empty one");
    r.type = l->get<std::string>();
    for (const char* end : {"start", "end"}) {
      auto e = j.find(end);
      if (e == j.end() || !e->is_object())
        return Status::corrupt(at + ": relationship has no \"" + end + "\" object");
      auto eid = read_id(*e, at, end);
      if (!eid) return eid.status();
      if (eid->empty()) return Status::corrupt(at + ": relationship \"" + end + "\" has no \"id\"");
      (end[0] == 's' ? r.start : r.end) = std::move(eid).value();
    }
    QLORA_TRY(read_properties(j, at, r.props));
    st.rels.push_back(std::move(r));
    return Status::ok();
  }
  return Status::corrupt(at + ": unknown \"type\" '" + type + "' (want \"node\" or \"relationship\")");
}

}  // namespace apoc_detail

/// Adds every node and relationship of the APOC JSON-lines `files` to `g`.
/// Relationships may also end at nodes already in `g` (e.g. loaded from CSV).
/// `summary` is accumulated into when not null.
inline Status append_apoc_jsonl(KnowledgeGraph& g, const std::vector<std::string>& files,
                                LoadSummary* summary = nullptr, const ApocOptions& opt = {}) {
  namespace d = apoc_detail;
  LoadSummary local;
  LoadSummary& sum = summary ? *summary : local;
  d::State st;
  for (const auto& f : files)
    QLORA_TRY(for_each_json_line(f, [&](std::size_t line_no, const nlohmann::json& j) {
      return d::read_line(g, st, f, line_no, j, opt, sum);
    }));
  // APOC ids of this load first, then ids of nodes that were already in `g`.
  auto resolve = [&](const std::string& id) -> std::optional<std::size_t> {
    if (auto it = st.node_index.find(id); it != st.node_index.end()) return it->second;
    return g.find(id);
  };
  for (auto& r : st.rels) {
    auto s = resolve(r.start), e = resolve(r.end);
    if (!s || !e) {
      sum.skipped.push_back(r.file + ":" + std::to_string(r.line) + ": skipped relationship " + r.start + " -" +
                            r.type + "-> " + r.end + ": " + (!s ? "start" : "end") + " id '" +
                            (!s ? r.start : r.end) + "' is not a loaded node");
      continue;
    }
    g.relationships.push_back({std::move(r.type), *s, *e, std::move(r.props)});
    ++sum.relationships_kept;
  }
  return Status::ok();
}

/// A new graph from one or more APOC JSON-lines files.
inline Result<KnowledgeGraph> load_apoc_jsonl(const std::vector<std::string>& files, LoadSummary* summary = nullptr,
                                              const ApocOptions& opt = {}) {
  KnowledgeGraph g;
  QLORA_TRY(append_apoc_jsonl(g, files, summary, opt));
  return g;
}

inline Result<KnowledgeGraph> load_apoc_jsonl(const std::string& file, LoadSummary* summary = nullptr,
                                              const ApocOptions& opt = {}) {
  return load_apoc_jsonl(std::vector<std::string>{file}, summary, opt);
}

}  // namespace qlora::data
