// bench/bench_train_gemm.cpp — the CPU trainer's dense products in fp32
// (Eigen) and bf16 (AVX-512 BF16), and a whole training step, on SmolLM2-135M
// (issue 5's target: >= 2x a PyTorch LoRA baseline's ~205 tok/s on 2 threads).
//
//   BM_frozen/<fwd|bwd>/<MxK>/<fp32|bf16>/threads:T
//       train::frozen_forward   Y[N,M]  = X[N,K] W^T   or
//       train::frozen_backward_input  dX[N,K] = dY[N,M] W
//       with blk.0's real weights re-quantized to NF4 (the trainer's base), or
//       the tied Q8_0 embedding for the head (49152x576, as the file stores
//       it). N = 256 tokens; 128 for the head (half the tokens scored).
//   BM_gemm/<MxNxK>/<ops>/<fp32|bf16>     cpu::gemm, one thread, the
//       attention products of one head (hd = 64, T = 256) and a LoRA-sized one.
//   BM_step/<fp32|bf16>/threads:T
//       TrainableDecoder::forward_backward: NF4 base, LoRA r = 16 on all seven
//       projections, 256 tokens with the first half unscored (mask 0).
// Counters: GFLOP/s = 2·M·N·K per second; tok/s = tokens per second.
//
// The model comes from $QLORA_BENCH_MODEL, else the default path compiled in
// (bench/CMakeLists.txt); without it the model-based cases are skipped.
//
// Micro-kernel choice (kBf16Mr x kBf16Nr in cpu/gemm_bf16_avx512.hpp),
// measured on this CPU (Zen 4, 1 thread, L1-resident panels, 128 pairs):
//   8x48 174, 14x32 182, 12x32 164, 6x64 165, 16x16 182 GFLOP/s — within
//   noise of each other; 8x48 wins on the real shapes (NR divides all of
//   SmolLM2's widths, MR divides 256 and 128 tokens: no wasted tile rows).
//
// Run: bench_train_gemm --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/cpu/gemm.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/model/weights.hpp"
#include "qlora/train/frozen_product.hpp"
#include "qlora/train/trainable_decoder.hpp"

#ifndef QLORA_BENCH_MODEL_DEFAULT
#define QLORA_BENCH_MODEL_DEFAULT ""
#endif

namespace {

using namespace qlora;

constexpr std::int64_t kTokens = 256;

ThreadPool& pool_for(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

std::string model_path() {
  const char* env = std::getenv("QLORA_BENCH_MODEL");
  return env && *env ? env : QLORA_BENCH_MODEL_DEFAULT;
}

/// The model file and its bound weights, loaded once (null if absent).
struct Model {
  io::GgufFile file;
  model::ModelConfig cfg;
  model::DecoderWeights w;
};
const Model* loaded_model() {
  static const std::unique_ptr<Model> m = []() -> std::unique_ptr<Model> {
    auto f = io::GgufFile::open(model_path());
    if (!f) return nullptr;
    auto r = std::make_unique<Model>();
    r->file = std::move(*f);
    auto c = model::config_from_gguf(r->file);
    if (!c) return nullptr;
    r->cfg = *c;
    auto w = model::bind_weights(r->file, r->cfg);
    if (!w) return nullptr;
    r->w = std::move(*w);
    return r;
  }();
  return m.get();
}

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

enum class Dir { kForward, kBackward };

/// One frozen product: which tensor of blk.0 (or the head) and its direction.
void bm_frozen(benchmark::State& st, const std::string& tensor, Dir dir, cpu::Compute compute, int threads) {
  const Model* m = loaded_model();
  if (!m) return st.SkipWithError(("model not found: " + model_path() + " (set QLORA_BENCH_MODEL)").c_str());
  if (compute == cpu::Compute::kBF16 && !cpu::has_avx512_bf16()) return st.SkipWithError("no AVX512_BF16");
  ThreadPool& pool = pool_for(threads);
  const model::LayerWeights& L = m->w.layers[0];
  const model::TensorRef* t = tensor == "head"     ? &m->w.token_embd
                              : tensor == "attn_q" ? &L.wq
                              : tensor == "attn_k" ? &L.wk
                              : tensor == "ffn_up" ? &L.w_up
                                                   : &L.w_down;
  train::FrozenMatrix W;
  if (tensor == "head") {
    W = train::FrozenMatrix::view(*t);
  } else {
    auto r = train::FrozenMatrix::to_nf4(*t, true, pool);
    if (!r) return st.SkipWithError(r.status().message().c_str());
    W = std::move(*r);
  }
  const std::int64_t N = tensor == "head" ? kTokens / 2 : kTokens, M = W.rows(), K = W.cols();
  const auto in = random_vector(std::size_t(N * (dir == Dir::kForward ? K : M)), 1);
  std::vector<float> out(std::size_t(N * (dir == Dir::kForward ? M : K)));
  for (auto _ : st) {
    if (dir == Dir::kForward) train::frozen_forward(W, in.data(), N, out.data(), pool, compute);
    else train::frozen_backward_input(W, in.data(), N, out.data(), false, pool, compute);
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(N * M * K) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// cpu::gemm on one thread (the attention's per-head products).
void bm_gemm(benchmark::State& st, std::int64_t M, std::int64_t N, std::int64_t K, cpu::Op oa, cpu::Op ob,
             cpu::Compute compute) {
  if (compute == cpu::Compute::kBF16 && !cpu::has_avx512_bf16()) return st.SkipWithError("no AVX512_BF16");
  const auto A = random_vector(std::size_t(M * K), 2), B = random_vector(std::size_t(K * N), 3);
  std::vector<float> C(std::size_t(M * N));
  const std::int64_t lda = oa == cpu::Op::kN ? K : M, ldb = ob == cpu::Op::kN ? N : K;
  for (auto _ : st) {
    cpu::gemm(compute, oa, ob, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), N);
    benchmark::DoNotOptimize(C.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(M * N * K) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// One training step (forward + backward of a 256-token sequence).
void bm_step(benchmark::State& st, cpu::Compute compute, int threads) {
  const Model* m = loaded_model();
  if (!m) return st.SkipWithError(("model not found: " + model_path() + " (set QLORA_BENCH_MODEL)").c_str());
  if (compute == cpu::Compute::kBF16 && !cpu::has_avx512_bf16()) return st.SkipWithError("no AVX512_BF16");
  train::TrainableOptions opt;
  opt.storage = train::BaseStorage::kNf4;
  opt.compute = compute;
  opt.pool = &pool_for(threads);
  auto dec = train::TrainableDecoder::open(m->file, opt);
  if (!dec) return st.SkipWithError(dec.status().message().c_str());
  lora::LoraConfig lc;
  lc.rank = 16;
  lc.alpha = 32.0f;
  lc.dropout = 0.0f;
  auto ad = lora::LoraAdapter::create(dec->config(), lc);
  if (!ad) return st.SkipWithError(ad.status().message().c_str());
  std::mt19937 rng(5);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(kTokens));
  for (auto& t : tokens) t = std::int32_t(rng() % dec->config().n_vocab);
  std::vector<std::uint8_t> mask(std::size_t(kTokens - 1), 0);
  for (std::int64_t t = kTokens / 2; t < kTokens - 1; ++t) mask[std::size_t(t)] = 1;
  std::vector<float> grads(ad->params().size(), 0.0f);
  for (auto _ : st) {
    auto r = dec->forward_backward(tokens, mask, *ad, grads, 1.0f);
    if (!r) return st.SkipWithError(r.status().message().c_str());
    benchmark::DoNotOptimize(grads.data());
  }
  st.counters["tok/s"] = benchmark::Counter(double(kTokens), benchmark::Counter::kIsIterationInvariantRate);
}

void add(const std::string& name, std::function<void(benchmark::State&)> fn, benchmark::TimeUnit unit) {
  benchmark::RegisterBenchmark(name.c_str(), std::move(fn))->UseRealTime()->Unit(unit);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("model", loaded_model() ? model_path() : "NOT FOUND: " + model_path());
  benchmark::AddCustomContext("avx512_bf16", cpu::has_avx512_bf16() ? "yes" : "no");
  const cpu::Compute kinds[] = {cpu::Compute::kF32, cpu::Compute::kBF16};
  struct Frozen {
    const char* tensor;
    const char* shape;  // M x K of W
  };
  const Frozen frozen[] = {{"attn_q", "576x576"}, {"attn_k", "192x576"}, {"ffn_up", "1536x576"},
                           {"ffn_down", "576x1536"}, {"head", "49152x576"}};
  for (int t : {1, 2})
    for (const Frozen& f : frozen)
      for (Dir d : {Dir::kForward, Dir::kBackward})
        for (cpu::Compute c : kinds)
          add(std::string("BM_frozen/") + (d == Dir::kForward ? "fwd/" : "bwd/") + f.shape + "/" + cpu::compute_name(c) +
                  "/threads:" + std::to_string(t),
              [=](benchmark::State& s) { bm_frozen(s, f.tensor, d, c, t); }, benchmark::kMicrosecond);
  struct Gemm {
    std::int64_t M, N, K;
    cpu::Op a, b;
    const char* what;
  };
  const Gemm gemms[] = {{256, 256, 64, cpu::Op::kN, cpu::Op::kT, "NT"},   // S = Q K^T
                        {256, 64, 256, cpu::Op::kN, cpu::Op::kN, "NN"},   // O = P V, dQ = dS K
                        {256, 64, 256, cpu::Op::kT, cpu::Op::kN, "TN"},   // dV = P^T dO, dK = dS^T Q
                        {256, 16, 576, cpu::Op::kN, cpu::Op::kT, "NT"}};  // LoRA U = X A^T (r = 16)
  for (const Gemm& g : gemms)
    for (cpu::Compute c : kinds)
      add("BM_gemm/" + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" + std::to_string(g.K) + "/" + g.what + "/" +
              cpu::compute_name(c),
          [=](benchmark::State& s) { bm_gemm(s, g.M, g.N, g.K, g.a, g.b, c); }, benchmark::kMicrosecond);
  for (int t : {1, 2})
    for (cpu::Compute c : kinds)
      add(std::string("BM_step/") + cpu::compute_name(c) + "/threads:" + std::to_string(t),
          [=](benchmark::State& s) { bm_step(s, c, t); }, benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
