// `qlora dataset build --kg PATH... --out DIR [--format plain|alpaca|messages]
//      [--sizes 1000,2000,...] [--rebalance HAS_CHAPTER:0.7] [--seed N]
//      [--test-set FILE] [--no-paraphrases]`
//
// The whole Stage-1 data step (data/dataset_build.hpp) and a summary of it.
// Without --kg the shipped sample graph (data/kg/csv) and, unless --test-set
// says otherwise, the shipped test set are used; QLORA_DATA_DIR (set by
// CMake) locates them in the source tree.
#include <cxxopts.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "qlora/data/dataset_build.hpp"

#ifndef QLORA_DATA_DIR
#define QLORA_DATA_DIR "data"
#endif

namespace qlora::app {
namespace {

/// "1000,2000,3000" → sizes; false on anything that is not a positive integer list.
bool parse_sizes(const std::string& s, std::vector<std::size_t>& out) {
  out.clear();
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    const std::string tok = s.substr(pos, comma - pos);
    if (tok.empty() || tok.find_first_not_of("0123456789") != std::string::npos || tok.size() > 12) return false;
    out.push_back(std::stoull(tok));
    pos = comma + 1;
  }
  return !out.empty();
}

void print_summary(const data::DatasetBuildOptions& o, const data::DatasetBuildSummary& s, bool built) {
  std::printf("graph: %zu nodes read, %zu kept; %zu relationships read, %zu kept; %zu records skipped\n",
              s.load.nodes_read, s.load.nodes_kept, s.load.relationships_read, s.load.relationships_kept,
              s.load.skipped.size());
  for (std::size_t i = 0; i < s.load.skipped.size() && i < 10; ++i) std::printf("  skipped: %s\n", s.load.skipped[i].c_str());
  if (s.schema_errors || s.schema_warnings) {
    std::printf("schema: %zu error(s), %zu warning(s)\n", s.schema_errors, s.schema_warnings);
    for (const auto& m : s.schema_messages) std::printf("  %s\n", m.c_str());
  }
  if (s.generate.generated == 0) return;
  std::printf("QA pairs: %zu generated, %zu duplicates removed (normalized question), pool %zu",
              s.generate.generated, s.generate.duplicates_removed, s.generate.kept);
  if (!s.generate.skipped.empty()) std::printf(", %zu relationships of unknown types skipped", s.generate.skipped.size());
  std::printf("\n");
  for (std::size_t i = 0; i < s.generate.skipped.size() && i < 5; ++i) std::printf("  %s\n", s.generate.skipped[i].c_str());
  if (s.rebalance.before) {
    std::printf("rebalanced: %s keep %.2f: %zu -> %zu pairs\n", o.rebalance.relation.c_str(), o.rebalance.keep,
                s.rebalance.before, s.rebalance.after);
    std::printf("  %-14s %8s %8s %8s\n", "relation", "pool", "kept", "share");
    for (const auto& [rel, n] : s.rebalance.before_per_relation) {
      const std::size_t k = s.rebalance.after_per_relation.at(rel);
      std::printf("  %-14s %8zu %8zu %7.1f%%\n", rel.c_str(), n, k, 100.0 * double(k) / double(s.rebalance.after));
    }
  }
  if (!s.report.subsets.empty()) {
    std::printf("subsets:");
    for (const auto& sub : s.report.subsets) std::printf(" %zu", sub.size);
    std::printf("\n  %-22s %7s %12s %12s\n", "subset", "pairs", "answer mean", "answer sd");
    for (const auto& sub : s.report.subsets)
      std::printf("  %-22s %7zu %12.1f %12.1f\n", sub.name.c_str(), sub.size, sub.answer_mean, sub.answer_std);
    std::printf("CV of relation shares across subsets (target < %.0f%%):\n", 100.0 * s.report.cv_target);
    for (const auto& r : s.report.relations) std::printf("  %-14s %6.2f%%\n", r.c_str(), 100.0 * s.report.cv.at(r));
    std::printf("  max %.2f%%: %s\n", 100.0 * s.report.max_cv, s.report.cv_ok() ? "ok" : "ABOVE TARGET");
  }
  if (s.test_set_checked)
    std::printf("test set: %zu questions, %zu overlapping the pool (max %zu-gram share %.0f%%, longest shared run %zu)\n",
                s.test_questions, s.overlap.findings.size(), o.overlap.n, 100.0 * s.overlap.max_fraction_seen,
                s.overlap.max_run_seen);
  else
    std::printf("test set: not checked (no --test-set)\n");
  if (built) {
    std::printf("wrote %zu files to %s:\n", s.files_written.size(), o.out_dir.c_str());
    for (const auto& f : s.files_written) std::printf("  %s\n", std::filesystem::path(f).filename().string().c_str());
  }
}

}  // namespace

int cmd_dataset(int argc, char** argv) {
  cxxopts::Options o("qlora dataset",
                     "build: knowledge graph -> template QA pairs -> rebalanced nested subsets "
                     "(subset_merged_<n>.jsonl), quality report and test-set overlap check.");
  o.positional_help("build [--kg PATH...] --out DIR");
  o.add_options()("kg", "graph input: a directory of neo4j CSVs, a .csv file or an APOC .jsonl (repeatable; default: the shipped sample)",
                  cxxopts::value<std::vector<std::string>>())(
      "out", "output directory", cxxopts::value<std::string>())(
      "format", "record form: plain, alpaca or messages", cxxopts::value<std::string>()->default_value("plain"))(
      "sizes", "nested subset sizes", cxxopts::value<std::string>()->default_value("1000,2000,3000,4000,5000"))(
      "rebalance", "undersample TYPE to FRACTION (\"none\" to keep all)", cxxopts::value<std::string>()->default_value("HAS_CHAPTER:0.7"))(
      "seed", "seed of every random choice", cxxopts::value<std::uint64_t>()->default_value("42"))(
      "test-set", "test set JSONL to check for overlap with the pool (default with the sample: data/test_set.jsonl)",
      cxxopts::value<std::string>())("no-test-set", "skip the overlap check")(
      "paraphrases", "add paraphrased variants of every question (the default; kept for scripts)")(
      "no-paraphrases", "template questions only (the sample graph then yields ~1,500 pairs: pass smaller --sizes)")(
      "variants", "questions per template with --paraphrases", cxxopts::value<int>()->default_value("4"))(
      "ngram", "overlap check: n-gram length in characters", cxxopts::value<std::size_t>()->default_value("8"))(
      "max-overlap", "overlap check: largest allowed share of a test question's n-grams in one pool question",
      cxxopts::value<double>()->default_value("0.5"))(
      "max-run", "overlap check: shortest shared run of characters that fails", cxxopts::value<std::size_t>()->default_value("20"))(
      "strict-schema", "fail on graph schema errors (docs/dataset.md) instead of reporting them")("h,help", "show this help")(
      "action", "build", cxxopts::value<std::string>())("paths", "more --kg paths", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"action", "paths"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, "qlora dataset", args)) return *exit_code;
  if (!args.count("action") || args["action"].as<std::string>() != "build") {
    std::fprintf(stderr, "qlora dataset: expected the action 'build'\n%s\n", o.help().c_str());
    return 2;
  }
  if (!args.count("out")) {
    std::fprintf(stderr, "qlora dataset build: missing --out DIR\n");
    return 2;
  }
  data::DatasetBuildOptions opt;
  opt.out_dir = args["out"].as<std::string>();
  if (args.count("kg")) opt.kg_paths = args["kg"].as<std::vector<std::string>>();
  if (args.count("paths"))
    for (const auto& p : args["paths"].as<std::vector<std::string>>()) opt.kg_paths.push_back(p);
  const bool sample = opt.kg_paths.empty();
  if (sample) opt.kg_paths = {std::string(QLORA_DATA_DIR) + "/kg/csv"};
  const auto form = data::parse_qa_format(args["format"].as<std::string>());
  if (!form) {
    std::fprintf(stderr, "qlora dataset build: --format must be plain, alpaca or messages\n");
    return 2;
  }
  opt.format = *form;
  if (!parse_sizes(args["sizes"].as<std::string>(), opt.sizes)) {
    std::fprintf(stderr, "qlora dataset build: --sizes wants positive integers separated by commas, e.g. 1000,2000\n");
    return 2;
  }
  const std::string reb = args["rebalance"].as<std::string>();
  if (reb == "none") {
    opt.rebalance.relation.clear();
  } else if (auto st = data::parse_rebalance_spec(reb, opt.rebalance); !st) {
    std::fprintf(stderr, "qlora dataset build: %s\n", st.message().c_str());
    return 2;
  }
  opt.seed = args["seed"].as<std::uint64_t>();
  // Paraphrases are on unless refused: without them the shipped sample's pool
  // (~1,500 pairs) is too small for the paper's default sizes 1000..5000.
  opt.generate.paraphrases = args.count("no-paraphrases") == 0;
  opt.generate.paraphrase_variants = args["variants"].as<int>();
  opt.overlap.n = args["ngram"].as<std::size_t>();
  opt.overlap.max_fraction = args["max-overlap"].as<double>();
  opt.overlap.max_shared_run = args["max-run"].as<std::size_t>();
  opt.strict_schema = args.count("strict-schema") > 0;
  if (args.count("test-set")) opt.test_set_path = args["test-set"].as<std::string>();
  else if (sample && std::filesystem::exists(std::string(QLORA_DATA_DIR) + "/test_set.jsonl"))
    opt.test_set_path = std::string(QLORA_DATA_DIR) + "/test_set.jsonl";
  if (args.count("no-test-set")) opt.test_set_path.clear();

  if (sample) std::printf("graph: the shipped sample, %s\n", opt.kg_paths[0].c_str());
  data::DatasetBuildSummary s;
  const Status st = data::build_dataset(opt, &s);
  print_summary(opt, s, st.is_ok());
  if (!st) {
    std::fprintf(stderr, "qlora dataset build: %s\n", st.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace qlora::app
