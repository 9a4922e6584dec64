// PEFT adapter directories: our files against the ones PEFT 0.21.2 and
// safetensors.torch.save_file wrote for the same tensors
// (tests/data/peft/, tools/gen_peft_golden.py), the llama Q/K row permutation
// of lora_B, round trips, and errors that name the file and the tensor/field.
#include "qlora/io/peft_adapter.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "io/lora_test_adapters.hpp"
#include "temp_dir.hpp"

namespace qlora::io {
namespace {

using lora::Target;
using test::golden_adapter;
using test::lora_data_dir;
using test::read_file_bytes;

const model::ModelConfig kTiny = model::presets::tiny();
constexpr lora::TargetMask kQKO = lora::bit(Target::kQ) | lora::bit(Target::kK) | lora::bit(Target::kO);

std::string bytes_to_string(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void expect_same_params(const lora::LoraAdapter& a, const lora::LoraAdapter& b) {
  ASSERT_EQ(a.rank(), b.rank());
  ASSERT_EQ(a.config().targets, b.config().targets);
  ASSERT_EQ(a.params().size(), b.params().size());
  for (std::size_t i = 0; i < a.params().size(); ++i)
    ASSERT_EQ(f32_bits(a.params()[i]), f32_bits(b.params()[i])) << "param " << i;
}

// ---- names ------------------------------------------------------------------

TEST(PeftAdapter, TensorNamesAreHfNamesUnderPeftsPrefix) {
  EXPECT_EQ(peft_lora_name(3, Target::kQ, LoraMatrix::kA), "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(peft_lora_name(0, Target::kDown, LoraMatrix::kB), "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
  const auto id = parse_peft_lora_name("base_model.model.model.layers.12.mlp.gate_proj.lora_B.weight");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->layer, 12u);
  EXPECT_EQ(id->target, Target::kGate);
  EXPECT_EQ(id->matrix, LoraMatrix::kB);
  EXPECT_FALSE(parse_peft_lora_name("base_model.model.lm_head.lora_A.weight"));
  EXPECT_FALSE(parse_peft_lora_name("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"));
  EXPECT_FALSE(parse_peft_lora_name("base_model.model.model.layers.01.self_attn.q_proj.lora_A.weight"));
}

// ---- what PEFT wrote ---------------------------------------------------------

// adapter_config.json: the same keys and values as PEFT's, and byte-identical
// formatting once target_modules (a Python set: random order) is in the same order.
TEST(PeftAdapter, ConfigMatchesPeftsOwnFile) {
  const std::string golden_text = read_file_bytes(lora_data_dir() + "/tiny_llama_r4/adapter_config.json");
  const auto golden = nlohmann::json::parse(golden_text);
  lora::LoraConfig c;
  c.rank = 4;
  c.alpha = 8.0f;
  c.dropout = 0.05f;
  c.targets = lora::kAllTargets;
  nlohmann::json ours = peft_adapter_config(c);
  std::set<std::string> keys_ours, keys_golden;
  for (const auto& [k, v] : ours.items()) keys_ours.insert(k);
  for (const auto& [k, v] : golden.items()) keys_golden.insert(k);
  EXPECT_EQ(keys_ours, keys_golden);
  const auto as_set = [](const nlohmann::json& a) { return a.get<std::set<std::string>>(); };
  EXPECT_EQ(as_set(ours["target_modules"]), as_set(golden["target_modules"]));
  ours["target_modules"] = golden["target_modules"];
  EXPECT_EQ(ours.dump(2, ' ', true), golden_text);
}

TEST(PeftAdapter, ConfigWritesIntegralAlphaAsIntAndOtherAlphaAsFloat) {
  lora::LoraConfig c;
  c.alpha = 32.0f;
  EXPECT_EQ(peft_adapter_config(c)["lora_alpha"].dump(), "32");
  c.alpha = 0.1f;
  EXPECT_EQ(peft_adapter_config(c)["lora_alpha"].dump(), "0.1");
  PeftWriteOptions o;
  o.base_model_name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct";
  EXPECT_EQ(peft_adapter_config(c, o)["base_model_name_or_path"], "HuggingFaceTB/SmolLM2-135M-Instruct");
}

// adapter_model.safetensors: byte for byte what PEFT's save_pretrained wrote
// (F32), and what safetensors.torch.save_file wrote for BF16/F16 casts.
TEST(PeftAdapter, SafetensorsBytesMatchPeftSavePretrained) {
  const lora::LoraAdapter a = golden_adapter(kTiny, 4, 8.0f, lora::kAllTargets);
  auto bytes = peft_safetensors_bytes(a);
  ASSERT_TRUE(bytes) << bytes.status().message();
  const std::string golden = read_file_bytes(lora_data_dir() + "/tiny_llama_r4/adapter_model.safetensors");
  ASSERT_FALSE(golden.empty());
  EXPECT_EQ(bytes_to_string(*bytes), golden);
}

TEST(PeftAdapter, Bf16AndF16BytesMatchSafetensorsTorchSaveFile) {
  const lora::LoraAdapter a = golden_adapter(kTiny, 2, 4.0f, kQKO);
  for (auto [dtype, file] : {std::pair{StDtype::BF16, "tiny_llama_r2_bf16"}, std::pair{StDtype::F16, "tiny_llama_r2_f16"}}) {
    auto bytes = peft_safetensors_bytes(a, dtype);
    ASSERT_TRUE(bytes) << bytes.status().message();
    EXPECT_EQ(bytes_to_string(*bytes), read_file_bytes(lora_data_dir() + "/" + file + ".safetensors")) << file;
  }
}

TEST(PeftAdapter, ReadsPeftsDirectoryIntoGgufCoordinates) {
  auto r = read_peft_adapter(lora_data_dir() + "/tiny_llama_r4", kTiny);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->adapter.rank(), 4);
  EXPECT_EQ(r->adapter.config().alpha, 8.0f);
  EXPECT_EQ(r->adapter.config().dropout, 0.05f);
  EXPECT_EQ(r->adapter.config().targets, lora::kAllTargets);
  EXPECT_EQ(r->config.task_type, "CAUSAL_LM");
  EXPECT_FALSE(r->config.use_rslora);
  expect_same_params(r->adapter, golden_adapter(kTiny, 4, 8.0f, lora::kAllTargets));
}

TEST(PeftAdapter, ReadsBf16Tensors) {
  test::TempDir t("peft", "bf16");
  std::filesystem::copy_file(lora_data_dir() + "/tiny_llama_r2_bf16.safetensors", t.dir / "adapter_model.safetensors");
  lora::LoraConfig c;
  c.rank = 2;
  c.alpha = 4.0f;
  c.targets = kQKO;
  t.write("adapter_config.json", peft_adapter_config_text(c));
  auto r = read_peft_adapter(t.dir.string(), kTiny);
  ASSERT_TRUE(r) << r.status().message();
  lora::LoraAdapter want = golden_adapter(kTiny, 2, 4.0f, kQKO);
  for (float& v : want.params()) v = bf16_to_f32(f32_to_bf16(v));
  expect_same_params(r->adapter, want);
}

// ---- Q/K permutation ----------------------------------------------------------

// Known answers for head_dim 16: GGUF row 2i+s of a head holds HF row s*8+i.
TEST(PeftAdapter, LlamaQkRowsAreUnpermutedOnWrite) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 3, 6.0f);
  auto tensors = peft_tensors(a);
  ASSERT_TRUE(tensors) << tensors.status().message();
  auto file_b = [&](std::uint32_t layer, Target t) {
    const std::string n = peft_lora_name(layer, t, LoraMatrix::kB);
    for (const auto& x : *tensors)
      if (x.name == n) return reinterpret_cast<const float*>(x.bytes.data());
    return static_cast<const float*>(nullptr);
  };
  const int r = 3;
  const std::pair<int, int> kPairs[] = {{0, 0}, {1, 8}, {2, 1}, {15, 15}, {14, 7}, {17, 24}, {33, 40}};
  for (Target t : {Target::kQ, Target::kK}) {
    const lora::LoraSlot* s = a.find(1, t);
    const float* hf = file_b(1, t);
    ASSERT_NE(hf, nullptr);
    for (auto [gguf_row, hf_row] : kPairs) {
      if (gguf_row >= s->out) continue;
      for (int j = 0; j < r; ++j) EXPECT_EQ(a.b(*s)[gguf_row * r + j], hf[hf_row * r + j]) << gguf_row << " " << hf_row;
    }
  }
  // V, O and every A are written as they are.
  const lora::LoraSlot* v = a.find(0, Target::kV);
  const float* vb = file_b(0, Target::kV);
  for (std::int64_t i = 0; i < v->out * r; ++i) ASSERT_EQ(vb[i], a.b(*v)[i]);
}

// The permutation is what makes the two coordinate systems agree: for a
// random input x, (B_hf A x) permuted to GGUF rows equals B_gguf A x.
TEST(PeftAdapter, HfUpdateMapsToGgufUpdateThroughThePermutation) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 4, 8.0f);
  auto tensors = peft_tensors(a);
  ASSERT_TRUE(tensors);
  for (Target t : {Target::kQ, Target::kK}) {
    const lora::LoraSlot* s = a.find(0, t);
    const float* hf_b = nullptr;
    for (const auto& x : *tensors)
      if (x.name == peft_lora_name(0, t, LoraMatrix::kB)) hf_b = reinterpret_cast<const float*>(x.bytes.data());
    ASSERT_NE(hf_b, nullptr);
    std::vector<double> ax(4);
    for (int i = 0; i < 4; ++i)
      for (std::int64_t j = 0; j < s->in; ++j) ax[i] += double(a.a(*s)[i * s->in + j]) * std::sin(double(j));
    for (std::int64_t g = 0; g < s->out; ++g) {
      double y_gguf = 0, y_hf = 0;
      const std::int64_t h = test::hf_row_of_gguf_row(g, kTiny.head_dim);
      for (int i = 0; i < 4; ++i) {
        y_gguf += double(a.b(*s)[g * 4 + i]) * ax[i];
        y_hf += double(hf_b[h * 4 + i]) * ax[i];
      }
      ASSERT_EQ(y_gguf, y_hf) << "row " << g;
    }
  }
}

TEST(PeftAdapter, Qwen2IsNotPermuted) {
  const model::ModelConfig qwen = test::tiny_qwen2();
  const lora::LoraAdapter a = test::random_adapter(qwen, 2, 2.0f);
  auto tensors = peft_tensors(a);
  ASSERT_TRUE(tensors);
  const lora::LoraSlot* q = a.find(0, Target::kQ);
  for (const auto& x : *tensors) {
    if (x.name == peft_lora_name(0, Target::kQ, LoraMatrix::kB)) {
      EXPECT_EQ(std::memcmp(x.bytes.data(), a.b(*q), x.bytes.size()), 0);
    }
  }
}

// ---- round trips --------------------------------------------------------------

TEST(PeftAdapter, RoundTripGivesIdenticalParams) {
  for (const model::ModelConfig& m : {kTiny, test::tiny_qwen2()}) {
    test::TempDir t("peft", "rt_" + m.arch);
    const lora::LoraAdapter a = test::random_adapter(m, 5, 10.0f, lora::bit(Target::kQ) | lora::bit(Target::kK) |
                                                                      lora::bit(Target::kV) | lora::bit(Target::kDown));
    PeftWriteOptions o;
    o.base_model_name_or_path = "base/" + m.arch;
    ASSERT_TRUE(write_peft_adapter(a, t.dir.string(), o));
    auto r = read_peft_adapter(t.dir.string(), m);
    ASSERT_TRUE(r) << r.status().message();
    expect_same_params(r->adapter, a);
    EXPECT_EQ(r->adapter.config().alpha, 10.0f);
    EXPECT_EQ(r->config.base_model_name_or_path, "base/" + m.arch);
  }
}

TEST(PeftAdapter, F16RoundTripRoundsOnce) {
  test::TempDir t("peft", "rt_f16");
  const lora::LoraAdapter a = test::random_adapter(kTiny, 4, 8.0f);
  PeftWriteOptions o;
  o.dtype = StDtype::F16;
  ASSERT_TRUE(write_peft_adapter(a, t.dir.string(), o));
  auto r = read_peft_adapter(t.dir.string(), kTiny);
  ASSERT_TRUE(r) << r.status().message();
  for (std::size_t i = 0; i < a.params().size(); ++i)
    ASSERT_EQ(r->adapter.params()[i], fp16_to_f32(f32_to_fp16(a.params()[i])));
}

// ---- configs from elsewhere --------------------------------------------------

class PeftAdapterErrors : public ::testing::Test {
 protected:
  test::TempDir t{"peft", ::testing::UnitTest::GetInstance()->current_test_info()->name()};
  lora::LoraAdapter a = test::random_adapter(kTiny, 4, 8.0f);

  std::string dir() const { return t.dir.string(); }
  std::string st_path() const { return (t.dir / "adapter_model.safetensors").string(); }
  void write_good() { ASSERT_TRUE(write_peft_adapter(a, dir())); }
  void write_config(const nlohmann::json& j) { t.write("adapter_config.json", j.dump(2)); }
  nlohmann::json config() const { return peft_adapter_config(a.config()); }
  /// Rewrite the safetensors with `edit` applied to the tensor list.
  template <class Edit>
  void edit_tensors(Edit edit) {
    auto tensors = peft_tensors(a).value();
    edit(tensors);
    std::vector<StTensorView> v;
    for (const auto& x : tensors) v.push_back(x.view());
    ASSERT_TRUE(save_safetensors(st_path(), v, std::map<std::string, std::string>{{"format", "pt"}}));
  }
  Status read() const {
    auto r = read_peft_adapter(dir(), kTiny);
    return r ? Status::ok() : r.status();
  }
};

TEST_F(PeftAdapterErrors, RsLoraIsFoldedIntoAlpha) {
  write_good();
  nlohmann::json j = config();
  j["use_rslora"] = true;
  write_config(j);
  auto r = read_peft_adapter(dir(), kTiny);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_TRUE(r->config.use_rslora);
  EXPECT_FLOAT_EQ(r->adapter.scale(), 8.0f / 2.0f);  // alpha / sqrt(r), r = 4
}

TEST_F(PeftAdapterErrors, RankPatternIsUnsupported) {
  write_good();
  nlohmann::json j = config();
  j["rank_pattern"] = {{"q_proj", 8}};
  write_config(j);
  const Status s = read();
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  EXPECT_NE(s.message().find("adapter_config.json"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("rank_pattern"), std::string::npos) << s.message();
}

TEST_F(PeftAdapterErrors, AlphaPatternDoraBiasAndModulesToSaveAreUnsupported) {
  write_good();
  const std::pair<const char*, nlohmann::json> kCases[] = {
      {"alpha_pattern", {{"v_proj", 4}}}, {"use_dora", true}, {"bias", "all"},
      {"modules_to_save", {"lm_head"}},   {"layers_to_transform", {0}}, {"fan_in_fan_out", true}};
  for (const auto& [key, value] : kCases) {
    nlohmann::json j = config();
    j[key] = value;
    write_config(j);
    const Status s = read();
    EXPECT_EQ(s.code(), ErrorCode::kUnsupported) << key;
    EXPECT_NE(s.message().find(key), std::string::npos) << s.message();
  }
}

TEST_F(PeftAdapterErrors, BadJsonNamesTheFile) {
  write_good();
  t.write("adapter_config.json", "{\"r\": 4,");
  const Status s = read();
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("adapter_config.json: not valid JSON"), std::string::npos) << s.message();
}

TEST_F(PeftAdapterErrors, MissingConfigNamesThePath) {
  const Status s = read();
  EXPECT_EQ(s.code(), ErrorCode::kIo);
  EXPECT_NE(s.message().find("adapter_config.json"), std::string::npos);
}

TEST_F(PeftAdapterErrors, NonLoraAndNonCausalConfigsAreRejected) {
  write_good();
  nlohmann::json j = config();
  j["peft_type"] = "IA3";
  write_config(j);
  EXPECT_NE(read().message().find("peft_type"), std::string::npos);
  j = config();
  j["task_type"] = "SEQ_CLS";
  write_config(j);
  EXPECT_NE(read().message().find("task_type"), std::string::npos);
  j = config();
  j["target_modules"] = {"q_proj", "lm_head"};
  write_config(j);
  EXPECT_NE(read().message().find("lm_head"), std::string::npos);
}

TEST_F(PeftAdapterErrors, WrongShapeNamesFileAndTensor) {
  write_config(config());
  const std::string victim = peft_lora_name(1, Target::kUp, LoraMatrix::kA);
  edit_tensors([&](std::vector<StTensor>& ts) {
    for (auto& x : ts)
      if (x.name == victim) {
        x.shape = {4, 63};
        x.bytes.resize(4 * 63 * 4);
      }
  });
  const Status s = read();
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("adapter_model.safetensors"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(victim), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("[4, 63]"), std::string::npos) << s.message();
}

TEST_F(PeftAdapterErrors, RankDifferentFromConfigNamesTheTensor) {
  nlohmann::json j = config();
  j["r"] = 8;
  write_config(j);
  edit_tensors([](std::vector<StTensor>&) {});
  const Status s = read();
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("r = 8"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("lora_A.weight"), std::string::npos) << s.message();
}

TEST_F(PeftAdapterErrors, MissingTensorIsNamed) {
  write_config(config());
  const std::string victim = peft_lora_name(1, Target::kK, LoraMatrix::kB);
  edit_tensors([&](std::vector<StTensor>& ts) { std::erase_if(ts, [&](const StTensor& x) { return x.name == victim; }); });
  const Status s = read();
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("missing tensor '" + victim + "'"), std::string::npos) << s.message();
}

TEST_F(PeftAdapterErrors, UnknownTensorAndLayerOutOfRangeAreNamed) {
  write_config(config());
  edit_tensors([](std::vector<StTensor>& ts) {
    ts.push_back(StTensor::from<float>("base_model.model.lm_head.lora_A.weight", StDtype::F32, {1}, std::vector<float>{1.0f}));
  });
  Status s = read();
  EXPECT_NE(s.message().find("unexpected tensor 'base_model.model.lm_head.lora_A.weight'"), std::string::npos)
      << s.message();
  edit_tensors([&](std::vector<StTensor>& ts) {
    ts.push_back(StTensor::from<float>(peft_lora_name(2, Target::kQ, LoraMatrix::kA), StDtype::F32, {4, 64},
                                       std::vector<float>(256, 0.0f)));
  });
  s = read();
  EXPECT_NE(s.message().find("layer 2 does not exist"), std::string::npos) << s.message();
}

TEST_F(PeftAdapterErrors, NonFiniteValuesAreRejected) {
  write_config(config());
  edit_tensors([](std::vector<StTensor>& ts) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(ts[3].bytes.data() + 4, &nan, 4);
  });
  const Status s = read();
  EXPECT_EQ(s.code(), ErrorCode::kNumeric) << s.message();
}

TEST_F(PeftAdapterErrors, TargetModulesAsRegexLetsTheTensorsDecide) {
  write_good();
  nlohmann::json j = config();
  j["target_modules"] = ".*(q_proj|v_proj)";
  write_config(j);
  EXPECT_TRUE(read()) << read().message();
}

}  // namespace
}  // namespace qlora::io
