// llama.cpp GGUF LoRA adapters: our files against the ones llama.cpp's
// convert_lora_to_gguf.py wrote from the PEFT golden
// (tools/gen_gguf_lora_golden.py), round trips in every tensor type, the
// metadata llama_adapter_lora_init checks, and errors naming file and tensor.
#include "qlora/io/gguf_lora.hpp"

#include <gtest/gtest.h>

#include "io/lora_test_adapters.hpp"
#include "qlora/io/peft_adapter.hpp"
#include "temp_dir.hpp"

namespace qlora::io {
namespace {

using lora::Target;
using quant::GgmlType;
using test::lora_data_dir;
using test::read_file_bytes;

const model::ModelConfig kTiny = model::presets::tiny();

std::string bytes_to_string(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

GgufFile parse(const std::vector<std::byte>& bytes) { return GgufFile::parse(bytes, "adapter.gguf").value(); }

void expect_same_params(const lora::LoraAdapter& a, const lora::LoraAdapter& b) {
  ASSERT_EQ(a.rank(), b.rank());
  ASSERT_EQ(a.config().targets, b.config().targets);
  ASSERT_EQ(a.params().size(), b.params().size());
  for (std::size_t i = 0; i < a.params().size(); ++i)
    ASSERT_EQ(f32_bits(a.params()[i]), f32_bits(b.params()[i])) << "param " << i;
}

TEST(GgufLora, TensorNames) {
  EXPECT_EQ(gguf_lora_name(3, Target::kO, LoraMatrix::kA), "blk.3.attn_output.weight.lora_a");
  EXPECT_EQ(gguf_lora_name(0, Target::kUp, LoraMatrix::kB), "blk.0.ffn_up.weight.lora_b");
  const auto id = parse_gguf_lora_name("blk.29.ffn_down.weight.lora_b");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->layer, 29u);
  EXPECT_EQ(id->target, Target::kDown);
  EXPECT_EQ(id->matrix, LoraMatrix::kB);
  EXPECT_FALSE(parse_gguf_lora_name("blk.0.attn_norm.weight"));
  EXPECT_FALSE(parse_gguf_lora_name("token_embd.weight.lora_a"));
  EXPECT_FALSE(parse_gguf_lora_name("blk.0.attn_q.lora_a"));
}

// What llama_adapter_lora_init reads: general.type, general.architecture,
// adapter.type, adapter.lora.alpha; tensors with ne [in, r] / [r, out].
TEST(GgufLora, MetadataAndShapesAreWhatLlamaCppChecks) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 4, 12.0f);
  GgufLoraWriteOptions o;
  o.name = "tiny adapter";
  auto bytes = gguf_lora_bytes(a, o);
  ASSERT_TRUE(bytes) << bytes.status().message();
  const GgufFile f = parse(*bytes);
  EXPECT_EQ(f.get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f.get_string("general.type").value(), "adapter");
  EXPECT_EQ(f.get_string("adapter.type").value(), "lora");
  EXPECT_EQ(f.get_string("general.name").value(), "tiny adapter");
  EXPECT_EQ(f.get_f32("adapter.lora.alpha").value(), 12.0f);
  EXPECT_EQ(f.get_u32("general.quantization_version").value(), 2u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.tensors().size(), 2u * 7 * kTiny.n_layer);
  const auto* qa = f.find_tensor("blk.1.attn_q.weight.lora_a");
  const auto* kb = f.find_tensor("blk.1.attn_k.weight.lora_b");
  const auto* db = f.find_tensor("blk.0.ffn_down.weight.lora_a");
  ASSERT_TRUE(qa && kb && db);
  EXPECT_EQ(qa->n_dims, 2u);
  EXPECT_EQ(qa->ne[0], 64u);  // in
  EXPECT_EQ(qa->ne[1], 4u);   // r
  EXPECT_EQ(kb->ne[0], 4u);   // r
  EXPECT_EQ(kb->ne[1], 32u);  // out = kv_dim
  EXPECT_EQ(db->ne[0], 96u);  // down's in = n_ff
  // A pair's ranks agree (llama.cpp: a->ne[1] == b->ne[0]) and data are F32.
  for (const auto& t : f.tensors()) EXPECT_EQ(t.type, std::uint32_t(GgmlType::F32)) << t.name;
}

// The GGUF is in GGUF coordinates: q/k lora_b bytes are the adapter's B as is.
TEST(GgufLora, NoPermutationInTheGgufFile) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 4, 8.0f);
  auto bytes = gguf_lora_bytes(a);
  ASSERT_TRUE(bytes);
  const GgufFile f = parse(*bytes);
  for (Target t : {Target::kQ, Target::kK}) {
    const lora::LoraSlot* s = a.find(1, t);
    const auto* b = f.find_tensor(gguf_lora_name(1, t, LoraMatrix::kB));
    ASSERT_EQ(b->n_bytes, std::uint64_t(s->out * 4 * 4));
    EXPECT_EQ(std::memcmp(b->data.data(), a.b(*s), b->n_bytes), 0);
  }
}

// llama.cpp's converter on PEFT's own files vs our writer on the adapter our
// PEFT reader made of the same files: identical bytes in f32, bf16 and q8_0
// (whose lora_b, rows of r = 4, falls back to F16 in both).
TEST(GgufLora, BytesMatchLlamaCppConvertLoraToGguf) {
  auto peft = read_peft_adapter(lora_data_dir() + "/tiny_llama_r4", kTiny);
  ASSERT_TRUE(peft) << peft.status().message();
  const std::pair<GgmlType, const char*> kCases[] = {
      {GgmlType::F32, "f32"}, {GgmlType::BF16, "bf16"}, {GgmlType::Q8_0, "q8_0"}};
  for (auto [type, suffix] : kCases) {
    GgufLoraWriteOptions o;
    o.type = std::uint32_t(type);
    o.name = "Tiny_Llama_R4";  // the converter names the adapter after its directory
    auto ours = gguf_lora_bytes(peft->adapter, o);
    ASSERT_TRUE(ours) << ours.status().message();
    const std::string golden = read_file_bytes(lora_data_dir() + "/tiny_llama_r4." + suffix + ".gguf");
    ASSERT_FALSE(golden.empty()) << suffix;
    EXPECT_EQ(bytes_to_string(*ours), golden) << suffix;
  }
  // And the converter's file reads back to the same adapter: its Q/K
  // handling of lora_b is the GGUF coordinates our PEFT reader produces.
  auto conv = read_gguf_lora(lora_data_dir() + "/tiny_llama_r4.f32.gguf", kTiny);
  ASSERT_TRUE(conv) << conv.status().message();
  EXPECT_EQ(conv->name, "Tiny_Llama_R4");
  EXPECT_EQ(conv->adapter.config().alpha, 8.0f);
  expect_same_params(conv->adapter, peft->adapter);
}

TEST(GgufLora, RoundTripF32IsExactAndOtherTypesRoundOnce) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 4, 8.0f);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
    GgufLoraWriteOptions o;
    o.type = std::uint32_t(type);
    auto bytes = gguf_lora_bytes(a, o);
    ASSERT_TRUE(bytes) << bytes.status().message();
    auto r = read_gguf_lora(parse(*bytes), kTiny);
    ASSERT_TRUE(r) << r.status().message();
    EXPECT_EQ(r->adapter.config().alpha, 8.0f);
    EXPECT_FALSE(r->alpha_absent);
    ASSERT_EQ(r->adapter.params().size(), a.params().size());
    for (const lora::LoraSlot& s : a.slots()) {
      for (LoraMatrix m : {LoraMatrix::kA, LoraMatrix::kB}) {
        const bool is_a = m == LoraMatrix::kA;
        const std::int64_t cols = is_a ? s.in : 4, n = is_a ? 4 * s.in : s.out * 4;
        const float* src = is_a ? a.a(s) : a.b(s);
        const float* got = is_a ? r->adapter.a(s) : r->adapter.b(s);
        // The expected value: encode and decode each row with the type the
        // writer picks (Q8_0 rows of r = 4 fall back to F16).
        const std::uint32_t t = gguf_lora_tensor_type(std::uint32_t(type), cols);
        std::vector<std::byte> enc(*quant::ggml_row_bytes(*quant::ggml_type_info(t), std::uint64_t(cols)));
        std::vector<float> dec(static_cast<std::size_t>(cols));
        for (std::int64_t i = 0; i < n / cols; ++i) {
          ASSERT_TRUE(quant::quantize_row(t, src + i * cols, enc.data(), cols));
          ASSERT_TRUE(quant::dequantize_row(t, enc.data(), dec.data(), cols));
          for (std::int64_t j = 0; j < cols; ++j)
            ASSERT_EQ(f32_bits(got[i * cols + j]), f32_bits(dec[std::size_t(j)])) << quant::ggml_type_name(t);
        }
        if (type == GgmlType::F32) {
          for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(f32_bits(got[i]), f32_bits(src[i]));
        }
      }
    }
  }
}

TEST(GgufLora, WritesFileAndRoundTripsQwen2) {
  test::TempDir t("gguf_lora", "file");
  const model::ModelConfig qwen = test::tiny_qwen2();
  const lora::LoraAdapter a = test::random_adapter(qwen, 8, 16.0f, lora::bit(Target::kV) | lora::bit(Target::kGate));
  const std::string path = (t.dir / "a.gguf").string();
  ASSERT_TRUE(write_gguf_lora(a, path));
  auto r = read_gguf_lora(path, qwen);
  ASSERT_TRUE(r) << r.status().message();
  expect_same_params(r->adapter, a);
  // A llama model is not this adapter's base.
  auto wrong = read_gguf_lora(path, kTiny);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.status().message().find("architecture 'qwen2'"), std::string::npos) << wrong.status().message();
}

// ---- errors -------------------------------------------------------------------

/// A writer for `a` with `edit` applied before the bytes are made.
template <class Edit>
Result<GgufLoraAdapter> read_edited(const lora::LoraAdapter& a, Edit edit) {
  auto w = gguf_lora_writer(a);
  if (!w) return w.status();
  edit(*w);
  auto bytes = w->write_buffer();
  if (!bytes) return bytes.status();
  static std::vector<std::byte> keep;  // GgufFile views the bytes
  keep = std::move(*bytes);
  return read_gguf_lora(parse(keep), kTiny);
}

TEST(GgufLora, MetadataErrorsNameTheKey) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 2, 2.0f, lora::bit(Target::kQ));
  auto r = read_edited(a, [](GgufWriter& w) { (void)w.set_string("general.type", "model"); });
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("adapter.gguf: general.type is \"model\""), std::string::npos) << r.status().message();
  r = read_edited(a, [](GgufWriter& w) { w.remove("adapter.type"); });
  EXPECT_NE(r.status().message().find("adapter.type is missing"), std::string::npos) << r.status().message();
  r = read_edited(a, [](GgufWriter& w) { (void)w.set_u32("adapter.lora.alpha", 4); });
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("adapter.lora.alpha"), std::string::npos) << r.status().message();
}

// llama.cpp: no (or zero) alpha means scale 1, i.e. alpha = r.
TEST(GgufLora, AbsentAlphaMeansScaleOne) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 4, 2.0f, lora::bit(Target::kQ));
  auto r = read_edited(a, [](GgufWriter& w) { w.remove("adapter.lora.alpha"); });
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_TRUE(r->alpha_absent);
  EXPECT_EQ(r->adapter.scale(), 1.0f);
}

/// A GGUF with the given tensors (F32 zeros of the given ne) plus an
/// adapter's KVs, for the tensor-level errors.
Result<GgufLoraAdapter> read_with_tensors(const std::vector<std::pair<std::string, std::vector<std::uint64_t>>>& ts,
                                          std::uint32_t type = 0) {
  GgufWriter w;
  (void)w.set_string("general.architecture", "llama");
  (void)w.set_string("general.type", "adapter");
  (void)w.set_string("adapter.type", "lora");
  (void)w.set_f32("adapter.lora.alpha", 4.0f);
  static std::vector<std::vector<std::byte>> data;
  data.clear();
  data.reserve(ts.size());
  for (const auto& [name, ne] : ts) {
    data.emplace_back(gguf_tensor_bytes(ne, type).value());
    if (auto st = w.add_tensor(name, ne, type, std::span<const std::byte>(data.back())); !st) return st;
  }
  static std::vector<std::byte> keep;
  keep = w.write_buffer().value();
  return read_gguf_lora(parse(keep), kTiny);
}

TEST(GgufLora, TensorErrorsNameFileAndTensor) {
  // lora_b missing.
  auto r = read_with_tensors({{"blk.0.attn_q.weight.lora_a", {64, 4}}, {"blk.1.attn_q.weight.lora_a", {64, 4}},
                              {"blk.1.attn_q.weight.lora_b", {4, 64}}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("adapter.gguf: missing tensor 'blk.0.attn_q.weight.lora_b'"), std::string::npos)
      << r.status().message();
  // Wrong "in" side.
  r = read_with_tensors({{"blk.0.attn_v.weight.lora_a", {48, 4}}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("tensor 'blk.0.attn_v.weight.lora_a' has shape [4, 48]"), std::string::npos)
      << r.status().message();
  // Ranks that differ between tensors.
  r = read_with_tensors({{"blk.0.attn_q.weight.lora_a", {64, 4}}, {"blk.0.attn_q.weight.lora_b", {8, 64}}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("'blk.0.attn_q.weight.lora_b' has rank 8"), std::string::npos)
      << r.status().message();
  // Norm vectors (llama.cpp skips them; we refuse rather than drop them).
  r = read_with_tensors({{"blk.0.attn_norm.weight", {64}}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(r.status().message().find("'blk.0.attn_norm.weight'"), std::string::npos) << r.status().message();
  // Layer beyond the model.
  r = read_with_tensors({{"blk.2.attn_q.weight.lora_a", {64, 4}}});
  EXPECT_NE(r.status().message().find("layer 2 does not exist"), std::string::npos) << r.status().message();
  // A type LoRA files do not use.
  r = read_with_tensors({{"blk.0.attn_q.weight.lora_a", {64, 4}}}, std::uint32_t(GgmlType::Q4_1));
  EXPECT_NE(r.status().message().find("'blk.0.attn_q.weight.lora_a' is q4_1"), std::string::npos) << r.status().message();
}

TEST(GgufLora, WriterRejectsOtherTypes) {
  const lora::LoraAdapter a = test::random_adapter(kTiny, 4, 8.0f, lora::bit(Target::kQ));
  GgufLoraWriteOptions o;
  o.type = std::uint32_t(GgmlType::Q4_K);
  auto w = gguf_lora_writer(a, o);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.status().code(), ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace qlora::io
