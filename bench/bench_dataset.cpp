// bench_dataset — Stage 1's data step: QA pool + rebalancing + nested subsets
// (+ quality report) from the shipped sample graph and from a synthetic graph
// ten times larger (the sample replicated with renamed ids and names, so the
// copies do not collapse in de-duplication). Issue 4's targets: under 1 s for
// the sample, under 10 s for the 10x graph. Loading the CSVs is timed apart.
//
//   ./bench_dataset [--benchmark_filter=...]
// The sample is found through QLORA_DATA_DIR (set by bench/CMakeLists.txt).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "qlora/data/load_graph.hpp"
#include "qlora/data/qa_generate.hpp"
#include "qlora/data/quality_report.hpp"
#include "qlora/data/rebalance.hpp"

#ifndef QLORA_DATA_DIR
#define QLORA_DATA_DIR "data"
#endif

namespace {

using namespace qlora::data;

const std::string kSample = std::string(QLORA_DATA_DIR) + "/kg/csv";

const KnowledgeGraph* sample_graph() {
  static const auto g = load_graph({kSample});
  return g.is_ok() ? &g.value() : nullptr;
}

/// The sample `copies` times; copy c > 0 gets ids "<id>~c" and names "<name> c".
KnowledgeGraph replicate(const KnowledgeGraph& g, int copies) {
  KnowledgeGraph out;
  for (int c = 0; c < copies; ++c) {
    const std::string suffix = c ? "~" + std::to_string(c) : "";
    for (Node n : g.nodes) {
      n.id += suffix;
      if (c) {
        std::string& name = n.properties["name"];  // appended in two steps: GCC 12 warns (-Wrestrict) on name += " " + num
        name.append(" ");
        name.append(std::to_string(c));
      }
      (void)out.add_node(std::move(n));
    }
    for (const auto& r : g.relationships)
      (void)out.add_relationship(r.type, g.nodes[r.start].id + suffix, g.nodes[r.end].id + suffix, r.properties);
  }
  return out;
}

/// generate → rebalance → subsets (sizes scaled with the graph) → report.
void run_pipeline(benchmark::State& state, const KnowledgeGraph& g, std::size_t scale) {
  GenerateOptions gen;
  gen.paraphrases = true;
  std::vector<std::size_t> sizes;
  for (std::size_t n = 1000; n <= 5000; n += 1000) sizes.push_back(n * scale);
  std::size_t pairs = 0;
  for (auto _ : state) {
    auto pool = generate_qa(g, gen);
    auto rb = rebalance(pool->pairs, {});
    auto ns = nested_subsets(*rb, sizes, 42);
    if (!ns) {
      state.SkipWithError(ns.status().message().c_str());
      return;
    }
    auto report = make_quality_report(*rb, *ns);
    benchmark::DoNotOptimize(report.max_cv);
    pairs = pool->pairs.size();
  }
  state.counters["pool"] = double(pairs);
  state.counters["relationships"] = double(g.relationships.size());
}

void BM_LoadSample(benchmark::State& state) {
  for (auto _ : state) {
    auto g = load_graph({kSample});
    if (!g) {
      state.SkipWithError(g.status().message().c_str());
      return;
    }
    benchmark::DoNotOptimize(g->nodes.size());
  }
}

void BM_PoolAndSubsetsSample(benchmark::State& state) {  // target < 1 s
  const KnowledgeGraph* g = sample_graph();
  if (!g) return state.SkipWithError(("no sample graph at " + kSample).c_str());
  run_pipeline(state, *g, 1);
}

void BM_PoolAndSubsetsSynthetic10x(benchmark::State& state) {  // target < 10 s
  const KnowledgeGraph* g = sample_graph();
  if (!g) return state.SkipWithError(("no sample graph at " + kSample).c_str());
  static const KnowledgeGraph big = replicate(*g, 10);
  run_pipeline(state, big, 10);
}

BENCHMARK(BM_LoadSample)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PoolAndSubsetsSample)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PoolAndSubsetsSynthetic10x)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
