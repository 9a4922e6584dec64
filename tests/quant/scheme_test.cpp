// Pins quant/scheme.hpp: the per-tensor choices of the Q4_K_M, Q8_0, F16 and
// NF4 recipes on real model shapes, following llama.cpp's rules (checked
// against llama-quantize's own output for SmolLM2 by tools/compare_quantize.py).
#include "qlora/quant/scheme.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace qlora::quant;

struct Shape {
  std::string name;
  std::int64_t ne0, ne1;
};

// A dense llama/qwen2 tensor list in llama.cpp's order.
std::vector<Shape> model_shapes(int n_layer, std::int64_t e, std::int64_t kv, std::int64_t f, std::int64_t vocab,
                                bool tied) {
  std::vector<Shape> s;
  s.push_back({"output_norm.weight", e, 1});
  if (!tied) s.push_back({"output.weight", e, vocab});
  s.push_back({"token_embd.weight", e, vocab});
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    for (const Shape& t : std::vector<Shape>{{p + "attn_k.weight", e, kv},   {p + "attn_norm.weight", e, 1},
                                             {p + "attn_output.weight", e, e}, {p + "attn_q.weight", e, e},
                                             {p + "attn_v.weight", e, kv},   {p + "ffn_down.weight", f, e},
                                             {p + "ffn_gate.weight", e, f},  {p + "ffn_norm.weight", e, 1},
                                             {p + "ffn_up.weight", e, f}})
      s.push_back(t);
  }
  std::sort(s.begin(), s.end(), [](const Shape& a, const Shape& b) { return llama_tensor_order(a.name, b.name); });
  return s;
}

template <class S>
std::map<std::string, std::uint32_t> plan(const std::vector<Shape>& shapes, const ModelFacts& m) {
  std::vector<TensorFacts> facts;
  for (const auto& s : shapes) {
    TensorFacts t;
    t.name = s.name;
    t.n_dims = s.ne1 == 1 ? 1 : 2;
    t.ne[0] = s.ne0;
    t.ne[1] = s.ne1;
    t.type = std::uint32_t(GgmlType::F32);
    facts.push_back(t);
  }
  RecipeState st;
  st.init(facts);
  std::map<std::string, std::uint32_t> out;
  for (const auto& t : facts) out[std::string(t.name)] = QuantScheme<S>::choose(t, m, st);
  return out;
}

constexpr auto T = [](GgmlType t) { return std::uint32_t(t); };

TEST(Scheme, UseMoreBitsMatchesKnownLayerSets) {
  std::vector<int> got;
  for (int i = 0; i < 32; ++i)
    if (use_more_bits(i, 32)) got.push_back(i);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
  got.clear();
  for (int i = 0; i < 16; ++i)
    if (use_more_bits(i, 16)) got.push_back(i);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 4, 7, 10, 13, 14, 15}));
}

TEST(Scheme, TensorOrderIsLlamaCpps) {
  std::vector<std::string> names = {"blk.10.attn_q.weight", "token_embd.weight", "blk.2.ffn_up.weight",
                                    "blk.2.attn_k.weight", "output_norm.weight"};
  std::sort(names.begin(), names.end(), llama_tensor_order);
  EXPECT_EQ(names, (std::vector<std::string>{"output_norm.weight", "token_embd.weight", "blk.2.attn_k.weight",
                                             "blk.2.ffn_up.weight", "blk.10.attn_q.weight"}));
}

TEST(Scheme, Q4_K_M_OnSmolLM2FallsBackToQ5_0AndQ8_0) {
  // SmolLM2-135M: 30 layers, width 576 (not a multiple of 256), tied output.
  const ModelFacts m{"llama", 30, 9, 3, 0};
  const auto p = plan<scheme::Q4_K_M>(model_shapes(30, 576, 192, 1536, 49152, true), m);
  EXPECT_EQ(p.at("token_embd.weight"), T(GgmlType::Q8_0));  // tied: output rule, 576 % 256 != 0
  EXPECT_EQ(p.at("output_norm.weight"), T(GgmlType::F32));
  for (int i = 0; i < 30; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const bool more = use_more_bits(i, 30);
    EXPECT_EQ(p.at(b + "attn_q.weight"), T(GgmlType::Q5_0));
    EXPECT_EQ(p.at(b + "attn_v.weight"), more ? T(GgmlType::Q8_0) : T(GgmlType::Q5_0)) << i;
    // ffn_down rows are 1536 = 6 x 256: K-quants apply directly.
    EXPECT_EQ(p.at(b + "ffn_down.weight"), more ? T(GgmlType::Q6_K) : T(GgmlType::Q4_K)) << i;
    EXPECT_EQ(p.at(b + "attn_norm.weight"), T(GgmlType::F32));
  }
}

TEST(Scheme, Q4_K_M_OnLlama3_8B) {
  // Swallow/ELYZA-8B: 32 layers, 4096 wide, GQA 32/8, untied output.
  const ModelFacts m{"llama", 32, 32, 8, 0};
  const auto p = plan<scheme::Q4_K_M>(model_shapes(32, 4096, 1024, 14336, 128256, false), m);
  EXPECT_EQ(p.at("output.weight"), T(GgmlType::Q6_K));
  EXPECT_EQ(p.at("token_embd.weight"), T(GgmlType::Q4_K));
  int q6_v = 0, q6_down = 0;
  for (int i = 0; i < 32; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    q6_v += p.at(b + "attn_v.weight") == T(GgmlType::Q6_K);
    // 14336 = 56 x 256.
    q6_down += p.at(b + "ffn_down.weight") == T(GgmlType::Q6_K);
    EXPECT_EQ(p.at(b + "attn_k.weight"), T(GgmlType::Q4_K));
    EXPECT_EQ(p.at(b + "ffn_up.weight"), T(GgmlType::Q4_K));
  }
  EXPECT_EQ(q6_v, 16);
  EXPECT_EQ(q6_down, 16);
}

TEST(Scheme, Q4_K_M_OnQwen2_0_5B) {
  // Width 896: formats.md's worked example (q/k/v/o/gate/up -> Q5_0, tied
  // token_embd -> Q8_0). ffn_down rows are 4864 = 19 x 256.
  const ModelFacts m{"qwen2", 24, 14, 2, 0};
  const auto p = plan<scheme::Q4_K_M>(model_shapes(24, 896, 128, 4864, 151936, true), m);
  EXPECT_EQ(p.at("token_embd.weight"), T(GgmlType::Q8_0));
  EXPECT_EQ(p.at("blk.5.attn_q.weight"), T(GgmlType::Q5_0));
  EXPECT_EQ(p.at("blk.5.ffn_up.weight"), T(GgmlType::Q5_0));
  EXPECT_EQ(p.at("blk.0.ffn_down.weight"), T(GgmlType::Q6_K));
  EXPECT_EQ(p.at("blk.3.ffn_down.weight"), T(GgmlType::Q4_K));
}

TEST(Scheme, Q8_0AndF16AndNF4) {
  const ModelFacts m{"llama", 30, 9, 3, 0};
  const auto shapes = model_shapes(2, 576, 192, 1536, 49152, true);
  const auto q8 = plan<scheme::Q8_0>(shapes, m);
  const auto f16 = plan<scheme::F16>(shapes, m);
  const auto nf4 = plan<scheme::NF4>(shapes, m);
  for (const auto& s : shapes) {
    const bool weight2d = s.ne1 != 1;
    EXPECT_EQ(q8.at(s.name), weight2d ? T(GgmlType::Q8_0) : T(GgmlType::F32)) << s.name;
    EXPECT_EQ(f16.at(s.name), weight2d ? T(GgmlType::F16) : T(GgmlType::F32)) << s.name;
    const bool projection = s.name.find("blk.") == 0 && weight2d;
    EXPECT_EQ(nf4.at(s.name), projection ? kNoGgmlType : (weight2d ? T(GgmlType::BF16) : T(GgmlType::F32)))
        << s.name;
  }
}

TEST(Scheme, FallbackToF16WhenEven32DoesNotDivide) {
  RecipeState st;
  EXPECT_EQ(fallback_type(T(GgmlType::Q4_K), 100, st, "x"), T(GgmlType::F16));
  EXPECT_EQ(fallback_type(T(GgmlType::Q6_K), 96, st, "x"), T(GgmlType::Q8_0));
  EXPECT_EQ(fallback_type(T(GgmlType::Q8_0), 100, st, "x"), 0xFFFFFFFFu);  // no fallback: caller errors
  EXPECT_EQ(st.n_fallback, 2);
  ASSERT_EQ(st.fallbacks.size(), 2u);
  EXPECT_EQ(st.fallbacks[1].wanted, T(GgmlType::Q6_K));
  EXPECT_EQ(st.fallbacks[1].used, T(GgmlType::Q8_0));
}

}  // namespace
