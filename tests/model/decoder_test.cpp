// Pins model/decoder.hpp: the forward pass equals a naive reference written
// straight from the equations (no KV cache, double precision) on tiny random
// models of both attention policies and both RoPE styles; incremental decoding
// equals one batched pass; bad models and bad tokens give clear errors; and on
// the real SmolLM2-135M the logits and the greedy continuations are
// llama.cpp's (reference values made by tools/gen_logits_golden.py with the
// real peer): bit for bit for the quantized formats when this build computes
// with the same vector width as the peer's build did (see same_cpu_as_peer).
#include "qlora/model/decoder.hpp"

#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "qlora/convert/quantize_gguf.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/model/softmax.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qlora;
using model::ModelConfig;

fs::path temp_dir() { return qlora::test::process_temp_dir("qlora_decoder"); }

/// A random model written as an F32 GGUF, with its tensors kept for the reference.
struct TinyModel {
  ModelConfig cfg;
  std::map<std::string, std::vector<float>> t;
  std::string path;
};

TinyModel make_model(const std::string& arch, std::uint32_t n_head, std::uint32_t n_head_kv, bool tied,
                     unsigned seed) {
  TinyModel m;
  ModelConfig& c = m.cfg;
  c = model::presets::tiny();
  c.arch = arch;
  c.n_head = n_head;
  c.n_head_kv = n_head_kv;
  c.head_dim = c.n_embd / n_head;
  c.n_rot = c.head_dim;
  c.tied_embeddings = tied;
  c.qkv_bias = arch == "qwen2";
  c.rope_style = arch == "qwen2" ? model::RopeStyle::kNeox : model::RopeStyle::kNorm;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.3f);
  auto add = [&](const std::string& name, std::size_t n, float mean = 0.0f) {
    auto& v = m.t[name];
    v.resize(n);
    for (auto& x : v) x = mean + g(rng);
  };
  const std::size_t E = c.n_embd, V = c.n_vocab, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
  add("token_embd.weight", E * V);
  add("output_norm.weight", E, 1.0f);
  if (!tied) add("output.weight", E * V);
  for (std::uint32_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", E, 1.0f);
    add(b + "attn_q.weight", E * Q);
    add(b + "attn_k.weight", E * KV);
    add(b + "attn_v.weight", E * KV);
    add(b + "attn_output.weight", Q * E);
    if (c.qkv_bias) {
      add(b + "attn_q.bias", Q);
      add(b + "attn_k.bias", KV);
      add(b + "attn_v.bias", KV);
    }
    add(b + "ffn_norm.weight", E, 1.0f);
    add(b + "ffn_gate.weight", E * F);
    add(b + "ffn_up.weight", E * F);
    add(b + "ffn_down.weight", F * E);
  }
  io::GgufWriter w;
  const std::string p = arch + ".";
  EXPECT_TRUE(w.set_string("general.architecture", arch).is_ok());
  EXPECT_TRUE(w.set_u32(p + "block_count", c.n_layer).is_ok());
  EXPECT_TRUE(w.set_u32(p + "embedding_length", c.n_embd).is_ok());
  EXPECT_TRUE(w.set_u32(p + "feed_forward_length", c.n_ff).is_ok());
  EXPECT_TRUE(w.set_u32(p + "attention.head_count", c.n_head).is_ok());
  EXPECT_TRUE(w.set_u32(p + "attention.head_count_kv", c.n_head_kv).is_ok());
  EXPECT_TRUE(w.set_u32(p + "context_length", c.context_length).is_ok());
  EXPECT_TRUE(w.set_f32(p + "rope.freq_base", c.rope_theta).is_ok());
  EXPECT_TRUE(w.set_f32(p + "attention.layer_norm_rms_epsilon", c.rms_eps).is_ok());
  EXPECT_TRUE(w.set_u32(p + "vocab_size", c.n_vocab).is_ok());
  for (const auto& [name, v] : m.t) {
    std::vector<std::uint64_t> ne;
    if (name.find("norm") != std::string::npos || name.find("bias") != std::string::npos) ne = {v.size()};
    else if (name == "token_embd.weight" || name == "output.weight") ne = {E, V};
    else if (name.find("attn_q.") != std::string::npos) ne = {E, Q};
    else if (name.find("attn_k.") != std::string::npos || name.find("attn_v.") != std::string::npos) ne = {E, KV};
    else if (name.find("attn_output") != std::string::npos) ne = {Q, E};
    else if (name.find("ffn_down") != std::string::npos) ne = {F, E};
    else ne = {E, F};
    EXPECT_TRUE(w.add_tensor(name, ne, 0, std::as_bytes(std::span(v))).is_ok()) << name;
  }
  m.path = (temp_dir() / (arch + "_" + std::to_string(n_head) + "_" + std::to_string(n_head_kv) + ".gguf")).string();
  EXPECT_TRUE(w.write_file(m.path).is_ok());
  return m;
}

/// The equations, in double, recomputing every position from scratch.
std::vector<double> reference_logits(const TinyModel& m, const std::vector<std::int32_t>& tokens) {
  const ModelConfig& c = m.cfg;
  const int E = int(c.n_embd), V = int(c.n_vocab), Q = int(c.q_dim()), KV = int(c.kv_dim()), F = int(c.n_ff);
  const int hd = int(c.head_dim), N = int(tokens.size());
  auto W = [&](const std::string& n) -> const std::vector<float>& { return m.t.at(n); };
  // y[N][rows] = x[N][cols] . W^T with W stored [rows][cols]
  auto lin = [&](const std::vector<double>& x, const std::vector<float>& w, int cols, int rows) {
    std::vector<double> y(std::size_t(N) * rows);
    for (int n = 0; n < N; ++n)
      for (int r = 0; r < rows; ++r) {
        double s = 0;
        for (int k = 0; k < cols; ++k) s += x[std::size_t(n) * cols + k] * w[std::size_t(r) * cols + k];
        y[std::size_t(n) * rows + r] = s;
      }
    return y;
  };
  auto norm = [&](const std::vector<double>& x, const std::vector<float>& g) {
    std::vector<double> y(x.size());
    for (int n = 0; n < N; ++n) {
      double ss = 0;
      for (int i = 0; i < E; ++i) ss += x[std::size_t(n) * E + i] * x[std::size_t(n) * E + i];
      const double s = 1.0 / std::sqrt(ss / E + c.rms_eps);
      for (int i = 0; i < E; ++i) y[std::size_t(n) * E + i] = x[std::size_t(n) * E + i] * s * g[std::size_t(i)];
    }
    return y;
  };
  auto rope = [&](std::vector<double>& x, int heads) {
    for (int n = 0; n < N; ++n)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < hd / 2; ++i) {
          const double theta = n * std::pow(double(c.rope_theta), -2.0 * i / hd);
          const bool neox = c.rope_style == model::RopeStyle::kNeox;
          double& a = x[std::size_t(n) * heads * hd + std::size_t(h) * hd + (neox ? i : 2 * i)];
          double& b = x[std::size_t(n) * heads * hd + std::size_t(h) * hd + (neox ? i + hd / 2 : 2 * i + 1)];
          const double a0 = a, b0 = b;
          a = a0 * std::cos(theta) - b0 * std::sin(theta);
          b = a0 * std::sin(theta) + b0 * std::cos(theta);
        }
  };
  std::vector<double> x(std::size_t(N) * E);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < E; ++i) x[std::size_t(n) * E + i] = W("token_embd.weight")[std::size_t(tokens[std::size_t(n)]) * E + i];
  for (std::uint32_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    auto h = norm(x, W(b + "attn_norm.weight"));
    auto q = lin(h, W(b + "attn_q.weight"), E, Q), k = lin(h, W(b + "attn_k.weight"), E, KV),
         v = lin(h, W(b + "attn_v.weight"), E, KV);
    if (c.qkv_bias)
      for (int n = 0; n < N; ++n) {
        for (int i = 0; i < Q; ++i) q[std::size_t(n) * Q + i] += W(b + "attn_q.bias")[std::size_t(i)];
        for (int i = 0; i < KV; ++i) k[std::size_t(n) * KV + i] += W(b + "attn_k.bias")[std::size_t(i)];
        for (int i = 0; i < KV; ++i) v[std::size_t(n) * KV + i] += W(b + "attn_v.bias")[std::size_t(i)];
      }
    rope(q, int(c.n_head));
    rope(k, int(c.n_head_kv));
    std::vector<double> att(std::size_t(N) * Q);
    const int group = int(c.n_head / c.n_head_kv);
    for (int n = 0; n < N; ++n)
      for (int hh = 0; hh < int(c.n_head); ++hh) {
        const int kvh = hh / group;
        std::vector<double> s(std::size_t(n) + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= n; ++j) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += q[std::size_t(n) * Q + hh * hd + i] * k[std::size_t(j) * KV + kvh * hd + i];
          s[std::size_t(j)] = d / std::sqrt(double(hd));
          mx = std::max(mx, s[std::size_t(j)]);
        }
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int j = 0; j <= n; ++j)
          for (int i = 0; i < hd; ++i)
            att[std::size_t(n) * Q + hh * hd + i] += s[std::size_t(j)] / sum * v[std::size_t(j) * KV + kvh * hd + i];
      }
    auto o = lin(att, W(b + "attn_output.weight"), Q, E);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    h = norm(x, W(b + "ffn_norm.weight"));
    auto gt = lin(h, W(b + "ffn_gate.weight"), E, F), up = lin(h, W(b + "ffn_up.weight"), E, F);
    for (std::size_t i = 0; i < gt.size(); ++i) gt[i] = gt[i] / (1 + std::exp(-gt[i])) * up[i];
    auto d = lin(gt, W(b + "ffn_down.weight"), F, E);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += d[i];
  }
  auto h = norm(x, W("output_norm.weight"));
  return lin(h, W(c.tied_embeddings ? "token_embd.weight" : "output.weight"), E, V);
}

void expect_matches_reference(const TinyModel& m, std::string_view expect_attention) {
  auto f = io::GgufFile::open(m.path);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto d = model::Decoder::open(*f);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  EXPECT_EQ(d->attention(), expect_attention);
  const std::vector<std::int32_t> tokens = {3, 17, 42, 5, 63, 0, 9, 9, 31, 12, 7, 50};
  std::vector<float> logits;
  ASSERT_TRUE(d->forward(tokens, logits, true).is_ok());
  const auto ref = reference_logits(m, tokens);
  ASSERT_EQ(logits.size(), ref.size());
  double max_err = 0, max_ref = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    max_err = std::max(max_err, std::fabs(logits[i] - ref[i]));
    max_ref = std::max(max_ref, std::fabs(ref[i]));
  }
  // Only fp16 rounding where llama.cpp rounds (K/V cache, Q before Q.K, the
  // attention probabilities before P.V) and fp32 arithmetic separate us.
  EXPECT_LT(max_err, 5e-3 * max_ref) << "max |logit error| " << max_err << " (max |logit| " << max_ref << ")";

  // Token by token through the KV cache gives the same logits as one pass.
  d->cache().clear();
  std::vector<float> step;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    ASSERT_TRUE(d->forward(std::span(tokens).subspan(t, 1), step, false).is_ok());
    for (std::size_t v = 0; v < m.cfg.n_vocab; ++v)
      ASSERT_NEAR(step[v], logits[t * m.cfg.n_vocab + v], 1e-4) << "position " << t;
  }
  EXPECT_EQ(d->cache().size(), tokens.size());
}

TEST(Decoder, LlamaGqaMatchesReference) { expect_matches_reference(make_model("llama", 4, 2, true, 1), "gqa"); }
TEST(Decoder, LlamaMhaMatchesReference) { expect_matches_reference(make_model("llama", 4, 4, false, 2), "mha"); }
TEST(Decoder, Qwen2WithBiasesAndNeoxRopeMatchesReference) {
  expect_matches_reference(make_model("qwen2", 4, 1, true, 3), "gqa");
}

TEST(Decoder, AttentionPolicyChecks) {
  const ModelConfig gqa = model::presets::swallow_8b();
  EXPECT_TRUE(model::Attention<model::attn::GQA>::check(gqa).is_ok());
  const Status st = model::Attention<model::attn::MHA>::check(gqa);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("32 query and 8 KV heads"), std::string::npos) << st.message();
  EXPECT_EQ(model::Attention<model::attn::GQA>::kv_head(31, gqa.n_gqa()), 7u);
  EXPECT_EQ(model::Attention<model::attn::MHA>::kv_head(31, 1), 31u);
}

TEST(Decoder, PresetsStateTrueConfigurations) {
  for (const auto& c : model::presets::all()) EXPECT_TRUE(c.validate().is_ok()) << c.name;
  EXPECT_TRUE(model::presets::elyza_jp_8b().is_gqa());   // the paper says MHA; it is 32/8 GQA
  EXPECT_EQ(model::presets::qwen25_7b().n_gqa(), 7u);
  EXPECT_EQ(model::presets::smollm2_135m().n_gqa(), 3u);
  EXPECT_TRUE(model::presets::qwen25_05b().qkv_bias);
}

TEST(Decoder, BadModelsAndTokensGiveClearErrors) {
  TinyModel m = make_model("llama", 4, 2, true, 4);
  auto f = io::GgufFile::open(m.path);
  ASSERT_TRUE(f.is_ok());
  auto d = model::Decoder::open(*f);
  ASSERT_TRUE(d.is_ok());
  std::vector<float> logits;
  const std::vector<std::int32_t> bad = {1, 64};
  const Status st = d->forward(bad, logits);
  EXPECT_NE(st.message().find("token id 64 at index 1"), std::string::npos) << st.message();

  // Drop a tensor, then give one a wrong shape, then an unknown architecture.
  auto rewrite = [&](const std::string& arch, const std::string& skip, const std::string& reshape) {
    io::GgufWriter w;
    for (const auto& kv : f->kvs()) EXPECT_TRUE(w.set(kv.key, kv.value).is_ok());
    EXPECT_TRUE(w.set_string("general.architecture", arch).is_ok());
    for (const auto& t : f->tensors()) {
      if (t.name == skip) continue;
      std::vector<std::uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
      if (t.name == reshape) std::swap(ne[0], ne[1]);
      EXPECT_TRUE(w.add_tensor(t.name, ne, t.type, t.data).is_ok());
    }
    const std::string path = (temp_dir() / "bad.gguf").string();
    EXPECT_TRUE(w.write_file(path).is_ok());
    auto g = io::GgufFile::open(path);
    EXPECT_TRUE(g.is_ok());
    auto r = model::Decoder::open(*g);
    EXPECT_FALSE(r.is_ok());
    return r.is_ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(rewrite("llama", "blk.1.ffn_up.weight", "").find("tensor 'blk.1.ffn_up.weight' missing"), std::string::npos);
  EXPECT_NE(rewrite("llama", "", "blk.0.attn_k.weight").find("'blk.0.attn_k.weight' has shape [32, 64], expected [64, 32]"),
            std::string::npos);
  // An unknown architecture fails on its metadata before any tensor is looked at.
  const std::string msg = rewrite("mamba", "", "");
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
}

}  // namespace

namespace {

/// Logits of SmolLM2-135M in one format against llama.cpp's for the same file.
struct LogitAgreement {
  int top1_same = 0, positions = 0;
  double max_abs = 0, mean_abs = 0, max_lse = 0;
};

const nlohmann::json& reference_doc() {
  static const nlohmann::json doc = [] {
    std::ifstream in(fs::path(QLORA_TEST_DATA_DIR) / "logits" / "smollm2.json");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

/// Our kernels pick ggml's arithmetic by the same ISA macros llama.cpp's
/// build does (vector width 16 with AVX-512, else 8; cpu/simd_f32.hpp,
/// cpu/vec_exp.hpp), so our results equal the reference data's bits when
/// the peer that made it was built for the same vector width as we are.
bool same_cpu_as_peer() {
  const std::string cpu = reference_doc().value("peer_cpu", "");
  const bool peer_avx512 = cpu.find("AVX512 = 1") != std::string::npos;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  return peer_avx512;
#elif defined(__AVX2__) && defined(__FMA__)
  return !peer_avx512 && cpu.find("AVX2 = 1") != std::string::npos;
#else
  return false;
#endif
}

LogitAgreement compare_with_llama(const std::string& format, const std::string& path) {
  const auto& doc = reference_doc();
  const auto tokens = doc["tokens"].get<std::vector<std::int32_t>>();
  auto f = io::GgufFile::open(path);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  auto d = model::Decoder::open(*f);
  EXPECT_TRUE(d.is_ok()) << d.status().message();
  std::vector<float> logits;
  EXPECT_TRUE(d->forward(tokens, logits, true).is_ok());
  const std::size_t V = d->config().n_vocab;
  LogitAgreement a;
  std::size_t n = 0;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const auto& ref = doc["formats"][format][t];
    const float* row = logits.data() + t * V;
    const std::size_t best = std::size_t(std::max_element(row, row + V) - row);
    a.top1_same += best == ref["argmax"].get<std::size_t>();
    a.max_lse = std::max(a.max_lse, std::fabs(model::log_sum_exp(row, std::int64_t(V)) - ref["logsumexp"].get<double>()));
    const auto ids = ref["ids"].get<std::vector<std::size_t>>();
    const auto vals = ref["logits"].get<std::vector<double>>();
    for (std::size_t i = 0; i < ids.size(); ++i, ++n) {
      const double e = std::fabs(row[ids[i]] - vals[i]);
      a.max_abs = std::max(a.max_abs, e);
      a.mean_abs += e;
    }
  }
  a.mean_abs /= double(n);
  a.positions = int(tokens.size());
  return a;
}

fs::path smollm2_path() { return fs::path(QLORA_MODEL_CACHE_DIR) / "SmolLM2-135M-Instruct.Q4_1.gguf"; }

template <class S>
std::string quantized_smollm2() {
  const std::string out = (temp_dir() / ("smollm2." + std::string(quant::QuantScheme<S>::kName) + ".gguf")).string();
  if (!fs::exists(out)) {
    auto in = io::GgufFile::open(smollm2_path().string());
    convert::QuantizeOptions opt;
    opt.measure_error = false;
    EXPECT_TRUE(convert::quantize_gguf<S>(*in, out, opt).is_ok());
  }
  return out;
}

void report(const std::string& name, const LogitAgreement& a) {
  std::printf("[ smollm2 %-6s ] top-1 %d/%d, max |dlogit| %.4f, mean %.5f, max |dlogsumexp| %.4f\n", name.c_str(),
              a.top1_same, a.positions, a.max_abs, a.mean_abs, a.max_lse);
}

/// Greedy continuations against llama.cpp's stored ones (arg-max stepping from
/// an empty cache: the prompt in one forward, then one token per forward).
struct GreedyAgreement {
  int identical = 0, prompts = 0;
  std::string first_diffs;  // per prompt: "-" or the first differing step
};

GreedyAgreement greedy_with_llama(const std::string& format, const std::string& path) {
  GreedyAgreement g;
  auto f = io::GgufFile::open(path);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  ThreadPool one(1);  // single-token steps: a second thread only adds hand-offs at this size
  auto d = model::Decoder::open(*f, {512, &one});
  EXPECT_TRUE(d.is_ok()) << d.status().message();
  if (!f || !d) return g;
  std::vector<float> logits;
  for (const auto& ref : reference_doc()["greedy"][format]) {
    const auto prompt = ref["prompt_ids"].get<std::vector<std::int32_t>>();
    const auto want = ref["tokens"].get<std::vector<std::int32_t>>();
    d->cache().clear();
    EXPECT_TRUE(d->forward(prompt, logits, false).is_ok());
    std::vector<std::int32_t> got;
    for (std::size_t i = 0; i < want.size(); ++i) {
      const std::int32_t tok = std::int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      got.push_back(tok);
      if (i + 1 < want.size()) {
        EXPECT_TRUE(d->forward(std::span(&tok, 1), logits, false).is_ok());
      }
    }
    const auto diff = std::mismatch(got.begin(), got.end(), want.begin()).first;
    g.identical += diff == got.end();
    g.first_diffs += (g.prompts ? " " : "") + (diff == got.end() ? std::string("-") : std::to_string(diff - got.begin()));
    ++g.prompts;
  }
  return g;
}

TEST(DecoderSmolLM2, LogitsTrackLlamaCpp) {
  if (!fs::exists(smollm2_path())) GTEST_SKIP() << "SmolLM2 model absent: run tools/fetch_model.sh (CI does)";
  const auto f16 = compare_with_llama("f16", quantized_smollm2<quant::scheme::F16>());
  const auto q8 = compare_with_llama("q8_0", quantized_smollm2<quant::scheme::Q8_0>());
  const auto q4km = compare_with_llama("q4_k_m", quantized_smollm2<quant::scheme::Q4_K_M>());
  const auto q41 = compare_with_llama("q4_1", smollm2_path().string());
  report("f16", f16);
  report("q8_0", q8);
  report("q4_k_m", q4km);
  report("q4_1", q41);
  // F16: ggml rounds the activations of an f16 product to fp16 and we keep
  // them in fp32 (everything else is llama.cpp's arithmetic): measured
  // top-1 64/64, max |dlogit| 0.052 (logits are ~10 in magnitude), mean 0.0067.
  EXPECT_GE(f16.top1_same, 63);
  EXPECT_LT(f16.max_abs, 0.08);
  EXPECT_LT(f16.mean_abs, 0.015);
  if (same_cpu_as_peer()) {
    // Quantized formats: llama.cpp's activations, codes, kernels and
    // summation orders, so its logits to the bit (measured: 64/64, 0.0).
    for (const auto* a : {&q8, &q4km, &q41}) {
      EXPECT_EQ(a->top1_same, 64);
      EXPECT_EQ(a->max_abs, 0.0);
    }
  } else {
    // A peer built for another vector width sums in another order; the
    // tolerances measured before the arithmetic matched llama.cpp's.
    EXPECT_GE(q8.top1_same, 56);
    EXPECT_LT(q8.mean_abs, 0.2);
    EXPECT_GE(q4km.top1_same, 55);
    EXPECT_LT(q4km.mean_abs, 0.35);
    EXPECT_GE(q41.top1_same, 57);
    EXPECT_LT(q41.mean_abs, 0.3);
  }
}

TEST(DecoderSmolLM2, GreedyContinuationsAreLlamaCpps) {
  if (!fs::exists(smollm2_path())) GTEST_SKIP() << "SmolLM2 model absent: run tools/fetch_model.sh (CI does)";
  ASSERT_TRUE(reference_doc().contains("greedy")) << "regenerate tests/data/logits/smollm2.json";
  const std::pair<std::string, std::string> formats[] = {
      {"f16", quantized_smollm2<quant::scheme::F16>()},
      {"q8_0", quantized_smollm2<quant::scheme::Q8_0>()},
      {"q4_k_m", quantized_smollm2<quant::scheme::Q4_K_M>()},
      {"q4_1", smollm2_path().string()}};
  for (const auto& [name, path] : formats) {
    const GreedyAgreement g = greedy_with_llama(name, path);
    std::printf("[ smollm2 %-6s ] greedy 32-token continuations identical %d/%d (first difference per prompt: %s)\n",
                name.c_str(), g.identical, g.prompts, g.first_diffs.c_str());
    ASSERT_GT(g.prompts, 0);
    // Every format, f16 included (its logits differ by ~0.05 at most, never
    // at a near-tie of these prompts): the issue asks for >= 9 of 10 prompts
    // (tools/compare_llama_eval.py); with llama.cpp's arithmetic it is all.
    if (same_cpu_as_peer()) {
      EXPECT_EQ(g.identical, g.prompts) << name;
    }
  }
}

}  // namespace
