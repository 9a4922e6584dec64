// qlora/data/load_graph.hpp — one entry point for "load my graph, whatever
// form it is in", and the check of a loaded graph against the schema of
// docs/dataset.md.
//
// load_graph(paths): each path is
//   a directory          -> its *.csv files, classified by header (neo4j_csv.hpp);
//   a *.csv file         -> a node or relationship file, by header;
//   a *.jsonl / *.json   -> an APOC JSON-lines export (apoc_jsonl.hpp).
// All CSV files are loaded together (relationships may join nodes of any
// node file), then the APOC files are added; their relationships may also
// end at CSV nodes. Loader policies (hard errors vs counted skips) are those
// of the two loaders; the summary accumulates over all files.
//
// validate_schema(graph) does not fail a load: the loaders accept any
// property graph (users map theirs onto ours later), and the caller decides
// whether schema errors stop the pipeline (SchemaReport::status()).
// Errors: a node with no known label or several; a required property missing
// (per label, table in docs/dataset.md); a category that is neither an
// English nor a Japanese category name; a clause_type outside the five; a
// relationship type outside the eleven, or between labels its row of the
// table does not allow. Warnings: unknown extra labels, an unexpected
// `source` value, clause_type on a non-Item, relationship properties other
// than `note`, a child whose citation (volume/chapter/section) disagrees with
// its parent's, and a graph without exactly one Standard node.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/data/apoc_jsonl.hpp"
#include "qlora/data/knowledge_graph.hpp"
#include "qlora/data/neo4j_csv.hpp"

namespace qlora::data {

struct LoadGraphOptions {
  Neo4jCsvOptions csv;  // delimiters for the CSV files
  ApocOptions apoc;     // apoc.id_property = "id" gives APOC nodes their CSV ids
};

/// Loads and merges every path (see the header comment). `summary`, when not
/// null, is reset and then filled.
inline Result<KnowledgeGraph> load_graph(const std::vector<std::string>& paths, LoadSummary* summary = nullptr,
                                         const LoadGraphOptions& opt = {}) {
  namespace fs = std::filesystem;
  if (paths.empty()) return Status::invalid("load_graph: no input paths");
  Neo4jCsvFiles csv;
  std::vector<std::string> apoc;
  for (const auto& p : paths) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) return Status::io(p + ": no such file or directory");
    if (fs::is_directory(st)) {
      auto files = classify_neo4j_csv_dir(p, opt.csv);
      if (!files) return files.status();
      csv.node_files.insert(csv.node_files.end(), files->node_files.begin(), files->node_files.end());
      csv.rel_files.insert(csv.rel_files.end(), files->rel_files.begin(), files->rel_files.end());
      continue;
    }
    const std::string ext = neo4j_csv_detail::lower(fs::path(p).extension().string());
    if (ext == ".csv") QLORA_TRY(classify_neo4j_csv_into(p, csv, opt.csv));
    else if (ext == ".jsonl" || ext == ".json") apoc.push_back(p);  // APOC's own examples name the file *.json
    else
      return Status::unsupported(p + ": unknown graph file type '" + ext +
                                 "' (want a directory of CSVs, a .csv file, or an APOC .jsonl/.json file)");
  }
  LoadSummary local;
  LoadSummary& sum = summary ? *summary : local;
  sum = LoadSummary{};
  KnowledgeGraph g;
  if (!csv.node_files.empty() || !csv.rel_files.empty())
    QLORA_TRY(append_neo4j_csv(g, csv.node_files, csv.rel_files, &sum, opt.csv));
  if (!apoc.empty()) QLORA_TRY(append_apoc_jsonl(g, apoc, &sum, opt.apoc));
  return g;
}

////////////////////////////////////////////////////////////////////////////////
// Schema check (docs/dataset.md)
////////////////////////////////////////////////////////////////////////////////

enum class Severity { Warning, Error };

struct SchemaIssue {
  Severity severity = Severity::Error;
  std::string node_id;  // the node concerned (the start node for a relationship)
  std::string message;  // names every node id involved
  std::string to_string() const { return std::string(severity == Severity::Error ? "error: " : "warning: ") + message; }
};

struct SchemaReport {
  std::vector<SchemaIssue> issues;
  std::size_t errors() const {
    return static_cast<std::size_t>(std::count_if(issues.begin(), issues.end(),
                                                  [](const SchemaIssue& i) { return i.severity == Severity::Error; }));
  }
  std::size_t warnings() const { return issues.size() - errors(); }
  /// Ok when there are no errors; otherwise lists the first `max_listed`.
  Status status(std::size_t max_listed = 20) const {
    const std::size_t n = errors();
    if (n == 0) return Status::ok();
    std::string m = std::to_string(n) + " schema error(s):";
    std::size_t listed = 0;
    for (const auto& i : issues)
      if (i.severity == Severity::Error && listed++ < max_listed) m += "\n  " + i.message;
    if (n > max_listed) m += "\n  ... and " + std::to_string(n - max_listed) + " more";
    return Status::invalid(m);
  }
};

namespace schema_detail {

/// The six node kinds; bit flags so a table row can allow several.
enum Kind : unsigned { kNone = 0, kStandard = 1, kVolume = 2, kChapter = 4, kSection = 8, kItem = 16, kConcept = 32 };

struct KindInfo {
  Kind kind;
  const char* label;
};
inline constexpr KindInfo kKinds[] = {{kStandard, "Standard"}, {kVolume, "Volume"},   {kChapter, "Chapter"},
                                      {kSection, "Section"},   {kItem, "Item"},       {kConcept, "Concept"}};

/// Required properties per label (docs/dataset.md, "Node properties").
struct Required {
  const char* property;
  unsigned kinds;
};
inline constexpr Required kRequired[] = {
    {"name", kStandard | kVolume | kChapter | kSection | kItem | kConcept},
    {"volume", kVolume | kChapter | kSection | kItem},
    {"chapter", kChapter | kSection | kItem},
    {"section", kSection | kItem},
    {"category", kVolume | kChapter | kConcept},
    {"description", kChapter | kSection | kItem | kConcept},
};

/// Allowed endpoint pairs per relationship type (docs/dataset.md, "Relationship types").
struct Direction {
  const char* type;
  unsigned from, to;
};
inline constexpr Direction kDirections[] = {
    {"HAS_CHAPTER", kVolume, kChapter},          {"HAS_CHAPTER", kStandard, kVolume},
    {"HAS_SECTION", kChapter, kSection},         {"HAS_ITEM", kSection, kItem},
    {"DESCRIBED_IN", kConcept, kChapter | kSection}, {"DEFINED_IN", kConcept, kSection | kItem},
    {"SUBJECT_TO", kConcept, kItem | kConcept},  {"USED_IN", kConcept, kConcept},
    {"REQUIRES", kConcept, kConcept},            {"AFFECTS", kConcept, kConcept},
    {"MITIGATES", kConcept, kConcept},           {"PRECEDES", kConcept | kItem, kConcept | kItem},
};

inline constexpr const char* kClauseTypes[] = {"考え方", "必須", "標準", "推奨", "例示"};

inline const char* label_of(unsigned k) {
  for (const auto& i : kKinds)
    if (i.kind == k) return i.label;
  return "(no schema label)";
}

inline std::string kinds_text(unsigned mask) {
  std::string s;
  for (const auto& i : kKinds)
    if (mask & i.kind) s += (s.empty() ? "" : " or ") + std::string(i.label);
  return s;
}

/// Citation properties a child must share with its parent, per containment type.
struct Inherit {
  const char* type;
  const char* props[3];
};
inline constexpr Inherit kInherit[] = {{"HAS_CHAPTER", {"volume", nullptr, nullptr}},
                                       {"HAS_SECTION", {"volume", "chapter", nullptr}},
                                       {"HAS_ITEM", {"volume", "chapter", "section"}}};

}  // namespace schema_detail

/// Checks `g` against docs/dataset.md (see the header comment for the rules).
inline SchemaReport validate_schema(const KnowledgeGraph& g) {
  namespace d = schema_detail;
  SchemaReport rep;
  auto add = [&](Severity s, const std::string& id, std::string msg) { rep.issues.push_back({s, id, std::move(msg)}); };

  std::vector<unsigned> kind(g.nodes.size(), d::kNone);
  std::size_t standards = 0;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const std::string who = "node '" + n.id + "'";
    unsigned found = 0;
    int count = 0;
    for (const auto& l : n.labels) {
      bool known = false;
      for (const auto& k : d::kKinds)
        if (l == k.label) found = k.kind, ++count, known = true;
      if (!known) add(Severity::Warning, n.id, who + ": label '" + l + "' is not in the schema");
    }
    if (count == 0) {
      add(Severity::Error, n.id, who + ": has none of the labels Standard, Volume, Chapter, Section, Item, Concept");
      continue;
    }
    if (count > 1) {
      add(Severity::Error, n.id, who + ": has more than one schema label (each node has exactly one)");
      continue;
    }
    kind[i] = found;
    standards += found == d::kStandard;
    for (const auto& r : d::kRequired)
      if ((r.kinds & found) && n.prop(r.property).empty())
        add(Severity::Error, n.id, who + " (" + d::label_of(found) + "): missing required property '" + r.property + "'");
    if (const auto& c = n.prop("category"); !c.empty() && !parse_category(c))
      add(Severity::Error, n.id, who + ": category '" + c + "' is not one of the eight (English or Japanese)");
    if (const auto& ct = n.prop("clause_type"); !ct.empty()) {
      const bool ok = std::any_of(std::begin(d::kClauseTypes), std::end(d::kClauseTypes),
                                  [&](const char* x) { return ct == x; });
      if (!ok) add(Severity::Error, n.id, who + ": clause_type '" + ct + "' is not one of 考え方/必須/標準/推奨/例示");
      if (found != d::kItem) add(Severity::Warning, n.id, who + ": clause_type on a " + d::label_of(found) + " (Items only)");
    }
    if (const auto& s = n.prop("source"); !s.empty() && s != "public" && s != "illustrative")
      add(Severity::Warning, n.id, who + ": source '" + s + "' is neither 'public' nor 'illustrative'");
  }
  if (standards != 1)
    add(Severity::Warning, "", "the graph has " + std::to_string(standards) + " Standard nodes (the schema has one)");

  for (const Relationship& r : g.relationships) {
    const Node& a = g.nodes[r.start];
    const Node& b = g.nodes[r.end];
    const std::string who = "relationship '" + a.id + "' -" + r.type + "-> '" + b.id + "'";
    bool known = false, allowed = false, reversed = false;
    std::string want;
    for (const auto& dir : d::kDirections) {
      if (r.type != dir.type) continue;
      known = true;
      allowed |= (kind[r.start] & dir.from) && (kind[r.end] & dir.to);
      reversed |= (kind[r.end] & dir.from) && (kind[r.start] & dir.to);
      want += (want.empty() ? "" : "; ") + d::kinds_text(dir.from) + " -> " + d::kinds_text(dir.to);
    }
    if (!known) {
      add(Severity::Error, a.id, who + ": type is not one of the eleven relationship types");
      continue;
    }
    if (!allowed && kind[r.start] && kind[r.end])
      add(Severity::Error, a.id,
          who + ": " + d::label_of(kind[r.start]) + " -> " + d::label_of(kind[r.end]) + " is not allowed (want " +
              want + ")" + (reversed ? "; the direction looks reversed" : ""));
    for (const auto& [key, value] : r.properties)
      if (key != "note") add(Severity::Warning, a.id, who + ": property '" + key + "' is not in the schema (only 'note')");
    if (!allowed) continue;
    for (const auto& inh : d::kInherit) {
      if (r.type != inh.type || kind[r.start] == d::kStandard) continue;
      for (const char* p : inh.props) {
        if (!p) continue;
        const auto& pv = a.prop(p);
        const auto& cv = b.prop(p);
        if (!pv.empty() && !cv.empty() && pv != cv)
          add(Severity::Warning, b.id,
              who + ": child's " + p + " '" + cv + "' differs from its parent's '" + pv + "'");
      }
    }
  }
  return rep;
}

/// load_graph, then validate_schema into `report` (the load itself does not
/// fail on schema errors; check report->status()).
inline Result<KnowledgeGraph> load_graph(const std::vector<std::string>& paths, LoadSummary* summary,
                                         SchemaReport* report, const LoadGraphOptions& opt = {}) {
  auto g = load_graph(paths, summary, opt);
  if (g && report) *report = validate_schema(*g);
  return g;
}

}  // namespace qlora::data
