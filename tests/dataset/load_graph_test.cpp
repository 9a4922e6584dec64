// Tests for data/load_graph.hpp: path dispatch (directory, .csv, .jsonl,
// mixed), the schema check of docs/dataset.md rule by rule, and the shipped
// sample graph: its CSV and APOC forms must give the same graph and pass the
// schema.
#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "qlora/data/load_graph.hpp"

namespace qlora::data {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards (tests/temp_dir.hpp).
struct TempDir : qlora::test::TempDir {
  explicit TempDir(const std::string& tag) : qlora::test::TempDir("qlora_load_graph_test", tag) {}
};

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

// A hand-checkable graph that satisfies every schema rule.
const char* kNodes =
    "id:ID,:LABEL,name,volume,chapter,section,category,description,clause_type,source\n"
    "std,Standard,河川砂防技術基準,,,,,,,public\n"
    "vol,Volume,調査編,調査編,,,Survey,,,public\n"
    "ch2,Chapter,第2章 水文・水理観測,調査編,第2章 水文・水理観測,,調査,水文と水理の観測。,,public\n"
    "sec3,Section,第3節 雨量観測,調査編,第2章 水文・水理観測,第3節 雨量観測,,雨量の観測。,,public\n"
    "it31,Item,3.1 観測所の配置,調査編,第2章 水文・水理観測,第3節 雨量観測,,配置の考え方。,考え方,public\n"
    "c_uryo,Concept,雨量観測,調査編,,,Survey,雨量を測る。,,illustrative\n"
    "c_ryushutsu,Concept,流出解析,,,,Planning,流出を解析する。,,illustrative\n";
const char* kRels =
    ":START_ID,:END_ID,:TYPE,note\n"
    "std,vol,HAS_CHAPTER,\n"
    "vol,ch2,HAS_CHAPTER,\n"
    "ch2,sec3,HAS_SECTION,\n"
    "sec3,it31,HAS_ITEM,\n"
    "c_uryo,sec3,DESCRIBED_IN,\n"
    "c_uryo,it31,DEFINED_IN,\n"
    "c_uryo,c_ryushutsu,USED_IN,基礎資料\n"
    "it31,c_uryo,PRECEDES,\n";

KnowledgeGraph good_graph(const TempDir& td) {
  td.write("good/nodes.csv", kNodes);
  td.write("good/rels.csv", kRels);
  auto g = load_graph({(td.dir / "good").string()});
  EXPECT_TRUE(g.is_ok()) << g.status().message();
  return g.is_ok() ? std::move(g).value() : KnowledgeGraph{};
}

std::vector<std::string> messages(const SchemaReport& r, Severity s) {
  std::vector<std::string> v;
  for (const auto& i : r.issues)
    if (i.severity == s) v.push_back(i.message);
  return v;
}

TEST(LoadGraph, DispatchesByPath) {
  TempDir td("dispatch");
  const auto n = td.write("csv/nodes.csv", kNodes);
  const auto r = td.write("csv/rels.csv", kRels);
  const auto j = td.write("extra.jsonl",
                          R"({"type":"node","id":"c_x","labels":["Concept"],"properties":{"name":"X"}})"
                          "\n"
                          R"({"type":"relationship","label":"AFFECTS","start":{"id":"c_x"},"end":{"id":"c_uryo"}})"
                          "\n");
  LoadSummary sum;
  auto dir = load_graph({(td.dir / "csv").string()}, &sum);
  ASSERT_TRUE(dir.is_ok()) << dir.status().message();
  EXPECT_EQ(dir->nodes.size(), 7u);
  EXPECT_EQ(dir->relationships.size(), 8u);
  auto files = load_graph({r, n});  // order of paths does not matter: classified by header
  ASSERT_TRUE(files.is_ok()) << files.status().message();
  EXPECT_EQ(files->relationships.size(), 8u);
  auto mixed = load_graph({(td.dir / "csv").string(), j}, &sum);  // APOC relationship ends at a CSV node
  ASSERT_TRUE(mixed.is_ok()) << mixed.status().message();
  EXPECT_EQ(mixed->nodes.size(), 8u);
  EXPECT_EQ(mixed->relationships.size(), 9u);
  EXPECT_EQ(sum.nodes_read, 8u);  // reset per call, accumulated over files
  EXPECT_EQ(sum.relationships_kept, 9u);

  EXPECT_HAS(load_graph({td.write("g.graphml", "")}).status().message(), "unknown graph file type '.graphml'");
  EXPECT_HAS(load_graph({(td.dir / "missing.csv").string()}).status().message(), "missing.csv: no such file");
  EXPECT_FALSE(load_graph({}).is_ok());
}

TEST(Schema, ValidGraphHasNoIssues) {
  TempDir td("valid");
  const auto g = good_graph(td);
  const auto rep = validate_schema(g);
  for (const auto& i : rep.issues) ADD_FAILURE() << i.to_string();
  EXPECT_TRUE(rep.status().is_ok());
}

TEST(Schema, NodeRules) {
  TempDir td("nodes");
  auto g = good_graph(td);
  auto node = [&](const char* id) -> Node& { return g.nodes[*g.find(id)]; };
  node("ch2").properties.erase("description");
  node("sec3").properties.erase("section");
  node("c_uryo").properties["category"] = "Geology";
  node("it31").properties["clause_type"] = "任意";
  node("vol").properties["clause_type"] = "必須";
  node("c_ryushutsu").labels = {"Concept", "Term"};
  node("std").properties["source"] = "wikipedia";
  ASSERT_TRUE(g.add_node({"x1", {"Thing"}, {{"name", "x"}}}).is_ok());
  ASSERT_TRUE(g.add_node({"x2", {"Chapter", "Section"}, {{"name", "y"}}}).is_ok());
  const auto rep = validate_schema(g);
  const auto errors = messages(rep, Severity::Error);
  const auto warnings = messages(rep, Severity::Warning);
  auto has = [](const std::vector<std::string>& v, const std::string& part) {
    return std::any_of(v.begin(), v.end(), [&](const std::string& m) { return m.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(has(errors, "node 'ch2' (Chapter): missing required property 'description'"));
  EXPECT_TRUE(has(errors, "node 'sec3' (Section): missing required property 'section'"));
  EXPECT_TRUE(has(errors, "node 'c_uryo': category 'Geology'"));
  EXPECT_TRUE(has(errors, "node 'it31': clause_type '任意'"));
  EXPECT_TRUE(has(errors, "node 'x1': has none of the labels"));
  EXPECT_TRUE(has(errors, "node 'x2': has more than one schema label"));
  EXPECT_EQ(errors.size(), 6u) << rep.status().message();
  EXPECT_TRUE(has(warnings, "node 'vol': clause_type on a Volume"));
  EXPECT_TRUE(has(warnings, "node 'c_ryushutsu': label 'Term' is not in the schema"));
  EXPECT_TRUE(has(warnings, "node 'std': source 'wikipedia'"));
  const auto st = rep.status(2);
  ASSERT_FALSE(st.is_ok());
  EXPECT_HAS(st.message(), "6 schema error(s)");
  EXPECT_HAS(st.message(), "... and 4 more");
  // Issues carry the node id.
  EXPECT_TRUE(std::any_of(rep.issues.begin(), rep.issues.end(), [](const SchemaIssue& i) { return i.node_id == "x2"; }));
}

TEST(Schema, RelationshipRules) {
  TempDir td("rels");
  auto g = good_graph(td);
  ASSERT_TRUE(g.add_relationship("HAS_SECTION", "sec3", "ch2").is_ok());          // reversed
  ASSERT_TRUE(g.add_relationship("MITIGATES", "c_uryo", "it31").is_ok());        // Concept -> Item not allowed
  ASSERT_TRUE(g.add_relationship("CITES", "it31", "ch2").is_ok());               // not one of the eleven
  ASSERT_TRUE(g.add_relationship("AFFECTS", "c_uryo", "c_ryushutsu", {{"weight", "1"}}).is_ok());  // extra prop
  g.nodes[*g.find("sec3")].properties["chapter"] = "第9章 別の章";                // disagrees with its parent
  const auto rep = validate_schema(g);
  const auto errors = messages(rep, Severity::Error);
  const auto warnings = messages(rep, Severity::Warning);
  ASSERT_EQ(errors.size(), 3u) << rep.status().message();
  EXPECT_HAS(errors[0], "relationship 'sec3' -HAS_SECTION-> 'ch2': Section -> Chapter is not allowed (want Chapter -> Section); the direction looks reversed");
  EXPECT_HAS(errors[1], "relationship 'c_uryo' -MITIGATES-> 'it31': Concept -> Item is not allowed (want Concept -> Concept)");
  EXPECT_HAS(errors[2], "relationship 'it31' -CITES-> 'ch2': type is not one of the eleven");
  ASSERT_EQ(warnings.size(), 3u);
  // The changed chapter of sec3 disagrees both with its parent ch2 and with its child it31.
  EXPECT_HAS(warnings[0], "relationship 'ch2' -HAS_SECTION-> 'sec3': child's chapter '第9章 別の章' differs");
  EXPECT_HAS(warnings[1], "relationship 'sec3' -HAS_ITEM-> 'it31': child's chapter");
  EXPECT_HAS(warnings[2], "property 'weight' is not in the schema");
}

TEST(Schema, StandardCount) {
  KnowledgeGraph g;
  const auto rep = validate_schema(g);
  ASSERT_EQ(rep.issues.size(), 1u);
  EXPECT_HAS(rep.issues[0].message, "0 Standard nodes");
  EXPECT_EQ(rep.errors(), 0u);
  EXPECT_EQ(rep.warnings(), 1u);
}

// ---- The shipped sample graph (data/kg/), written by the dataset work. ----

fs::path sample_dir() { return fs::path(__FILE__).parent_path().parent_path().parent_path() / "data" / "kg"; }

// Node identity for comparing the two forms: the CSV id, which the APOC form
// carries as properties.id (APOC's own id is Neo4j's internal number).
using RelKey = std::tuple<std::string, std::string, std::string, std::map<std::string, std::string>>;
std::vector<RelKey> rel_keys(const KnowledgeGraph& g, bool by_id_property) {
  auto key = [&](std::size_t i) { return by_id_property ? g.nodes[i].prop("id") : g.nodes[i].id; };
  std::vector<RelKey> v;
  for (const auto& r : g.relationships) v.emplace_back(key(r.start), r.type, key(r.end), r.properties);
  std::sort(v.begin(), v.end());
  return v;
}

TEST(SampleGraph, CsvAndApocFormsGiveTheSameGraph) {
  const fs::path csv = sample_dir() / "csv", apoc = sample_dir() / "apoc.jsonl";
  if (!fs::exists(csv) || !fs::exists(apoc)) GTEST_SKIP() << "sample graph not present: " << sample_dir();
  LoadSummary cs, as;
  auto c = load_graph({csv.string()}, &cs);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  auto a = load_graph({apoc.string()}, &as);
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_TRUE(cs.skipped.empty()) << cs.skipped.front();
  EXPECT_TRUE(as.skipped.empty()) << as.skipped.front();
  ASSERT_EQ(c->nodes.size(), a->nodes.size());
  ASSERT_EQ(c->relationships.size(), a->relationships.size());
  // Default contract: APOC ids link; properties.id is the CSV id.
  for (const Node& an : a->nodes) {
    const auto ci = c->find(an.prop("id"));
    ASSERT_TRUE(ci.has_value()) << "APOC node " << an.id << " has no CSV twin '" << an.prop("id") << "'";
    const Node& cn = c->nodes[*ci];
    EXPECT_EQ(cn.labels, an.labels) << cn.id;
    EXPECT_EQ(cn.properties, an.properties) << cn.id;
  }
  EXPECT_EQ(rel_keys(*c, false), rel_keys(*a, true));
  // With id_property = "id" the APOC form gives identical node ids.
  LoadGraphOptions opt;
  opt.apoc.id_property = "id";
  auto a2 = load_graph({apoc.string()}, nullptr, opt);
  ASSERT_TRUE(a2.is_ok()) << a2.status().message();
  for (const Node& n : a2->nodes) EXPECT_TRUE(c->find(n.id).has_value()) << n.id;
  EXPECT_EQ(rel_keys(*c, false), rel_keys(*a2, false));
}

TEST(SampleGraph, PassesTheSchema) {
  const fs::path csv = sample_dir() / "csv";
  if (!fs::exists(csv)) GTEST_SKIP() << "sample graph not present: " << csv;
  SchemaReport rep;
  auto g = load_graph({csv.string()}, nullptr, &rep);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_TRUE(rep.status().is_ok()) << rep.status().message();
  for (const auto& i : rep.issues)
    if (i.severity == Severity::Warning) std::printf("sample graph: %s\n", i.to_string().c_str());
  // All eleven relation types appear in the sample.
  const auto counts = g->relation_counts();
  for (const char* t : kRelationTypes) EXPECT_GT(counts.count(t), 0u) << t;
}

}  // namespace
}  // namespace qlora::data
