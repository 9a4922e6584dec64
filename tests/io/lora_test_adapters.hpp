// Test adapters shared by the PEFT and GGUF LoRA tests: the closed-form
// values of tools/gen_peft_golden.py (so files made by PEFT, safetensors and
// llama.cpp's converter can be rebuilt here) and random adapters with
// nonzero A and B for round trips.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "qlora/core/rng.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::test {

inline std::string lora_data_dir() { return std::string(QLORA_TEST_DATA_DIR) + "/peft"; }

inline std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// gen_peft_golden.py's value for (layer, target, matrix, row, col), HF
/// coordinates: float32(((131i + 31j + 17l + 7t + 3m) % 193 - 96) / 97).
inline float golden_value(std::uint32_t layer, lora::Target t, int m, std::int64_t i, std::int64_t j) {
  const std::int64_t k = (131 * i + 31 * j + 17 * std::int64_t(layer) + 7 * std::int64_t(t) + 3 * m) % 193 - 96;
  return static_cast<float>(double(k) / 97.0);
}

/// The HF row that llama.cpp's permutation puts at GGUF row `g` (heads of
/// `hd` rows; within a head GGUF row 2i+s holds HF row s*hd/2 + i). Written
/// out here rather than taken from convert/hf_names.hpp so the tests check
/// the library against an independent statement of the rule.
inline std::int64_t hf_row_of_gguf_row(std::int64_t g, std::int64_t hd) {
  const std::int64_t head = g / hd, r = g % hd;
  return head * hd + (r % 2) * (hd / 2) + r / 2;
}

/// The golden adapter in GGUF coordinates for `model` (llama: q/k B rows permuted).
inline lora::LoraAdapter golden_adapter(const model::ModelConfig& model, int rank, float alpha, lora::TargetMask targets,
                                        float dropout = 0.0f) {
  lora::LoraConfig c;
  c.rank = rank;
  c.alpha = alpha;
  c.dropout = dropout;
  c.targets = targets;
  lora::LoraAdapter a = lora::LoraAdapter::layout(model, c);
  const bool permute = model.arch == "llama";
  for (const lora::LoraSlot& s : a.slots()) {
    for (std::int64_t i = 0; i < rank; ++i)
      for (std::int64_t j = 0; j < s.in; ++j) a.a(s)[i * s.in + j] = golden_value(s.layer, s.target, 0, i, j);
    const bool qk = permute && (s.target == lora::Target::kQ || s.target == lora::Target::kK);
    for (std::int64_t g = 0; g < s.out; ++g) {
      const std::int64_t hf = qk ? hf_row_of_gguf_row(g, model.head_dim) : g;
      for (std::int64_t j = 0; j < rank; ++j) a.b(s)[g * rank + j] = golden_value(s.layer, s.target, 1, hf, j);
    }
  }
  return a;
}

/// A trained-looking adapter: PEFT initialisation for A, then B filled with
/// seeded nonzero values (a fresh adapter's B = 0 would hide permutation bugs).
inline lora::LoraAdapter random_adapter(const model::ModelConfig& model, int rank, float alpha,
                                        lora::TargetMask targets = lora::kAllTargets, std::uint64_t seed = 7) {
  lora::LoraConfig c;
  c.rank = rank;
  c.alpha = alpha;
  c.targets = targets;
  c.seed = seed;
  lora::LoraAdapter a = lora::LoraAdapter::create(model, c).value();
  for (const lora::LoraSlot& s : a.slots())
    for (std::int64_t i = 0; i < s.out * rank; ++i)
      a.b(s)[i] = 0.1f * (2.0f * uniform01_f32(hash3(seed + 1, s.b_off, std::uint64_t(i))) - 1.0f);
  return a;
}

inline model::ModelConfig tiny_qwen2() {
  model::ModelConfig m = model::presets::tiny();
  m.arch = "qwen2";
  m.rope_style = model::RopeStyle::kNeox;
  return m;
}

}  // namespace qlora::test
