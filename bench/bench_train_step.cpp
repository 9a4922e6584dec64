// bench_train_step — our side of the training benchmark (issue 5), the mirror
// of bench/bench_train_torch.py: SmolLM2-135M, LoRA r=16 alpha=16 on all
// seven projections, AdamW (lr 2e-4, HF defaults, no clipping, as the torch
// baseline), one fixed batch of 1 x 256 random token ids whose second half is
// the answer. One step = forward + masked cross-entropy + backward + AdamW.
// After --warmup untimed steps, --steps timed steps; prints one JSON line with
// tokens_per_s (of the median step) and peak_rss_mb (ru_maxrss: loading, the
// NF4 conversion and training). bench/bench_train_compare.py runs both sides.
//
//   bench_train_step [--model M.gguf] [--threads 2] [--base nf4|file]
//                    [--compute bf16|fp32] [--checkpointing] [--warmup 2] [--steps 5] [--seq-len 256]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "qlora/core/rng.hpp"
#include "qlora/optim/adamw.hpp"
#include "qlora/train/trainable_decoder.hpp"

namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qlora;
  std::string model = QLORA_MODEL_DEFAULT, base = "nf4", compute = "fp32";
  int threads = 2, warmup = 2, steps = 5, seq = 256, rank = 16;
  bool ckpt = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") model = next();
    else if (a == "--threads") threads = std::atoi(next());
    else if (a == "--base") base = next();
    else if (a == "--compute") compute = next();
    else if (a == "--checkpointing") ckpt = true;
    else if (a == "--warmup") warmup = std::atoi(next());
    else if (a == "--steps") steps = std::atoi(next());
    else if (a == "--seq-len") seq = std::atoi(next());
    else if (a == "--rank") rank = std::atoi(next());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  ThreadPool pool(threads);
  const auto t0 = std::chrono::steady_clock::now();
  auto f = io::GgufFile::open(model);
  if (!f) {
    std::fprintf(stderr, "%s\n", f.status().message().c_str());
    return 1;
  }
  train::TrainableOptions opt;
  auto storage = train::parse_base_storage(base);
  if (!storage) {
    std::fprintf(stderr, "%s\n", storage.status().message().c_str());
    return 2;
  }
  opt.storage = *storage;
  opt.gradient_checkpointing = ckpt;
  opt.pool = &pool;
  auto comp = cpu::parse_compute(compute);
  if (!comp) {
    std::fprintf(stderr, "%s\n", comp.status().message().c_str());
    return 2;
  }
  opt.compute = *comp;
  auto dec = train::TrainableDecoder::open(*f, opt);
  if (!dec) {
    std::fprintf(stderr, "%s\n", dec.status().message().c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rss_after_load = peak_rss_mb();
  lora::LoraConfig lc;
  lc.rank = rank;
  lc.alpha = 16;
  auto ad = lora::LoraAdapter::create(dec->config(), lc);
  if (!ad) return 1;
  optim::AdamWState st = optim::AdamWState::zeros(ad->params().size());
  optim::AdamWHyperParams hp;
  hp.lr = 2e-4;
  std::vector<float> grads(ad->params().size());
  std::vector<std::int32_t> tok(static_cast<std::size_t>(seq));
  SplitMix64 rng(0);
  for (auto& t : tok) t = std::int32_t(rng.below(dec->config().n_vocab));
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(seq - 1), 0);
  for (int t = seq / 2 - 1; t < seq - 1; ++t) mask[std::size_t(t)] = 1;  // predictions of tokens seq/2 .. seq-1
  const float weight = 1.0f / float(seq / 2);

  std::vector<double> times, losses;
  for (int s = 0; s < warmup + steps; ++s) {
    const auto a = std::chrono::steady_clock::now();
    std::fill(grads.begin(), grads.end(), 0.0f);
    auto r = dec->forward_backward(tok, mask, *ad, grads, weight);
    if (!r) {
      std::fprintf(stderr, "%s\n", r.status().message().c_str());
      return 1;
    }
    if (Status e = optim::adamw_step(ad->params(), grads, st, hp, pool); !e) return 1;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    losses.push_back(r->nll_sum / double(r->n_scored));
    if (s >= warmup) times.push_back(dt);
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double med = sorted[sorted.size() / 2];
  double mean = 0;
  for (double t : times) mean += t / double(times.size());
  std::printf("{\"bench\": \"train_lora_qlora\", \"model\": \"%s\", \"base\": \"%s\", \"compute\": \"%s\", \"checkpointing\": %s, "
              "\"batch\": 1, \"seq_len\": %d, \"answer_tokens\": %d, \"rank\": %d, \"trainable_params\": %zu, "
              "\"threads\": %d, \"warmup\": %d, \"steps\": %d, \"tokens_per_s\": %.2f, \"step_s\": %.4f, "
              "\"step_s_min\": %.4f, \"step_s_mean\": %.4f, \"peak_rss_mb\": %.1f, \"rss_after_load_mb\": %.1f, "
              "\"load_s\": %.2f, \"projection_mb\": %.1f, \"loss_first\": %.5f, \"loss_last\": %.5f}\n",
              model.substr(model.find_last_of('/') + 1).c_str(), base.c_str(),
              dec->compute() == cpu::Compute::kBF16 ? "bf16" : "fp32", ckpt ? "true" : "false", seq,
              seq / 2, rank, ad->params().size(), threads, warmup, steps, double(seq) / med, med, sorted.front(), mean,
              peak_rss_mb(), rss_after_load, load_s, double(dec->projection_bytes()) / 1e6, losses.front(),
              losses.back());
  return 0;
}
