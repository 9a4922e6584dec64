// qlora/data/knowledge_graph.hpp — the property graph that Stage 1's QA data
// is generated from (a Neo4j export of a technical standard).
//
// Nodes carry labels and string-typed properties (typed CSV columns such as
// `year:int` are validated on load and kept as their text, so nothing is lost
// or reformatted); relationships carry a type, endpoints and properties.
// Loaders: data/neo4j_csv.hpp (neo4j-admin import CSV) and data/apoc_jsonl.hpp
// (APOC JSON-lines export). Schema of the shipped sample: docs/dataset.md.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "qlora/core/status.hpp"

namespace qlora::data {

/// The eight question categories of the paper's test set.
enum class Category { Survey, Planning, Design, MaintenanceRiver, MaintenanceDam, MaintenanceSabo, Hazard, CrossCutting };

inline constexpr Category kCategories[] = {Category::Survey,          Category::Planning,       Category::Design,
                                           Category::MaintenanceRiver, Category::MaintenanceDam, Category::MaintenanceSabo,
                                           Category::Hazard,          Category::CrossCutting};

/// English name used in files ("Maintenance-River", "Comparative/Cross-Cutting").
inline const char* category_name(Category c) {
  switch (c) {
    case Category::Survey: return "Survey";
    case Category::Planning: return "Planning";
    case Category::Design: return "Design";
    case Category::MaintenanceRiver: return "Maintenance-River";
    case Category::MaintenanceDam: return "Maintenance-Dam";
    case Category::MaintenanceSabo: return "Maintenance-Sabo";
    case Category::Hazard: return "Hazard";
    case Category::CrossCutting: return "Comparative/Cross-Cutting";
  }
  return "?";
}

/// Japanese name as the paper's test set writes it (調査, 維持管理_河川, 比較・横断, ...).
inline const char* category_name_ja(Category c) {
  switch (c) {
    case Category::Survey: return "調査";
    case Category::Planning: return "計画";
    case Category::Design: return "設計";
    case Category::MaintenanceRiver: return "維持管理_河川";
    case Category::MaintenanceDam: return "維持管理_ダム";
    case Category::MaintenanceSabo: return "維持管理_砂防";
    case Category::Hazard: return "ハザード";
    case Category::CrossCutting: return "比較・横断";
  }
  return "?";
}

/// Parse either spelling (English or Japanese); nullopt if neither.
inline std::optional<Category> parse_category(const std::string& s) {
  for (Category c : kCategories)
    if (s == category_name(c) || s == category_name_ja(c)) return c;
  return std::nullopt;
}

/// The paper's 11 relation types, in the order of its relation-mix table.
inline constexpr const char* kRelationTypes[] = {"HAS_CHAPTER", "DESCRIBED_IN", "HAS_SECTION", "HAS_ITEM",
                                                 "DEFINED_IN",  "SUBJECT_TO",   "USED_IN",     "REQUIRES",
                                                 "AFFECTS",     "MITIGATES",    "PRECEDES"};

struct Node {
  std::string id;                                  // unique within the graph (the CSV `:ID` column / APOC id)
  std::vector<std::string> labels;                 // e.g. {"Chapter"}
  std::map<std::string, std::string> properties;   // name, volume, chapter, section, category, description, ...

  /// A property or "" when absent.
  const std::string& prop(const std::string& key) const {
    static const std::string kEmpty;
    auto it = properties.find(key);
    return it == properties.end() ? kEmpty : it->second;
  }
  bool has_label(const std::string& l) const {
    for (const auto& x : labels)
      if (x == l) return true;
    return false;
  }
};

struct Relationship {
  std::string type;                                // one of kRelationTypes for the paper's graphs
  std::size_t start = 0, end = 0;                  // indices into KnowledgeGraph::nodes
  std::map<std::string, std::string> properties;
};

/// What a loader read, kept and skipped — and why (nothing is dropped silently).
struct LoadSummary {
  std::size_t nodes_read = 0, nodes_kept = 0;
  std::size_t relationships_read = 0, relationships_kept = 0;
  std::vector<std::string> skipped;                // one line per skipped record: file:line: reason
};

class KnowledgeGraph {
 public:
  std::vector<Node> nodes;
  std::vector<Relationship> relationships;

  /// Add a node; errors on a duplicate id.
  Status add_node(Node n) {
    if (n.id.empty()) return Status::invalid("node with an empty id");
    if (index_.count(n.id)) return Status::invalid("duplicate node id '" + n.id + "'");
    index_.emplace(n.id, nodes.size());
    nodes.push_back(std::move(n));
    return Status::ok();
  }
  /// Add a relationship between existing node ids; errors name the missing endpoint.
  Status add_relationship(const std::string& type, const std::string& start_id, const std::string& end_id,
                          std::map<std::string, std::string> props = {}) {
    if (type.empty()) return Status::invalid("relationship with an empty type");
    auto s = find(start_id);
    if (!s) return Status::invalid("relationship " + type + " starts at unknown node '" + start_id + "'");
    auto e = find(end_id);
    if (!e) return Status::invalid("relationship " + type + " ends at unknown node '" + end_id + "'");
    relationships.push_back({type, *s, *e, std::move(props)});
    return Status::ok();
  }
  std::optional<std::size_t> find(const std::string& id) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  /// Relationships per type, in kRelationTypes order first, then any others by name.
  std::map<std::string, std::size_t> relation_counts() const {
    std::map<std::string, std::size_t> c;
    for (const auto& r : relationships) c[r.type]++;
    return c;
  }

 private:
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace qlora::data
