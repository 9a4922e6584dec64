// qlora/convert/quantize_gguf.hpp — rewrite a GGUF model with a quantization
// scheme, producing the same file llama-quantize produces.
//
// What "the same file" takes (llama.cpp src/llama-quant.cpp, read to learn):
//  * tensors visited and written in llama.cpp's order (llama_tensor_order),
//    because the recipe's layer counters advance in that order;
//  * every input KV copied in order, then general.quantization_version = 2
//    and general.file_type set (a set removes and re-appends, so both end
//    up last), split.* keys dropped;
//  * a tensor already in its target type copied byte for byte; any other
//    decoded to f32 and quantized with the reference quantizers;
//  * 32-byte alignment with zero padding after every tensor.
// Tensors are produced while the file is written, so memory holds one tensor
// (in f32) at a time, never the whole model.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"
#include "qlora/cpu/quantize.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "qlora/quant/row.hpp"
#include "qlora/quant/scheme.hpp"

namespace qlora::convert {

/// What happened to one tensor.
struct TensorReport {
  std::string name;
  std::vector<std::uint64_t> ne;
  std::uint32_t src_type = 0, dst_type = 0;
  std::uint64_t src_bytes = 0, dst_bytes = 0;
  bool copied = false;        // already in the target type: bytes copied as they were
  cpu::QuantError error;      // against the decoded source (zero when copied)
  double seconds = 0;
};

/// The whole run.
struct QuantizeReport {
  std::string scheme;
  std::vector<TensorReport> tensors;  // in output order
  std::vector<quant::RecipeState::Fallback> fallbacks;  // rows that forced another type
  std::uint64_t src_bytes = 0, dst_bytes = 0;
  double seconds = 0;
};

struct QuantizeOptions {
  bool measure_error = true;  // decode each quantized row again to report RMSE
  /// Called after each tensor is written: (report, index, total).
  std::function<void(const TensorReport&, std::size_t, std::size_t)> on_tensor;
  ThreadPool* pool = nullptr;  // default: ThreadPool::global()
  /// Rewrite tensor values between decoding and encoding (LoRA merge):
  /// `transforms(name)` says which tensors, `transform(name, values, rows,
  /// cols)` edits their fp32 values in place. A transformed tensor is always
  /// re-encoded, even when it is already in its target type.
  std::function<bool(const std::string&)> transforms;
  std::function<Status(const std::string&, float*, std::int64_t, std::int64_t)> transform;
};

/// Facts the recipes need, read from the GGUF metadata.
inline Result<quant::ModelFacts> model_facts(const io::GgufFile& f) {
  quant::ModelFacts m;
  auto arch = f.get_string("general.architecture");
  if (!arch) return arch.status();
  m.arch = *arch;
  auto u32 = [&](const std::string& key, std::uint32_t fallback) -> std::uint32_t {
    auto v = f.get_u32(m.arch + "." + key);
    return v ? *v : fallback;
  };
  m.n_layer = u32("block_count", 0);
  m.n_head = u32("attention.head_count", 0);
  m.n_head_kv = u32("attention.head_count_kv", m.n_head);  // absent: no GQA (GGUF spec)
  m.n_expert = u32("expert_count", 0);
  if (m.n_layer == 0) return Status::invalid(f.name() + ": key '" + m.arch + ".block_count' missing or zero");
  return m;
}

/// The (tensor, target type) plan of scheme S for file f, in output order.
template <class S>
Result<std::vector<std::pair<const io::GgufTensorInfo*, std::uint32_t>>> plan_quantization(
    const io::GgufFile& f, std::vector<quant::RecipeState::Fallback>* fallbacks = nullptr) {
  auto facts = model_facts(f);
  if (!facts) return facts.status();
  std::vector<const io::GgufTensorInfo*> order;
  for (const auto& t : f.tensors()) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const io::GgufTensorInfo* a, const io::GgufTensorInfo* b) {
    return quant::llama_tensor_order(a->name, b->name);
  });
  std::vector<quant::TensorFacts> tf;
  for (const auto* t : order) {
    quant::TensorFacts x;
    x.name = t->name;
    x.n_dims = int(t->n_dims);
    for (int d = 0; d < 4; ++d) x.ne[d] = std::int64_t(t->ne[std::size_t(d)]);
    x.type = t->type;
    tf.push_back(x);
  }
  quant::RecipeState st;
  st.init(tf);
  std::vector<std::pair<const io::GgufTensorInfo*, std::uint32_t>> plan;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::uint32_t dst = quant::QuantScheme<S>::choose(tf[i], *facts, st);
    if (dst == 0xFFFFFFFFu)
      return Status::invalid(f.name() + ": tensor '" + order[i]->name + "' has rows of " +
                             std::to_string(order[i]->ne[0]) + " elements, which " + std::string(quant::QuantScheme<S>::kName) +
                             " cannot quantize and has no fallback for");
    if (dst != order[i]->type && !quant::can_dequantize(order[i]->type))
      return Status::unsupported(f.name() + ": tensor '" + order[i]->name + "' is " +
                                 quant::ggml_type_name(order[i]->type) + ", which qlora cannot decode");
    plan.emplace_back(order[i], dst);
  }
  if (fallbacks) *fallbacks = st.fallbacks;
  return plan;
}

/// Quantize `in` with scheme S into `out_path` (written atomically).
template <class S>
Result<QuantizeReport> quantize_gguf(const io::GgufFile& in, const std::string& out_path,
                                     const QuantizeOptions& opt = {}) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  ThreadPool& pool = opt.pool ? *opt.pool : ThreadPool::global();
  QuantizeReport report;
  report.scheme = std::string(quant::QuantScheme<S>::kName);
  auto plan = plan_quantization<S>(in, &report.fallbacks);
  if (!plan) return plan.status();

  io::GgufWriter w;
  for (const auto& kv : in.kvs()) {
    if (kv.key.rfind("split.", 0) == 0) continue;
    QLORA_TRY(w.set(kv.key, kv.value).with_context(out_path));
  }
  QLORA_TRY(w.set_u32("general.quantization_version", 2));
  QLORA_TRY(w.set_u32("general.file_type", quant::QuantScheme<S>::kFileType));

  report.tensors.resize(plan->size());
  for (std::size_t i = 0; i < plan->size(); ++i) {
    const io::GgufTensorInfo* t = (*plan)[i].first;
    const std::uint32_t dst = (*plan)[i].second;
    TensorReport& r = report.tensors[i];
    r.name = t->name;
    r.ne.assign(t->ne.begin(), t->ne.begin() + t->n_dims);
    r.src_type = t->type;
    r.dst_type = dst;
    r.src_bytes = t->n_bytes;
    const bool edit = opt.transforms && opt.transform && opt.transforms(t->name);
    r.copied = dst == t->type && !edit;
    const std::size_t total = plan->size();
    auto produce = [t, dst, edit, &r, &opt, &pool, i, total, &out_path](io::GgufByteSink& sink) -> Status {
      const auto t0 = clock::now();
      if (r.copied) {
        QLORA_TRY(sink.write(t->data));
        r.dst_bytes = t->n_bytes;
      } else {
        const std::int64_t ncols = std::int64_t(t->ne[0]);
        const std::int64_t nrows = std::int64_t(t->n_elements()) / ncols;
        std::vector<float> f32(std::size_t(t->n_elements()));
        QLORA_TRY(cpu::dequantize(t->type, t->data.data(), f32.data(), std::int64_t(f32.size()), pool)
                      .with_context(out_path + ": tensor '" + t->name + "'"));
        if (edit) QLORA_TRY(opt.transform(t->name, f32.data(), nrows, ncols).with_context("tensor '" + t->name + "'"));
        const auto info = *quant::ggml_type_info(dst);
        std::vector<std::byte> q(std::size_t(nrows) * std::size_t(ncols / info.block_elems) * info.block_bytes);
        QLORA_TRY(cpu::quantize_rows(dst, f32.data(), q.data(), nrows, ncols, opt.measure_error ? &r.error : nullptr,
                                     pool)
                      .with_context("tensor '" + t->name + "'"));
        QLORA_TRY(sink.write(q));
        r.dst_bytes = q.size();
      }
      r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
      if (opt.on_tensor) opt.on_tensor(r, i, total);
      return Status::ok();
    };
    QLORA_TRY(w.add_tensor(t->name, r.ne, dst, produce).with_context(out_path));
  }
  QLORA_TRY(w.write_file(out_path));
  for (const auto& r : report.tensors) {
    report.src_bytes += r.src_bytes;
    report.dst_bytes += r.dst_bytes;
  }
  report.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  return report;
}

}  // namespace qlora::convert
