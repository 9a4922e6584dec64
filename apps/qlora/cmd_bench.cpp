// `qlora bench MODEL.gguf [-p 256] [-n 64] [-r 3] [-t THREADS]`
//
// Prompt processing and token generation speed, measured as llama-bench does:
//   pp<P>: one forward pass of P tokens from an empty cache (last-token logits);
//   tg<N>: N single-token steps from an empty cache.
// Each test runs once to warm up, then R times; the table shows the median
// tokens/s and the range. Token ids are a fixed pseudo-random sequence (the
// speed does not depend on which ids they are).
#include <cxxopts.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "model_session.hpp"

namespace qlora::app {
namespace {

struct Timing {
  double median = 0, lo = 0, hi = 0;
};

Timing summarize(std::vector<double> tps) {
  std::sort(tps.begin(), tps.end());
  const std::size_t n = tps.size();
  const double med = n % 2 ? tps[n / 2] : 0.5 * (tps[n / 2 - 1] + tps[n / 2]);
  return {med, tps.front(), tps.back()};
}

/// The type holding most weight bytes (what llama-bench's "model" column names).
std::string main_type(const io::GgufFile& f) {
  std::map<std::string, std::uint64_t> bytes;
  for (const auto& t : f.tensors())
    if (t.n_dims >= 2) bytes[quant::ggml_type_name(t.type)] += t.n_bytes;
  std::string best = "?";
  std::uint64_t most = 0;
  for (const auto& [k, v] : bytes)
    if (v > most) most = v, best = k;
  return best;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  const std::string cmd = "qlora bench";
  cxxopts::Options o(cmd, "Prompt-processing and token-generation speed of a GGUF model (llama-bench style).");
  o.positional_help("MODEL.gguf");
  o.add_options()("p,n-prompt", "prompt tokens for pp; 0 = skip", cxxopts::value<std::uint32_t>()->default_value("256"))(
      "n,n-gen", "generated tokens for tg; 0 = skip", cxxopts::value<std::uint32_t>()->default_value("64"))(
      "r,repetitions", "timed runs per test (median reported)", cxxopts::value<int>()->default_value("3"))(
      "t,threads", "threads; 0 = QLORA_THREADS or all cores", cxxopts::value<int>()->default_value("0"))(
      "h,help", "show this help")("model", "GGUF model", cxxopts::value<std::string>());
  o.parse_positional({"model"});
  ModelSession::add_lora_option(o);
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  if (!args.count("model")) {
    std::fprintf(stderr, "%s: missing MODEL.gguf\n%s\n", cmd.c_str(), o.help().c_str());
    return 2;
  }
  const std::uint32_t P = args["n-prompt"].as<std::uint32_t>(), N = args["n-gen"].as<std::uint32_t>();
  const int R = std::max(1, args["repetitions"].as<int>());
  const std::string path = args["model"].as<std::string>();
  auto s = ModelSession::open(cmd, path, args["threads"].as<int>());
  if (!s) return 1;
  if (!s->open_decoder(cmd, std::max<std::uint32_t>({P, N, 1}))) return 1;
  if (!s->apply_lora_option(args, cmd)) return 1;
  model::Decoder& dec = *s->dec;
  if (dec.cache().capacity() < std::max(P, N)) {
    std::fprintf(stderr, "%s: the model's context (%u) is shorter than the test\n", cmd.c_str(),
                 dec.cache().capacity());
    return 1;
  }
  const std::uint32_t V = dec.config().n_vocab;
  std::vector<text::TokenId> ids(std::max<std::uint32_t>({P, N, 1}));
  std::uint64_t x = 0x2545F4914F6CDD1Dull;
  for (auto& id : ids) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    id = text::TokenId(x % V);
  }
  std::vector<float> logits;
  using clock = std::chrono::steady_clock;
  auto pp = [&]() -> double {
    dec.cache().clear();
    const auto t0 = clock::now();
    if (Status st = dec.forward(std::span<const text::TokenId>(ids.data(), P), logits, false); !st) return -1;
    return double(P) / std::chrono::duration<double>(clock::now() - t0).count();
  };
  auto tg = [&]() -> double {
    dec.cache().clear();
    const auto t0 = clock::now();
    for (std::uint32_t i = 0; i < N; ++i)
      if (Status st = dec.forward(std::span<const text::TokenId>(ids.data() + i, 1), logits, false); !st) return -1;
    return double(N) / std::chrono::duration<double>(clock::now() - t0).count();
  };

  std::uint64_t bytes = 0, params = 0;
  for (const auto& t : s->file.tensors()) bytes += t.n_bytes, params += t.n_elements();
  const std::string model_name = dec.config().name + " " + main_type(s->file);
  std::printf("| %-28s | %10s | %8s | %7s | %8s | %16s | %18s |\n", "model", "size", "params", "threads", "test",
              "t/s (median)", "range");
  std::printf("| %.28s | %.10s | %.8s | %.7s | %.8s | %.16s | %.18s |\n", "------------------------------",
              "------------", "----------", "---------", "----------", "------------------", "--------------------");
  auto row = [&](const char* kind, std::uint32_t n, const std::function<double()>& run) -> bool {
    if (n == 0) return true;
    if (run() < 0) {  // warm-up, and the error check
      std::fprintf(stderr, "%s: %s%u failed\n", cmd.c_str(), kind, n);
      return false;
    }
    std::vector<double> tps;
    for (int r = 0; r < R; ++r) tps.push_back(run());
    const Timing t = summarize(tps);
    char test[16], size[16], par[16], range[32];
    std::snprintf(test, sizeof test, "%s%u", kind, n);
    std::snprintf(size, sizeof size, "%.2f MiB", double(bytes) / 1048576.0);
    std::snprintf(par, sizeof par, "%.2f M", double(params) / 1e6);
    std::snprintf(range, sizeof range, "%.2f - %.2f", t.lo, t.hi);
    std::printf("| %-28s | %10s | %8s | %7d | %8s | %16.2f | %18s |\n", model_name.c_str(), size, par,
                s->pool().size(), test, t.median, range);
    std::fflush(stdout);
    return true;
  };
  if (!row("pp", P, pp) || !row("tg", N, tg)) return 1;
  return 0;
}

}  // namespace qlora::app
