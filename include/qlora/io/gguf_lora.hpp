// qlora/io/gguf_lora.hpp — llama.cpp's LoRA adapter file: a GGUF that
// `llama-cli --lora`, llama_adapter_lora_init and llama-cpp-python's
// Llama(lora_path=...) load on top of a base model.
//
// What llama.cpp requires (src/llama-adapter.cpp) and what its
// convert_lora_to_gguf.py writes:
//
//   KV   general.architecture = the base model's ("llama"; must match or the load fails)
//        general.type         = "adapter"
//        adapter.type         = "lora"
//        general.name         (optional)
//        adapter.lora.alpha   f32; scale = alpha / r with r = lora_b ne[0];
//                             absent or 0 means scale 1
//        general.quantization_version = 2
//   per (layer, projection), names from io/lora_names.hpp:
//        blk.N.attn_q.weight.lora_a   ne [in, r]   = PEFT lora_A [r, in], same bytes
//        blk.N.attn_q.weight.lora_b   ne [r, out]  = PEFT lora_B [out, r], same bytes
//   tensor types: F32, F16, BF16 or Q8_0 (the converter's --outtype; a
//   tensor whose row is not whole Q8_0 blocks — lora_b, whose row is r — falls
//   back to F16 exactly as the converter does), data aligned to 32.
//
// Coordinates: the converter runs the base model's modify_tensors on the
// (A, B) pair, so for llama the Q/K row permutation is applied to lora_b's
// rows (out) and lora_a is left alone: the file is in GGUF coordinates, which
// is where our LoraAdapter already lives — no permutation here.
//
// The reader is stricter than llama.cpp where llama.cpp would silently do
// less than the file says: norm vectors (which llama.cpp skips) and LoRAs on
// the embeddings/output are refused with the tensor named, as are ranks that
// differ between tensors (a LoraAdapter has one rank).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/io/lora_names.hpp"
#include "qlora/io/lora_tensor_set.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/model/model_config.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::io {

inline constexpr std::string_view kGgufLoraAlphaKey = "adapter.lora.alpha";
inline constexpr std::uint32_t kGgmlQuantVersion = 2;  // GGML_QNT_VERSION

struct GgufLoraWriteOptions {
  /// ggml type of the tensors: F32 (0), F16 (1), BF16 (30) or Q8_0 (8).
  std::uint32_t type = std::uint32_t(quant::GgmlType::F32);
  std::string name;  // general.name; omitted when empty
};

/// The ggml type a tensor with rows of `row` elements gets when `wanted` is
/// asked for: Q8_0 needs whole 32-element blocks, otherwise F16 (the
/// converter's QuantError fallback).
inline std::uint32_t gguf_lora_tensor_type(std::uint32_t wanted, std::int64_t row) {
  if (wanted == std::uint32_t(quant::GgmlType::Q8_0) && row % 32 != 0) return std::uint32_t(quant::GgmlType::F16);
  return wanted;
}

/// A writer holding the adapter's KVs and tensors. Tensor bytes are produced
/// from `a` during the write, so `a` must outlive the writer.
inline Result<GgufWriter> gguf_lora_writer(const lora::LoraAdapter& a, const GgufLoraWriteOptions& opt = {}) {
  using quant::GgmlType;
  const std::uint32_t t = opt.type;
  if (t != std::uint32_t(GgmlType::F32) && t != std::uint32_t(GgmlType::F16) && t != std::uint32_t(GgmlType::BF16) &&
      t != std::uint32_t(GgmlType::Q8_0))
    return Status::unsupported("GGUF LoRA tensors are F32, F16, BF16 or Q8_0, not " + quant::ggml_type_name(t));
  GgufWriter w;
  QLORA_TRY(w.set_string("general.architecture", a.model().arch));
  QLORA_TRY(w.set_string("general.type", "adapter"));
  QLORA_TRY(w.set_string("adapter.type", "lora"));
  if (!opt.name.empty()) QLORA_TRY(w.set_string("general.name", opt.name));
  QLORA_TRY(w.set_f32(std::string(kGgufLoraAlphaKey), a.config().alpha));
  QLORA_TRY(w.set_u32("general.quantization_version", kGgmlQuantVersion));

  // Tensors in the order convert_lora_to_gguf.py emits them: it walks the
  // PEFT safetensors file, whose tensors are sorted by name, and writes each
  // pair's lora_a then lora_b. Same order + same KVs = the same bytes.
  std::vector<const lora::LoraSlot*> order;
  for (const lora::LoraSlot& s : a.slots()) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](const lora::LoraSlot* x, const lora::LoraSlot* y) {
    return peft_lora_name(x->layer, x->target, LoraMatrix::kA) < peft_lora_name(y->layer, y->target, LoraMatrix::kA);
  });
  const std::int64_t r = a.rank();
  for (const lora::LoraSlot* sp : order) {
    const lora::LoraSlot& s = *sp;
    // A: `r` rows of `in`; B: `out` rows of `r` — our buffers' row-major order
    // is the file's, row by row.
    for (LoraMatrix m : {LoraMatrix::kA, LoraMatrix::kB}) {
      const bool is_a = m == LoraMatrix::kA;
      const std::int64_t cols = is_a ? s.in : r, rows = is_a ? r : s.out;
      const std::uint32_t type = gguf_lora_tensor_type(t, cols);
      const float* src = is_a ? a.a(s) : a.b(s);
      const std::string name = gguf_lora_name(s.layer, s.target, m);
      const std::uint64_t row_bytes = *quant::ggml_row_bytes(*quant::ggml_type_info(type), std::uint64_t(cols));
      QLORA_TRY(w.add_tensor(name, {std::uint64_t(cols), std::uint64_t(rows)}, type,
                             [=](GgufByteSink& sink) -> Status {
                               std::vector<std::byte> row(row_bytes);
                               for (std::int64_t i = 0; i < rows; ++i) {
                                 QLORA_TRY(quant::quantize_row(type, src + i * cols, row.data(), cols)
                                               .with_context("tensor '" + name + "' row " + std::to_string(i)));
                                 QLORA_TRY(sink.write(row));
                               }
                               return Status::ok();
                             }));
    }
  }
  return w;
}

/// The whole file in memory.
inline Result<std::vector<std::byte>> gguf_lora_bytes(const lora::LoraAdapter& a, const GgufLoraWriteOptions& opt = {}) {
  auto w = gguf_lora_writer(a, opt);
  if (!w) return w.status();
  return w->write_buffer();
}

/// Write `path` atomically.
inline Status write_gguf_lora(const lora::LoraAdapter& a, const std::string& path, const GgufLoraWriteOptions& opt = {}) {
  auto w = gguf_lora_writer(a, opt);
  if (!w) return w.status().with_context(path);
  return w->write_file(path);
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// An adapter read from a GGUF LoRA, with what the file said about itself.
struct GgufLoraAdapter {
  lora::LoraAdapter adapter;
  std::string name;         // general.name, empty if absent
  bool alpha_absent = false;  // no (or zero) adapter.lora.alpha: scale 1, read as alpha = r
};

/// Read a parsed GGUF LoRA for `model` (its architecture and shapes must
/// match). Errors name the file and the key or tensor.
inline Result<GgufLoraAdapter> read_gguf_lora(const GgufFile& f, const model::ModelConfig& model) {
  const std::string& file = f.name();
  auto str_is = [&](const char* key, std::string_view want) -> Status {
    auto v = f.get_string(key);
    if (!v) return Status::invalid(file + ": " + key + " is missing or not a string (not a GGUF LoRA adapter?)");
    if (*v != want)
      return Status::invalid(file + ": " + key + " is \"" + *v + "\", a LoRA adapter has \"" + std::string(want) + "\"");
    return Status::ok();
  };
  QLORA_TRY(str_is("general.type", "adapter"));
  QLORA_TRY(str_is("adapter.type", "lora"));
  auto arch = f.get_string("general.architecture");
  if (!arch) return Status::invalid(file + ": general.architecture is missing");
  if (*arch != model.arch)
    return Status::invalid(file + ": adapter is for architecture '" + *arch + "' but the base model is '" + model.arch + "'");
  if (f.has("adapter.alora.invocation_tokens"))
    return Status::unsupported(file + ": adapter.alora.invocation_tokens is set: activated LoRA is not supported");
  float alpha = 0.0f;
  if (f.has(kGgufLoraAlphaKey)) {
    auto a = f.get_f32(kGgufLoraAlphaKey);
    if (!a) return a.status();
    alpha = *a;
    if (!(alpha >= 0.0f) || !std::isfinite(alpha))
      return Status::unsupported(file + ": adapter.lora.alpha = " + std::to_string(alpha) + " (negative or non-finite)");
  }

  LoraTensorSet set(model, file, [](std::uint32_t l, lora::Target t, LoraMatrix m) { return gguf_lora_name(l, t, m); });
  const auto& tensors = f.tensors();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& t = tensors[i];
    const auto id = parse_gguf_lora_name(t.name);
    if (!id)
      return Status::unsupported(file + ": tensor '" + t.name +
                                 "' is not a lora_a/lora_b of a block projection (attn_q/k/v/output, ffn_gate/up/down); "
                                 "norm vectors and embedding/output adapters are not supported");
    using quant::GgmlType;
    if (t.type != std::uint32_t(GgmlType::F32) && t.type != std::uint32_t(GgmlType::F16) &&
        t.type != std::uint32_t(GgmlType::BF16) && t.type != std::uint32_t(GgmlType::Q8_0))
      return Status::unsupported(file + ": tensor '" + t.name + "' is " + quant::ggml_type_name(t.type) +
                                 "; LoRA tensors are F32, F16, BF16 or Q8_0");
    if (t.n_dims != 2)
      return Status::invalid(file + ": tensor '" + t.name + "' has " + std::to_string(t.n_dims) + " dimensions, expected 2");
    // ggml ne is the torch shape reversed.
    QLORA_TRY(set.add(*id, t.name, std::int64_t(t.ne[1]), std::int64_t(t.ne[0]), i));
  }
  auto layout = set.finish();
  if (!layout) return layout.status();

  lora::LoraConfig lc;
  lc.rank = layout->rank;
  lc.alpha = alpha > 0.0f ? alpha : float(layout->rank);
  lc.targets = layout->targets;
  QLORA_TRY(lc.validate().with_context(file));
  GgufLoraAdapter out{lora::LoraAdapter::layout(model, lc), "", alpha == 0.0f};
  if (auto n = f.get_string("general.name")) out.name = *n;
  lora::LoraAdapter& a = out.adapter;
  for (const lora::LoraSlot& s : a.slots()) {
    for (LoraMatrix m : {LoraMatrix::kA, LoraMatrix::kB}) {
      const GgufTensorInfo& t = tensors[layout->at(s.layer, s.target, m)];
      float* dst = m == LoraMatrix::kA ? a.a(s) : a.b(s);
      const std::int64_t cols = std::int64_t(t.ne[0]), rows = std::int64_t(t.ne[1]);
      const std::uint64_t row_bytes = t.n_bytes / std::uint64_t(rows);
      for (std::int64_t i = 0; i < rows; ++i)
        QLORA_TRY(quant::dequantize_row(t.type, t.data.data() + std::size_t(i) * row_bytes, dst + i * cols, cols)
                      .with_context(file + ": tensor '" + t.name + "'"));
      if (const std::int64_t bad = quant::find_non_finite(dst, rows * cols); bad >= 0)
        return Status::numeric(file + ": tensor '" + t.name + "' has a non-finite value at element " + std::to_string(bad));
    }
  }
  return out;
}

/// Open and read `path`.
inline Result<GgufLoraAdapter> read_gguf_lora(const std::string& path, const model::ModelConfig& model) {
  auto f = GgufFile::open(path);
  if (!f) return f.status();
  return read_gguf_lora(*f, model);
}

}  // namespace qlora::io
