// apps/qlora/pipeline_steps.hpp — how `qlora pipeline` and the stage
// commands run their work: as a planned list of steps, each one an ordinary
// `qlora` subcommand (train, merge, quantize, nll, answer, judge) run in this
// process with the arguments a user would type. So every intermediate result
// is a file the user could have made by hand and can rerun by hand, and the
// pipeline adds no second implementation of any step.
//
// A ledger (steps.json in the run directory) records each finished step;
// running the same command again skips them and resumes at the first
// unfinished one. The resolved config is kept beside it (config.json): a run
// directory holds one experiment, and reusing it with a different config is
// refused rather than silently mixing results.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/data/csv.hpp"  // read_text_file

namespace qlora::app {

/// One unit of work: a subcommand and its arguments (argv[0] = its name).
struct PipelineStep {
  std::string key;          // unique within the run: the ledger's name for it
  std::string description;  // what the progress line says
  int (*run)(int, char**) = nullptr;
  std::vector<std::string> args;
  double weight = 1.0;  // rough relative cost (examples processed), for the ETA
};

class StepLedger {
 public:
  /// Open (or start) the ledger of `dir`. `fresh` forgets finished steps.
  static Result<StepLedger> open(const std::string& dir, bool fresh) {
    StepLedger l;
    l.path_ = dir + "/steps.json";
    if (fresh || !std::filesystem::exists(l.path_)) return l;
    auto text = data::read_text_file(l.path_);
    if (!text) return text.status();
    const auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("done") || !j["done"].is_array())
      return Status::invalid(l.path_ + ": not a step ledger (delete it, or pass --fresh)");
    for (const auto& k : j["done"])
      if (k.is_string()) l.done_.insert(k.get<std::string>());
    return l;
  }
  bool done(const std::string& key) const { return done_.count(key) > 0; }
  Status mark(const std::string& key) {
    done_.insert(key);
    nlohmann::json j;
    j["done"] = done_;
    return write_text_file(path_, j.dump(1) + "\n");
  }

 private:
  std::string path_;
  std::set<std::string> done_;
};

/// Run `steps` in order, skipping finished ones; stop at the first failure
/// with a message naming the step and how to resume.
inline Status run_steps(const std::vector<PipelineStep>& steps, StepLedger& ledger, const std::string& resume_hint) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  std::set<std::string> seen;
  std::vector<const PipelineStep*> todo;
  for (const PipelineStep& s : steps)
    if (seen.insert(s.key).second) todo.push_back(&s);  // a step shared by two stages runs once
  double weight_left = 0, weight_done = 0, run_seconds = 0;
  for (const PipelineStep* s : todo)
    if (!ledger.done(s->key)) weight_left += s->weight;
  for (std::size_t i = 0; i < todo.size(); ++i) {
    const PipelineStep& s = *todo[i];
    if (ledger.done(s.key)) {
      std::printf("[%zu/%zu] %s: done before, skipped\n", i + 1, todo.size(), s.description.c_str());
      continue;
    }
    const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    std::string eta;
    if (weight_done > 0) {
      // Seconds per unit of weight so far, times the weight still to run.
      const double left = run_seconds / weight_done * weight_left;
      char b[64];
      std::snprintf(b, sizeof b, ", ~%.0f min left", left / 60.0);
      eta = b;
    }
    std::printf("\n[%zu/%zu] %s   (%.0f min elapsed%s)\n$ qlora", i + 1, todo.size(), s.description.c_str(),
                elapsed / 60.0, eta.c_str());
    for (const std::string& a : s.args) std::printf(" %s", a.c_str());
    std::printf("\n");
    std::fflush(stdout);
    std::vector<std::string> argv_store = s.args;
    std::vector<char*> argv;
    for (std::string& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    const auto ts = clock::now();
    const int rc = s.run(int(argv_store.size()), argv.data());
    std::fflush(stdout);
    if (rc != 0)
      return Status::invalid("step " + std::to_string(i + 1) + " (" + s.description + ") failed with exit code " +
                             std::to_string(rc) + "; its message is above. " + resume_hint);
    run_seconds += std::chrono::duration<double>(clock::now() - ts).count();
    weight_done += s.weight;
    weight_left -= s.weight;
    QLORA_TRY(ledger.mark(s.key));
  }
  return Status::ok();
}

}  // namespace qlora::app
