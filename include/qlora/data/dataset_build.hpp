// qlora/data/dataset_build.hpp — Stage 1's data step in one call:
//   load graph(s) → generate the QA pool → rebalance → nested subsets →
//   quality report → test-set overlap check → write everything.
//
// Every check runs before the first byte is written: a pool too small for a
// requested subset, a test question that leaks into the pool, or (with
// strict_schema) a graph that breaks docs/dataset.md stops the build with an
// error and leaves the output directory untouched. Files written into out_dir:
//   pool.jsonl                  the de-duplicated pool, generation order
//   pool_rebalanced.jsonl       after undersampling, in the stratified order
//                               (subset_merged_<n> is exactly its first n lines)
//   subset_merged_<n>.jsonl     one per size, in the chosen form (plain/alpaca/messages)
//   report.md, report.csv       Figures 2–4 as tables, plus the build's parameters
//   relations.svg, lengths.svg, categories.svg
// One seed drives every random choice (generation, rebalancing, order), so a
// rerun with the same inputs and seed rewrites byte-identical files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/data/load_graph.hpp"
#include "qlora/data/qa_generate.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/data/quality_report.hpp"
#include "qlora/data/rebalance.hpp"
#include "qlora/data/test_set_check.hpp"

namespace qlora::data {

struct DatasetBuildOptions {
  std::vector<std::string> kg_paths;                  // directories of CSVs, .csv files, APOC .jsonl files
  std::string out_dir;
  QaFormat format = QaFormat::Plain;
  std::vector<std::size_t> sizes = {1000, 2000, 3000, 4000, 5000};
  std::uint64_t seed = 42;                            // overrides generate.seed and rebalance.seed
  GenerateOptions generate;                           // paraphrases on/off, variants
  RebalanceOptions rebalance;                         // relation and keep fraction
  std::string test_set_path;                          // "" = skip the overlap check
  OverlapOptions overlap;
  bool strict_schema = false;                         // fail on schema errors (else they are only reported)
  double cv_target = 0.03;
};

struct DatasetBuildSummary {
  LoadSummary load;
  std::size_t nodes = 0, relationships = 0;
  std::size_t schema_errors = 0, schema_warnings = 0;
  std::vector<std::string> schema_messages;           // first few, for the CLI
  GenerateSummary generate;
  RebalanceSummary rebalance;
  std::vector<std::size_t> subset_sizes;
  QualityReport report;
  bool test_set_checked = false;
  std::size_t test_questions = 0;
  OverlapReport overlap;
  std::vector<std::string> files_written;
};

namespace detail {

/// The build section that heads report.md.
inline std::string build_section(const DatasetBuildOptions& o, const DatasetBuildSummary& s) {
  std::string m = "## Build\n\n";
  m += "- graph: " + std::to_string(s.nodes) + " nodes, " + std::to_string(s.relationships) + " relationships (" +
       std::to_string(s.load.skipped.size()) + " records skipped on load)\n";
  m += "- seed " + std::to_string(o.seed) + ", form " + qa_format_name(o.format) + ", paraphrases " +
       (o.generate.paraphrases ? "on (" + std::to_string(o.generate.paraphrase_variants) + " per question template)" : std::string("off")) + "\n";
  m += "- generated " + std::to_string(s.generate.generated) + " QA pairs, " + std::to_string(s.generate.duplicates_removed) +
       " removed as normalized duplicates, pool " + std::to_string(s.generate.kept) + "\n";
  m += "- rebalanced: " + o.rebalance.relation + " keep " + std::to_string(o.rebalance.keep).substr(0, 4) + " → " +
       std::to_string(s.rebalance.after) + " pairs\n";
  if (s.test_set_checked)
    m += "- test set: " + std::to_string(s.test_questions) + " questions, " + std::to_string(s.overlap.findings.size()) +
         " overlapping the pool (" + std::to_string(o.overlap.n) + "-gram share > " + std::to_string(o.overlap.max_fraction).substr(0, 4) +
         " or a shared run ≥ " + std::to_string(o.overlap.max_shared_run) + " characters)\n";
  else
    m += "- test set: not checked\n";
  return m + "\n";
}

}  // namespace detail

/// Run the whole data step. `summary` (optional) is filled as far as the build
/// got, so a failed build still explains itself (e.g. the overlapping pairs).
inline Status build_dataset(const DatasetBuildOptions& o, DatasetBuildSummary* summary = nullptr) {
  DatasetBuildSummary local;
  DatasetBuildSummary& s = summary ? *summary : local;
  s = DatasetBuildSummary{};
  if (o.out_dir.empty()) return Status::invalid("dataset build: no output directory");

  // 1. Load and check the graph.
  SchemaReport schema;
  auto g = load_graph(o.kg_paths, &s.load, &schema);
  if (!g) return g.status();
  s.nodes = g->nodes.size();
  s.relationships = g->relationships.size();
  s.schema_errors = schema.errors();
  s.schema_warnings = schema.warnings();
  for (const auto& i : schema.issues)
    if (s.schema_messages.size() < 10) s.schema_messages.push_back(i.to_string());
  if (o.strict_schema) QLORA_TRY(schema.status());

  // 2. Generate the pool, 3. rebalance, 4. cut the subsets (all in memory).
  GenerateOptions gen = o.generate;
  gen.seed = o.seed;
  auto pool = generate_qa(*g, gen);
  if (!pool) return pool.status();
  s.generate = pool->summary;
  if (pool->pairs.empty()) return Status::invalid("dataset build: the graph produced no QA pairs (no relationships of the 11 types?)");
  RebalanceOptions rb = o.rebalance;
  rb.seed = o.seed;
  auto rebalanced = rebalance(pool->pairs, rb, &s.rebalance);
  if (!rebalanced) return rebalanced.status();
  auto subsets = nested_subsets(*rebalanced, o.sizes, o.seed);
  if (!subsets) return subsets.status();
  s.subset_sizes = subsets->sizes;
  s.report = make_quality_report(*rebalanced, *subsets, o.cv_target);

  // 5. The test set must not leak into the pool (checked against the whole
  // de-duplicated pool: every subset is drawn from it).
  if (!o.test_set_path.empty()) {
    auto tests = read_test_set(o.test_set_path);
    if (!tests) return tests.status();
    s.test_set_checked = true;
    s.test_questions = tests->size();
    s.overlap = check_test_overlap(*tests, pool->pairs, o.overlap);
    if (!s.overlap.ok())
      return Status::invalid(o.test_set_path + ": " + std::to_string(s.overlap.findings.size()) +
                             " test question(s) overlap the training pool; nothing was written:\n" +
                             describe_overlaps(s.overlap));
  }

  // 6. Write.
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return Status::io(o.out_dir + ": cannot create directory: " + ec.message());
  const std::filesystem::path dir(o.out_dir);
  auto out = [&](const std::string& name) {
    s.files_written.push_back((dir / name).string());
    return s.files_written.back();
  };
  std::vector<QaPair> ordered;
  ordered.reserve(rebalanced->size());
  for (std::size_t i : subsets->order) ordered.push_back((*rebalanced)[i]);
  QLORA_TRY(write_qa_jsonl(out("pool.jsonl"), pool->pairs, o.format));
  QLORA_TRY(write_qa_jsonl(out("pool_rebalanced.jsonl"), ordered, o.format));
  for (std::size_t n : subsets->sizes) {
    const std::vector<QaPair> sub(ordered.begin(), ordered.begin() + std::ptrdiff_t(n));
    QLORA_TRY(write_qa_jsonl(out(NestedSubsets::file_name(n)), sub, o.format));
  }
  std::string md = s.report.markdown();
  md.insert(md.find('\n') + 2, detail::build_section(o, s));
  QLORA_TRY(write_text_file(out("report.md"), md));
  QLORA_TRY(write_text_file(out("report.csv"), s.report.csv()));
  QLORA_TRY(write_text_file(out("relations.svg"), s.report.relations_svg()));
  QLORA_TRY(write_text_file(out("lengths.svg"), s.report.lengths_svg()));
  QLORA_TRY(write_text_file(out("categories.svg"), s.report.categories_svg()));
  return Status::ok();
}

}  // namespace qlora::data
