// qlora/train/trainer.hpp — the QLoRA training loop: the paper's recipe
// (AdamW, cosine schedule with linear warmup, gradient accumulation, gradient
// clipping, answer-only loss) over a TrainableDecoder, with held-out
// evaluation, a per-step log and resumable checkpoints.
//
// One optimizer step takes batch_size x grad_accum examples (the paper: 2 x 4)
// in the epoch's shuffled order. The loss of a step is the mean NLL over ALL
// answer tokens of its examples (each token's gradient is weighted by 1/total
// — HF's num_items_in_batch normalisation), so how a step is cut into
// micro-batches does not change what is optimised. Steps per epoch and the
// schedule's length follow HF Trainer exactly (optim/lr_schedule.hpp).
//
// Determinism: the epoch order is a seeded shuffle of (seed, epoch) and every
// dropout mask a counter-based draw of (seed, step, example) — so the state of
// a run is its step count, its adapter and its optimizer moments, which is all
// a checkpoint holds (train/checkpoint.hpp). A NaN/Inf loss or gradient stops
// the run before the update, naming the step and the adapter matrix, so a
// diverging run never writes a corrupted adapter.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/rng.hpp"
#include "qlora/core/status.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/optim/adamw.hpp"
#include "qlora/optim/grad_clip.hpp"
#include "qlora/optim/lr_schedule.hpp"
#include "qlora/train/checkpoint.hpp"
#include "qlora/train/sft_dataset.hpp"
#include "qlora/train/trainable_decoder.hpp"

namespace qlora::train {

/// Every hyper-parameter of a run. Defaults: the paper's Stage 1 recipe
/// (Stage 2: rank 32, dropout 0.05) and HF's defaults where the paper is silent.
struct TrainConfig {
  lora::LoraConfig lora;             // r 16, alpha 16, dropout 0, all seven projections
  double lr = 2e-4;
  std::string schedule = "cosine";   // cosine | linear | constant (with warmup)
  double warmup_ratio = 0.1;
  double weight_decay = 0.0;         // HF TrainingArguments default
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  double max_grad_norm = 1.0;        // HF default; <= 0 disables clipping
  double epochs = 3.0;
  int batch_size = 2;
  int grad_accum = 4;
  std::int64_t max_steps = -1;       // > 0 overrides epochs
  std::uint64_t seed = 42;           // data order and dropout (the adapter's init: lora.seed)
  std::int64_t eval_every = 0;       // steps between held-out evaluations; 0 = end of each epoch
  bool eval_initial = true;          // evaluate the untrained adapter first (a sweep needs it once, not per run)
  std::int64_t save_every = 0;       // steps between checkpoints; 0 = only the final one
  std::int64_t stop_after = -1;      // leave after this many steps of THIS invocation (then resume)
  std::string out_dir;               // checkpoints and logs; empty = write nothing

  /// The run's identity for resume checks: everything that changes results.
  std::string fingerprint(std::uint64_t data_hash) const {
    std::ostringstream s;
    s.precision(17);
    s << "lr=" << lr << " schedule=" << schedule << " warmup_ratio=" << warmup_ratio << " wd=" << weight_decay
      << " betas=" << beta1 << "," << beta2 << " eps=" << adam_eps << " clip=" << max_grad_norm
      << " epochs=" << epochs << " batch=" << batch_size << " accum=" << grad_accum << " max_steps=" << max_steps
      << " seed=" << seed << " rank=" << lora.rank << " alpha=" << lora.alpha << " dropout=" << lora.dropout
      << " targets=" << unsigned(lora.targets) << " lora_seed=" << lora.seed << " data=" << std::hex << data_hash;
    return s.str();
  }
};

/// One optimizer step, as logged and reported to the progress callback.
struct StepRecord {
  std::int64_t step = 0, total_steps = 0;
  double epoch = 0.0;                 // fractional, as HF logs it
  double loss = 0.0;                  // mean NLL over the step's answer tokens
  double lr = 0.0;                    // the rate this step used
  double grad_norm = 0.0;             // before clipping
  std::int64_t tokens = 0, scored = 0;
  double seconds = 0.0;
  double eval_nll = std::numeric_limits<double>::quiet_NaN();  // when evaluated after this step
};

struct EvalResult {
  double nll = 0.0;  // token-weighted mean over answer tokens
  double ppl = 0.0;  // exp(nll)
  std::int64_t tokens = 0;
};

struct TrainSummary {
  std::int64_t steps_done = 0;       // total optimizer steps reached
  std::int64_t total_steps = 0;
  bool finished = false;             // reached total_steps (not stopped by stop_after)
  double final_train_loss = 0.0;     // loss of the last step
  double seconds = 0.0;              // wall time of this invocation
  std::int64_t tokens = 0;           // tokens processed in this invocation
  EvalResult initial_eval, final_eval;  // held-out, when an eval set was given
  std::string checkpoint;            // the last checkpoint written
};

class Trainer {
 public:
  using StepCallback = std::function<void(const StepRecord&)>;

  /// `dec`, `train` and `eval` must outlive the trainer; eval may be null.
  static Result<Trainer> create(TrainableDecoder& dec, const SftDataset& train, const SftDataset* eval,
                                const TrainConfig& cfg) {
    QLORA_TRY(cfg.lora.validate());
    if (train.examples.empty()) return Status::invalid("training set has no examples");
    auto kind = optim::parse_lr_schedule(cfg.schedule);
    if (!kind) return kind.status();
    optim::StepPlan plan;
    plan.num_examples = std::int64_t(train.examples.size());
    plan.per_device_batch = cfg.batch_size;
    plan.grad_accum = cfg.grad_accum;
    plan.epochs = cfg.epochs;
    plan.max_steps = cfg.max_steps;
    auto count = optim::count_optimizer_steps(plan);
    if (!count) return count.status();
    auto warm = optim::warmup_steps_from_ratio(count->total_steps, cfg.warmup_ratio);
    if (!warm) return warm.status();
    auto sched = optim::LrSchedule::create(*kind, cfg.lr, count->total_steps, *warm);
    if (!sched) return sched.status();
    auto ad = lora::LoraAdapter::create(dec.config(), cfg.lora);
    if (!ad) return ad.status();

    Trainer t(dec, train, eval, cfg, *count, std::move(*sched), std::move(*ad));
    t.opt_ = optim::AdamWState::zeros(t.adapter_.params().size());
    t.grads_.assign(t.adapter_.params().size(), 0.0f);
    t.fingerprint_ = cfg.fingerprint(data_hash(train));
    return t;
  }

  /// Continue from a checkpoint of the same run (same config and data).
  Status resume(const std::string& path) {
    auto st = load_checkpoint(path);
    if (!st) return st.status();
    if (st->run_fingerprint != fingerprint_)
      return Status::invalid(path + ": the checkpoint belongs to a different run:\n  checkpoint: " +
                             st->run_fingerprint + "\n  this run:   " + fingerprint_);
    if (st->params.size() != adapter_.params().size())
      return Status::invalid(path + ": the checkpoint's adapter has " + std::to_string(st->params.size()) +
                             " parameters, this run's " + std::to_string(adapter_.params().size()));
    if (st->step < 0 || st->step > count_.total_steps)
      return Status::corrupt(path + ": step " + std::to_string(st->step) + " is outside this run's " +
                             std::to_string(count_.total_steps) + " steps");
    std::copy(st->params.begin(), st->params.end(), adapter_.params().begin());
    opt_.m = std::move(st->exp_avg);
    opt_.v = std::move(st->exp_avg_sq);
    opt_.step = st->step;
    resumed_from_ = st->step;
    return Status::ok();
  }

  const lora::LoraAdapter& adapter() const { return adapter_; }
  lora::LoraAdapter& adapter() { return adapter_; }
  const optim::StepCount& step_count() const { return count_; }
  const optim::LrSchedule& schedule() const { return sched_; }
  std::int64_t step() const { return opt_.step; }

  /// Held-out answer-only NLL with the current adapter (no dropout).
  Result<EvalResult> evaluate() {
    EvalResult r;
    if (!eval_) return r;
    double sum = 0.0;
    for (const SftExample& ex : eval_->examples) {
      auto l = dec_.loss(ex.ids, ex.mask, &adapter_);
      if (!l) return l.status().with_context("evaluation example " + ex.id);
      sum += l->nll_sum;
      r.tokens += l->n_scored;
    }
    r.nll = r.tokens ? sum / double(r.tokens) : 0.0;
    r.ppl = std::exp(r.nll);
    return r;
  }

  /// Train until total_steps (or stop_after steps of this invocation).
  Result<TrainSummary> run(const StepCallback& on_step = {}) {
    TrainSummary sum;
    sum.total_steps = count_.total_steps;
    const auto t_start = std::chrono::steady_clock::now();
    if (eval_ && cfg_.eval_initial) {
      auto e = evaluate();
      if (!e) return e.status();
      sum.initial_eval = *e;
    }
    QLORA_TRY(open_logs());
    // The evaluation after the last step doubles as the final one (same adapter).
    std::optional<EvalResult> last_eval;
    std::int64_t done_here = 0;
    while (opt_.step < count_.total_steps) {
      if (cfg_.stop_after >= 0 && done_here >= cfg_.stop_after) break;
      auto rec = train_step();
      if (!rec) return rec.status();
      ++done_here;
      sum.tokens += rec->tokens;
      sum.final_train_loss = rec->loss;
      const std::int64_t s = opt_.step;
      const bool epoch_end = s % count_.updates_per_epoch == 0 || s == count_.total_steps;
      const bool do_eval = eval_ && (cfg_.eval_every > 0 ? s % cfg_.eval_every == 0 || s == count_.total_steps
                                                         : epoch_end);
      last_eval.reset();
      if (do_eval) {
        auto e = evaluate();
        if (!e) return e.status();
        rec->eval_nll = e->nll;
        last_eval = *e;
      }
      QLORA_TRY(log_step(*rec));
      if (on_step) on_step(*rec);
      const bool last = s == count_.total_steps;
      const bool stopping = cfg_.stop_after >= 0 && done_here >= cfg_.stop_after;
      if (!cfg_.out_dir.empty() && (last || stopping || (cfg_.save_every > 0 && s % cfg_.save_every == 0))) {
        sum.checkpoint = checkpoint_path(cfg_.out_dir, s);
        QLORA_TRY(save_checkpoint(sum.checkpoint, adapter_, opt_, fingerprint_));
      }
    }
    sum.steps_done = opt_.step;
    sum.finished = opt_.step == count_.total_steps;
    if (eval_ && last_eval) {
      sum.final_eval = *last_eval;
    } else if (eval_) {
      auto e = evaluate();
      if (!e) return e.status();
      sum.final_eval = *e;
    }
    sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return sum;
  }

  /// FNV-1a over every token id and mask of a dataset (resume check).
  static std::uint64_t data_hash(const SftDataset& ds) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&](std::uint64_t v) { h = (h ^ v) * 0x100000001b3ull; };
    for (const SftExample& ex : ds.examples) {
      mix(ex.ids.size());
      for (std::int32_t id : ex.ids) mix(std::uint32_t(id));
      for (std::uint8_t m : ex.mask) mix(m);
    }
    return h;
  }

  /// Example indices of optimizer step `step` (1-based).
  std::vector<std::size_t> step_examples(std::int64_t step) const {
    const std::int64_t e = (step - 1) / count_.updates_per_epoch;
    const std::int64_t j = (step - 1) % count_.updates_per_epoch;
    std::vector<std::size_t> order(train_.examples.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    seeded_shuffle(order, hash_key(cfg_.seed, {0x5EED0DA7Aull, std::uint64_t(e)}));
    const std::int64_t b0 = j * cfg_.grad_accum;
    const std::int64_t b1 = std::min<std::int64_t>(b0 + cfg_.grad_accum, count_.batches_per_epoch);
    std::vector<std::size_t> out;
    for (std::int64_t b = b0; b < b1; ++b)
      for (std::int64_t i = b * cfg_.batch_size; i < std::min<std::int64_t>((b + 1) * cfg_.batch_size, std::int64_t(order.size())); ++i)
        out.push_back(order[std::size_t(i)]);
    return out;
  }

 private:
  Trainer(TrainableDecoder& dec, const SftDataset& train, const SftDataset* eval, const TrainConfig& cfg,
          optim::StepCount count, optim::LrSchedule sched, lora::LoraAdapter ad)
      : dec_(dec), train_(train), eval_(eval), cfg_(cfg), count_(count), sched_(std::move(sched)),
        adapter_(std::move(ad)) {}

  /// "blk.3.attn_q lora_B" for a flat-buffer index.
  std::string param_name(std::size_t index) const {
    for (const auto& s : adapter_.slots()) {
      const std::size_t a_end = s.a_off + std::size_t(adapter_.rank()) * std::size_t(s.in);
      const std::size_t b_end = s.b_off + std::size_t(s.out) * std::size_t(adapter_.rank());
      if (index >= s.a_off && index < a_end) return lora::LoraAdapter::gguf_base(s) + " lora_A";
      if (index >= s.b_off && index < b_end) return lora::LoraAdapter::gguf_base(s) + " lora_B";
    }
    return "parameter " + std::to_string(index);
  }

  Result<StepRecord> train_step() {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t step = opt_.step + 1;
    const std::vector<std::size_t> ex = step_examples(step);
    std::int64_t scored = 0, tokens = 0;
    for (std::size_t i : ex) {
      scored += train_.examples[i].n_scored;
      tokens += std::int64_t(train_.examples[i].ids.size());
    }
    std::fill(grads_.begin(), grads_.end(), 0.0f);
    const float weight = scored > 0 ? 1.0f / float(scored) : 0.0f;
    double nll = 0.0;
    for (std::size_t k = 0; k < ex.size(); ++k) {
      const SftExample& e = train_.examples[ex[k]];
      const LoraDropout dr{cfg_.lora.dropout, hash3(cfg_.seed, std::uint64_t(step), std::uint64_t(k))};
      auto l = dec_.forward_backward(e.ids, e.mask, adapter_, grads_, weight, dr);
      if (!l) return l.status().with_context("step " + std::to_string(step) + ", example " + e.id);
      nll += l->nll_sum;
    }
    if (auto bad = optim::find_non_finite(grads_, dec_.pool()))
      return Status::numeric("step " + std::to_string(step) + ": non-finite gradient in " + param_name(bad->index) +
                             " — the update was not applied and the adapter is unchanged");
    StepRecord r;
    r.step = step;
    r.total_steps = count_.total_steps;
    r.epoch = double(step) / double(count_.updates_per_epoch);
    r.loss = scored ? nll / double(scored) : 0.0;
    r.tokens = tokens;
    r.scored = scored;
    if (cfg_.max_grad_norm > 0) {
      auto c = optim::clip_grad_norm(grads_, cfg_.max_grad_norm, dec_.pool());
      if (!c) return c.status().with_context("step " + std::to_string(step));
      r.grad_norm = c->total_norm;
    } else {
      r.grad_norm = optim::grad_norm_l2(grads_, dec_.pool());
    }
    // HF's LambdaLR: the update of step s (1-based) uses the schedule at s - 1.
    r.lr = sched_.lr(step - 1);
    optim::AdamWHyperParams hp;
    hp.lr = r.lr;
    hp.beta1 = cfg_.beta1;
    hp.beta2 = cfg_.beta2;
    hp.eps = cfg_.adam_eps;
    hp.weight_decay = cfg_.weight_decay;
    QLORA_TRY(optim::adamw_step(adapter_.params(), grads_, opt_, hp, dec_.pool()));
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

  // ------------------------------------------------------------------ logs

  /// train_log.csv / .jsonl in out_dir; on resume, rows past the checkpoint's
  /// step (written by the interrupted run after its last checkpoint) are
  /// dropped so the log reads as one uninterrupted run.
  Status open_logs() {
    if (cfg_.out_dir.empty()) return Status::ok();
    std::error_code ec;
    std::filesystem::create_directories(cfg_.out_dir, ec);
    if (ec) return Status::io(cfg_.out_dir + ": cannot create: " + ec.message());
    const std::string header = "step,epoch,loss,lr,grad_norm,tokens,scored,seconds,tokens_per_s,eval_nll";
    for (const char* ext : {".csv", ".jsonl"}) {
      const std::string path = log_path(ext);
      std::vector<std::string> keep;
      if (resumed_from_ >= 0) {
        std::ifstream in(path);
        std::string line;
        while (std::getline(in, line)) {
          if (line == header) continue;
          const std::int64_t s = ext[1] == 'c' ? std::atoll(line.c_str())
                                               : std::atoll(line.c_str() + std::min(line.size(), std::size_t(8)));
          if (s >= 1 && s <= resumed_from_) keep.push_back(line);
        }
      }
      std::ofstream out(path, std::ios::trunc);
      if (!out) return Status::io(path + ": cannot open for writing");
      if (ext[1] == 'c') out << header << "\n";
      for (const auto& l : keep) out << l << "\n";
    }
    return Status::ok();
  }

  std::string log_path(const char* ext) const {
    return (std::filesystem::path(cfg_.out_dir) / (std::string("train_log") + ext)).string();
  }

  Status log_step(const StepRecord& r) {
    if (cfg_.out_dir.empty()) return Status::ok();
    const double tps = r.seconds > 0 ? double(r.tokens) / r.seconds : 0.0;
    char csv[512], js[640];
    std::snprintf(csv, sizeof csv, "%lld,%.6f,%.6f,%.8g,%.6f,%lld,%lld,%.4f,%.1f,%s", (long long)r.step, r.epoch,
                  r.loss, r.lr, r.grad_norm, (long long)r.tokens, (long long)r.scored, r.seconds, tps,
                  std::isnan(r.eval_nll) ? "" : std::to_string(r.eval_nll).c_str());
    std::snprintf(js, sizeof js,
                  "{\"step\": %lld, \"epoch\": %.6f, \"loss\": %.6f, \"lr\": %.8g, \"grad_norm\": %.6f, "
                  "\"tokens\": %lld, \"scored\": %lld, \"seconds\": %.4f, \"tokens_per_s\": %.1f, \"eval_nll\": %s}",
                  (long long)r.step, r.epoch, r.loss, r.lr, r.grad_norm, (long long)r.tokens, (long long)r.scored,
                  r.seconds, tps, std::isnan(r.eval_nll) ? "null" : std::to_string(r.eval_nll).c_str());
    for (auto [ext, line] : {std::pair{".csv", csv}, std::pair{".jsonl", js}}) {
      std::ofstream out(log_path(ext), std::ios::app);
      if (!(out << line << "\n")) return Status::io(log_path(ext) + ": write failed");
    }
    return Status::ok();
  }

  TrainableDecoder& dec_;
  const SftDataset& train_;
  const SftDataset* eval_;
  TrainConfig cfg_;
  optim::StepCount count_;
  optim::LrSchedule sched_;
  lora::LoraAdapter adapter_;
  optim::AdamWState opt_;
  std::vector<float> grads_;
  std::string fingerprint_;
  std::int64_t resumed_from_ = -1;
};

/// The steps of a run back from its train_log.jsonl (what reports plot).
/// A malformed line is an error naming the file and line.
inline Result<std::vector<StepRecord>> read_train_log(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io(path + ": cannot open");
  std::vector<StepRecord> out;
  std::string line;
  for (std::size_t no = 1; std::getline(in, line); ++no) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j.contains("loss") || !j["step"].is_number() ||
        !j["loss"].is_number())
      return Status::invalid(path + ":" + std::to_string(no) + ": not a train log record");
    StepRecord r;
    r.step = j["step"].get<std::int64_t>();
    r.epoch = j.value("epoch", 0.0);
    r.loss = j["loss"].get<double>();
    r.lr = j.value("lr", 0.0);
    r.grad_norm = j.value("grad_norm", 0.0);
    r.tokens = j.value("tokens", std::int64_t{0});
    r.scored = j.value("scored", std::int64_t{0});
    r.seconds = j.value("seconds", 0.0);
    if (j.contains("eval_nll") && j["eval_nll"].is_number()) r.eval_nll = j["eval_nll"].get<double>();
    out.push_back(r);
  }
  return out;
}

}  // namespace qlora::train
