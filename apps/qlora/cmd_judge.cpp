// `qlora judge ANSWERS.jsonl[=LABEL]... --data TEST_SET.jsonl --out DIR
//      [--judge offline | ollama | openai] [--judge-url URL] [--judge-model M]
//      [--reference] [--repeat 2]`
//
// Scores the answers of one or more models (files written by `qlora answer`)
// against the test set and writes the comparison: summary.md (the paper's
// table in form, per-category table), scores.csv, judgements.jsonl (every
// judgement with its evidence), and plots (scores.svg, distribution.svg,
// categories.svg). Every table names the judge: the paper's LLM judge over
// HTTP (judge/chat_backend.hpp: Ollama or any OpenAI-compatible server, the
// rubric of judge/rubric.hpp, optionally reference-guided), or the
// deterministic offline scorer (judge/offline_scorer.hpp), labelled as not an
// LLM judge. --repeat 2 judges every answer twice and reports agreement
// (exact, within one, quadratic kappa); the verbosity check (score vs length)
// is always reported.
#include <cxxopts.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/eval/answer_set.hpp"
#include "qlora/judge/chat_backend.hpp"
#include "qlora/judge/offline_scorer.hpp"
#include "qlora/judge/reliability.hpp"
#include "qlora/judge/rubric.hpp"
#include "qlora/judge/score_summary.hpp"

namespace qlora::app {

int cmd_judge(int argc, char** argv) {
  const std::string cmd = "qlora judge";
  cxxopts::Options o(cmd, "Score answers (from `qlora answer`) on the paper's 0-3 rubric and compare models.");
  o.positional_help("ANSWERS.jsonl[=LABEL]...");
  o.add_options()("data", "test set JSONL with reference answers and citations", cxxopts::value<std::string>())(
      "out", "output directory", cxxopts::value<std::string>())(
      "judge", "offline (deterministic reference-overlap + citation scorer; not an LLM judge), ollama or openai",
      cxxopts::value<std::string>()->default_value("offline"))(
      "judge-url", "judge server base URL (ollama default http://127.0.0.1:11434)", cxxopts::value<std::string>())(
      "judge-model", "judge model name (the paper's: qwen2.5:14b)",
      cxxopts::value<std::string>()->default_value("qwen2.5:14b"))(
      "reference", "reference-guided grading: show the judge the reference answer and citation")(
      "repeat", "judge every answer this many times (2: agreement report)",
      cxxopts::value<int>()->default_value("1"))(
      "retries", "attempts per judgement", cxxopts::value<int>()->default_value("4"))(
      "timeout", "seconds per judge request", cxxopts::value<double>()->default_value("120"))(
      "q,quiet", "no progress bar")("h,help", "show this help")(
      "answers", "answer files", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"answers"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  for (const char* need : {"answers", "data", "out"})
    if (!args.count(need)) {
      std::fprintf(stderr, "%s: %s is required\n%s\n", cmd.c_str(), need, o.help().c_str());
      return 2;
    }
  const std::string judge_kind = args["judge"].as<std::string>();
  const bool offline = judge_kind == "offline";
  judge::JudgeEndpoint endpoint;
  if (!offline) {
    auto api = judge::parse_judge_api(judge_kind);
    if (!api) {
      std::fprintf(stderr, "%s: --judge: %s, or offline\n", cmd.c_str(), api.status().message().c_str());
      return 2;
    }
    endpoint.api = *api;
    endpoint.base_url = args.count("judge-url") ? args["judge-url"].as<std::string>()
                        : endpoint.api == judge::JudgeApi::kOllama ? "http://127.0.0.1:11434"
                                                                    : "http://127.0.0.1:8080";
    endpoint.model = args["judge-model"].as<std::string>();
    endpoint.max_attempts = std::max(1, args["retries"].as<int>());
    endpoint.timeout_s = args["timeout"].as<double>();
  }
  const int repeat = std::max(1, args["repeat"].as<int>());
  judge::RubricOptions rubric;
  rubric.reference_guided = args.count("reference") > 0;
  const std::string judge_label =
      offline ? std::string(judge::kOfflineLabel)
              : "LLM judge " + endpoint.model + " (" + judge_kind + " at " + endpoint.base_url + "; " +
                    (rubric.reference_guided ? "reference-guided" : "rubric only") + ", temperature 0)";
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
  const bool quiet = args.count("quiet") > 0;
  auto fmt2 = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return std::string(b);
  };
  std::string reliability =
      "| model | score vs length (Pearson r) | pairs judged twice | exact agreement | within one | quadratic kappa |\n"
      "|---|---|---|---|---|---|\n";
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
    std::vector<std::vector<std::optional<int>>> runs(static_cast<std::size_t>(repeat));
    ProgressBar bar("judge " + label, double(answers->size() * std::size_t(repeat)), "answer");
    std::size_t done = 0;
    for (std::size_t i = 0; i < answers->size(); ++i) {
      eval::AnswerRecord& a = (*answers)[i];
      auto it = by_id.find(a.id);
      if (it == by_id.end()) {
        std::fprintf(stderr, "%s: %s: answer %zu has id '%s', which is not in %s\n", cmd.c_str(), path.c_str(), i + 1,
                     a.id.c_str(), data_path.c_str());
        return 1;
      }
      const data::TestItem& item = *it->second;
      if (a.category.empty()) a.category = item.category;
      for (int k = 0; k < repeat; ++k) {
        nlohmann::ordered_json j;
        j["model"] = label;
        j["id"] = a.id;
        j["run"] = k + 1;
        j["judge"] = judge_label;
        if (offline) {
          const judge::OfflineScore sc = judge::offline_score(a.answer, item.reference_answer, item.citation);
          runs[std::size_t(k)].push_back(sc.score);
          j["score"] = sc.score;
          j["content_f1"] = sc.content_f1;
          j["cites_source"] = sc.cites_source;
        } else {
          const judge::JudgeRecord rec = judge::judge_once(
              endpoint, judge::rubric_system_prompt(),
              judge::rubric_user_prompt(item.question, a.answer, item.reference_answer, item.citation, rubric));
          runs[std::size_t(k)].push_back(rec.score);
          j["score"] = rec.score ? nlohmann::ordered_json(*rec.score) : nlohmann::ordered_json(nullptr);
          j["parsed_from"] = judge::score_source_name(rec.source);
          j["attempts"] = rec.attempts;
          j["seconds"] = rec.seconds;
          j["raw"] = rec.raw;
          if (!rec.error.empty()) j["error"] = rec.error;
        }
        judgements += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        if (!quiet) bar.update(double(++done), a.id);
      }
    }
    if (!quiet) bar.finish();
    const std::vector<std::optional<int>>& scores = runs[0];
    // Reliability: verbosity always, agreement when judged more than once.
    {
      std::vector<int> s1, s2;
      std::vector<std::size_t> len;
      for (std::size_t i = 0; i < answers->size(); ++i) {
        if (scores[i]) {
          s1.push_back(*scores[i]);
          len.push_back((*answers)[i].chars);
        }
      }
      const auto corr = judge::length_score_correlation(s1, len);
      reliability += "| " + label + " | " + (corr ? fmt2(*corr) : std::string("—"));
      if (repeat > 1) {
        std::vector<int> a1, a2;
        for (std::size_t i = 0; i < answers->size(); ++i)
          if (runs[0][i] && runs[1][i]) {
            a1.push_back(*runs[0][i]);
            a2.push_back(*runs[1][i]);
          }
        const judge::Agreement ag = judge::agreement(a1, a2);
        reliability += " | " + std::to_string(ag.n) + " | " + fmt2(ag.exact) + " | " + fmt2(ag.within_one) + " | " +
                       fmt2(ag.quadratic_kappa);
      } else {
        reliability += " | — | — | — | —";
      }
      reliability += " |\n";
    }
    rows.push_back(judge::summarize(label, *answers, scores));
  }
  const std::string md = "# Answer scores\n\n" + judge::markdown_table(rows, judge_label) +
                         "\n## By category\n\n" + judge::category_table(rows) +
                         "\n## Judge reliability\n\n" + reliability +
                         (repeat > 1 ? "\n" : "\nAgreement needs `--repeat 2`. ") +
                         "A strong score-length correlation hints at a verbosity bias (or at longer answers being better).\n" +
                         "\nPlots: scores.svg, distribution.svg, categories.svg. Every judgement: judgements.jsonl.\n";
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"summary.md", md}, {"scores.csv", judge::csv_table(rows)}, {"judgements.jsonl", judgements}})
    if (Status st = write_text_file(out + "/" + name, text); !st.is_ok()) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
      return 1;
    }
  if (Status st = judge::write_score_plots(out, rows, offline ? std::string(judge::kOfflineLabel) : "LLM judge " + endpoint.model);
      !st.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return 1;
  }
  std::printf("%s", judge::markdown_table(rows, judge_label).c_str());
  std::printf("\nwrote %s/summary.md, scores.csv, judgements.jsonl, scores.svg, distribution.svg, categories.svg\n",
              out.c_str());
  return 0;
}

}  // namespace qlora::app
