// Pins convert/export_nf4.hpp: a synthetic llama/qwen2 GGUF, built from
// known Hugging Face-layout weights (q/k permuted the way llama.cpp's
// converter does, independently of hf_names.hpp), exports to a directory whose
// model.safetensors holds exactly the HF names and shapes, NF4 weights equal
// to quantize_nf4 of the HF-layout source, bf16 copies of everything else,
// and whose config.json carries the model and bitsandbytes settings. The real
// SmolLM2-135M export is checked for tensor count and NF4 error when the model
// file is present.
#include "qlora/convert/export_nf4.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <cstring>

#include "qlora/io/bnb_safetensors.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/io/safetensors.hpp"
#include "quant/test_data.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qlora;
using quant::GgmlType;

fs::path temp_dir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("qlora_export_test_" + std::to_string(::getpid()) + "_" + tag);
  fs::create_directories(d);
  return d;
}

constexpr int kEmbd = 128, kHead = 4, kHeadKv = 2, kHd = 32, kFf = 192, kVocab = 96, kLayers = 2;

/// A synthetic model: HF-layout tensors (the truth) and the GGUF made from them.
struct Synth {
  std::map<std::string, std::vector<float>> hf;                  // HF name -> row-major data
  std::map<std::string, std::vector<std::int64_t>> hf_shape;     // HF name -> shape
  std::vector<std::vector<float>> gguf_data;                     // keeps bytes alive until written
  std::string path;
};

/// llama.cpp's LlamaModel.permute, written out as index arithmetic on
/// reshape(n_head, 2, hd/2, cols).swapaxes(1, 2) — deliberately not using
/// hf_names.hpp, so the export's un-permutation is checked against it.
std::vector<float> llama_cpp_permute(const std::vector<float>& w, int n_head, int cols) {
  const int rows = int(w.size()) / cols, hd = rows / n_head;
  std::vector<float> out(w.size());
  for (int h = 0; h < n_head; ++h)
    for (int s = 0; s < 2; ++s)
      for (int i = 0; i < hd / 2; ++i)
        for (int c = 0; c < cols; ++c)
          out[std::size_t(((h * hd + 2 * i + s) * cols) + c)] = w[std::size_t(((h * hd + s * hd / 2 + i) * cols) + c)];
  return out;
}

Synth write_synth(const fs::path& dir, const std::string& arch, bool tied, bool extra_tensor = false) {
  Synth m;
  m.path = (dir / (arch + (tied ? "_tied" : "_untied") + ".gguf")).string();
  io::GgufWriter w;
  const std::string a = arch + ".";
  EXPECT_TRUE(w.set_string("general.architecture", arch).is_ok());
  EXPECT_TRUE(w.set_u32(a + "block_count", kLayers).is_ok());
  EXPECT_TRUE(w.set_u32(a + "context_length", 4096).is_ok());
  EXPECT_TRUE(w.set_u32(a + "embedding_length", kEmbd).is_ok());
  EXPECT_TRUE(w.set_u32(a + "feed_forward_length", kFf).is_ok());
  EXPECT_TRUE(w.set_u32(a + "attention.head_count", kHead).is_ok());
  EXPECT_TRUE(w.set_u32(a + "attention.head_count_kv", kHeadKv).is_ok());
  EXPECT_TRUE(w.set_f32(a + "rope.freq_base", 100000.0f).is_ok());
  EXPECT_TRUE(w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f).is_ok());
  EXPECT_TRUE(w.set_u32(a + "rope.dimension_count", kHd).is_ok());
  EXPECT_TRUE(w.set_u32("tokenizer.ggml.bos_token_id", 1).is_ok());
  EXPECT_TRUE(w.set_u32("tokenizer.ggml.eos_token_id", 2).is_ok());
  // `hf_name` with HF shape {rows, cols} (or {rows}); written as GGUF `name`.
  auto add = [&](const std::string& name, const std::string& hf_name, std::vector<std::int64_t> shape, int permute_heads) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    const unsigned seed = unsigned(m.hf.size() * 7 + 3);
    std::vector<float> x = test::gaussian(int(n), seed, 0.05f);
    if (shape.size() == 1 && name.find("norm") != std::string::npos)
      for (auto& v : x) v += 1.0f;  // norm gains sit near 1
    m.hf[hf_name] = x;
    m.hf_shape[hf_name] = shape;
    const int cols = shape.size() == 2 ? int(shape[1]) : 1;
    m.gguf_data.push_back(permute_heads ? llama_cpp_permute(x, permute_heads, cols) : x);
    std::vector<std::uint64_t> ne(shape.rbegin(), shape.rend());
    EXPECT_TRUE(w.add_tensor(name, ne, std::uint32_t(GgmlType::F32), std::as_bytes(std::span(m.gguf_data.back()))).is_ok());
  };
  const bool llama = arch == "llama";
  add("token_embd.weight", "model.embed_tokens.weight", {kVocab, kEmbd}, 0);
  for (int l = 0; l < kLayers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", h + "input_layernorm.weight", {kEmbd}, 0);
    add(b + "attn_q.weight", h + "self_attn.q_proj.weight", {kHead * kHd, kEmbd}, llama ? kHead : 0);
    add(b + "attn_k.weight", h + "self_attn.k_proj.weight", {kHeadKv * kHd, kEmbd}, llama ? kHeadKv : 0);
    add(b + "attn_v.weight", h + "self_attn.v_proj.weight", {kHeadKv * kHd, kEmbd}, 0);
    if (!llama) {
      add(b + "attn_q.bias", h + "self_attn.q_proj.bias", {kHead * kHd}, 0);
      add(b + "attn_k.bias", h + "self_attn.k_proj.bias", {kHeadKv * kHd}, 0);
      add(b + "attn_v.bias", h + "self_attn.v_proj.bias", {kHeadKv * kHd}, 0);
    }
    add(b + "attn_output.weight", h + "self_attn.o_proj.weight", {kEmbd, kHead * kHd}, 0);
    add(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {kEmbd}, 0);
    add(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {kFf, kEmbd}, 0);
    add(b + "ffn_up.weight", h + "mlp.up_proj.weight", {kFf, kEmbd}, 0);
    add(b + "ffn_down.weight", h + "mlp.down_proj.weight", {kEmbd, kFf}, 0);
  }
  add("output_norm.weight", "model.norm.weight", {kEmbd}, 0);
  if (!tied) add("output.weight", "lm_head.weight", {kVocab, kEmbd}, 0);
  if (extra_tensor) add("rope_freqs.weight", "rope_freqs", {kHd / 2}, 0);
  EXPECT_TRUE(w.write_file(m.path).is_ok());
  return m;
}

bool is_projection(const std::string& hf) {
  for (const char* p : {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "gate_proj.weight",
                        "up_proj.weight", "down_proj.weight"})
    if (hf.size() >= std::string(p).size() && hf.substr(hf.size() - std::string(p).size()) == p) return true;
  return false;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

void check_export(const std::string& arch, bool tied) {
  const fs::path dir = temp_dir(arch + (tied ? "_tied" : "_untied"));
  const Synth m = write_synth(dir, arch, tied);
  auto in = io::GgufFile::open(m.path);
  ASSERT_TRUE(in.is_ok()) << in.status().message();
  const fs::path out = dir / "hf";
  convert::Nf4ExportOptions opt;
  std::size_t calls = 0;
  opt.on_tensor = [&](const convert::HfTensorReport& r, std::size_t i, std::size_t total) {
    EXPECT_EQ(i, calls);
    EXPECT_EQ(total, in->tensors().size());
    EXPECT_FALSE(r.name.empty());
    ++calls;
  };
  auto report = convert::export_nf4_hf(*in, out.string(), opt);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_EQ(calls, in->tensors().size());
  EXPECT_EQ(report->tensors.size(), m.hf.size());
  EXPECT_EQ(report->nf4_tensors, std::size_t(7 * kLayers));
  EXPECT_EQ(report->tied_embeddings, tied);
  EXPECT_GT(report->nf4_rel_rmse, 0.05);  // NF4 on gaussians: ~0.1
  EXPECT_LT(report->nf4_rel_rmse, 0.15);

  auto st = io::SafetensorsFile::open((out / "model.safetensors").string());
  ASSERT_TRUE(st.is_ok()) << st.status().message();
  EXPECT_EQ(st->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));

  // Exactly the HF key set: six keys per NF4 projection, one per other tensor.
  std::set<std::string> want;
  for (const auto& [name, x] : m.hf) {
    if (!is_projection(name)) {
      want.insert(name);
      continue;
    }
    for (const char* k : {"", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
                          ".quant_state.bitsandbytes__nf4"})
      want.insert(name + k);
  }
  std::set<std::string> got;
  for (const auto& t : st->tensors()) got.insert(t.name);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.count("lm_head.weight"), tied ? 0u : 1u);

  for (const auto& r : report->tensors) {
    const auto& src = m.hf.at(r.name);
    EXPECT_EQ(r.shape, m.hf_shape.at(r.name)) << r.name;
    EXPECT_EQ(r.unpermuted, arch == "llama" && (r.name.find("q_proj") != std::string::npos ||
                                                r.name.find("k_proj") != std::string::npos))
        << r.name;
    if (is_projection(r.name)) {
      ASSERT_TRUE(r.nf4) << r.name;
      const std::string prefix = r.name.substr(0, r.name.size() - 6);  // drop "weight"
      auto w = io::load_bnb_nf4(*st, prefix);
      ASSERT_TRUE(w.is_ok()) << w.status().message();
      EXPECT_EQ(w->dtype, "bfloat16");
      EXPECT_EQ(w->tensor.shape, m.hf_shape.at(r.name));
      EXPECT_EQ(w->tensor.blocksize, 64);
      EXPECT_TRUE(w->tensor.double_quant.has_value());
      // Same bits as quantizing the HF-layout truth: proves names, shapes and
      // the Q/K un-permutation all at once.
      auto ref = quant::quantize_nf4(src, m.hf_shape.at(r.name), {.blocksize = 64, .double_quant = true});
      ASSERT_TRUE(ref.is_ok());
      EXPECT_EQ(w->tensor.packed, ref->packed) << r.name;
      auto got_y = quant::dequantize_nf4(w->tensor);
      auto ref_y = quant::dequantize_nf4(*ref);
      ASSERT_TRUE(got_y.is_ok() && ref_y.is_ok());
      EXPECT_EQ(*got_y, *ref_y) << r.name;
      EXPECT_DOUBLE_EQ(r.rel_rmse, test::rmse(*ref_y, src) / test::rms(src)) << r.name;
    } else {
      EXPECT_FALSE(r.nf4);
      EXPECT_EQ(r.dtype, "BF16");
      const auto* info = st->find(r.name);
      ASSERT_NE(info, nullptr) << r.name;
      EXPECT_EQ(info->dtype, io::StDtype::BF16) << r.name;  // norms too: transformers saves bf16
      EXPECT_EQ(info->shape, m.hf_shape.at(r.name));
      auto y = st->read_f32(r.name);
      ASSERT_TRUE(y.is_ok());
      for (std::size_t i = 0; i < src.size(); ++i) ASSERT_EQ((*y)[i], bf16_to_f32(f32_to_bf16(src[i]))) << r.name;
    }
  }
  // Sanity of the test itself: llama's q really was stored permuted.
  if (arch == "llama") {
    const auto* q = &in->tensors()[0];
    for (const auto& t : in->tensors())
      if (t.name == "blk.0.attn_q.weight") q = &t;
    EXPECT_NE(std::memcmp(q->data.data(), m.hf.at("model.layers.0.self_attn.q_proj.weight").data(), q->n_bytes), 0);
  }

  const auto c = read_json(out / "config.json");
  EXPECT_EQ(c["architectures"], nlohmann::json::array({arch == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"}));
  EXPECT_EQ(c["model_type"], arch);
  EXPECT_EQ(c["hidden_size"], kEmbd);
  EXPECT_EQ(c["intermediate_size"], kFf);
  EXPECT_EQ(c["num_hidden_layers"], kLayers);
  EXPECT_EQ(c["num_attention_heads"], kHead);
  EXPECT_EQ(c["num_key_value_heads"], kHeadKv);
  EXPECT_EQ(c["head_dim"], kHd);
  EXPECT_EQ(c["vocab_size"], kVocab);
  EXPECT_EQ(c["max_position_embeddings"], 4096);
  EXPECT_EQ(c["rms_norm_eps"].get<double>(), 1e-05);  // the decimal, not the f32 widened
  EXPECT_EQ(c["rope_theta"].get<double>(), 100000.0);
  EXPECT_EQ(c["rope_parameters"], (nlohmann::json{{"rope_theta", 100000.0}, {"rope_type", "default"}}));
  EXPECT_EQ(c["tie_word_embeddings"], tied);
  EXPECT_EQ(c["bos_token_id"], 1);
  EXPECT_EQ(c["eos_token_id"], 2);
  EXPECT_TRUE(c["pad_token_id"].is_null());
  EXPECT_EQ(c["dtype"], "bfloat16");
  EXPECT_FALSE(c.contains("torch_dtype"));  // transformers 5 warns about the legacy key
  EXPECT_EQ(c["attention_bias"], arch == "qwen2");
  EXPECT_EQ(c["quantization_config"],
            nlohmann::json::parse(R"({"_load_in_4bit": true, "_load_in_8bit": false,
              "bnb_4bit_compute_dtype": "bfloat16", "bnb_4bit_quant_storage": "uint8",
              "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true,
              "llm_int8_enable_fp32_cpu_offload": false, "llm_int8_has_fp16_weight": false,
              "llm_int8_skip_modules": null, "llm_int8_threshold": 6.0, "load_in_4bit": true,
              "load_in_8bit": false, "quant_method": "bitsandbytes"})"));
  // Formatting as transformers' json.dumps(indent=2, sort_keys=True).
  std::ifstream cf(out / "config.json");
  const std::string text((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.substr(0, 20), "{\n  \"architectures\":");
  EXPECT_NE(text.find("\"rms_norm_eps\": 1e-05,"), std::string::npos);
  EXPECT_NE(text.find("\"llm_int8_threshold\": 6.0,"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  const auto g = read_json(out / "generation_config.json");
  EXPECT_EQ(g["bos_token_id"], 1);
  EXPECT_EQ(g["eos_token_id"], 2);
  fs::remove_all(dir);
}

TEST(ExportNf4, LlamaTied) { check_export("llama", true); }
TEST(ExportNf4, LlamaUntied) { check_export("llama", false); }
TEST(ExportNf4, Qwen2WithBiases) { check_export("qwen2", true); }

TEST(ExportNf4, RejectsUnmappableTensorBeforeWriting) {
  const fs::path dir = temp_dir("rope_freqs");
  const Synth m = write_synth(dir, "llama", true, /*extra_tensor=*/true);
  auto in = io::GgufFile::open(m.path);
  ASSERT_TRUE(in.is_ok());
  auto r = convert::export_nf4_hf(*in, (dir / "hf").string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("'rope_freqs.weight'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(m.path), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(dir / "hf" / "model.safetensors"));
  fs::remove_all(dir);
}

TEST(ExportNf4, RejectsBadOptionsAndArchitectures) {
  const fs::path dir = temp_dir("bad");
  const Synth m = write_synth(dir, "llama", true);
  auto in = io::GgufFile::open(m.path);
  ASSERT_TRUE(in.is_ok());
  convert::Nf4ExportOptions opt;
  opt.blocksize = 48;
  EXPECT_FALSE(convert::export_nf4_hf(*in, (dir / "a").string(), opt).is_ok());
  opt.blocksize = 64;
  opt.dtype = "float32";
  EXPECT_FALSE(convert::export_nf4_hf(*in, (dir / "b").string(), opt).is_ok());

  io::GgufWriter w;
  ASSERT_TRUE(w.set_string("general.architecture", "gemma3").is_ok());
  ASSERT_TRUE(w.set_u32("gemma3.block_count", 1).is_ok());
  const std::string p = (dir / "gemma.gguf").string();
  ASSERT_TRUE(w.write_file(p).is_ok());
  auto g = io::GgufFile::open(p);
  ASSERT_TRUE(g.is_ok());
  auto r = convert::export_nf4_hf(*g, (dir / "c").string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("gemma3"), std::string::npos);
  fs::remove_all(dir);
}

// The real model: 272 GGUF tensors (tied, so no lm_head) -> 210 NF4
// projections x 6 keys + 62 bf16 tensors. The NF4 error bound is the
// measured aggregate relative RMSE (0.09357, max per tensor 0.10187) + 10%.
TEST(ExportNf4, SmolLM2) {
  const std::string path = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  auto in = io::GgufFile::open(path);
  ASSERT_TRUE(in.is_ok()) << in.status().message();
  const fs::path out = temp_dir("smollm2") / "hf";
  auto report = convert::export_nf4_hf(*in, out.string());
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_EQ(report->tensors.size(), 272u);
  EXPECT_EQ(report->nf4_tensors, 210u);
  EXPECT_TRUE(report->tied_embeddings);
  EXPECT_LT(report->nf4_rel_rmse, 0.09357 * 1.1);
  EXPECT_LT(report->max_nf4_rel_rmse, 0.10187 * 1.1);
  auto st = io::SafetensorsFile::open((out / "model.safetensors").string());
  ASSERT_TRUE(st.is_ok()) << st.status().message();
  EXPECT_EQ(st->tensors().size(), 210u * 6 + 62);
  EXPECT_EQ(st->find("lm_head.weight"), nullptr);
  const auto* e = st->find("model.embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->shape, (std::vector<std::int64_t>{49152, 576}));
  auto q = io::load_bnb_nf4(*st, "model.layers.0.self_attn.k_proj.");
  ASSERT_TRUE(q.is_ok()) << q.status().message();
  EXPECT_EQ(q->tensor.shape, (std::vector<std::int64_t>{192, 576}));
  const auto c = read_json(out / "config.json");
  EXPECT_EQ(c["num_key_value_heads"], 3);
  EXPECT_EQ(c["head_dim"], 64);
  EXPECT_EQ(c["rope_theta"].get<double>(), 100000.0);
  EXPECT_EQ(c["vocab_size"], 49152);
  fs::remove_all(out.parent_path());
}

}  // namespace
