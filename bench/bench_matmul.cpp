// bench/bench_matmul.cpp — cpu::matvec / cpu::matmul against llama.cpp, on
// SmolLM2-135M's real weight shapes (M output rows x K inputs):
//   576x576 (attn q/o), 192x576 (attn k/v), 1536x576 (ffn gate/up),
//   576x1536 (ffn down), 49152x576 (output head / tied embedding)
// per weight type (K-quants only where K is a multiple of 256: 576x1536).
//
//   BM_matvec/<type>/<MxK>/<impl>/threads:T   y = W x       (token generation)
//   BM_matmul/<type>/<MxK>/<impl>/threads:T   Y = X W^T, N = 256 (prompt)
//   BM_membw/threads:T                        STREAM-like read of 512 MiB
// <impl>:
//   qlora      cpu::matvec / cpu::matmul with a qlora::ThreadPool of T threads
//   llama.cpp  llama.cpp's own kernels from libggml-cpu.so (dlopen'ed): the
//              activation quantizer of the weight's vec_dot_type
//              (quantize_row_q8_0 / q8_1 / q8_K, ggml_cpu_fp32_to_fp16/bf16)
//              over all N rows, then ggml_vec_dot_<type>_<vec_dot_type> per
//              (weight row, activation row), driven by the SAME ThreadPool
//              and the same contiguous row split as ours (16-row blocks for
//              matmul, as ggml's mul_mat does), so a ratio compares kernels.
//   ggml       (matmul only) ggml_mul_mat in a ggml graph computed by
//              ggml_graph_compute_with_ctx with T threads: llama.cpp's real
//              mul_mat path, including llamafile sgemm where it applies (not
//              the weight repacking, which needs llama.cpp's repack buffer).
// Counters: GB/s = weight bytes per second (matvec); GFLOP/s = 2*M*N*K per
// second (matmul); rel_err = max |y - y_ref| / max |y_ref| with y_ref in double
// from the decoded weights (checked once, outside timing).
//
// Run (docs/benchmarks.md, "CPU matrix kernels"):
//   bench_matmul --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//                --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/cpu/matmul.hpp"
#include "qlora/cpu/quantize.hpp"
#include "qlora/quant/row.hpp"

#ifndef QLORA_PEER_GGML_DEFAULT_DIR
#define QLORA_PEER_GGML_DEFAULT_DIR ""
#endif

namespace {

using namespace qlora;
using quant::GgmlType;

constexpr std::int64_t kBatch = 256;  // prompt tokens per matmul

struct Shape {
  std::int64_t M, K;
  std::string name() const { return std::to_string(M) + "x" + std::to_string(K); }
};
const Shape kShapes[] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};

ThreadPool& pool_for(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

// ---------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------
using QuantFn = void (*)(const float*, void*, std::int64_t);
using VecDotFn = void (*)(int, float*, std::size_t, const void*, std::size_t, const void*, std::size_t, int);

struct GgmlInitParams {
  std::size_t mem_size;
  void* mem_buffer;
  bool no_alloc;
};
struct GgmlApi {
  void* (*init)(GgmlInitParams) = nullptr;
  void (*free)(void*) = nullptr;
  void* (*new_tensor_2d)(void*, int, std::int64_t, std::int64_t) = nullptr;
  void* (*mul_mat)(void*, void*, void*) = nullptr;
  void* (*new_graph)(void*) = nullptr;
  void (*build_forward_expand)(void*, void*) = nullptr;
  void* (*get_data)(const void*) = nullptr;
  int (*compute)(void*, void*, int) = nullptr;
  bool ok() const { return init && free && new_tensor_2d && mul_mat && new_graph && build_forward_expand && get_data && compute; }
};

struct Peer {
  bool ok = false;
  std::string why;
  void* base = nullptr;
  void* cpu = nullptr;
  GgmlApi g;
  template <class Fn>
  Fn sym(const char* name) const {
    void* p = cpu ? dlsym(cpu, name) : nullptr;
    if (!p && base) p = dlsym(base, name);
    return reinterpret_cast<Fn>(p);
  }
};

const Peer& peer() {
  static const Peer p = [] {
    Peer r;
    const char* env = std::getenv("QLORA_PEER_GGML_DIR");
    const std::string dir = (env && *env) ? env : QLORA_PEER_GGML_DEFAULT_DIR;
    if (dir.empty()) {
      r.why = "no peer directory (set QLORA_PEER_GGML_DIR)";
      return r;
    }
    r.base = dlopen((dir + "/libggml-base.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (r.base) r.cpu = dlopen((dir + "/libggml-cpu.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!r.base || !r.cpu) {
      r.why = std::string("dlopen failed: ") + dlerror();
      return r;
    }
    if (auto init = r.sym<void (*)()>("ggml_cpu_init")) init();
    r.g.init = r.sym<decltype(r.g.init)>("ggml_init");
    r.g.free = r.sym<decltype(r.g.free)>("ggml_free");
    r.g.new_tensor_2d = r.sym<decltype(r.g.new_tensor_2d)>("ggml_new_tensor_2d");
    r.g.mul_mat = r.sym<decltype(r.g.mul_mat)>("ggml_mul_mat");
    r.g.new_graph = r.sym<decltype(r.g.new_graph)>("ggml_new_graph");
    r.g.build_forward_expand = r.sym<decltype(r.g.build_forward_expand)>("ggml_build_forward_expand");
    r.g.get_data = r.sym<decltype(r.g.get_data)>("ggml_get_data");
    r.g.compute = r.sym<decltype(r.g.compute)>("ggml_graph_compute_with_ctx");
    r.ok = true;
    return r;
  }();
  return p;
}

/// llama.cpp's kernels for a weight type: activation converter, its row size, vec_dot.
struct PeerKernels {
  QuantFn act = nullptr;
  VecDotFn dot = nullptr;
  int act_block = 1;
  std::size_t act_block_bytes = 4;
};

PeerKernels peer_kernels(GgmlType t) {
  const Peer& p = peer();
  PeerKernels k;
  if (!p.ok) return k;
  auto set = [&](const char* act, const char* dot, int blk, std::size_t bytes) {
    k.act = p.sym<QuantFn>(act);
    k.dot = p.sym<VecDotFn>(dot);
    k.act_block = blk;
    k.act_block_bytes = bytes;
  };
  switch (t) {
    case GgmlType::F32: set("ggml_cpu_fp32_to_fp32", "ggml_vec_dot_f32", 1, 4); break;
    case GgmlType::F16: set("ggml_cpu_fp32_to_fp16", "ggml_vec_dot_f16", 1, 2); break;
    case GgmlType::BF16: set("ggml_cpu_fp32_to_bf16", "ggml_vec_dot_bf16", 1, 2); break;
    case GgmlType::Q8_0: set("quantize_row_q8_0", "ggml_vec_dot_q8_0_q8_0", 32, 34); break;
    case GgmlType::Q5_0: set("quantize_row_q8_0", "ggml_vec_dot_q5_0_q8_0", 32, 34); break;
    case GgmlType::Q4_1: set("quantize_row_q8_1", "ggml_vec_dot_q4_1_q8_1", 32, 36); break;
    case GgmlType::Q4_K: set("quantize_row_q8_K", "ggml_vec_dot_q4_K_q8_K", 256, 292); break;
    case GgmlType::Q6_K: set("quantize_row_q8_K", "ggml_vec_dot_q6_K_q8_K", 256, 292); break;
    default: break;
  }
  if (!k.act || !k.dot) k = PeerKernels{};
  return k;
}

// ---------------------------------------------------------------------------
// Inputs (built once per type and shape, outside timing)
// ---------------------------------------------------------------------------
std::size_t row_bytes(GgmlType t, std::int64_t K) {
  return *quant::ggml_row_bytes(*quant::ggml_type_info(std::uint32_t(t)), std::uint64_t(K));
}

struct Data {
  std::vector<std::uint8_t> w;  // M rows in type t
  std::vector<float> x;         // kBatch x K activations
  std::vector<double> yref;     // W x_0 in double, decoded weights
  double yref_max = 0;
};

const Data& data(GgmlType t, const Shape& s) {
  static std::map<std::pair<int, std::int64_t>, std::unique_ptr<Data>> cache;
  auto& slot = cache[{int(t), s.M * 100000 + s.K}];
  if (slot) return *slot;
  slot = std::make_unique<Data>();
  Data& d = *slot;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::size_t rb = row_bytes(t, s.K);
  d.w.resize(rb * std::size_t(s.M));
  if (t == GgmlType::Q4_1) {
    // No Q4_1 quantizer of ours (read-only format): valid random blocks.
    using B = quant::FormatTraits<quant::format::Q4_1>::Block;
    auto* b = reinterpret_cast<B*>(d.w.data());
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t i = 0; i < d.w.size() / sizeof(B); ++i) {
      b[i].d = Half::from_float(0.002f + 0.001f * std::fabs(normal(rng)));
      b[i].m = Half::from_float(-0.015f - 0.005f * std::fabs(normal(rng)));
      for (auto& q : b[i].qs) q = std::uint8_t(byte(rng));
    }
  } else {
    std::vector<float> w(std::size_t(s.M * s.K));
    for (float& v : w) v = 0.02f * normal(rng);
    if (!cpu::quantize_rows(std::uint32_t(t), w.data(), d.w.data(), s.M, s.K, nullptr, pool_for(2))) std::abort();
  }
  d.x.resize(std::size_t(kBatch * s.K));
  for (float& v : d.x) v = normal(rng);
  std::vector<float> row(std::size_t(s.K));
  d.yref.resize(std::size_t(s.M));
  for (std::int64_t r = 0; r < s.M; ++r) {
    if (!quant::dequantize_row(std::uint32_t(t), d.w.data() + std::size_t(r) * rb, row.data(), s.K)) std::abort();
    double acc = 0;
    for (std::int64_t k = 0; k < s.K; ++k) acc += double(row[std::size_t(k)]) * double(d.x[std::size_t(k)]);
    d.yref[std::size_t(r)] = acc;
    d.yref_max = std::max(d.yref_max, std::fabs(acc));
  }
  return d;
}

double rel_err(const Data& d, const float* y, std::int64_t M) {
  double e = 0;
  for (std::int64_t r = 0; r < M; ++r) e = std::max(e, std::fabs(double(y[r]) - d.yref[std::size_t(r)]));
  return d.yref_max > 0 ? e / d.yref_max : e;
}

// ---------------------------------------------------------------------------
// llama.cpp's kernels under our harness
// ---------------------------------------------------------------------------
struct PeerScratch {
  std::vector<std::uint8_t> act;
};

void peer_product(const PeerKernels& k, GgmlType t, const Shape& s, const std::uint8_t* w, const float* X,
                  std::int64_t N, float* Y, std::vector<std::uint8_t>& act, ThreadPool& pool) {
  const std::size_t a_row = std::size_t(s.K / k.act_block) * k.act_block_bytes;
  const std::size_t rb = row_bytes(t, s.K);
  auto quant_rows = [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) k.act(X + c * std::size_t(s.K), act.data() + c * a_row, s.K);
  };
  if (N >= 8) parallel_for(std::size_t(N), 4, quant_rows, pool);
  else quant_rows(0, std::size_t(N));
  parallel_for(std::size_t(s.M), 16, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t rb0 = r0; rb0 < r1; rb0 += 16) {
      const std::size_t rb1 = std::min(r1, rb0 + 16);
      for (std::int64_t c = 0; c < N; ++c)
        for (std::size_t r = rb0; r < rb1; ++r)
          k.dot(int(s.K), &Y[std::size_t(c) * std::size_t(s.M) + r], 0, w + r * rb, 0, act.data() + std::size_t(c) * a_row, 0, 1);
    }
  }, pool);
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------
enum class Impl { kOurs, kPeer, kGgml };

void bm_matvec(benchmark::State& st, GgmlType t, Shape s, Impl impl, int threads) {
  const Data& d = data(t, s);
  ThreadPool& pool = pool_for(threads);
  std::vector<float> y(std::size_t(s.M));
  const PeerKernels k = peer_kernels(t);
  if (impl == Impl::kPeer && !k.dot) return st.SkipWithError("peer not loaded");
  std::vector<std::uint8_t> act(std::size_t(s.K) * 4 + 4096);
  for (auto _ : st) {
    if (impl == Impl::kOurs) {
      if (!cpu::matvec(std::uint32_t(t), d.w.data(), s.M, s.K, d.x.data(), y.data(), pool)) return st.SkipWithError("matvec failed");
    } else {
      peer_product(k, t, s, d.w.data(), d.x.data(), 1, y.data(), act, pool);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * std::int64_t(d.w.size()));
  st.counters["rel_err"] = rel_err(d, y.data(), s.M);
}

struct GgmlGraph {
  void* ctx = nullptr;
  void* graph = nullptr;
  void* out = nullptr;
  ~GgmlGraph() {
    if (ctx) peer().g.free(ctx);
  }
};

void bm_matmul(benchmark::State& st, GgmlType t, Shape s, Impl impl, int threads) {
  const Data& d = data(t, s);
  ThreadPool& pool = pool_for(threads);
  const std::int64_t N = kBatch;
  std::vector<float> Y(std::size_t(s.M * N));
  const PeerKernels k = peer_kernels(t);
  std::vector<std::uint8_t> act(std::size_t(N * s.K) * 4 + 4096);
  GgmlGraph gg;
  if (impl != Impl::kOurs && !k.dot) return st.SkipWithError("peer not loaded");
  if (impl == Impl::kGgml) {
    const GgmlApi& g = peer().g;
    if (!g.ok()) return st.SkipWithError("ggml graph API missing");
    const std::size_t mem = d.w.size() + std::size_t(N * s.K) * 8 + std::size_t(N * s.M) * 8 + (256u << 20);
    gg.ctx = g.init(GgmlInitParams{mem, nullptr, false});
    void* wt = g.new_tensor_2d(gg.ctx, int(t), s.K, s.M);
    void* xt = g.new_tensor_2d(gg.ctx, int(GgmlType::F32), s.K, N);
    std::memcpy(g.get_data(wt), d.w.data(), d.w.size());
    std::memcpy(g.get_data(xt), d.x.data(), d.x.size() * sizeof(float));
    gg.out = g.mul_mat(gg.ctx, wt, xt);
    gg.graph = g.new_graph(gg.ctx);
    g.build_forward_expand(gg.graph, gg.out);
  }
  for (auto _ : st) {
    if (impl == Impl::kOurs) {
      if (!cpu::matmul(std::uint32_t(t), d.w.data(), s.M, s.K, d.x.data(), N, Y.data(), pool))
        return st.SkipWithError("matmul failed");
    } else if (impl == Impl::kPeer) {
      peer_product(k, t, s, d.w.data(), d.x.data(), N, Y.data(), act, pool);
    } else {
      if (peer().g.compute(gg.ctx, gg.graph, threads) != 0) return st.SkipWithError("ggml compute failed");
    }
    benchmark::ClobberMemory();
  }
  const float* y0 = impl == Impl::kGgml ? static_cast<const float*>(peer().g.get_data(gg.out)) : Y.data();
  st.counters["rel_err"] = rel_err(d, y0, s.M);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(s.M) * double(N) * double(s.K) * 1e-9 * double(st.iterations()),
                                              benchmark::Counter::kIsRate);
}

/// STREAM-like read bandwidth: sum of a 512 MiB float array, split over threads.
void bm_membw(benchmark::State& st, int threads) {
  static std::vector<float> buf(std::size_t(128) << 20, 1.0f);
  ThreadPool& pool = pool_for(threads);
  std::vector<float> part(std::size_t(threads) * 16);
  for (auto _ : st) {
    parallel_for(buf.size() / 64, 1, [&](std::size_t chunk, std::size_t b0, std::size_t b1) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (std::size_t i = b0 * 64; i < b1 * 64; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(&buf[i]));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(&buf[i + 8]));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(&buf[i + 16]));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(&buf[i + 24]));
      }
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
      part[chunk * 16] = tmp[0] + tmp[1] + tmp[2] + tmp[3] + tmp[4] + tmp[5] + tmp[6] + tmp[7];
    }, pool);
    benchmark::DoNotOptimize(part.data());
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * std::int64_t(buf.size() * sizeof(float)));
}

const char* impl_name(Impl i) { return i == Impl::kOurs ? "qlora" : i == Impl::kPeer ? "llama.cpp" : "ggml"; }

void add(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), std::move(fn))->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (int t : {1, 2}) pool_for(t);
  const Peer& p = peer();
  benchmark::AddCustomContext("peer", p.ok ? "llama.cpp ggml (dlopen)" : "NOT LOADED: " + p.why);
  benchmark::AddCustomContext("batch", std::to_string(kBatch));
  if (!p.ok) std::fprintf(stderr, "note: llama.cpp benchmarks are skipped: %s\n", p.why.c_str());

  for (int t : {1, 2}) add("BM_membw/threads:" + std::to_string(t), [t](benchmark::State& s) { bm_membw(s, t); });
  const GgmlType types[] = {GgmlType::F32, GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                            GgmlType::Q5_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K};
  for (GgmlType ty : types) {
    const auto info = *quant::ggml_type_info(std::uint32_t(ty));
    for (const Shape& sh : kShapes) {
      if (sh.K % info.block_elems != 0) continue;
      for (int t : {1, 2}) {
        for (Impl im : {Impl::kOurs, Impl::kPeer}) {
          if (im != Impl::kOurs && !p.ok) continue;
          add("BM_matvec/" + std::string(info.name) + "/" + sh.name() + "/" + impl_name(im) + "/threads:" + std::to_string(t),
              [=](benchmark::State& s) { bm_matvec(s, ty, sh, im, t); });
        }
        for (Impl im : {Impl::kOurs, Impl::kPeer, Impl::kGgml}) {
          if (im != Impl::kOurs && !p.ok) continue;
          add("BM_matmul/" + std::string(info.name) + "/" + sh.name() + "/" + impl_name(im) + "/threads:" + std::to_string(t),
              [=](benchmark::State& s) { bm_matmul(s, ty, sh, im, t); });
        }
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
