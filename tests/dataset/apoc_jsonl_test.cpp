// Tests for data/apoc_jsonl.hpp: what apoc.export.json.all really writes
// (string or old numeric ids, omitted labels/properties, endpoint copies,
// typed and array values), relationships before their nodes, and the
// error/skip policy with file:line[:column] in every message.
#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "qlora/data/apoc_jsonl.hpp"

namespace qlora::data {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards (tests/temp_dir.hpp).
struct TempDir : qlora::test::TempDir {
  explicit TempDir(const std::string& tag) : qlora::test::TempDir("qlora_apoc_test", tag) {}
};

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

std::string load_err(const std::string& path) {
  auto g = load_apoc_jsonl(path);
  EXPECT_FALSE(g.is_ok());
  return g.is_ok() ? "" : g.status().message();
}

// Relationship first, then its nodes — as a hand-made or multi-file export may be.
const char* kGraph =
    R"({"id":"0","type":"relationship","label":"HAS_CHAPTER","properties":{"note":"目次順"},)"
    R"("start":{"id":"10","labels":["Volume"],"properties":{"name":"調査編"}},"end":{"id":"11","labels":["Chapter"]}})"
    "\n"
    R"({"type":"node","id":"10","labels":["Volume"],"properties":{"name":"調査編","volume":"調査編","category":"Survey","id":"vol-survey"}})"
    "\n"
    R"({"type":"node","id":"11","labels":["Chapter"],"properties":{"name":"第2章 水文・水理観測","year":1997,"ratio":0.25,)"
    R"("big":1.0E10,"public":true,"aliases":["水文","水理"],"nums":[1,2,3],"gone":null,"place":{"crs":"wgs-84","latitude":35.5,"longitude":139.7,"height":null}}})"
    "\n"
    R"({"type":"node","id":"12","labels":["Concept","Extra"]})"  // no properties -> no name: error (tested below)
    "\n";

TEST(ApocJsonl, RelationshipsBeforeNodesAndTypedValues) {
  TempDir td("basic");
  std::string text = kGraph;
  text.erase(text.rfind(R"({"type":"node","id":"12")"));  // drop the nameless node for this test
  const auto p = td.write("apoc.jsonl", text);
  LoadSummary sum;
  auto g = load_apoc_jsonl(p, &sum);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  ASSERT_EQ(g->nodes.size(), 2u);
  const Node& v = g->nodes[*g->find("10")];
  EXPECT_EQ(v.labels, (std::vector<std::string>{"Volume"}));
  EXPECT_EQ(v.prop("id"), "vol-survey");  // properties.id is an ordinary property; APOC's id links
  const Node& c = g->nodes[*g->find("11")];
  EXPECT_EQ(c.prop("year"), "1997");
  EXPECT_EQ(c.prop("ratio"), "0.25");
  EXPECT_EQ(c.prop("big"), "10000000000.0");
  EXPECT_EQ(c.prop("public"), "true");
  EXPECT_EQ(c.prop("aliases"), "水文;水理");
  EXPECT_EQ(c.prop("nums"), "1;2;3");
  EXPECT_EQ(c.properties.count("gone"), 0u);  // null = no property
  EXPECT_EQ(c.prop("place"), R"({"crs":"wgs-84","height":null,"latitude":35.5,"longitude":139.7})");
  ASSERT_EQ(g->relationships.size(), 1u);
  const Relationship& r = g->relationships[0];
  EXPECT_EQ(r.type, "HAS_CHAPTER");
  EXPECT_EQ(g->nodes[r.start].id, "10");
  EXPECT_EQ(g->nodes[r.end].id, "11");
  EXPECT_EQ(r.properties.at("note"), "目次順");
  EXPECT_EQ(sum.nodes_read, 2u);
  EXPECT_EQ(sum.nodes_kept, 2u);
  EXPECT_EQ(sum.relationships_read, 1u);
  EXPECT_EQ(sum.relationships_kept, 1u);
  EXPECT_TRUE(sum.skipped.empty());
}

TEST(ApocJsonl, OldNumericIdsOmittedLabelsBlankLinesCrlfBom) {
  TempDir td("old");
  const auto p = td.write("old.json",
                          "\xEF\xBB\xBF{\"type\":\"node\",\"id\":0,\"properties\":{\"name\":\"a\"}}\r\n"
                          "\r\n"
                          "   \n"
                          "{\"type\":\"node\",\"id\":1,\"labels\":[\"Concept\"],\"properties\":{\"name\":\"b\"}}\r\n"
                          "{\"id\":5,\"type\":\"relationship\",\"label\":\"AFFECTS\",\"start\":{\"id\":0},\"end\":{\"id\":1}}");
  auto g = load_apoc_jsonl(p);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_TRUE(g->nodes[*g->find("0")].labels.empty());
  ASSERT_EQ(g->relationships.size(), 1u);
  EXPECT_TRUE(g->relationships[0].properties.empty());
}

TEST(ApocJsonl, DanglingRelationshipIsSkippedAndCounted) {
  TempDir td("dangling");
  const auto p = td.write("d.jsonl",
                          R"({"type":"node","id":"1","properties":{"name":"a"}})"
                          "\n"
                          R"({"type":"relationship","id":"7","label":"USED_IN","start":{"id":"1"},"end":{"id":"99"}})"
                          "\n");
  LoadSummary sum;
  auto g = load_apoc_jsonl(p, &sum);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_TRUE(g->relationships.empty());
  ASSERT_EQ(sum.skipped.size(), 1u);
  EXPECT_HAS(sum.skipped[0], p + ":2: skipped relationship 1 -USED_IN-> 99: end id '99' is not a loaded node");
  EXPECT_EQ(sum.relationships_read, 1u);
  EXPECT_EQ(sum.relationships_kept, 0u);
}

TEST(ApocJsonl, ErrorsNameFileAndLine) {
  TempDir td("errors");
  const std::string good = R"({"type":"node","id":"1","properties":{"name":"a"}})"
                           "\n";
  struct Case {
    std::string line;
    std::string want;
  };
  const Case cases[] = {
      {R"({"type":"node","id":"2",)", ":2:25: malformed JSON"},
      {R"([1,2])", ":2: a JSON array, not JSON lines"},
      {R"("node")", ":2: line is string, want an object"},
      {R"({"id":"2"})", ":2: no \"type\" string"},
      {R"({"nodes":[],"rels":[]})", ":2: APOC's JSON form"},
      {R"({"type":"vertex","id":"2"})", ":2: unknown \"type\" 'vertex'"},
      {R"({"type":"node","id":"1","properties":{"name":"b"}})", ":2: duplicate node id '1' (first defined at "},
      {R"({"type":"node","id":"2","properties":{"title":"b"}})", ":2: node '2' has no name"},
      {R"({"type":"node","id":"","properties":{"name":"b"}})", ":2: node has no \"id\""},
      {R"({"type":"node","id":true,"properties":{"name":"b"}})", ":2: node \"id\" is boolean"},
      {R"({"type":"node","id":"2","labels":"Concept","properties":{"name":"b"}})", ":2: \"labels\" is string"},
      {R"({"type":"node","id":"2","labels":[3],"properties":{"name":"b"}})", ":2: a label is number"},
      {R"({"type":"node","id":"2","properties":[1]})", ":2: \"properties\" is array"},
      {R"({"type":"relationship","id":"9","label":"","start":{"id":"1"},"end":{"id":"1"}})", ":2: relationship has no \"label\""},
      {R"({"type":"relationship","id":"9","start":{"id":"1"},"end":{"id":"1"}})", ":2: relationship has no \"label\""},
      {R"({"type":"relationship","id":"9","label":"AFFECTS","end":{"id":"1"}})", ":2: relationship has no \"start\" object"},
      {R"({"type":"relationship","id":"9","label":"AFFECTS","start":{},"end":{"id":"1"}})", ":2: relationship \"start\" has no \"id\""},
  };
  for (const auto& c : cases) {
    const auto p = td.write("e.jsonl", good + c.line + "\n");
    const auto m = load_err(p);
    EXPECT_HAS(m, p + c.want);
  }
  const auto dup_rel = td.write("r.jsonl", good +
                                               R"({"type":"relationship","id":"9","label":"AFFECTS","start":{"id":"1"},"end":{"id":"1"}})"
                                               "\n\n"
                                               R"({"type":"relationship","id":"9","label":"AFFECTS","start":{"id":"1"},"end":{"id":"1"}})"
                                               "\n");
  EXPECT_HAS(load_err(dup_rel), dup_rel + ":4: duplicate relationship id '9' (first at " + dup_rel + ":2)");
  const auto utf = td.write("u.jsonl", good + "{\"type\":\"node\",\"id\":\"2\",\"properties\":{\"name\":\"\xED\xA0\x80\"}}\n");
  EXPECT_HAS(load_err(utf), utf + ":2:47: invalid UTF-8 (UTF-16 surrogate");
  const auto nameless = td.write("k.jsonl", kGraph);
  EXPECT_HAS(load_err(nameless), nameless + ":4: node '12' has no name");
  EXPECT_HAS(load_err((td.dir / "none.jsonl").string()), "none.jsonl: cannot open");
}

TEST(ApocJsonl, IdPropertyOptionUsesTheLogicalId) {
  TempDir td("idprop");
  std::string text = kGraph;
  text.erase(text.rfind(R"({"type":"node","id":"12")"));
  const auto p = td.write("apoc.jsonl", text);
  ApocOptions opt;
  opt.id_property = "id";
  // Node 11 has no properties.id: with the option that is an error naming the line.
  auto bad = load_apoc_jsonl(p, nullptr, opt);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_HAS(bad.status().message(), p + ":3: node '11' has no property 'id'");
  const auto q = td.write("b.jsonl",
                          R"({"type":"relationship","id":"0","label":"HAS_CHAPTER","start":{"id":"10"},"end":{"id":"11"}})"
                          "\n"
                          R"({"type":"node","id":"10","properties":{"id":"vol","name":"V"}})"
                          "\n"
                          R"({"type":"node","id":"11","properties":{"id":"ch","name":"C"}})"
                          "\n");
  auto g = load_apoc_jsonl(q, nullptr, opt);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  ASSERT_TRUE(g->find("vol").has_value());
  EXPECT_FALSE(g->find("10").has_value());
  ASSERT_EQ(g->relationships.size(), 1u);
  EXPECT_EQ(g->nodes[g->relationships[0].start].id, "vol");
  EXPECT_EQ(g->nodes[g->relationships[0].end].id, "ch");
}

TEST(ApocJsonl, SeveralFilesAndAppendingToAGraph) {
  TempDir td("multi");
  // The relationship file comes first; its nodes are in the second file.
  const auto rels = td.write("a.jsonl", R"({"type":"relationship","id":"1","label":"AFFECTS","start":{"id":"x"},"end":{"id":"y"}})"
                                        "\n");
  const auto nodes = td.write("b.jsonl", R"({"type":"node","id":"x","properties":{"name":"X"}})"
                                         "\n"
                                         R"({"type":"node","id":"y","properties":{"name":"Y"}})"
                                         "\n");
  auto g = load_apoc_jsonl(std::vector<std::string>{rels, nodes});
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ(g->relationships.size(), 1u);

  // Appending: a relationship may end at a node that was already there.
  KnowledgeGraph base;
  ASSERT_TRUE(base.add_node({"y", {"Concept"}, {{"name", "Y"}}}).is_ok());
  const auto more = td.write("c.jsonl", R"({"type":"node","id":"x","properties":{"name":"X"}})"
                                        "\n"
                                        R"({"type":"relationship","label":"AFFECTS","start":{"id":"x"},"end":{"id":"y"}})"
                                        "\n");
  LoadSummary sum;
  ASSERT_TRUE(append_apoc_jsonl(base, {more}, &sum).is_ok());
  EXPECT_EQ(base.nodes.size(), 2u);
  EXPECT_EQ(base.relationships.size(), 1u);
  const auto clash = td.write("d.jsonl", R"({"type":"node","id":"y","properties":{"name":"Y2"}})"
                                         "\n");
  auto st = append_apoc_jsonl(base, {clash});
  ASSERT_FALSE(st.is_ok());
  EXPECT_HAS(st.message(), clash + ":1: duplicate node id 'y' (already in the graph");
}

}  // namespace
}  // namespace qlora::data
