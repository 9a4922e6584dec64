// `qlora pipeline [--config FILE]` and `qlora stage1|stage2|stage3 [--config FILE]`
//   The paper's three stages from one config (pipeline/config.hpp; without
//   --config the embedded default: the shipped sample graph and
//   SmolLM2-135M-Instruct, scaled down to minutes on two cores).
//   Stage 1 trains one adapter per nested subset (and seed) and finds the
//   minimum of the test-NLL curve; Stage 2 trains the Stage 2 recipe on each
//   base model, merges, answers the test set and has it judged; Stage 3
//   quantizes each merged model to Q8_0 / Q4_K_M and compares formats.
//   Each step is an ordinary subcommand (pipeline_steps.hpp); a rerun resumes.
//   Writes RUN/report.md with the tables and plots, results.json / CSV per
//   stage, and the provenance (command line, config, versions, input hashes).
#include <cxxopts.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "embedded_config.hpp"
#include "pipeline_steps.hpp"
#include "qlora/convert/hf_config.hpp"
#include "qlora/convert/hf_tokenizer.hpp"
#include "qlora/core/sha256.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/cpu/cpu_features.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/eval/answer_set.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/mapped_file.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/judge/score_summary.hpp"
#include "qlora/pipeline/config.hpp"
#include "qlora/pipeline/report.hpp"
#include "qlora/train/trainer.hpp"

namespace qlora::app {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using pipeline::PipelineConfig;

enum StageMask : unsigned { kStage1 = 1, kStage2 = 2, kStage3 = 4 };

/// A resolved experiment: the config with its paths made absolute.
struct Run {
  PipelineConfig cfg;
  std::string config_source;  // the file, or "(embedded default)"
  std::string config_text;
  fs::path out;
  std::string test_set;  // the run's copy: the selected questions
  std::size_t questions = 0;
  bool quiet = false;
  std::string command_line;
  std::string started;
};

std::string num(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char b[40];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return b;
}

/// A label safe as a directory name.
std::string slug(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '-';
  return o.empty() ? "model" : o;
}

std::string resolve(const fs::path& base, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (base / p).lexically_normal().string();
}

/// A Hugging Face checkpoint directory for `path` (the directory itself, or
/// the directory of a .safetensors file), or empty for a GGUF.
std::string hf_checkpoint_dir(const std::string& path) {
  if (fs::is_directory(path)) return path;
  if (fs::path(path).extension() == ".safetensors") return fs::path(path).parent_path().string();
  return "";
}

struct ModelPlan {
  std::string label, base;  // label in tables; base GGUF
  fs::path dir;             // RUN/stage2/<slug>
  std::string hf_dir;       // non-empty: base is converted from this checkpoint first
  std::string train_dir() const { return (dir / "train").string(); }
  std::string merged() const { return (dir / "merged-f16.gguf").string(); }
};

std::vector<ModelPlan> models_of(const Run& r) {
  std::vector<pipeline::ModelEntry> entries = r.cfg.stage2_models;
  if (entries.empty()) entries.push_back({fs::path(r.cfg.model).stem().string(), r.cfg.model});
  std::vector<ModelPlan> out;
  for (const auto& e : entries) {
    ModelPlan m{e.name, e.path, r.out / "stage2" / slug(e.name), hf_checkpoint_dir(e.path)};
    if (!m.hf_dir.empty()) m.base = (m.dir / "base-f16.gguf").string();
    out.push_back(std::move(m));
  }
  return out;
}

std::string subset_file(const Run& r, std::int64_t n) {
  return (r.out / "data" / ("subset_merged_" + std::to_string(n) + ".jsonl")).string();
}

/// Questions in the run's test set (the selection prepare() wrote).
double question_count(const Run& r) { return double(r.questions); }

std::string rel(const Run& r, const fs::path& p) { return fs::path(p).lexically_relative(r.out).string(); }

void add_quiet(const Run& r, std::vector<std::string>& a) {
  if (r.quiet) a.push_back("--quiet");
}

// ------------------------------------------------------------------ steps

PipelineStep dataset_step(const Run& r) {
  std::vector<std::int64_t> sizes = r.cfg.subsets;
  sizes.push_back(r.cfg.stage2_subset);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  std::string list;
  for (auto n : sizes) list += (list.empty() ? "" : ",") + std::to_string(n);
  std::vector<std::string> a = {"dataset", "build", "--out", (r.out / "data").string(), "--sizes", list, "--seed",
                                std::to_string(r.cfg.seeds.front()), "--test-set", r.cfg.test_set};
  if (!r.cfg.graph.empty()) a.insert(a.end(), {"--kg", r.cfg.graph});
  return {"data", "dataset: graph -> QA pool -> nested subsets " + list, cmd_dataset, a, 2.0};
}

PipelineStep train_step(const Run& r, const std::string& key, const std::string& what, const std::string& base,
                        const std::string& data, const std::string& out, std::int64_t rank, double dropout,
                        std::int64_t seed, bool initial_eval) {
  const PipelineConfig& c = r.cfg;
  std::vector<std::string> a = {"train", "--model", base, "--data", data, "--eval", r.test_set, "--out", out,
                                "--rank", std::to_string(rank), "--alpha", num(c.alpha), "--dropout", num(dropout),
                                "--lr", num(c.lr), "--epochs", num(c.epochs), "--batch", std::to_string(c.batch),
                                "--accum", std::to_string(c.accum), "--warmup-ratio", num(c.warmup_ratio),
                                "--max-seq-len", std::to_string(c.max_seq_len), "--max-steps",
                                std::to_string(c.max_steps), "--base", c.base, "--compute", c.compute, "--seed",
                                std::to_string(seed), "--lora-seed", std::to_string(seed), "--threads",
                                std::to_string(c.threads)};
  if (!initial_eval) a.push_back("--no-initial-eval");
  add_quiet(r, a);
  // Cost: examples trained (the data file's pairs x epochs) plus one test-set
  // pass per epoch, counted in questions.
  std::int64_t pairs = 0;
  for (std::int64_t n : c.subsets)
    if (data == subset_file(r, n)) pairs = n;
  if (data == subset_file(r, c.stage2_subset)) pairs = c.stage2_subset;
  const double weight = double(pairs) * c.epochs + (c.epochs + (initial_eval ? 1 : 0)) * question_count(r);
  return {key, what, cmd_train, a, weight};
}

std::string stage1_dir(const Run& r, std::int64_t n, std::int64_t seed) {
  return (r.out / "stage1" / ("n" + std::to_string(n) + "-seed" + std::to_string(seed))).string();
}

std::vector<PipelineStep> stage1_steps(const Run& r) {
  std::vector<PipelineStep> s;
  bool first = true;
  for (std::int64_t seed : r.cfg.seeds)
    for (std::int64_t n : r.cfg.subsets) {
      const std::string dir = stage1_dir(r, n, seed);
      // Only the first run evaluates the untrained adapter: the n = 0 point.
      s.push_back(train_step(r, rel(r, dir), "stage 1: train n=" + std::to_string(n) + " seed " + std::to_string(seed),
                             r.cfg.model, subset_file(r, n), dir, r.cfg.rank, r.cfg.dropout, seed, first));
      first = false;
    }
  return s;
}

PipelineStep nll_step(const Run& r, const std::string& model, const std::string& json, const std::string& what) {
  std::vector<std::string> a = {"nll", model, "--data", r.test_set, "--json", json, "-t", std::to_string(r.cfg.threads)};
  add_quiet(r, a);
  return {rel(r, json), what, cmd_nll, a, question_count(r)};
}

PipelineStep answer_step(const Run& r, const std::string& model, const std::string& out, const std::string& what) {
  std::vector<std::string> a = {"answer", model, "--data", r.test_set, "--out", out, "-n",
                                std::to_string(r.cfg.answer_tokens), "-t", std::to_string(r.cfg.threads)};
  add_quiet(r, a);
  // An answer costs about as much as a training example per 128 tokens.
  return {rel(r, out), what, cmd_answer, a, question_count(r) * double(r.cfg.answer_tokens) / 128.0};
}

PipelineStep judge_step(const Run& r, const std::vector<std::pair<std::string, std::string>>& answers,
                        const fs::path& out, const std::string& what) {
  std::vector<std::string> a = {"judge"};
  for (const auto& [path, label] : answers) a.push_back(path + "=" + label);
  a.insert(a.end(), {"--data", r.test_set, "--out", out.string(), "--judge", r.cfg.judge, "--judge-model",
                     r.cfg.judge_model, "--repeat", std::to_string(r.cfg.repeat)});
  if (!r.cfg.judge_url.empty()) a.insert(a.end(), {"--judge-url", r.cfg.judge_url});
  if (r.cfg.reference) a.push_back("--reference");
  add_quiet(r, a);
  return {rel(r, out / "judgements.jsonl"), what, cmd_judge, a};
}

/// Train the Stage 2 recipe on one base and merge it to F16 (what Stage 2
/// answers with and Stage 3 quantizes).
std::vector<PipelineStep> tuned_model_steps(const Run& r, const ModelPlan& m) {
  std::vector<PipelineStep> s;
  if (!m.hf_dir.empty()) {  // a Hugging Face checkpoint: to GGUF F16 first, as the paper's flow does
    std::vector<std::string> a = {"convert", m.hf_dir, m.base, "--outtype", "f16"};
    add_quiet(r, a);
    s.push_back({rel(r, m.base), "convert " + m.label + " (Hugging Face checkpoint) -> GGUF F16", cmd_convert, a, 2.0});
  }
  s.push_back(train_step(r, rel(r, m.train_dir()), "stage 2: train " + m.label + " (r=" +
                         std::to_string(r.cfg.stage2_rank) + ", dropout " + num(r.cfg.stage2_dropout) + ")",
                         m.base, subset_file(r, r.cfg.stage2_subset), m.train_dir(), r.cfg.stage2_rank,
                         r.cfg.stage2_dropout, r.cfg.seeds.front(), true));
  std::vector<std::string> a = {"merge", "--model", m.base, "--adapter", m.train_dir() + "/adapter.gguf", "--out",
                                m.merged(), "--type", "f16", "--target", r.cfg.merge_target};
  add_quiet(r, a);
  s.push_back({rel(r, m.merged()), "merge " + m.label + " -> F16", cmd_merge, a, 2.0});
  return s;
}

std::string answers_file(const ModelPlan& m, const std::string& tag) { return (m.dir / ("answers-" + tag + ".jsonl")).string(); }
std::string nll_file(const ModelPlan& m, const std::string& tag) { return (m.dir / ("nll-" + tag + ".json")).string(); }

std::vector<PipelineStep> stage2_steps(const Run& r) {
  std::vector<PipelineStep> s;
  std::vector<std::pair<std::string, std::string>> judged;
  for (const ModelPlan& m : models_of(r)) {
    for (auto& st : tuned_model_steps(r, m)) s.push_back(std::move(st));
    s.push_back(nll_step(r, m.merged(), nll_file(m, "f16"), "test NLL of tuned " + m.label));
    s.push_back(answer_step(r, m.merged(), answers_file(m, "f16"), "answer the test set: tuned " + m.label));
    judged.push_back({answers_file(m, "f16"), m.label + " (tuned)"});
    if (r.cfg.stage2_include_base) {
      s.push_back(nll_step(r, m.base, nll_file(m, "base"), "test NLL of base " + m.label));
      s.push_back(answer_step(r, m.base, answers_file(m, "base"), "answer the test set: base " + m.label));
      judged.push_back({answers_file(m, "base"), m.label + " (base)"});
    }
  }
  s.push_back(judge_step(r, judged, r.out / "stage2" / "judge", "stage 2: judge every model's answers"));
  return s;
}

std::string format_file(const ModelPlan& m, const std::string& fmt) {
  return fmt == "f16" ? m.merged() : (m.dir / ("merged-" + fmt + ".gguf")).string();
}

std::vector<PipelineStep> stage3_steps(const Run& r) {
  std::vector<PipelineStep> s;
  std::vector<std::pair<std::string, std::string>> judged;
  for (const ModelPlan& m : models_of(r)) {
    for (auto& st : tuned_model_steps(r, m)) s.push_back(std::move(st));
    for (const std::string& fmt : r.cfg.formats) {
      const std::string file = format_file(m, fmt);
      if (fmt != "f16") {
        std::vector<std::string> a = {"quantize", m.merged(), file, "--type", fmt, "--no-error"};
        add_quiet(r, a);
        s.push_back({rel(r, file), "stage 3: quantize " + m.label + " to " + fmt, cmd_quantize, a, 2.0});
      }
      s.push_back(nll_step(r, file, nll_file(m, fmt), "test NLL of " + m.label + " " + fmt));
      s.push_back(answer_step(r, file, answers_file(m, fmt), "answer the test set: " + m.label + " " + fmt));
      judged.push_back({answers_file(m, fmt), m.label + " " + fmt});
    }
  }
  s.push_back(judge_step(r, judged, r.out / "stage3" / "judge", "stage 3: judge every format's answers"));
  return s;
}

// ------------------------------------------------------------------ results

Result<Json> read_json(const std::string& path) {
  auto text = data::read_text_file(path);
  if (!text) return text.status();
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Status::invalid(path + ": not valid JSON");
  return j;
}

/// Mean NLL and the per-question NLLs of a `qlora nll --json` file.
struct NllFile {
  double mean = NAN;
  std::vector<std::string> ids;
  std::vector<double> per_question;
};

Result<NllFile> read_nll(const std::string& path) {
  auto j = read_json(path);
  if (!j) return j.status();
  NllFile f;
  if (!j->contains("summary") || !(*j)["summary"].contains("mean_nll"))
    return Status::invalid(path + ": no summary.mean_nll");
  f.mean = (*j)["summary"]["mean_nll"].get<double>();
  for (const auto& e : (*j)["examples"]) {
    f.ids.push_back(e.value("id", ""));
    f.per_question.push_back(e.value("skipped", false) ? NAN : e.value("mean_nll", NAN));
  }
  return f;
}

/// Run 1's score per answer id for each model label of a judgements.jsonl,
/// and the judge's label.
struct Judgements {
  std::string path;
  std::string judge;
  std::map<std::string, std::map<std::string, std::optional<int>>> scores;  // label -> id -> score
};

Result<Judgements> read_judgements(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io(path + ": cannot open");
  Judgements out;
  out.path = path;
  std::string line;
  for (std::size_t no = 1; std::getline(in, line); ++no) {
    if (line.empty()) continue;
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid(path + ":" + std::to_string(no) + ": not JSON");
    if (j.value("run", 1) != 1) continue;
    if (out.judge.empty()) out.judge = j.value("judge", "");
    const Json& sc = j.contains("score") ? j["score"] : Json(nullptr);
    out.scores[j.value("model", "")][j.value("id", "")] =
        sc.is_number_integer() ? std::optional<int>(sc.get<int>()) : std::nullopt;
  }
  return out;
}

/// An answer file scored by one model label of the judgements.
Result<judge::ScoreSummary> scored(const std::string& answers_path, const Judgements& j, const std::string& label,
                                   std::vector<std::string>* ids = nullptr,
                                   std::vector<std::optional<int>>* per_question = nullptr) {
  auto answers = eval::read_answers(answers_path);
  if (!answers) return answers.status();
  auto it = j.scores.find(label);
  if (it == j.scores.end()) return Status::invalid(j.path + ": no scores for '" + label + "' (rerun with --fresh)");
  std::vector<std::optional<int>> scores;
  for (const auto& a : *answers) {
    auto s = it->second.find(a.id);
    scores.push_back(s == it->second.end() ? std::nullopt : s->second);
    if (ids) ids->push_back(a.id);
  }
  if (per_question) *per_question = scores;
  return judge::summarize(label, *answers, scores);
}

double last_epoch_loss(const std::string& train_dir) {
  auto log = train::read_train_log(train_dir + "/train_log.jsonl");
  if (!log) return NAN;
  pipeline::ScaleRun tmp;
  pipeline::fill_epochs(tmp, *log);
  return tmp.train_loss();
}

Status write_file(const fs::path& p, const std::string& text) { return write_text_file(p.string(), text); }

/// Stage 1: runs -> U-curve analysis, tables, plots, section.
Status collect_stage1(const Run& r, Json& results) {
  std::vector<pipeline::ScaleRun> runs;
  double base_nll = NAN;
  for (std::int64_t seed : r.cfg.seeds)
    for (std::int64_t n : r.cfg.subsets) {
      const std::string dir = stage1_dir(r, n, seed);
      auto sum = read_json(dir + "/summary.json");
      if (!sum) return sum.status();
      auto log = train::read_train_log(dir + "/train_log.jsonl");
      if (!log) return log.status();
      pipeline::ScaleRun run;
      run.n = n;
      run.seed = seed;
      run.seconds = sum->value("seconds", 0.0);
      if (sum->contains("eval")) {
        const Json& e = (*sum)["eval"];
        run.test_nll = e.value("final_nll", NAN);
        if (e.contains("initial_nll") && e["initial_nll"].is_number() && std::isnan(base_nll))
          base_nll = e["initial_nll"].get<double>();
      }
      pipeline::fill_epochs(run, *log);
      runs.push_back(std::move(run));
    }
  const pipeline::ScaleAnalysis a = pipeline::analyze_scale(runs);
  const fs::path dir = r.out / "stage1";
  QLORA_TRY(write_file(dir / "runs.csv", pipeline::scale_runs_csv(runs)));
  QLORA_TRY(write_file(dir / "u_curve.svg", pipeline::u_curve_svg(a, base_nll)));
  QLORA_TRY(write_file(dir / "loss_curves.svg", pipeline::loss_curves_svg(runs)));
  Json pts = Json::array();
  for (const auto& p : a.points)
    pts.push_back({{"n", p.n}, {"seeds", p.seeds}, {"test_nll", p.nll_mean}, {"test_nll_sd", p.nll_sd},
                   {"test_ppl", p.ppl}, {"train_loss", p.train_loss_mean}, {"train_seconds", p.seconds_mean},
                   {"overfit_in_training", p.overfit_in_training}, {"overfit_across_scale", p.overfit_across_scale}});
  results["stage1"] = {{"base_nll", std::isnan(base_nll) ? Json(nullptr) : Json(base_nll)},
                       {"points", pts},
                       {"best_n", a.points.empty() ? Json(nullptr) : Json(a.points[a.best].n)},
                       {"shape", pipeline::curve_shape_name(a.shape)},
                       {"resolved", a.resolved},
                       {"verdict", a.verdict}};
  std::string md = "## Stage 1 — training scale\n\n" + a.verdict + "\n\n" +
                   "QLoRA on `" + r.cfg.model + "` per nested subset (r=" + std::to_string(r.cfg.rank) + ", alpha " +
                   num(r.cfg.alpha) + ", lr " + num(r.cfg.lr) + ", " + num(r.cfg.epochs) + " epochs, batch " +
                   std::to_string(r.cfg.batch) + " x " + std::to_string(r.cfg.accum) + ", " +
                   std::to_string(r.cfg.seeds.size()) + " seed(s)); test NLL over the answer tokens of " +
                   "the test set (the paper's equation).\n\n" + pipeline::scale_table(a, base_nll) +
                   "\n![test NLL and PPL by n](stage1/u_curve.svg)\n\n![training loss](stage1/loss_curves.svg)\n\n" +
                   "Every run: `stage1/runs.csv`; logs: `stage1/n*-seed*/train_log.csv`.\n";
  return write_file(dir / "section.md", md);
}

Status collect_stage2(const Run& r, Json& results) {
  auto j = read_judgements((r.out / "stage2" / "judge" / "judgements.jsonl").string());
  if (!j) return j.status();
  std::vector<pipeline::ModelRow> rows;
  std::vector<judge::ScoreSummary> scores;
  Json out = Json::array();
  for (const ModelPlan& m : models_of(r)) {
    auto tuned_nll = read_nll(nll_file(m, "f16"));
    if (!tuned_nll) return tuned_nll.status();
    auto sum = read_json(m.train_dir() + "/summary.json");
    if (!sum) return sum.status();
    if (r.cfg.stage2_include_base) {
      auto base_nll = read_nll(nll_file(m, "base"));
      if (!base_nll) return base_nll.status();
      rows.push_back({m.label + " (base)", false, base_nll->mean, NAN, NAN});
      auto s = scored(answers_file(m, "base"), *j, m.label + " (base)");
      if (!s) return s.status();
      scores.push_back(*s);
    }
    double start = NAN;
    if (sum->contains("eval") && (*sum)["eval"]["initial_nll"].is_number())
      start = (*sum)["eval"]["initial_nll"].get<double>();
    rows.push_back({m.label + " (tuned)", true, tuned_nll->mean, last_epoch_loss(m.train_dir()),
                    sum->value("seconds", NAN), start});
    auto s = scored(answers_file(m, "f16"), *j, m.label + " (tuned)");
    if (!s) return s.status();
    scores.push_back(*s);
  }
  for (std::size_t i = 0; i < rows.size(); ++i)
    out.push_back({{"model", rows[i].label}, {"tuned", rows[i].tuned}, {"test_nll", rows[i].test_nll},
                   {"mean_score", scores[i].mean_score}, {"perfect_rate", scores[i].perfect_rate},
                   {"distribution", scores[i].distribution}, {"mean_chars", scores[i].mean_chars},
                   {"seconds_per_question", scores[i].seconds_per_question},
                   {"category_mean", scores[i].category_mean}});
  results["stage2"] = {{"judge", j->judge}, {"models", out}};
  const fs::path dir = r.out / "stage2";
  QLORA_TRY(write_file(dir / "scores.csv", judge::csv_table(scores)));
  QLORA_TRY(judge::write_score_plots(dir.string(), scores, j->judge));
  std::string md = "## Stage 2 — fine-tuned models compared\n\n" + std::string("Each base trained on n = ") +
                   std::to_string(r.cfg.stage2_subset) + " (r=" + std::to_string(r.cfg.stage2_rank) + ", dropout " +
                   num(r.cfg.stage2_dropout) + "), merged at F16 into " +
                   (r.cfg.merge_target == "nf4" ? "its NF4-dequantized base" : "its base as stored") + ", then every test question answered greedily (at most " +
                   std::to_string(r.cfg.answer_tokens) + " tokens). \"Before training\" is the frozen base the adapter was trained on (train.base = " + r.cfg.base +
                   "); a base row is the model file as given.\n\n" +
                   pipeline::model_table(rows) + "\n" +
                   judge::markdown_table(scores, j->judge) + "\n### By category\n\n" + judge::category_table(scores) +
                   "\n![average score](stage2/scores.svg)\n\n![score distribution](stage2/distribution.svg)\n\n" +
                   "![category heatmap](stage2/categories.svg)\n\nJudge reliability and every raw judgement: "
                   "`stage2/judge/summary.md`, `stage2/judge/judgements.jsonl`.\n";
  return write_file(dir / "section.md", md);
}

Status collect_stage3(const Run& r, Json& results) {
  auto j = read_judgements((r.out / "stage3" / "judge" / "judgements.jsonl").string());
  if (!j) return j.status();
  std::vector<pipeline::FormatRow> rows;
  std::vector<judge::ScoreSummary> scores;
  for (const ModelPlan& m : models_of(r))
    for (const std::string& fmt : r.cfg.formats) {
      pipeline::FormatRow row;
      row.model = m.label;
      row.format = fmt;
      std::error_code ec;
      row.bytes = fs::file_size(format_file(m, fmt), ec);
      auto nll = read_nll(nll_file(m, fmt));
      if (!nll) return nll.status();
      row.test_nll = nll->mean;
      // Per-question NLL in the answers' order (ids pair them).
      std::map<std::string, double> by_id;
      for (std::size_t i = 0; i < nll->ids.size(); ++i) by_id[nll->ids[i]] = nll->per_question[i];
      auto s = scored(answers_file(m, fmt), *j, m.label + " " + fmt, &row.question_ids, &row.question_score);
      if (!s) return s.status();
      row.score = *s;
      for (const auto& id : row.question_ids) row.question_nll.push_back(by_id.count(id) ? by_id[id] : NAN);
      scores.push_back(*s);
      rows.push_back(std::move(row));
    }
  Json out = Json::array();
  for (const auto& row : rows)
    out.push_back({{"model", row.model}, {"format", row.format}, {"bytes", row.bytes}, {"test_nll", row.test_nll},
                   {"mean_score", row.score.mean_score}, {"perfect_rate", row.score.perfect_rate},
                   {"seconds_per_question", row.score.seconds_per_question}, {"mean_chars", row.score.mean_chars}});
  results["stage3"] = {{"judge", j->judge}, {"formats", out}};
  const fs::path dir = r.out / "stage3";
  QLORA_TRY(write_file(dir / "quantization.csv", pipeline::quant_csv(rows)));
  QLORA_TRY(write_file(dir / "formats.svg", pipeline::formats_svg(rows)));
  QLORA_TRY(write_file(dir / "per_question.svg", pipeline::question_scatter_svg(rows)));
  QLORA_TRY(judge::write_score_plots(dir.string(), scores, j->judge));
  std::string md = "## Stage 3 — quantization\n\nEach merged F16 model quantized as llama-quantize does it, then the "
                   "test set answered and judged again. Scores by: " + j->judge + ".\n\n" +
                   pipeline::quant_table(rows) +
                   "\n![F16 vs Q8_0 vs Q4_K_M](stage3/formats.svg)\n\n![per question](stage3/per_question.svg)\n\n" +
                   "![score distribution](stage3/distribution.svg)\n\nRaw judgements: `stage3/judge/judgements.jsonl`; "
                   "table: `stage3/quantization.csv`.\n";
  return write_file(dir / "section.md", md);
}

// ------------------------------------------------------------------ report

std::string file_sha256(const std::string& path) {
  auto f = io::MappedFile::open(path);
  if (!f) return "(unreadable)";
  return sha256_hex(std::span<const std::byte>(f->data(), f->size()));
}

Status write_report(const Run& r, const Json& results, double seconds) {
  std::string md = "# qlora pipeline report\n\nRun directory `" + r.out.string() + "`, config " + r.config_source +
                   ". Last command started " + r.started + ", finished " + now_utc() + " (" + num(std::round(seconds)) +
                   " s).\n\n";
  if (r.cfg.judge == "offline")
    md += "> Scores below come from the **offline scorer** (reference overlap + citation), **not an LLM judge**. "
          "Set `[judge] kind = \"ollama\"` (or openai) for the paper's judge.\n\n";
  for (const char* s : {"stage1", "stage2", "stage3"}) {
    auto text = data::read_text_file((r.out / s / "section.md").string());
    if (text) md += *text + "\n";
  }
  std::error_code ec;
  md += "## Provenance\n\n- command: `" + r.command_line + "`\n- qlora " + std::string(QLORA_VERSION_STRING) +
        " built with " +
#if defined(__clang__)
        "clang " __clang_version__
#elif defined(__GNUC__)
        "GCC " __VERSION__
#else
        "an unknown compiler"
#endif
        + "; CPU AVX512_BF16: " + (cpu::has_avx512_bf16() ? "yes" : "no") + "; threads: " +
        (r.cfg.threads > 0 ? std::to_string(r.cfg.threads) : "all cores") + "\n";
  for (const auto& [what, path] : std::vector<std::pair<std::string, std::string>>{
           {"model", r.cfg.model}, {"test set", r.cfg.test_set}}) {
    const auto size = fs::file_size(path, ec);
    md += "- " + what + ": `" + path + "` (" + std::to_string(ec ? 0 : size) + " bytes, sha256 " + file_sha256(path) +
          ")\n";
  }
  md += "- graph: " + (r.cfg.graph.empty() ? std::string("the shipped sample") : "`" + r.cfg.graph + "`") +
        "\n- results: `results.json`; the resolved config: `config.json`\n\n```json\n" +
        pipeline::config_to_json(r.cfg).dump(2) + "\n```\n";
  QLORA_TRY(write_file(r.out / "report.md", md));
  Json all = results;
  all["provenance"] = {{"command", r.command_line}, {"qlora", QLORA_VERSION_STRING}, {"config_source", r.config_source},
                       {"finished", now_utc()}};
  return write_file(r.out / "results.json", all.dump(2) + "\n");
}

// ------------------------------------------------------------------ command

/// Resolve the config and prepare the run directory (refusing one that holds
/// a different experiment). nullopt after printing the reason.
std::optional<Run> prepare(const cxxopts::ParseResult& args, const std::string& cmd, int argc, char** argv) {
  Run r;
  fs::path base_dir;
  if (args.count("config")) {
    const std::string path = args["config"].as<std::string>();
    auto text = data::read_text_file(path);
    if (!text) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), text.status().message().c_str());
      return std::nullopt;
    }
    r.config_text = *text;
    r.config_source = path;
    base_dir = fs::absolute(path).parent_path();
  } else {
    r.config_text = kEmbeddedDefaultConfig;
    r.config_source = "(embedded default: configs/default.toml)";
    base_dir = QLORA_CONFIG_DIR;
  }
  auto c = pipeline::parse_config_text(r.config_text, args.count("config") ? r.config_source : "default.toml");
  if (!c) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), c.status().message().c_str());
    return std::nullopt;
  }
  r.cfg = std::move(*c);
  // Inputs are relative to the config's directory; the output to the working directory.
  r.cfg.model = resolve(base_dir, r.cfg.model);
  r.cfg.test_set = resolve(base_dir, r.cfg.test_set);
  r.cfg.graph = resolve(base_dir, r.cfg.graph);
  for (auto& m : r.cfg.stage2_models) m.path = resolve(base_dir, m.path);
  if (args.count("out")) r.cfg.out_dir = args["out"].as<std::string>();
  if (args["threads"].as<int>() > 0) r.cfg.threads = args["threads"].as<int>();
  r.out = fs::absolute(r.cfg.out_dir).lexically_normal();
  r.quiet = args.count("quiet") > 0;
  r.started = now_utc();
  for (int i = 0; i < argc; ++i) r.command_line += (i ? " " : "qlora ") + std::string(argv[i]);
  std::vector<std::pair<std::string, std::string>> inputs = {{"model.path", r.cfg.model},
                                                              {"data.test_set", r.cfg.test_set}};
  for (const auto& m : r.cfg.stage2_models) inputs.push_back({"stage2.models (" + m.name + ")", m.path});
  for (const auto& [what, path] : inputs) {
    if (!fs::exists(path)) {
      std::fprintf(stderr, "%s: %s: %s does not exist%s\n", cmd.c_str(), r.config_source.c_str(), what.c_str(),
                   (" (" + path + ")").c_str());
      return std::nullopt;
    }
    // Stage 2 converts Hugging Face checkpoints itself; Stage 1's model is a GGUF.
    if (what == "model.path" && !hf_checkpoint_dir(path).empty()) {
      std::fprintf(stderr,
                   "%s: %s: model.path is a Hugging Face checkpoint (%s); Stage 1 reads a GGUF: convert it first "
                   "with `qlora convert %s MODEL.gguf` (stage2.models may name checkpoints directly)\n",
                   cmd.c_str(), r.config_source.c_str(), path.c_str(), hf_checkpoint_dir(path).c_str());
      return std::nullopt;
    }
  }
  // A checkpoint named in stage2.models is read now, so a bad one fails
  // before hours of Stage 1 rather than when its turn comes.
  for (const auto& m : r.cfg.stage2_models) {
    const std::string dir = hf_checkpoint_dir(m.path);
    if (dir.empty()) continue;
    auto cfg_json = convert::read_json_file((fs::path(dir) / "config.json").string());
    auto hc = cfg_json ? convert::parse_hf_config(*cfg_json, (fs::path(dir) / "config.json").string())
                       : Result<convert::HfModelConfig>(cfg_json.status());
    Status st = hc.status();
    if (hc) {  // the tokenizer too: a SentencePiece one would only fail at the conversion step
      auto tok = convert::read_hf_tokenizer(dir, *hc, *cfg_json);
      st = tok.status();
    }
    if (st.is_ok() && !m.preset.empty()) {
      model::ModelConfig shape;
      shape.arch = std::string(convert::hf_model_type(hc->arch));
      shape.n_layer = std::uint32_t(hc->num_hidden_layers);
      shape.n_embd = std::uint32_t(hc->hidden_size);
      shape.n_head = std::uint32_t(hc->num_attention_heads);
      shape.n_head_kv = std::uint32_t(hc->num_key_value_heads);
      shape.n_ff = std::uint32_t(hc->intermediate_size);
      shape.n_vocab = std::uint32_t(hc->vocab_size);
      shape.head_dim = std::uint32_t(hc->head_size());
      st = model::check_shape(shape, *model::presets::find(m.preset), dir, "the preset '" + m.preset + "'");
    }
    if (!st.is_ok()) {
      std::fprintf(stderr, "%s: %s: stage2.models (%s): %s\n", cmd.c_str(), r.config_source.c_str(), m.name.c_str(),
                   st.message().c_str());
      return std::nullopt;
    }
  }
  // A model named with a preset must have that preset's shape (the wrong
  // file under a paper model's name would quietly change the comparison).
  for (const auto& m : r.cfg.stage2_models) {
    if (m.preset.empty() || !hf_checkpoint_dir(m.path).empty()) continue;
    auto f = io::GgufFile::open(m.path);
    auto mc = f ? model::config_from_gguf(*f) : Result<model::ModelConfig>(f.status());
    Status st = mc ? model::check_shape(*mc, *model::presets::find(m.preset), m.path, "the preset '" + m.preset + "'")
                   : mc.status();
    if (!st.is_ok()) {
      std::fprintf(stderr, "%s: %s: stage2.models (%s): %s\n", cmd.c_str(), r.config_source.c_str(), m.name.c_str(),
                   st.message().c_str());
      return std::nullopt;
    }
  }
  std::error_code ec;
  fs::create_directories(r.out, ec);
  if (ec) {
    std::fprintf(stderr, "%s: %s: cannot create: %s\n", cmd.c_str(), r.out.string().c_str(), ec.message().c_str());
    return std::nullopt;
  }
  const std::string resolved = pipeline::config_to_json(r.cfg).dump(2) + "\n";
  const fs::path cfg_file = r.out / "config.json";
  if (fs::exists(cfg_file) && !args.count("fresh")) {
    // The experiment, that is everything but the thread count.
    auto experiment = [](const std::string& text) {
      Json j = Json::parse(text, nullptr, false);
      if (j.is_object() && j.contains("run") && j["run"].is_object()) j["run"].erase("threads");
      return j;
    };
    auto old = data::read_text_file(cfg_file.string());
    if (old && experiment(*old) != experiment(resolved)) {
      std::fprintf(stderr,
                   "%s: %s holds a run of a different config (see its config.json); use another run.out_dir / --out, "
                   "or --fresh to start this directory over\n",
                   cmd.c_str(), r.out.string().c_str());
      return std::nullopt;
    }
  }
  if (Status st = write_text_file(cfg_file.string(), resolved); !st) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return std::nullopt;
  }
  // The run's test set: all questions, or test_questions spread evenly over
  // the file (so every category keeps its share).
  auto items = data::read_test_set(r.cfg.test_set);
  if (!items) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), items.status().message().c_str());
    return std::nullopt;
  }
  std::ifstream in(r.cfg.test_set);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);)
    if (l.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(l);
  const std::size_t total = lines.size(), want = std::size_t(r.cfg.test_questions);
  std::string chosen;
  const std::size_t k = want == 0 || want >= total ? total : want;
  for (std::size_t i = 0; i < k; ++i) chosen += lines[i * total / k] + "\n";
  r.test_set = (r.out / "test_set.jsonl").string();
  r.questions = k;
  if (Status st = write_text_file(r.test_set, chosen); !st) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return std::nullopt;
  }
  if (r.cfg.threads > 0) ::setenv("QLORA_THREADS", std::to_string(r.cfg.threads).c_str(), 1);
  std::printf("%s: config %s -> %s (%zu of %zu test questions)\n", cmd.c_str(), r.config_source.c_str(),
              r.out.string().c_str(), k, total);
  return r;
}

int run_stages(int argc, char** argv, const std::string& name, unsigned stages) {
  // Line-buffered even into a file or pipe: a long run's log shows where it is.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string cmd = "qlora " + name;
  cxxopts::Options o(cmd, name == "pipeline"
                              ? "The paper's three stages from one config: scale, compare, quantize; writes RUN/report.md"
                              : "One stage of the paper's method (" + name + ") from a pipeline config");
  // clang-format off
  o.add_options()
    ("config", "pipeline config (.toml or .json); default: the embedded configs/default.toml", cxxopts::value<std::string>())
    ("out", "run directory (overrides run.out_dir)", cxxopts::value<std::string>())
    ("threads", "threads (overrides run.threads; 0: all cores)", cxxopts::value<int>()->default_value("0"))
    ("fresh", "forget the steps a previous run in this directory finished")
    ("print-default-config", "print the embedded default config (a commented starting point) and exit")
    ("quiet", "no progress bars from the steps")
    ("h,help", "show this help");
  // clang-format on
  cxxopts::ParseResult args;
  if (auto code = parse_args(o, argc, argv, cmd, args)) return *code;
  if (args.count("print-default-config")) {
    std::printf("%s", kEmbeddedDefaultConfig);
    return 0;
  }
  auto run = prepare(args, cmd, argc, argv);
  if (!run) return 1;
  const Run& r = *run;
  const auto t0 = std::chrono::steady_clock::now();
  const PipelineConfig& c = r.cfg;
  // A stage command runs its stage whatever the config's enabled flags say.
  const bool s1 = (stages & kStage1) && (stages != (kStage1 | kStage2 | kStage3) || c.stage1);
  const bool s2 = (stages & kStage2) && (stages != (kStage1 | kStage2 | kStage3) || c.stage2);
  const bool s3 = (stages & kStage3) && (stages != (kStage1 | kStage2 | kStage3) || c.stage3);
  std::vector<PipelineStep> steps = {dataset_step(r)};
  auto append = [&](std::vector<PipelineStep> more) {
    for (auto& s : more) steps.push_back(std::move(s));
  };
  if (s1) append(stage1_steps(r));
  if (s2) append(stage2_steps(r));
  if (s3) append(stage3_steps(r));
  auto ledger = StepLedger::open(r.out.string(), args.count("fresh") > 0);
  auto fail = [&](const Status& st) {
    std::fprintf(stderr, "\n%s: %s\n", cmd.c_str(), st.message().c_str());
    return 1;
  };
  if (!ledger) return fail(ledger.status());
  if (Status st = run_steps(steps, *ledger, "Run the same command again to resume from this step."); !st)
    return fail(st);
  // Results of every stage finished in this directory, this call's or earlier.
  auto prior = read_json((r.out / "results.json").string());
  Json results = prior ? *prior : Json::object();
  results.erase("provenance");
  if (s1)
    if (Status st = collect_stage1(r, results); !st) return fail(st);
  if (s2)
    if (Status st = collect_stage2(r, results); !st) return fail(st);
  if (s3)
    if (Status st = collect_stage3(r, results); !st) return fail(st);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (Status st = write_report(r, results, secs); !st) return fail(st);
  std::printf("\n%s: done in %.1f min. Report: %s\n", cmd.c_str(), secs / 60.0, (r.out / "report.md").string().c_str());
  if (s1 && results.contains("stage1")) std::printf("stage 1: %s\n", results["stage1"]["verdict"].get<std::string>().c_str());
  return 0;
}

}  // namespace

int cmd_pipeline(int argc, char** argv) { return run_stages(argc, argv, "pipeline", kStage1 | kStage2 | kStage3); }
int cmd_stage1(int argc, char** argv) { return run_stages(argc, argv, "stage1", kStage1); }
int cmd_stage2(int argc, char** argv) { return run_stages(argc, argv, "stage2", kStage2); }
int cmd_stage3(int argc, char** argv) { return run_stages(argc, argv, "stage3", kStage3); }

}  // namespace qlora::app
