// `qlora train --model BASE.gguf --data subset.jsonl --out DIR [options]`
//   QLoRA fine-tuning (train/trainer.hpp): the base's seven projections held
//   in NF4 (double-quantized scales), a LoRA adapter on them, answer-only
//   loss, AdamW + cosine schedule with warmup, gradient accumulation and
//   clipping. Every option defaults to the paper's Stage 1 recipe.
//   Writes to DIR: checkpoint-<step>.safetensors (resumable; --resume auto
//   picks the newest), train_log.csv / .jsonl (one row per optimizer step),
//   train_loss.svg (the loss curve, and the held-out NLL when --eval is
//   given), summary.json, and the adapter as adapter/ (PEFT) and adapter.gguf
//   (llama.cpp LoRA).
#include <cxxopts.hpp>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "model_session.hpp"
#include "progress.hpp"
#include "qa_input.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/io/adapter_file.hpp"
#include "qlora/report/svg_plot.hpp"
#include "qlora/train/trainer.hpp"

namespace qlora::app {
namespace {

/// The loss curve (at most ~60 points: buckets of steps averaged) and, when
/// evaluated, the held-out NLL at its evaluation steps.
std::string loss_chart(const std::vector<train::StepRecord>& steps) {
  report::LineChart c;
  c.title = "training loss (answer tokens, mean NLL per step)";
  c.y_label = "nats/token";
  const std::size_t n = steps.size(), per = std::max<std::size_t>(1, (n + 59) / 60);
  c.series = {"train loss"};
  c.values.resize(1);
  for (std::size_t i = 0; i < n; i += per) {
    double s = 0;
    std::size_t k = 0;
    for (; k < per && i + k < n; ++k) s += steps[i + k].loss;
    c.x_labels.push_back(std::to_string(steps[i + k - 1].step));
    c.values[0].push_back(s / double(k));
  }
  std::string svg = report::render_line_chart(c);
  report::LineChart e;
  e.title = "held-out answer NLL at evaluation steps";
  e.y_label = "nats/token";
  e.series = {"eval NLL"};
  e.values.resize(1);
  for (const auto& r : steps)
    if (!std::isnan(r.eval_nll)) {
      e.x_labels.push_back(std::to_string(r.step));
      e.values[0].push_back(r.eval_nll);
    }
  return e.x_labels.empty() ? svg : report::stack_charts({svg, report::render_line_chart(e)});
}

}  // namespace

int cmd_train(int argc, char** argv) {
  const std::string cmd = "qlora train";
  cxxopts::Options o(cmd, "QLoRA fine-tuning on answer tokens (defaults: the paper's Stage 1 recipe)");
  // clang-format off
  o.add_options()
    ("model", "base model GGUF", cxxopts::value<std::string>())
    ("data", "training QA JSONL (plain, alpaca or messages form)", cxxopts::value<std::string>())
    ("eval", "held-out QA JSONL or test set: answer NLL during and after training", cxxopts::value<std::string>())
    ("out", "output directory (checkpoints, logs, plot, summary)", cxxopts::value<std::string>())
    ("rank", "LoRA rank r (16 and 32 are compiled in; others run at a run-time rank)", cxxopts::value<int>()->default_value("16"))
    ("alpha", "LoRA alpha (scale = alpha / r)", cxxopts::value<float>()->default_value("16"))
    ("dropout", "LoRA dropout on the adapter input (Stage 2: 0.05)", cxxopts::value<float>()->default_value("0"))
    ("targets", "projections: all, or a list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", cxxopts::value<std::string>()->default_value("all"))
    ("lr", "peak learning rate", cxxopts::value<double>()->default_value("2e-4"))
    ("schedule", "cosine | linear | constant (all with linear warmup)", cxxopts::value<std::string>()->default_value("cosine"))
    ("warmup-ratio", "fraction of the steps spent warming up", cxxopts::value<double>()->default_value("0.1"))
    ("weight-decay", "AdamW decoupled weight decay", cxxopts::value<double>()->default_value("0"))
    ("max-grad-norm", "clip the global gradient norm (0: off)", cxxopts::value<double>()->default_value("1"))
    ("epochs", "passes over the data", cxxopts::value<double>()->default_value("3"))
    ("batch", "examples per micro-batch", cxxopts::value<int>()->default_value("2"))
    ("accum", "micro-batches per optimizer step", cxxopts::value<int>()->default_value("4"))
    ("max-steps", "stop after this many optimizer steps (overrides --epochs)", cxxopts::value<std::int64_t>()->default_value("-1"))
    ("max-seq-len", "tokens per example (longer ones are cut and counted)", cxxopts::value<std::size_t>()->default_value("2048"))
    ("seed", "data order and dropout seed", cxxopts::value<std::uint64_t>()->default_value("42"))
    ("lora-seed", "adapter initialisation seed", cxxopts::value<std::uint64_t>()->default_value("42"))
    ("base", "frozen base storage: nf4 (double-quantized scales), nf4-single, file (as stored)", cxxopts::value<std::string>()->default_value("nf4"))
    ("gradient-checkpointing", "keep only block inputs; recompute in backward")
    ("compute", "precision of the frozen-weight and attention products: bf16 (fp32 accumulation; needs AVX512_BF16, else fp32 is used) or fp32", cxxopts::value<std::string>()->default_value("bf16"))
    ("no-initial-eval", "skip the held-out evaluation before the first step (a sweep needs it once)")
    ("eval-every", "steps between held-out evaluations (0: each epoch)", cxxopts::value<std::int64_t>()->default_value("0"))
    ("save-every", "steps between checkpoints (0: final only)", cxxopts::value<std::int64_t>()->default_value("0"))
    ("resume", "continue from a checkpoint file, or 'auto' for the newest in --out", cxxopts::value<std::string>())
    ("stop-after", "leave after this many steps (a checkpoint is written; --resume continues)", cxxopts::value<std::int64_t>()->default_value("-1"))
    ("template", "chat template name (default: the GGUF's)", cxxopts::value<std::string>()->default_value(""))
    ("threads", "threads (default: all cores, or QLORA_THREADS)", cxxopts::value<int>()->default_value("0"))
    ("quiet", "no progress bar")
    ("h,help", "show this help");
  // clang-format on
  cxxopts::ParseResult args;
  if (auto code = parse_args(o, argc, argv, cmd, args)) return *code;
  for (const char* need : {"model", "data", "out"})
    if (!args.count(need)) {
      std::fprintf(stderr, "%s: --%s is required (see --help)\n", cmd.c_str(), need);
      return 2;
    }
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "\n%s: %s\n", cmd.c_str(), s.message().c_str());
    return 1;
  };

  train::TrainConfig cfg;
  cfg.lora.rank = args["rank"].as<int>();
  cfg.lora.alpha = args["alpha"].as<float>();
  cfg.lora.dropout = args["dropout"].as<float>();
  cfg.lora.seed = args["lora-seed"].as<std::uint64_t>();
  auto targets = lora::parse_targets(args["targets"].as<std::string>());
  if (!targets) return fail(targets.status());
  cfg.lora.targets = *targets;
  cfg.lr = args["lr"].as<double>();
  cfg.schedule = args["schedule"].as<std::string>();
  cfg.warmup_ratio = args["warmup-ratio"].as<double>();
  cfg.weight_decay = args["weight-decay"].as<double>();
  cfg.max_grad_norm = args["max-grad-norm"].as<double>();
  cfg.epochs = args["epochs"].as<double>();
  cfg.batch_size = args["batch"].as<int>();
  cfg.grad_accum = args["accum"].as<int>();
  cfg.max_steps = args["max-steps"].as<std::int64_t>();
  cfg.seed = args["seed"].as<std::uint64_t>();
  cfg.eval_every = args["eval-every"].as<std::int64_t>();
  cfg.eval_initial = args.count("no-initial-eval") == 0;
  cfg.save_every = args["save-every"].as<std::int64_t>();
  cfg.stop_after = args["stop-after"].as<std::int64_t>();
  cfg.out_dir = args["out"].as<std::string>();
  auto storage = train::parse_base_storage(args["base"].as<std::string>());
  if (!storage) return fail(storage.status());
  auto compute = cpu::parse_compute(args["compute"].as<std::string>());
  if (!compute) return fail(compute.status());

  auto s = ModelSession::open(cmd, args["model"].as<std::string>(), args["threads"].as<int>());
  if (!s) return 1;
  auto tmpl = s->chat_template(cmd, args["template"].as<std::string>());
  if (!tmpl) return 1;
  train::SftOptions sft;
  sft.max_seq_len = args["max-seq-len"].as<std::size_t>();
  auto load = [&](const std::string& path) -> Result<train::SftDataset> {
    auto pairs = read_pairs(path);
    if (!pairs) return pairs.status();
    auto ds = train::build_sft_dataset(*pairs, *s->tok, *tmpl, sft);
    if (!ds) return ds.status().with_context(path);
    const auto& st = ds->stats;
    std::printf("%s: %zu pairs -> %zu sequences, %zu tokens (%zu answer tokens scored), longest %zu", path.c_str(),
                st.pairs, st.examples, st.tokens, st.scored, st.longest);
    if (st.truncated || st.skipped_no_answer)
      std::printf("; WARNING: %zu cut at --max-seq-len %zu (%zu answer tokens lost), %zu skipped with no answer left",
                  st.truncated, sft.max_seq_len, st.dropped_answer_tokens, st.skipped_no_answer);
    std::printf("\n");
    return ds;
  };
  auto train_set = load(args["data"].as<std::string>());
  if (!train_set) return fail(train_set.status());
  std::optional<train::SftDataset> eval_set;
  if (args.count("eval")) {
    auto e = load(args["eval"].as<std::string>());
    if (!e) return fail(e.status());
    eval_set = std::move(*e);
  }

  train::TrainableOptions topt;
  topt.storage = *storage;
  topt.gradient_checkpointing = args.count("gradient-checkpointing") > 0;
  topt.compute = *compute;
  topt.pool = &s->pool();
  std::printf("loading %s: projections as %s, %s compute ...\n", s->file.name().c_str(),
              args["base"].as<std::string>().c_str(), cpu::compute_name(topt.compute));
  auto dec = train::TrainableDecoder::open(s->file, topt);
  if (!dec) return fail(dec.status());
  if (dec->compute() != *compute)
    std::printf("note: this CPU lacks AVX512_BF16; computing in %s instead of %s\n", cpu::compute_name(dec->compute()),
                cpu::compute_name(*compute));
  auto trainer = train::Trainer::create(*dec, *train_set, eval_set ? &*eval_set : nullptr, cfg);
  if (!trainer) return fail(trainer.status());
  if (args.count("resume")) {
    std::string path = args["resume"].as<std::string>();
    if (path == "auto") path = train::latest_checkpoint(cfg.out_dir);
    if (path.empty()) {
      std::printf("resume: no checkpoint in %s, starting fresh\n", cfg.out_dir.c_str());
    } else {
      if (Status st = trainer->resume(path); !st) return fail(st);
      std::printf("resumed from %s at step %lld\n", path.c_str(), (long long)trainer->step());
    }
  }
  const auto& sc = trainer->step_count();
  std::printf("model %s (%s attention), %u layers; base projections %.1f MB; adapter r=%d alpha=%g dropout=%g: %zu "
              "parameters\n",
              dec->config().name.c_str(), dec->config().is_gqa() ? "GQA" : "MHA", dec->config().n_layer,
              double(dec->projection_bytes()) / 1e6, cfg.lora.rank, double(cfg.lora.alpha), double(cfg.lora.dropout),
              trainer->adapter().params().size());
  std::printf("steps: %lld (%lld per epoch; batch %d x accumulation %d), warmup %lld, %s schedule, peak lr %g\n",
              (long long)sc.total_steps, (long long)sc.updates_per_epoch, cfg.batch_size, cfg.grad_accum,
              (long long)trainer->schedule().warmup_steps(), cfg.schedule.c_str(), cfg.lr);

  const bool quiet = args.count("quiet") > 0;
  ProgressBar bar("train", double(sc.total_steps), "step");
  std::vector<train::StepRecord> steps;
  double tok_sum = 0, sec_sum = 0;
  auto summary = trainer->run([&](const train::StepRecord& r) {
    steps.push_back(r);
    tok_sum += double(r.tokens);
    sec_sum += r.seconds;
    if (quiet) return;
    char note[160];
    std::snprintf(note, sizeof note, "step %lld loss %.4f lr %.2e %.0f tok/s%s", (long long)r.step, r.loss, r.lr,
                  sec_sum > 0 ? tok_sum / sec_sum : 0.0,
                  std::isnan(r.eval_nll) ? "" : (" eval " + std::to_string(r.eval_nll).substr(0, 6)).c_str());
    bar.update(double(r.step), note);
  });
  if (!summary) return fail(summary.status());
  if (!quiet) bar.finish();

  const auto& m = *summary;
  std::printf("%s after step %lld of %lld: last loss %.4f, %.1f s, %.0f tokens/s\n",
              m.finished ? "finished" : "stopped", (long long)m.steps_done, (long long)m.total_steps,
              m.final_train_loss, m.seconds, sec_sum > 0 ? tok_sum / sec_sum : 0.0);
  if (eval_set && cfg.eval_initial)
    std::printf("held-out answer NLL: %.4f (PPL %.3f) -> %.4f (PPL %.3f) over %lld tokens\n", m.initial_eval.nll,
                m.initial_eval.ppl, m.final_eval.nll, m.final_eval.ppl, (long long)m.final_eval.tokens);
  else if (eval_set)
    std::printf("held-out answer NLL: %.4f (PPL %.3f) over %lld tokens\n", m.final_eval.nll, m.final_eval.ppl,
                (long long)m.final_eval.tokens);
  if (!m.checkpoint.empty()) std::printf("checkpoint: %s\n", m.checkpoint.c_str());
  // The adapter in the two formats other tools load: PEFT (transformers) and
  // llama.cpp's GGUF LoRA (llama-cli --lora, qlora merge accepts all three).
  io::AdapterWriteOptions wo;
  wo.base_model_name_or_path = args["model"].as<std::string>();
  wo.name = "qlora adapter";
  const std::string peft_dir = cfg.out_dir + "/adapter", gguf_path = cfg.out_dir + "/adapter.gguf";
  if (Status st = io::write_lora_adapter(trainer->adapter(), io::AdapterFormat::kPeft, peft_dir, wo); !st) return fail(st);
  if (Status st = io::write_lora_adapter(trainer->adapter(), io::AdapterFormat::kGguf, gguf_path, wo); !st)
    return fail(st);
  std::printf("adapter: %s (PEFT), %s (llama.cpp GGUF LoRA)\n", peft_dir.c_str(), gguf_path.c_str());

  if (!steps.empty()) {
    const std::string plot = cfg.out_dir + "/train_loss.svg";
    if (Status st = write_text_file(plot, loss_chart(steps)); !st) return fail(st);
  }
  nlohmann::ordered_json j;
  j["model"] = args["model"].as<std::string>();
  j["data"] = args["data"].as<std::string>();
  j["config"] = trainer->step_count().total_steps ? cfg.fingerprint(train::Trainer::data_hash(*train_set)) : "";
  j["steps_done"] = m.steps_done;
  j["total_steps"] = m.total_steps;
  j["finished"] = m.finished;
  j["final_train_loss"] = m.final_train_loss;
  j["seconds"] = m.seconds;
  j["tokens_per_s"] = sec_sum > 0 ? tok_sum / sec_sum : 0.0;
  j["compute"] = cpu::compute_name(dec->compute());
  if (eval_set) {
    j["eval"] = {{"data", args["eval"].as<std::string>()},
                 {"initial_nll", cfg.eval_initial ? nlohmann::ordered_json(m.initial_eval.nll) : nullptr},
                 {"initial_ppl", cfg.eval_initial ? nlohmann::ordered_json(m.initial_eval.ppl) : nullptr},
                 {"final_nll", m.final_eval.nll},
                 {"final_ppl", m.final_eval.ppl},
                 {"tokens", m.final_eval.tokens}};
  }
  j["checkpoint"] = m.checkpoint;
  j["adapter_peft"] = peft_dir;
  j["adapter_gguf"] = gguf_path;
  if (Status st = write_text_file(cfg.out_dir + "/summary.json", j.dump(2) + "\n"); !st) return fail(st);
  return 0;
}

}  // namespace qlora::app
