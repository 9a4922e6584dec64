// bench/bench_quant.cpp — our block kernels against llama.cpp's, per kernel.
//
// For each block format (Q8_0, Q5_0, Q4_K, Q6_K, NF4; Q4_1 decode only) and
// 1 and 2 threads:
//   BM_quantize/<fmt>/<impl>/threads:N    f32 [rows x cols] -> blocks
//   BM_dequantize/<fmt>/<impl>/threads:N  blocks -> f32
//   BM_matvec/<fmt>/<impl>/threads:N      y[r] = row_r(W) . x for every row
// <impl> is
//   qlora       our CPU entry points (cpu::quantize_rows, cpu::dequantize) and,
//               for matvec, FormatTraits<F>::dot_q8k with our Q8_K activations
//               (K-quants only: the like-for-like kernel)
//   qlora-f32   matvec with dot_row<F>: f32 activations, scalar, no activation
//               quantization (the path our host code uses today)
//   llama.cpp   the peer's functions, dlopen'ed from libggml-base.so /
//               libggml-cpu.so: quantize_row_X_ref (what llama-quantize runs
//               without an imatrix), dequantize_row_X, and for matvec the
//               CPU activation quantizer (quantize_row_q8_K or _q8_0) plus
//               ggml_vec_dot_X_q8_Y (SIMD, as built by llama-cpp-python)
// Ours and the peer's run under the same harness: one qlora::ThreadPool per
// thread count and qlora::parallel_for with the same split (rows for
// quantize and matvec, 4096-block chunks for dequantize), so a ratio compares
// kernels, not threading. Activation quantization is inside the timed loop
// for both (one vector per call, as in a matrix-vector product).
//
// Throughput is bytes of f32 weights per second (rows * cols * 4 per
// iteration), whatever the operation. Each matvec benchmark also reports
// `rel_err`: max_r |y_r - yref_r| / max_r |yref_r|, with yref computed in
// double from the decoded weights and the f32 vector.
//
// Setup, outside timing and once per format: the benchmark matrix is
// quantized by both sides and the bytes compared; the dequantized floats too.
// A mismatch aborts that pair with an error naming the first differing block.
//
// Environment: QLORA_PEER_GGML_DIR (peer library directory; default baked in
// at configure time), QLORA_BENCH_ROWS / QLORA_BENCH_COLS (default 4096; cols
// must be a multiple of 256).
//
// Suggested run (docs/benchmarks.md):
//   bench_quant --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//               --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <dlfcn.h>

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
#include <type_traits>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/cpu/quantize.hpp"
#include "qlora/quant/nf4.hpp"
#include "qlora/quant/row.hpp"

#ifndef QLORA_PEER_GGML_DEFAULT_DIR
#define QLORA_PEER_GGML_DEFAULT_DIR ""
#endif

namespace {

using namespace qlora;
using namespace qlora::quant;

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

std::int64_t env_int(const char* name, std::int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  const long long n = std::atoll(v);
  return n > 0 ? std::int64_t(n) : fallback;
}

struct Shape {
  std::int64_t rows, cols;
  std::size_t elems() const { return std::size_t(rows) * std::size_t(cols); }
  std::int64_t f32_bytes() const { return std::int64_t(elems() * sizeof(float)); }
};

const Shape& shape() {
  static const Shape s = [] {
    Shape r{env_int("QLORA_BENCH_ROWS", 4096), env_int("QLORA_BENCH_COLS", 4096)};
    if (r.cols % kQK_K != 0) {
      std::fprintf(stderr, "QLORA_BENCH_COLS=%lld is not a multiple of %d\n", (long long)r.cols, kQK_K);
      std::exit(2);
    }
    return r;
  }();
  return s;
}

/// Weight-like matrix: N(0, 0.02) with a sprinkling of 10x outliers, fixed seed.
const std::vector<float>& weights() {
  static const std::vector<float> w = [] {
    std::vector<float> v(shape().elems());
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::uniform_int_distribution<int> pick(0, 999);
    for (float& x : v) x = normal(rng) * (pick(rng) == 0 ? 10.0f : 1.0f);
    return v;
  }();
  return w;
}

/// Activation vector: N(0, 1), fixed seed.
const std::vector<float>& activations() {
  static const std::vector<float> x = [] {
    std::vector<float> v(std::size_t(shape().cols));
    std::mt19937 rng(5678);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& e : v) e = normal(rng);
    return v;
  }();
  return x;
}

ThreadPool& pool_for(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;  // built before any benchmark runs
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

template <class F>
std::size_t row_bytes(std::int64_t cols) {
  return std::size_t(cols / FormatTraits<F>::kBlockElems) * FormatTraits<F>::kBlockBytes;
}

// ---------------------------------------------------------------------------
// The peer: llama.cpp's ggml, loaded at run time
// ---------------------------------------------------------------------------

using QuantFn = void (*)(const float*, void*, std::int64_t);
using DequantFn = void (*)(const void*, float*, std::int64_t);
using VecDotFn = void (*)(int, float*, std::size_t, const void*, std::size_t, const void*, std::size_t, int);

struct Peer {
  bool ok = false;
  std::string dir;
  std::string why;  // when !ok
  void* base = nullptr;
  void* cpu = nullptr;

  template <class Fn>
  Fn base_fn(const char* name) const { return base ? reinterpret_cast<Fn>(dlsym(base, name)) : nullptr; }
  template <class Fn>
  Fn cpu_fn(const char* name) const { return cpu ? reinterpret_cast<Fn>(dlsym(cpu, name)) : nullptr; }
};

const Peer& peer() {
  static const Peer p = [] {
    Peer r;
    const char* env = std::getenv("QLORA_PEER_GGML_DIR");
    r.dir = (env && *env) ? env : QLORA_PEER_GGML_DEFAULT_DIR;
    if (r.dir.empty()) {
      r.why = "no peer directory (set QLORA_PEER_GGML_DIR to llama.cpp's ggml lib dir)";
      return r;
    }
    // Base first and global, so libggml-cpu's dependency resolves to it.
    r.base = dlopen((r.dir + "/libggml-base.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!r.base) {
      r.why = std::string("dlopen libggml-base.so failed: ") + dlerror();
      return r;
    }
    r.cpu = dlopen((r.dir + "/libggml-cpu.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!r.cpu) {
      r.why = std::string("dlopen libggml-cpu.so failed: ") + dlerror();
      return r;
    }
    // Sets up the CPU backend's tables (fp16 conversion, feature detection).
    if (auto init = r.cpu_fn<void (*)()>("ggml_cpu_init")) init();
    r.ok = true;
    return r;
  }();
  return p;
}

/// Names of the peer's functions for format F (nullptr: the peer has none).
struct PeerNames {
  const char* quantize = nullptr;    // libggml-base, reference quantizer
  const char* dequantize = nullptr;  // libggml-base
  const char* vec_dot = nullptr;     // libggml-cpu, SIMD
  const char* act_quantize = nullptr;  // libggml-cpu, activation quantizer for vec_dot
  const char* act_name = nullptr;
  int act_block_elems = 0;
  std::size_t act_block_bytes = 0;
};

template <class F>
PeerNames peer_names() {
  if constexpr (std::is_same_v<F, format::Q8_0>)
    return {"quantize_row_q8_0_ref", "dequantize_row_q8_0", "ggml_vec_dot_q8_0_q8_0", "quantize_row_q8_0", "q8_0", 32, 34};
  else if constexpr (std::is_same_v<F, format::Q5_0>)
    return {"quantize_row_q5_0_ref", "dequantize_row_q5_0", "ggml_vec_dot_q5_0_q8_0", "quantize_row_q8_0", "q8_0", 32, 34};
  else if constexpr (std::is_same_v<F, format::Q4_K>)
    return {"quantize_row_q4_K_ref", "dequantize_row_q4_K", "ggml_vec_dot_q4_K_q8_K", "quantize_row_q8_K", "q8_K", 256, 292};
  else if constexpr (std::is_same_v<F, format::Q6_K>)
    return {"quantize_row_q6_K_ref", "dequantize_row_q6_K", "ggml_vec_dot_q6_K_q8_K", "quantize_row_q8_K", "q8_K", 256, 292};
  else if constexpr (std::is_same_v<F, format::Q4_1>)
    return {"quantize_row_q4_1_ref", "dequantize_row_q4_1", nullptr, nullptr, nullptr, 0, 0};
  else
    return {};  // NF4: bitsandbytes is not a C library we can load; ours only
}

/// The peer's functions for F, resolved; `missing` names what is not there.
struct PeerKernels {
  QuantFn quantize = nullptr;
  DequantFn dequantize = nullptr;
  VecDotFn vec_dot = nullptr;
  QuantFn act_quantize = nullptr;
  std::string missing;
};

template <class F>
const PeerKernels& peer_kernels() {
  static const PeerKernels k = [] {
    PeerKernels r;
    const Peer& p = peer();
    const PeerNames n = peer_names<F>();
    if (!p.ok) {
      r.missing = "llama.cpp not loaded: " + p.why;
      return r;
    }
    if (!n.dequantize) {
      r.missing = "llama.cpp has no " + std::string(FormatTraits<F>::kName) + " kernels";
      return r;
    }
    auto need = [&](const char* name, bool found) {
      if (name && !found) r.missing += (r.missing.empty() ? "missing symbols:" : "") + std::string(" ") + name;
    };
    if (n.quantize) r.quantize = p.base_fn<QuantFn>(n.quantize);
    r.dequantize = p.base_fn<DequantFn>(n.dequantize);
    if (n.vec_dot) r.vec_dot = p.cpu_fn<VecDotFn>(n.vec_dot);
    if (n.act_quantize) r.act_quantize = p.cpu_fn<QuantFn>(n.act_quantize);
    need(n.quantize, r.quantize);
    need(n.dequantize, r.dequantize);
    need(n.vec_dot, r.vec_dot);
    need(n.act_quantize, r.act_quantize);
    return r;
  }();
  return k;
}

// ---------------------------------------------------------------------------
// The shared harness: identical splits for ours and the peer's
// ---------------------------------------------------------------------------

constexpr std::size_t kDequantGrain = 4096;  // blocks per chunk, as cpu::dequantize

/// fn(first_row, row_count) over contiguous row chunks.
template <class Fn>
void over_rows(ThreadPool& pool, Fn&& fn) {
  parallel_for(std::size_t(shape().rows), 1, [&](std::size_t r0, std::size_t r1) { fn(r0, r1 - r0); }, pool);
}

/// fn(first_block, block_count) over chunks of kDequantGrain blocks.
template <class Fn>
void over_blocks(ThreadPool& pool, std::size_t nblocks, Fn&& fn) {
  parallel_for(nblocks, kDequantGrain, [&](std::size_t b0, std::size_t b1) { fn(b0, b1 - b0); }, pool);
}

template <class F>
constexpr bool kHasGgmlId = FormatTraits<F>::kGgmlType != kNoGgmlType;

template <class F>
constexpr bool kHasQ8kDot = requires(const typename FormatTraits<F>::Block& b,
                                     const FormatTraits<format::Q8_K>::Block& a) { FormatTraits<F>::dot_q8k(b, a); };

/// Our quantizer for the whole matrix: cpu::quantize_rows when the format has
/// a ggml id, else quantize_row<F> under the same row split.
template <class F>
Status quantize_ours(const float* w, std::uint8_t* out, ThreadPool& pool) {
  const Shape& s = shape();
  if constexpr (kHasGgmlId<F>) {
    return cpu::quantize_rows(FormatTraits<F>::kGgmlType, w, out, s.rows, s.cols, nullptr, pool);
  } else {
    const std::size_t rb = row_bytes<F>(s.cols);
    over_rows(pool, [&](std::size_t r0, std::size_t n) {
      quantize_row<F>(w + r0 * std::size_t(s.cols), out + r0 * rb, std::int64_t(n) * s.cols);
    });
    return Status::ok();
  }
}

template <class F>
void quantize_peer(const PeerKernels& k, const float* w, std::uint8_t* out, ThreadPool& pool) {
  const Shape& s = shape();
  const std::size_t rb = row_bytes<F>(s.cols);
  over_rows(pool, [&](std::size_t r0, std::size_t n) {
    k.quantize(w + r0 * std::size_t(s.cols), out + r0 * rb, std::int64_t(n) * s.cols);
  });
}

template <class F>
Status dequantize_ours(const std::uint8_t* q, float* y, ThreadPool& pool) {
  using T = FormatTraits<F>;
  if constexpr (kHasGgmlId<F>) {
    return cpu::dequantize(T::kGgmlType, q, y, std::int64_t(shape().elems()), pool);
  } else {
    over_blocks(pool, shape().elems() / T::kBlockElems, [&](std::size_t b0, std::size_t n) {
      dequantize_row<F>(q + b0 * T::kBlockBytes, y + b0 * T::kBlockElems, std::int64_t(n) * T::kBlockElems);
    });
    return Status::ok();
  }
}

template <class F>
void dequantize_peer(const PeerKernels& k, const std::uint8_t* q, float* y, ThreadPool& pool) {
  using T = FormatTraits<F>;
  over_blocks(pool, shape().elems() / T::kBlockElems, [&](std::size_t b0, std::size_t n) {
    k.dequantize(q + b0 * T::kBlockBytes, y + b0 * T::kBlockElems, std::int64_t(n) * T::kBlockElems);
  });
}

enum class MatvecImpl { kOursQ8K, kOursF32, kPeer };

/// y = W x with the chosen kernel; act is scratch for the activation blocks.
template <class F>
void matvec(MatvecImpl impl, const PeerKernels& k, const std::uint8_t* q, const float* x, std::uint8_t* act,
            float* y, ThreadPool& pool) {
  using T = FormatTraits<F>;
  const Shape& s = shape();
  const std::size_t rb = row_bytes<F>(s.cols);
  switch (impl) {
    case MatvecImpl::kOursF32:
      over_rows(pool, [&](std::size_t r0, std::size_t n) {
        for (std::size_t r = r0; r < r0 + n; ++r) y[r] = dot_row<F>(q + r * rb, x, s.cols);
      });
      break;
    case MatvecImpl::kOursQ8K:
      if constexpr (kHasQ8kDot<F>) {
        using A = FormatTraits<format::Q8_K>;
        quantize_row<format::Q8_K>(x, act, s.cols);
        const auto* a = reinterpret_cast<const A::Block*>(act);
        const std::int64_t nb = s.cols / kQK_K;
        over_rows(pool, [&](std::size_t r0, std::size_t n) {
          for (std::size_t r = r0; r < r0 + n; ++r) {
            const auto* w = reinterpret_cast<const typename T::Block*>(q + r * rb);
            float sum = 0.0f;
            for (std::int64_t b = 0; b < nb; ++b) sum += T::dot_q8k(w[b], a[b]);
            y[r] = sum;
          }
        });
      }
      break;
    case MatvecImpl::kPeer:
      k.act_quantize(x, act, s.cols);
      over_rows(pool, [&](std::size_t r0, std::size_t n) {
        for (std::size_t r = r0; r < r0 + n; ++r) k.vec_dot(int(s.cols), &y[r], 0, q + r * rb, 0, act, 0, 1);
      });
      break;
  }
}

// ---------------------------------------------------------------------------
// Per-format setup (once, outside timing): quantized matrix + agreement checks
// ---------------------------------------------------------------------------

struct Prepared {
  std::vector<std::uint8_t> q;    // the benchmark matrix in format F (ours, or the peer's for Q4_1)
  std::string quantize_error;     // non-empty: our bytes differ from the peer's
  std::string dequantize_error;   // non-empty: our decoded floats differ from the peer's
  std::vector<double> yref;       // decoded W times x, in double
  double yref_max = 0;
};

std::string first_difference(const std::uint8_t* a, const std::uint8_t* b, std::size_t n, std::size_t block_bytes,
                             std::size_t row_bytes_) {
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  if (i == n) return {};
  std::size_t count = 0;
  for (std::size_t j = 0; j < n; ++j) count += a[j] != b[j];
  return "first at byte " + std::to_string(i) + " (row " + std::to_string(i / row_bytes_) + ", block " +
         std::to_string((i % row_bytes_) / block_bytes) + "); " + std::to_string(count) + " bytes differ";
}

template <class F>
const Prepared& prepared() {
  static const Prepared p = [] {
    using T = FormatTraits<F>;
    Prepared r;
    const Shape& s = shape();
    const std::string name(T::kName);
    const PeerKernels& k = peer_kernels<F>();
    ThreadPool& pool = pool_for(2);
    r.q.resize(std::size_t(s.rows) * row_bytes<F>(s.cols));

    if constexpr (T::kQuantizable) {
      const Status st = quantize_ours<F>(weights().data(), r.q.data(), pool);
      if (!st) r.quantize_error = "our quantizer failed: " + st.message();
      if (k.quantize && st) {
        std::vector<std::uint8_t> theirs(r.q.size());
        quantize_peer<F>(k, weights().data(), theirs.data(), pool);
        const std::string d = first_difference(r.q.data(), theirs.data(), r.q.size(), T::kBlockBytes, row_bytes<F>(s.cols));
        if (!d.empty()) r.quantize_error = name + ": our bytes differ from llama.cpp's: " + d;
        std::fprintf(stderr, "[check] %s quantize: %s\n", name.c_str(),
                     d.empty() ? ("byte-identical to llama.cpp (" + std::to_string(r.q.size()) + " bytes)").c_str()
                               : r.quantize_error.c_str());
      }
    } else {
      // Decode-only format: the peer produces the test data.
      if (!k.quantize) {
        r.quantize_error = name + ": no quantizer on either side (" + k.missing + ")";
        r.dequantize_error = r.quantize_error;
        return r;
      }
      quantize_peer<F>(k, weights().data(), r.q.data(), pool);
    }

    std::vector<float> ours(s.elems());
    const Status st = dequantize_ours<F>(r.q.data(), ours.data(), pool);
    if (!st) r.dequantize_error = "our dequantizer failed: " + st.message();
    if (k.dequantize && st) {
      std::vector<float> theirs(s.elems());
      dequantize_peer<F>(k, r.q.data(), theirs.data(), pool);
      const std::string d = first_difference(reinterpret_cast<const std::uint8_t*>(ours.data()),
                                             reinterpret_cast<const std::uint8_t*>(theirs.data()),
                                             ours.size() * sizeof(float), T::kBlockElems * sizeof(float),
                                             std::size_t(s.cols) * sizeof(float));
      if (!d.empty()) r.dequantize_error = name + ": our decoded floats differ from llama.cpp's: " + d;
      std::fprintf(stderr, "[check] %s dequantize: %s\n", name.c_str(),
                   d.empty() ? "bit-identical floats to llama.cpp" : r.dequantize_error.c_str());
    }

    const std::vector<float>& x = activations();
    r.yref.resize(std::size_t(s.rows));
    for (std::int64_t row = 0; row < s.rows; ++row) {
      double acc = 0;
      const float* w = ours.data() + std::size_t(row) * std::size_t(s.cols);
      for (std::int64_t c = 0; c < s.cols; ++c) acc += double(w[c]) * double(x[std::size_t(c)]);
      r.yref[std::size_t(row)] = acc;
      r.yref_max = std::max(r.yref_max, std::fabs(acc));
    }
    return r;
  }();
  return p;
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

void finish(benchmark::State& state) {
  state.SetBytesProcessed(std::int64_t(state.iterations()) * shape().f32_bytes());
}

template <class F>
void bm_quantize(benchmark::State& state, bool ours, int threads) {
  const Prepared& p = prepared<F>();
  const PeerKernels& k = peer_kernels<F>();
  if (!ours && !k.quantize) return state.SkipWithError(("peer skipped: " + k.missing).c_str());
  if (!p.quantize_error.empty()) return state.SkipWithError(p.quantize_error.c_str());
  ThreadPool& pool = pool_for(threads);
  std::vector<std::uint8_t> out(p.q.size());
  const float* w = weights().data();
  for (auto _ : state) {
    if (ours) {
      if (const Status st = quantize_ours<F>(w, out.data(), pool); !st) return state.SkipWithError(st.message().c_str());
    } else {
      quantize_peer<F>(k, w, out.data(), pool);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state);
}

template <class F>
void bm_dequantize(benchmark::State& state, bool ours, int threads) {
  const Prepared& p = prepared<F>();
  const PeerKernels& k = peer_kernels<F>();
  if (!ours && !k.dequantize) return state.SkipWithError(("peer skipped: " + k.missing).c_str());
  if (!p.dequantize_error.empty()) return state.SkipWithError(p.dequantize_error.c_str());
  ThreadPool& pool = pool_for(threads);
  std::vector<float> y(shape().elems());
  for (auto _ : state) {
    if (ours) {
      if (const Status st = dequantize_ours<F>(p.q.data(), y.data(), pool); !st)
        return state.SkipWithError(st.message().c_str());
    } else {
      dequantize_peer<F>(k, p.q.data(), y.data(), pool);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state);
}

template <class F>
void bm_matvec(benchmark::State& state, MatvecImpl impl, int threads) {
  const Prepared& p = prepared<F>();
  const PeerKernels& k = peer_kernels<F>();
  if (impl == MatvecImpl::kPeer && !(k.vec_dot && k.act_quantize))
    return state.SkipWithError(("peer skipped: " + (k.missing.empty() ? std::string("no vec_dot") : k.missing)).c_str());
  if (!p.quantize_error.empty()) return state.SkipWithError(p.quantize_error.c_str());
  ThreadPool& pool = pool_for(threads);
  const Shape& s = shape();
  // Large enough for Q8_K (292 B / 256) or Q8_0 (34 B / 32) activations.
  std::vector<std::uint8_t> act(std::size_t(s.cols / 32) * 36 + 512);
  std::vector<float> y(std::size_t(s.rows));
  const float* x = activations().data();
  for (auto _ : state) {
    matvec<F>(impl, k, p.q.data(), x, act.data(), y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  double err = 0;
  for (std::size_t r = 0; r < y.size(); ++r) err = std::max(err, std::fabs(double(y[r]) - p.yref[r]));
  state.counters["rel_err"] = p.yref_max > 0 ? err / p.yref_max : err;
  finish(state);
}

constexpr int kThreads[] = {1, 2};

template <class Fn>
void add(const std::string& name, Fn&& fn) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn))->UseRealTime()->Unit(benchmark::kMillisecond);
}

std::string bm_name(const char* op, std::string_view fmt, const char* impl, int threads) {
  return std::string("BM_") + op + "/" + std::string(fmt) + "/" + impl + "/threads:" + std::to_string(threads);
}

template <class F>
void register_format() {
  using T = FormatTraits<F>;
  // NF4 has no peer here (bitsandbytes is not a C library we can dlopen).
  const bool has_peer = peer_names<F>().dequantize != nullptr;
  for (int t : kThreads) {
    if constexpr (T::kQuantizable) {
      if (has_peer)
        add(bm_name("quantize", T::kName, "llama.cpp", t), [t](benchmark::State& s) { bm_quantize<F>(s, false, t); });
      add(bm_name("quantize", T::kName, "qlora", t), [t](benchmark::State& s) { bm_quantize<F>(s, true, t); });
    }
  }
  for (int t : kThreads) {
    if (has_peer)
      add(bm_name("dequantize", T::kName, "llama.cpp", t), [t](benchmark::State& s) { bm_dequantize<F>(s, false, t); });
    add(bm_name("dequantize", T::kName, "qlora", t), [t](benchmark::State& s) { bm_dequantize<F>(s, true, t); });
  }
  if constexpr (T::kQuantizable) {
    for (int t : kThreads) {
      if (has_peer)
        add(bm_name("matvec", T::kName, "llama.cpp", t),
          [t](benchmark::State& s) { bm_matvec<F>(s, MatvecImpl::kPeer, t); });
      if constexpr (kHasQ8kDot<F>)
        add(bm_name("matvec", T::kName, "qlora", t),
            [t](benchmark::State& s) { bm_matvec<F>(s, MatvecImpl::kOursQ8K, t); });
      add(bm_name("matvec", T::kName, "qlora-f32", t),
          [t](benchmark::State& s) { bm_matvec<F>(s, MatvecImpl::kOursF32, t); });
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  for (int t : kThreads) pool_for(t);  // create pools before timing anything
  const Peer& p = peer();
  const Shape& s = shape();
  benchmark::AddCustomContext("matrix", std::to_string(s.rows) + "x" + std::to_string(s.cols) + " f32");
  benchmark::AddCustomContext("peer", p.ok ? "llama.cpp ggml from " + p.dir : "NOT LOADED: " + p.why);
  if (!p.ok) std::fprintf(stderr, "note: llama.cpp benchmarks are skipped: %s\n", p.why.c_str());

  register_format<format::Q8_0>();
  register_format<format::Q5_0>();
  register_format<format::Q4_K>();
  register_format<format::Q6_K>();
  register_format<format::NF4>();
  register_format<format::Q4_1>();

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
