// Pins convert/quantize_gguf.hpp: on a synthetic llama GGUF, every scheme
// writes the types its recipe chose, bytes equal to the reference quantizer,
// llama.cpp's KV order and tensor order; on the real SmolLM2-135M model, the
// whole output file is byte-identical to llama.cpp's quantizer (sha256 from
// tests/data/golden/smollm2_llama_quantize.json, made by the real peer).
#include "qlora/convert/quantize_gguf.hpp"

#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qlora/core/sha256.hpp"
#include "qlora/io/mapped_file.hpp"
#include "quant/test_data.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qlora;
using quant::GgmlType;

fs::path temp_dir() { return qlora::test::process_temp_dir("qlora_test"); }

/// A 2-layer llama with width 256 (K-quants apply) and an untied output.
struct TinyModel {
  std::vector<std::vector<float>> data;  // keeps tensor bytes alive until written
  std::string path;
};

TinyModel write_tiny_model(const fs::path& dir) {
  TinyModel m;
  m.path = (dir / "tiny.gguf").string();
  io::GgufWriter w;
  EXPECT_TRUE(w.set_string("general.architecture", "llama").is_ok());
  EXPECT_TRUE(w.set_u32("llama.block_count", 2).is_ok());
  EXPECT_TRUE(w.set_u32("llama.attention.head_count", 4).is_ok());
  EXPECT_TRUE(w.set_u32("llama.attention.head_count_kv", 2).is_ok());
  EXPECT_TRUE(w.set_u32("general.file_type", 0).is_ok());
  EXPECT_TRUE(w.set_string("general.name", "tiny").is_ok());
  auto add = [&](const std::string& name, std::vector<std::uint64_t> ne) {
    std::uint64_t n = 1;
    for (auto v : ne) n *= v;
    m.data.push_back(test::gaussian(int(n), unsigned(m.data.size() + 1), 0.05f));
    const auto& d = m.data.back();
    EXPECT_TRUE(w.add_tensor(name, ne, std::uint32_t(GgmlType::F32), std::as_bytes(std::span(d))).is_ok());
  };
  // Written in HF-ish order on purpose: the quantizer must re-sort.
  add("token_embd.weight", {256, 64});
  for (int l = 1; l >= 0; --l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_q.weight", {256, 256});
    add(b + "attn_k.weight", {256, 128});
    add(b + "attn_v.weight", {256, 128});
    add(b + "attn_output.weight", {256, 256});
    add(b + "ffn_gate.weight", {256, 512});
    add(b + "ffn_up.weight", {256, 512});
    add(b + "ffn_down.weight", {512, 256});
    add(b + "attn_norm.weight", {256});
    add(b + "ffn_norm.weight", {256});
  }
  add("output_norm.weight", {256});
  add("output.weight", {256, 64});
  EXPECT_TRUE(w.write_file(m.path).is_ok());
  return m;
}

template <class S>
void check_scheme(const fs::path& dir) {
  const TinyModel tiny = write_tiny_model(dir);
  auto in = io::GgufFile::open(tiny.path);
  ASSERT_TRUE(in.is_ok()) << in.status().message();
  const std::string out_path = (dir / (std::string(quant::QuantScheme<S>::kName) + ".gguf")).string();
  auto report = convert::quantize_gguf<S>(*in, out_path);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  auto out = io::GgufFile::open(out_path);
  ASSERT_TRUE(out.is_ok()) << out.status().message();

  // KVs: input order, then quantization_version and file_type last.
  const auto& kvs = out->kvs();
  ASSERT_GE(kvs.size(), 2u);
  EXPECT_EQ(kvs[kvs.size() - 2].key, "general.quantization_version");
  EXPECT_EQ(kvs.back().key, "general.file_type");
  EXPECT_EQ(*out->get_u32("general.file_type"), quant::QuantScheme<S>::kFileType);
  EXPECT_EQ(kvs[0].key, "general.architecture");

  // Tensors: llama.cpp order, recipe types, reference bytes.
  auto plan = convert::plan_quantization<S>(*in);
  ASSERT_TRUE(plan.is_ok());
  ASSERT_EQ(out->tensors().size(), plan->size());
  EXPECT_EQ(out->tensors().front().name, "output.weight");
  EXPECT_EQ(out->tensors().back().name, "blk.1.ffn_up.weight");
  for (std::size_t i = 0; i < plan->size(); ++i) {
    const auto* src = (*plan)[i].first;
    const auto& dst = out->tensors()[i];
    EXPECT_EQ(dst.name, src->name);
    EXPECT_EQ(dst.type, (*plan)[i].second) << dst.name;
    EXPECT_EQ(dst.offset % 32, 0u);
    std::vector<std::byte> ref(dst.n_bytes);
    const std::int64_t ncols = std::int64_t(src->ne[0]);
    const std::int64_t nrows = std::int64_t(src->n_elements()) / ncols;
    const auto* x = reinterpret_cast<const float*>(src->data.data());
    const std::size_t row_bytes = dst.n_bytes / std::size_t(nrows);
    for (std::int64_t r = 0; r < nrows; ++r)
      ASSERT_TRUE(quant::quantize_row(dst.type, x + r * ncols, ref.data() + std::size_t(r) * row_bytes, ncols).is_ok());
    EXPECT_TRUE(std::equal(ref.begin(), ref.end(), dst.data.begin())) << dst.name;
  }
}

TEST(QuantizeGguf, Q4_K_M_OnTinyModel) {
  check_scheme<quant::scheme::Q4_K_M>(temp_dir());
  auto out = io::GgufFile::open((temp_dir() / "q4_k_m.gguf").string());
  ASSERT_TRUE(out.is_ok());
  // 2 layers: use_more_bits(i, 2) holds for layer 1 only (i >= 7n/8), so its
  // attn_v and ffn_down get Q6_K and layer 0's stay Q4_K.
  EXPECT_EQ(out->find_tensor("output.weight")->type, std::uint32_t(GgmlType::Q6_K));
  EXPECT_EQ(out->find_tensor("token_embd.weight")->type, std::uint32_t(GgmlType::Q4_K));
  EXPECT_EQ(out->find_tensor("blk.0.attn_v.weight")->type, std::uint32_t(GgmlType::Q4_K));
  EXPECT_EQ(out->find_tensor("blk.1.attn_v.weight")->type, std::uint32_t(GgmlType::Q6_K));
  EXPECT_EQ(out->find_tensor("blk.1.ffn_down.weight")->type, std::uint32_t(GgmlType::Q6_K));
  EXPECT_EQ(out->find_tensor("blk.1.attn_q.weight")->type, std::uint32_t(GgmlType::Q4_K));
  EXPECT_EQ(out->find_tensor("blk.1.attn_norm.weight")->type, std::uint32_t(GgmlType::F32));
}
TEST(QuantizeGguf, Q8_0_OnTinyModel) { check_scheme<quant::scheme::Q8_0>(temp_dir()); }
TEST(QuantizeGguf, F16_OnTinyModel) { check_scheme<quant::scheme::F16>(temp_dir()); }

TEST(QuantizeGguf, RejectsNonFiniteWeightsNamingTheTensor) {
  const fs::path dir = temp_dir();
  io::GgufWriter w;
  ASSERT_TRUE(w.set_string("general.architecture", "llama").is_ok());
  ASSERT_TRUE(w.set_u32("llama.block_count", 1).is_ok());
  std::vector<float> x(256 * 4, 0.5f);
  x[300] = NAN;
  ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight", {256, 4}, 0, std::as_bytes(std::span(x))).is_ok());
  const std::string path = (dir / "nan.gguf").string();
  ASSERT_TRUE(w.write_file(path).is_ok());
  auto in = io::GgufFile::open(path);
  ASSERT_TRUE(in.is_ok());
  const std::string out_path = (dir / "nan.q8_0.gguf").string();
  auto r = convert::quantize_gguf<quant::scheme::Q8_0>(*in, out_path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("blk.0.attn_q.weight"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("row 1, column 44"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(out_path));  // atomic write: nothing half-written left behind
}

TEST(QuantizeGguf, SmolLM2MatchesLlamaCppFileForFile) {
  const fs::path model = fs::path(QLORA_MODEL_CACHE_DIR) / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(model)) GTEST_SKIP() << "SmolLM2 model absent: run tools/fetch_model.sh (CI does)";
  std::ifstream golden_file(fs::path(QLORA_TEST_DATA_DIR) / "golden" / "smollm2_llama_quantize.json");
  ASSERT_TRUE(golden_file.good());
  const auto golden = nlohmann::json::parse(golden_file);
  auto in = io::GgufFile::open(model.string());
  ASSERT_TRUE(in.is_ok()) << in.status().message();
  auto src_bytes = io::MappedFile::open(model.string());
  ASSERT_TRUE(src_bytes.is_ok());
  EXPECT_EQ(sha256_hex(src_bytes->bytes()), golden["source_sha256"].get<std::string>());
  const fs::path dir = temp_dir();
  auto check = [&]<class S>() {
    const std::string name(quant::QuantScheme<S>::kName);
    const std::string out_path = (dir / ("smollm2." + name + ".gguf")).string();
    convert::QuantizeOptions opt;
    opt.measure_error = false;
    auto r = convert::quantize_gguf<S>(*in, out_path, opt);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    auto bytes = io::MappedFile::open(out_path);
    ASSERT_TRUE(bytes.is_ok());
    EXPECT_EQ(sha256_hex(bytes->bytes()), golden["outputs"][name].get<std::string>()) << name;
    fs::remove(out_path);
  };
  check.operator()<quant::scheme::Q4_K_M>();
  check.operator()<quant::scheme::Q8_0>();
  check.operator()<quant::scheme::F16>();
}

}  // namespace
