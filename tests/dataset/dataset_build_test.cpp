// Pins data/dataset_build.hpp end to end: a small graph written as neo4j CSV
// goes in, subsets, report and plots come out; same seed → identical files,
// different seed → different order; a pool too small or a leaking test set
// stops the build before anything is written. Last, the shipped sample
// (skipped when absent) must yield the paper's default sizes 1000..5000.
#include "qlora/data/dataset_build.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#ifndef QLORA_TEST_DATA_DIR
#define QLORA_TEST_DATA_DIR "tests/data"
#endif

namespace {

namespace fs = std::filesystem;
using namespace qlora::data;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}
void spit(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

std::size_t lines(const fs::path& p) {
  const std::string t = slurp(p);
  return std::size_t(std::count(t.begin(), t.end(), '\n'));
}

/// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(fs::temp_directory_path() / ("qlora_dataset_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

/// The hand-checkable graph of qa_generate_test.cpp, as neo4j-admin CSV.
fs::path write_small_graph(const fs::path& dir) {
  const fs::path kg = dir / "kg";
  fs::create_directories(kg);
  spit(kg / "nodes.csv",
       "id:ID,:LABEL,name,volume,chapter,section,category,clause_type,description\n"
       "std,Standard,河川砂防技術基準,,,,,,基準である。\n"
       "v1,Volume,調査編,調査編,,,Survey,,調査の編である。\n"
       "c2,Chapter,第2章 水文・水理観測,調査編,第2章 水文・水理観測,,Survey,,観測の方法を定める章である。\n"
       "c3,Chapter,第3章 土砂移動調査,調査編,第3章 土砂移動調査,,Survey,,土砂の調査を定める章である。\n"
       "s23,Section,第3節 雨量観測,調査編,第2章 水文・水理観測,第3節 雨量観測,,,雨量観測の節である。\n"
       "i231,Item,3.1 観測所の配置,調査編,第2章 水文・水理観測,第3節 雨量観測,,標準,観測所を配置する。\n"
       "dam,Concept,砂防堰堤,維持管理編（砂防編）,第3章 砂防施設,,Maintenance-Sabo,,土砂の流出を抑える施設である。\n"
       "debris,Concept,土石流,,,,Hazard,,土砂と水が一体となって流下する現象である。\n");
  spit(kg / "relationships.csv",
       ":START_ID,:END_ID,:TYPE\n"
       "std,v1,HAS_CHAPTER\nv1,c2,HAS_CHAPTER\nv1,c3,HAS_CHAPTER\nc2,s23,HAS_SECTION\n"
       "s23,i231,HAS_ITEM\ndam,debris,MITIGATES\ndebris,c3,DESCRIBED_IN\n");
  return kg;
}

DatasetBuildOptions small_options(const fs::path& kg, const fs::path& out) {
  DatasetBuildOptions o;
  o.kg_paths = {kg.string()};
  o.out_dir = out.string();
  o.sizes = {10, 20, 30};
  return o;
}

TEST(DatasetBuild, WritesSubsetsReportAndPlots) {
  TempDir tmp("writes");
  const fs::path kg = write_small_graph(tmp.path);
  DatasetBuildOptions o = small_options(kg, tmp.path / "out");
  o.format = QaFormat::Messages;
  DatasetBuildSummary s;
  const qlora::Status st = build_dataset(o, &s);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(s.nodes, 8u);
  EXPECT_EQ(s.relationships, 7u);
  EXPECT_EQ(s.generate.kept, s.generate.generated - s.generate.duplicates_removed);
  EXPECT_EQ(s.subset_sizes, (std::vector<std::size_t>{10, 20, 30}));
  for (const char* f : {"pool.jsonl", "pool_rebalanced.jsonl", "subset_merged_10.jsonl", "subset_merged_20.jsonl",
                        "subset_merged_30.jsonl", "report.md", "report.csv", "relations.svg", "lengths.svg",
                        "categories.svg"})
    EXPECT_TRUE(fs::exists(tmp.path / "out" / f)) << f;
  EXPECT_EQ(s.files_written.size(), 10u);
  EXPECT_EQ(lines(tmp.path / "out" / "pool.jsonl"), s.generate.kept);
  EXPECT_EQ(lines(tmp.path / "out" / "pool_rebalanced.jsonl"), s.rebalance.after);
  EXPECT_EQ(lines(tmp.path / "out" / "subset_merged_20.jsonl"), 20u);
  // Subsets are the first n lines of pool_rebalanced.jsonl, hence nested.
  const std::string all = slurp(tmp.path / "out" / "pool_rebalanced.jsonl");
  const std::string s20 = slurp(tmp.path / "out" / "subset_merged_20.jsonl");
  EXPECT_EQ(all.compare(0, s20.size(), s20), 0);
  EXPECT_EQ(s20.compare(0, slurp(tmp.path / "out" / "subset_merged_10.jsonl").size(),
                        slurp(tmp.path / "out" / "subset_merged_10.jsonl")), 0);
  // The chosen form, readable back by the shared reader.
  EXPECT_NE(s20.find("\"messages\""), std::string::npos);
  auto back = read_qa_jsonl((tmp.path / "out" / "subset_merged_20.jsonl").string());
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->size(), 20u);
  const std::string md = slurp(tmp.path / "out" / "report.md");
  EXPECT_NE(md.find("## Build"), std::string::npos);
  EXPECT_NE(md.find("## Relation distribution"), std::string::npos);
  EXPECT_NE(slurp(tmp.path / "out" / "relations.svg").find("</svg>"), std::string::npos);
}

TEST(DatasetBuild, SameSeedSameBytesDifferentSeedDifferentOrder) {
  TempDir tmp("determinism");
  const fs::path kg = write_small_graph(tmp.path);
  DatasetBuildOptions a = small_options(kg, tmp.path / "a"), b = small_options(kg, tmp.path / "b"),
                      c = small_options(kg, tmp.path / "c");
  c.seed = 1234;
  for (auto* o : {&a, &b, &c}) {
    o->generate.paraphrases = true;
    ASSERT_TRUE(build_dataset(*o).is_ok());
  }
  for (const char* f : {"pool.jsonl", "subset_merged_30.jsonl", "report.md", "report.csv", "relations.svg"})
    EXPECT_EQ(slurp(tmp.path / "a" / f), slurp(tmp.path / "b" / f)) << f;
  EXPECT_NE(slurp(tmp.path / "a" / "subset_merged_30.jsonl"), slurp(tmp.path / "c" / "subset_merged_30.jsonl"));
}

TEST(DatasetBuild, PoolTooSmallWritesNothing) {
  TempDir tmp("too_small");
  const fs::path kg = write_small_graph(tmp.path);
  DatasetBuildOptions o = small_options(kg, tmp.path / "out");
  o.sizes = {10, 1000};
  DatasetBuildSummary s;
  const qlora::Status st = build_dataset(o, &s);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("1000"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(std::to_string(s.rebalance.after)), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
}

TEST(DatasetBuild, LeakingTestSetFailsTheBuild) {
  TempDir tmp("leak");
  const fs::path kg = write_small_graph(tmp.path);
  spit(tmp.path / "test_set.jsonl",
       "{\"id\":\"t001\",\"category\":\"Hazard\",\"question\":\"砂防堰堤は何を軽減しますか\",\"reference_answer\":\"土石流。\",\"citation\":\"維持管理編（砂防編） 第3章\"}\n"
       "{\"id\":\"t002\",\"category\":\"Design\",\"question\":\"護岸の根固工はどのような場合に必要ですか？\",\"reference_answer\":\"…\",\"citation\":\"設計編 第3章\"}\n");
  DatasetBuildOptions o = small_options(kg, tmp.path / "out");
  o.test_set_path = (tmp.path / "test_set.jsonl").string();
  DatasetBuildSummary s;
  const qlora::Status st = build_dataset(o, &s);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("t001"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("t002"), std::string::npos) << st.message();
  EXPECT_TRUE(s.test_set_checked);
  ASSERT_EQ(s.overlap.findings.size(), 1u);
  EXPECT_EQ(s.overlap.findings[0].test_id, "t001");
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
}

TEST(DatasetBuild, BadInputsAreNamed) {
  TempDir tmp("bad");
  DatasetBuildOptions o = small_options(tmp.path / "missing", tmp.path / "out");
  const qlora::Status st = build_dataset(o);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("missing"), std::string::npos);
  o.kg_paths = {write_small_graph(tmp.path).string()};
  o.rebalance.relation = "HAS_VOLUME";
  EXPECT_NE(build_dataset(o).message().find("HAS_VOLUME"), std::string::npos);
}

/// The shipped sample graph (data/kg/csv): with paraphrases the rebalanced
/// pool must cover the paper's default sizes 1000..5000 and keep every
/// relation's share stable across them (CV < 3%).
fs::path sample_dir() { return fs::path(QLORA_TEST_DATA_DIR) / ".." / ".." / "data"; }

TEST(DatasetBuild, ShippedSampleCoversTheDefaultSizes) {
  const fs::path data = sample_dir();
  if (!fs::exists(data / "kg" / "csv")) GTEST_SKIP() << "no sample graph at " << data / "kg" / "csv";
  TempDir tmp("sample");
  DatasetBuildOptions o;
  o.kg_paths = {(data / "kg" / "csv").string()};
  o.out_dir = (tmp.path / "out").string();
  o.generate.paraphrases = true;
  DatasetBuildSummary s;
  const qlora::Status st = build_dataset(o, &s);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(s.load.skipped.size(), 0u);
  EXPECT_EQ(s.generate.skipped.size(), 0u);
  EXPECT_GE(s.rebalance.after, 5000u);
  EXPECT_EQ(s.subset_sizes, (std::vector<std::size_t>{1000, 2000, 3000, 4000, 5000}));
  EXPECT_LT(s.report.max_cv, 0.03);
  // HAS_CHAPTER kept at exactly 70%.
  const std::size_t hc = s.rebalance.before_per_relation.at("HAS_CHAPTER");
  EXPECT_EQ(s.rebalance.after_per_relation.at("HAS_CHAPTER"), std::size_t(std::llround(0.7 * double(hc))));
  for (const auto& sub : s.report.subsets) EXPECT_EQ(sub.relations.size(), 11u) << sub.name;
  EXPECT_EQ(lines(tmp.path / "out" / "subset_merged_5000.jsonl"), 5000u);
}

/// The shipped test set (data/test_set.jsonl) must not overlap the sample's pool.
TEST(DatasetBuild, ShippedTestSetDoesNotOverlapTheSamplePool) {
  const fs::path data = sample_dir();
  if (!fs::exists(data / "kg" / "csv") || !fs::exists(data / "test_set.jsonl"))
    GTEST_SKIP() << "no sample graph or test set under " << data;
  auto g = load_graph({(data / "kg" / "csv").string()});
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  GenerateOptions gen;
  gen.paraphrases = true;
  auto pool = generate_qa(*g, gen);
  ASSERT_TRUE(pool.is_ok());
  auto tests = read_test_set((data / "test_set.jsonl").string());
  ASSERT_TRUE(tests.is_ok()) << tests.status().message();
  EXPECT_EQ(tests->size(), 100u);
  const OverlapReport r = check_test_overlap(*tests, pool->pairs);
  EXPECT_TRUE(r.ok()) << describe_overlaps(r);
}

}  // namespace
