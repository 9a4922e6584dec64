// `qlora judge ANSWERS.jsonl[=LABEL]... --data TEST_SET.jsonl --out DIR
//      [--judge offline]`
//
// Scores the answers of one or more models (files written by `qlora answer`)
// against the test set and writes the comparison: summary.md (the paper's
// table in form, per-category table), scores.csv, judgements.jsonl (every
// judgement with its evidence), and plots (scores.svg, distribution.svg,
// categories.svg). Every table names the judge. The judge today is the
// deterministic offline scorer (judge/offline_scorer.hpp), labelled as not an
// LLM judge; the HTTP judges (Ollama / OpenAI-compatible) are the next step.
#include <cxxopts.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/eval/answer_set.hpp"
#include "qlora/judge/offline_scorer.hpp"
#include "qlora/judge/score_summary.hpp"

namespace qlora::app {

int cmd_judge(int argc, char** argv) {
  const std::string cmd = "qlora judge";
  cxxopts::Options o(cmd, "Score answers (from `qlora answer`) on the paper's 0-3 rubric and compare models.");
  o.positional_help("ANSWERS.jsonl[=LABEL]...");
  o.add_options()("data", "test set JSONL with reference answers and citations", cxxopts::value<std::string>())(
      "out", "output directory", cxxopts::value<std::string>())(
      "judge", "offline (deterministic reference-overlap + citation scorer; not an LLM judge)",
      cxxopts::value<std::string>()->default_value("offline"))("h,help", "show this help")(
      "answers", "answer files", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"answers"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  for (const char* need : {"answers", "data", "out"})
    if (!args.count(need)) {
      std::fprintf(stderr, "%s: %s is required\n%s\n", cmd.c_str(), need, o.help().c_str());
      return 2;
    }
  if (args["judge"].as<std::string>() != "offline") {
    std::fprintf(stderr, "%s: --judge %s: only 'offline' is available in this build (HTTP judges: not yet)\n",
                 cmd.c_str(), args["judge"].as<std::string>().c_str());
    return 2;
  }
  const std::string data_path = args["data"].as<std::string>();
  auto items = data::read_test_set(data_path);
  if (!items) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), items.status().message().c_str());
    return 1;
  }
  std::map<std::string, const data::TestItem*> by_id;
  for (const auto& it : *items) by_id[it.id] = &it;

  const std::string out = args["out"].as<std::string>();
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  std::vector<judge::ScoreSummary> rows;
  std::string judgements;
  for (const std::string& spec : args["answers"].as<std::vector<std::string>>()) {
    const std::size_t eq = spec.find('=');
    const std::string path = spec.substr(0, eq);
    const std::string label =
        eq == std::string::npos ? std::filesystem::path(path).stem().string() : spec.substr(eq + 1);
    auto answers = eval::read_answers(path);
    if (!answers) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), answers.status().message().c_str());
      return 1;
    }
    std::vector<std::optional<int>> scores;
    for (std::size_t i = 0; i < answers->size(); ++i) {
      eval::AnswerRecord& a = (*answers)[i];
      auto it = by_id.find(a.id);
      if (it == by_id.end()) {
        std::fprintf(stderr, "%s: %s: answer %zu has id '%s', which is not in %s\n", cmd.c_str(), path.c_str(), i + 1,
                     a.id.c_str(), data_path.c_str());
        return 1;
      }
      if (a.category.empty()) a.category = it->second->category;
      const judge::OfflineScore s = judge::offline_score(a.answer, it->second->reference_answer, it->second->citation);
      scores.push_back(s.score);
      nlohmann::ordered_json j;
      j["model"] = label;
      j["id"] = a.id;
      j["score"] = s.score;
      j["judge"] = std::string(judge::kOfflineLabel);
      j["content_f1"] = s.content_f1;
      j["cites_source"] = s.cites_source;
      judgements += j.dump(-1, ' ', false) + "\n";
    }
    rows.push_back(judge::summarize(label, *answers, scores));
  }
  const std::string md = "# Answer scores\n\n" + judge::markdown_table(rows, judge::kOfflineLabel) +
                         "\n## By category\n\n" + judge::category_table(rows) +
                         "\nPlots: scores.svg, distribution.svg, categories.svg. Every judgement: judgements.jsonl.\n";
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"summary.md", md}, {"scores.csv", judge::csv_table(rows)}, {"judgements.jsonl", judgements}})
    if (Status st = write_text_file(out + "/" + name, text); !st.is_ok()) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
      return 1;
    }
  if (Status st = judge::write_score_plots(out, rows, judge::kOfflineLabel); !st.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return 1;
  }
  std::printf("%s", judge::markdown_table(rows, judge::kOfflineLabel).c_str());
  std::printf("\nwrote %s/summary.md, scores.csv, judgements.jsonl, scores.svg, distribution.svg, categories.svg\n",
              out.c_str());
  return 0;
}

}  // namespace qlora::app
