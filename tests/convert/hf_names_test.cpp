// Pins convert/hf_names.hpp: the GGUF <-> Hugging Face tensor names of
// llama/qwen2 both ways (and their errors), shapes, and llama's Q/K row
// permutation against a hand-written case and llama.cpp's reshape/swapaxes
// definition.
#include "qlora/convert/hf_names.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <utility>

namespace {

using namespace qlora;
using namespace qlora::convert;

TEST(HfNames, GgufToHfAndBack) {
  const std::pair<const char*, const char*> cases[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output.weight", "lm_head.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
      {"blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight"},
      {"blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"},
      {"blk.12.attn_q.bias", "model.layers.12.self_attn.q_proj.bias"},
      {"blk.3.attn_k.weight", "model.layers.3.self_attn.k_proj.weight"},
      {"blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"},
      {"blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"},
      {"blk.3.attn_v.bias", "model.layers.3.self_attn.v_proj.bias"},
      {"blk.29.attn_output.weight", "model.layers.29.self_attn.o_proj.weight"},
      {"blk.7.ffn_gate.weight", "model.layers.7.mlp.gate_proj.weight"},
      {"blk.7.ffn_up.weight", "model.layers.7.mlp.up_proj.weight"},
      {"blk.100.ffn_down.weight", "model.layers.100.mlp.down_proj.weight"},
  };
  for (const auto& [g, h] : cases) {
    auto hf = gguf_to_hf_name(g);
    ASSERT_TRUE(hf.is_ok()) << g << ": " << hf.status().message();
    EXPECT_EQ(*hf, h);
    auto back = hf_to_gguf_name(h);
    ASSERT_TRUE(back.is_ok()) << h << ": " << back.status().message();
    EXPECT_EQ(*back, g);
  }
}

TEST(HfNames, UnknownNamesAreErrors) {
  for (const char* g : {"rope_freqs.weight", "blk.0.attn_qkv.weight", "blk.x.attn_q.weight", "blk.01.attn_q.weight",
                        "blk.-1.attn_q.weight", "blk.0.attn_q", "blk.0.attn_q.scale", "token_embd", "",
                        "blk..attn_q.weight", "output.weight.lora_a"}) {
    auto r = gguf_to_hf_name(g);
    ASSERT_FALSE(r.is_ok()) << g;
    EXPECT_EQ(r.status().code(), ErrorCode::kUnsupported);
    EXPECT_NE(r.status().message().find(std::string("'") + g + "'"), std::string::npos) << r.status().message();
  }
  for (const char* h : {"model.embed_tokens", "model.layers.0.self_attn.rotary_emb.inv_freq", "lm_head.bias.x",
                        "model.layers.0.mlp.down_proj.weight.absmax", "layers.0.mlp.up_proj.weight",
                        "model.layers.a.mlp.up_proj.weight"}) {
    auto r = hf_to_gguf_name(h);
    ASSERT_FALSE(r.is_ok()) << h;
    EXPECT_NE(r.status().message().find(h), std::string::npos) << r.status().message();
  }
}

TEST(HfNames, ArchitecturesAndRoles) {
  EXPECT_EQ(*hf_arch("llama"), HfArch::kLlama);
  EXPECT_EQ(*hf_arch("qwen2"), HfArch::kQwen2);
  auto bad = hf_arch("gemma3");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("gemma3"), std::string::npos);
  EXPECT_TRUE(hf_permutes_qk(HfArch::kLlama));
  EXPECT_FALSE(hf_permutes_qk(HfArch::kQwen2));
  EXPECT_EQ(hf_model_class(HfArch::kQwen2), "Qwen2ForCausalLM");
  EXPECT_EQ(gguf_qk_role("blk.4.attn_q.weight"), QkRole::kQ);
  EXPECT_EQ(gguf_qk_role("blk.4.attn_q.bias"), QkRole::kQ);
  EXPECT_EQ(gguf_qk_role("blk.4.attn_k.bias"), QkRole::kK);
  EXPECT_EQ(gguf_qk_role("blk.4.attn_v.weight"), QkRole::kNone);
  EXPECT_EQ(gguf_qk_role("blk.4.attn_output.weight"), QkRole::kNone);
  const std::uint64_t ne[2] = {576, 192};
  EXPECT_EQ(hf_shape(ne), (std::vector<std::int64_t>{192, 576}));
}

// Two heads of hd = 4, two columns. HF rows per head are (r0 r1 | r2 r3)
// = rotate-half pairs (r0,r2), (r1,r3); llama.cpp makes them adjacent:
// GGUF head = r0 r2 r1 r3.
TEST(HfNames, PermutationHandCase) {
  const std::vector<int> hf = {0,  1,  10, 11, 20, 21, 30, 31,   // head 0, rows 0..3
                               40, 41, 50, 51, 60, 61, 70, 71};  // head 1, rows 4..7
  const std::vector<int> gguf = {0,  1,  20, 21, 10, 11, 30, 31,
                                 40, 41, 60, 61, 50, 51, 70, 71};
  auto p = permute_llama_qk(std::span<const int>(hf), 8, 2);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  EXPECT_EQ(*p, gguf);
  auto u = unpermute_llama_qk(std::span<const int>(gguf), 8, 2);
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(*u, hf);
  // Row maps agree with formats.md §1.5: GGUF row h·hd+2i+s <-> HF h·hd+s·hd/2+i.
  EXPECT_EQ(llama_qk_gguf_row(2, 4), 1);  // s=1, i=0
  EXPECT_EQ(llama_qk_hf_row(1, 4), 2);
  EXPECT_EQ(llama_qk_gguf_row(4 + 3, 4), 4 + 3);
}

// llama.cpp's definition: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(w.shape).
TEST(HfNames, PermutationMatchesReshapeSwapaxes) {
  const std::int64_t n_head = 3, hd = 64, cols = 5, rows = n_head * hd;
  std::vector<float> hf(std::size_t(rows * cols));
  std::iota(hf.begin(), hf.end(), 0.0f);
  std::vector<float> ref(hf.size());
  for (std::int64_t h = 0; h < n_head; ++h)
    for (std::int64_t i = 0; i < hd / 2; ++i)
      for (std::int64_t s = 0; s < 2; ++s)
        for (std::int64_t c = 0; c < cols; ++c)
          ref[std::size_t(((h * (hd / 2) + i) * 2 + s) * cols + c)] = hf[std::size_t(((h * 2 + s) * (hd / 2) + i) * cols + c)];
  auto p = permute_llama_qk(std::span<const float>(hf), rows, n_head);
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(*p, ref);
  auto back = unpermute_llama_qk(std::span<const float>(*p), rows, n_head);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, hf);
  // Biases are the cols = 1 case.
  std::vector<float> bias(static_cast<std::size_t>(rows));
  std::iota(bias.begin(), bias.end(), 0.0f);
  auto pb = permute_llama_qk(std::span<const float>(bias), rows, n_head);
  ASSERT_TRUE(pb.is_ok());
  for (std::int64_t r = 0; r < rows; ++r) EXPECT_EQ((*pb)[std::size_t(llama_qk_gguf_row(r, hd))], float(r));
}

TEST(HfNames, PermutationErrors) {
  std::vector<float> x(24);
  EXPECT_FALSE(permute_llama_qk(std::span<const float>(x), 6, 4).is_ok());   // 6 rows, 4 heads
  EXPECT_FALSE(permute_llama_qk(std::span<const float>(x), 6, 2).is_ok());   // hd = 3 is odd
  EXPECT_FALSE(permute_llama_qk(std::span<const float>(x), 10, 5).is_ok());  // 24 is not 10 rows
  EXPECT_FALSE(unpermute_llama_qk(std::span<const float>(x), 0, 1).is_ok());
  std::vector<float> small(12);
  EXPECT_FALSE(unpermute_llama_qk(std::span<const float>(x), std::span<float>(small), 4, 2).is_ok());
  EXPECT_TRUE(unpermute_llama_qk(std::span<const float>(x), 4, 2).is_ok());
}

}  // namespace
