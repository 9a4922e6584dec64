// qlora/convert/export_nf4.hpp — turn a GGUF llama/qwen2 model into the
// Hugging Face directory that transformers + bitsandbytes save for a 4-bit
// model (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
// bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=bfloat16) followed
// by save_pretrained), so AutoModelForCausalLM.from_pretrained loads it as
// Linear4bit layers without re-quantizing anything.
//
// What save_pretrained writes (observed with transformers 5.23.0 +
// bitsandbytes 0.50.2 on a tiny llama, tied and untied):
//  * model.safetensors with __metadata__ {"format": "pt"} (transformers
//    refuses files whose format is not a known framework);
//  * the seven projections of every block as Params4bit in bnb's serialized
//    form (io::bnb_nf4_tensors), quant_state dtype = the model dtype;
//  * EVERYTHING else (embeddings, lm_head, norms, qwen2 biases) in the model
//    dtype — norms too are bf16, not f32, because transformers casts the
//    whole model to dtype before quantizing;
//  * no lm_head.weight when the embeddings are tied (tied parameters are
//    saved once);
//  * config.json = json.dumps(sort_keys=True, indent=2) of the model config,
//    with "dtype" and "rope_parameters" (the transformers 5 spellings) and
//    the quantization_config block below; generation_config.json with the
//    special token ids.
// We add one legacy key save_pretrained 5.x no longer writes, a top-level
// "rope_theta": transformers 4.x ignores rope_parameters and would otherwise
// silently run RoPE with its default base 10000; 5.x accepts it without a
// word. The legacy "torch_dtype" is NOT written: 5.x logs a deprecation
// warning for it on every load, and 4.x only uses it for dtype="auto".
//
// Per tensor: decode the GGUF data to f32 (one tensor at a time), reverse the
// shape, undo llama's Q/K row permutation (hf_names.hpp), then quantize to
// NF4 or round to bf16/f16. Only the encoded tensors are kept until the file
// is written (the safetensors writer needs every byte up front), so peak
// memory is about twice the output size plus one f32 tensor.
#pragma once

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/convert/hf_names.hpp"
#include "qlora/convert/quantize_gguf.hpp"
#include "qlora/core/half.hpp"
#include "qlora/core/json_number.hpp"
#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/cpu/quantize.hpp"
#include "qlora/io/bnb_safetensors.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/quant/nf4.hpp"
#include "qlora/quant/row.hpp"
#include "qlora/quant/scheme.hpp"

namespace qlora::convert {

/// What happened to one tensor.
struct HfTensorReport {
  std::string gguf_name;            // e.g. "blk.0.attn_q.weight"
  std::string name;                 // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<std::int64_t> shape;  // HF (row-major) shape
  bool nf4 = false;
  std::string dtype;                // "nf4", "BF16" or "F16"
  std::uint32_t src_type = 0;       // ggml type id in the GGUF
  bool unpermuted = false;          // llama Q/K rows restored to HF order
  std::uint64_t src_bytes = 0;
  std::uint64_t bytes = 0;          // all safetensors bytes for this tensor (NF4: every key)
  double rel_rmse = 0;              // RMSE(encoded, decoded source) / RMS(source); 0 if not measured
  cpu::QuantError error;            // the sums behind rel_rmse (empty if not measured)
  double seconds = 0;
};

/// The whole export.
struct Nf4ExportReport {
  std::string arch;                     // "llama" / "qwen2"
  bool tied_embeddings = false;         // GGUF had no output.weight
  std::vector<HfTensorReport> tensors;  // in GGUF order
  std::uint64_t src_bytes = 0, bytes = 0;
  std::size_t nf4_tensors = 0;
  double nf4_rel_rmse = 0;  // over all NF4 elements: sqrt(Σ err²) / sqrt(Σ src²)
  double max_nf4_rel_rmse = 0;
  std::string safetensors_path, config_path;
  double seconds = 0;
};

struct Nf4ExportOptions {
  int blocksize = 64;          // bnb_4bit blocksize (Params4bit default)
  bool double_quant = true;    // bnb_4bit_use_double_quant
  int nested_blocksize = 256;  // bitsandbytes' fixed nested blocksize
  /// The model dtype: torch "dtype", bnb_4bit_compute_dtype, the quant_state
  /// dtype and the storage type of every unquantized tensor.
  std::string dtype = "bfloat16";  // or "float16"
  /// Written as config.json "transformers_version": the release whose
  /// save_pretrained output this exporter reproduces.
  std::string transformers_version = "5.23.0";
  bool measure_error = true;
  /// Called after each tensor is encoded: (report, index, total).
  std::function<void(const HfTensorReport&, std::size_t, std::size_t)> on_tensor;
  ThreadPool* pool = nullptr;  // default: ThreadPool::global()
};

namespace detail {

// fp32 config values as Python floats (core/json_number.hpp).
using qlora::shortest_double;

}  // namespace detail

/// transformers' BitsAndBytesConfig.to_dict() for our options (the 13 keys
/// save_pretrained writes, including the private _load_in_* mirrors).
inline nlohmann::json bnb_nf4_quantization_config(const Nf4ExportOptions& opt) {
  nlohmann::json q;
  q["_load_in_4bit"] = true;
  q["_load_in_8bit"] = false;
  q["bnb_4bit_compute_dtype"] = opt.dtype;
  q["bnb_4bit_quant_storage"] = "uint8";
  q["bnb_4bit_quant_type"] = "nf4";
  q["bnb_4bit_use_double_quant"] = opt.double_quant;
  q["llm_int8_enable_fp32_cpu_offload"] = false;
  q["llm_int8_has_fp16_weight"] = false;
  q["llm_int8_skip_modules"] = nullptr;
  q["llm_int8_threshold"] = 6.0;
  q["load_in_4bit"] = true;
  q["load_in_8bit"] = false;
  q["quant_method"] = "bitsandbytes";
  return q;
}

/// The transformers LlamaConfig / Qwen2Config of a GGUF model, plus the
/// bitsandbytes quantization_config. Keys are sorted on output (nlohmann's
/// object is a std::map), as transformers' json.dumps(sort_keys=True) does.
inline Result<nlohmann::json> hf_config_json(const io::GgufFile& in, const Nf4ExportOptions& opt = {}) {
  auto arch_name = in.get_string("general.architecture");
  if (!arch_name) return arch_name.status().with_context(in.name());
  auto arch = hf_arch(*arch_name);
  if (!arch) return arch.status().with_context(in.name());
  const std::string p = *arch_name + ".";
  auto need_u32 = [&](const std::string& key) -> Result<std::uint32_t> {
    auto v = in.get_u32(p + key);
    if (!v) return v.status().with_context(in.name());
    return *v;
  };
  auto n_layer = need_u32("block_count");
  auto n_embd = need_u32("embedding_length");
  auto n_ff = need_u32("feed_forward_length");
  auto n_head = need_u32("attention.head_count");
  if (!n_layer) return n_layer.status();
  if (!n_embd) return n_embd.status();
  if (!n_ff) return n_ff.status();
  if (!n_head) return n_head.status();
  if (*n_head == 0 || *n_embd % *n_head != 0)
    return Status::invalid(in.name() + ": embedding_length " + std::to_string(*n_embd) +
                           " is not a multiple of head_count " + std::to_string(*n_head));
  auto u32_or = [&](const std::string& key, std::uint32_t fallback) {
    auto v = in.get_u32(p + key);
    return v ? *v : fallback;
  };
  const std::uint32_t n_head_kv = u32_or("attention.head_count_kv", *n_head);  // absent: no GQA
  const std::uint32_t head_dim = u32_or("attention.key_length", *n_embd / *n_head);
  // HF llama/qwen2 rotate the whole head; a partial rotary GGUF has no config spelling.
  if (const std::uint32_t rot = u32_or("rope.dimension_count", head_dim); rot != head_dim)
    return Status::unsupported(in.name() + ": rope.dimension_count " + std::to_string(rot) + " != head dim " +
                               std::to_string(head_dim) + " (partial rotary) has no " +
                               std::string(hf_model_class(*arch)) + " equivalent");
  auto f32_or = [&](const std::string& key, float fallback) {
    auto v = in.get_f32(p + key);
    return v ? *v : fallback;
  };
  const double eps = detail::shortest_double(f32_or("attention.layer_norm_rms_epsilon", 1e-6f));
  const double theta = detail::shortest_double(f32_or("rope.freq_base", 10000.0f));

  // vocab_size must equal the embedding's rows, whatever the tokenizer says.
  const io::GgufTensorInfo* embd = in.find_tensor("token_embd.weight");
  if (!embd || embd->n_dims != 2) return Status::invalid(in.name() + ": no 2-D tensor 'token_embd.weight'");
  const bool tied = in.find_tensor("output.weight") == nullptr;

  nlohmann::json rope = {{"rope_theta", theta}, {"rope_type", "default"}};
  auto scaling = in.get_string(p + "rope.scaling.type");
  if (scaling && *scaling != "none") {
    if (*scaling != "linear")
      return Status::unsupported(in.name() + ": rope scaling '" + *scaling + "' is not exported (only none, linear)");
    rope["rope_type"] = "linear";
    rope["factor"] = detail::shortest_double(f32_or("rope.scaling.factor", 1.0f));
  }

  nlohmann::json c;
  c["architectures"] = {std::string(hf_model_class(*arch))};
  c["model_type"] = std::string(hf_model_type(*arch));
  c["hidden_size"] = *n_embd;
  c["intermediate_size"] = *n_ff;
  c["num_hidden_layers"] = *n_layer;
  c["num_attention_heads"] = *n_head;
  c["num_key_value_heads"] = n_head_kv;
  c["head_dim"] = head_dim;
  c["hidden_act"] = "silu";
  c["rms_norm_eps"] = eps;
  c["rope_parameters"] = rope;
  c["rope_theta"] = theta;  // legacy spelling (transformers 4.x), see file comment
  if (rope["rope_type"] != "default") c["rope_scaling"] = {{"rope_type", rope["rope_type"]}, {"factor", rope["factor"]}};
  c["vocab_size"] = embd->ne[1];
  c["max_position_embeddings"] = u32_or("context_length", 2048);
  c["tie_word_embeddings"] = tied;
  c["initializer_range"] = 0.02;
  c["attention_dropout"] = 0.0;
  c["use_cache"] = true;
  auto token = [&](const char* key) -> nlohmann::json {
    auto v = in.get_u32(std::string("tokenizer.ggml.") + key);
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  c["bos_token_id"] = token("bos_token_id");
  c["eos_token_id"] = token("eos_token_id");
  c["pad_token_id"] = token("padding_token_id");
  c["dtype"] = opt.dtype;
  if (*arch == HfArch::kLlama) {
    c["attention_bias"] = in.find_tensor("blk.0.attn_q.bias") != nullptr;
    c["mlp_bias"] = false;
    c["pretraining_tp"] = 1;
  } else {
    // Qwen2's q/k/v always carry biases (hard-wired in transformers); the key
    // documents it for readers of the config.
    c["attention_bias"] = true;
    c["use_sliding_window"] = false;
    c["sliding_window"] = nullptr;
    c["max_window_layers"] = *n_layer;
    c["layer_types"] = std::vector<std::string>(*n_layer, "full_attention");
  }
  c["quantization_config"] = bnb_nf4_quantization_config(opt);
  c["transformers_version"] = opt.transformers_version;
  return c;
}

/// Export `in` to `out_dir` (created if needed): model.safetensors,
/// config.json and generation_config.json, each written atomically.
inline Result<Nf4ExportReport> export_nf4_hf(const io::GgufFile& in, const std::string& out_dir,
                                             const Nf4ExportOptions& opt = {}) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  ThreadPool& pool = opt.pool ? *opt.pool : ThreadPool::global();
  if (!quant::nf4_blocksize_ok(opt.blocksize))
    return Status::invalid("nf4 export: blocksize " + std::to_string(opt.blocksize) +
                           " is not a power of two in [32, 4096]");
  if (opt.dtype != "bfloat16" && opt.dtype != "float16")
    return Status::invalid("nf4 export: dtype '" + opt.dtype + "' (supported: bfloat16, float16)");
  const io::StDtype store = opt.dtype == "bfloat16" ? io::StDtype::BF16 : io::StDtype::F16;

  auto config = hf_config_json(in, opt);
  if (!config) return config.status();
  auto facts = model_facts(in);
  if (!facts) return facts.status();
  const HfArch arch = *hf_arch(facts->arch);

  Nf4ExportReport report;
  report.arch = facts->arch;
  report.tied_embeddings = (*config)["tie_word_embeddings"].get<bool>();
  const std::filesystem::path dir(out_dir);
  report.safetensors_path = (dir / "model.safetensors").string();
  report.config_path = (dir / "config.json").string();

  // Check every name before the slow part, so an unsupported tensor (e.g.
  // llama3's rope_freqs) fails in milliseconds, naming the tensor.
  std::vector<std::string> hf_names;
  for (const auto& t : in.tensors()) {
    auto n = gguf_to_hf_name(t.name);
    if (!n) return n.status().with_context(in.name());
    if (!quant::can_dequantize(t.type))
      return Status::unsupported(in.name() + ": tensor '" + t.name + "' is " + quant::ggml_type_name(t.type) +
                                 ", which qlora cannot decode");
    hf_names.push_back(std::move(*n));
  }

  std::vector<io::StTensor> encoded;
  double nf4_err2 = 0, nf4_ref2 = 0;
  const std::size_t total = in.tensors().size();
  for (std::size_t i = 0; i < total; ++i) {
    const io::GgufTensorInfo& t = in.tensors()[i];
    const auto t0 = clock::now();
    const std::string where = in.name() + ": tensor '" + t.name + "'";
    HfTensorReport r;
    r.gguf_name = t.name;
    r.name = hf_names[i];
    r.shape = hf_shape(t.shape());
    r.src_type = t.type;
    r.src_bytes = t.n_bytes;

    std::vector<float> x(std::size_t(t.n_elements()));
    QLORA_TRY(cpu::dequantize(t.type, t.data.data(), x.data(), std::int64_t(x.size()), pool).with_context(where));

    if (hf_permutes_qk(arch)) {
      const QkRole role = gguf_qk_role(t.name);
      if (role != QkRole::kNone) {
        const std::int64_t heads = role == QkRole::kQ ? facts->n_head : facts->n_head_kv;
        auto hf = unpermute_llama_qk(std::span<const float>(x), r.shape[0], heads);
        if (!hf) return hf.status().with_context(where);
        x = std::move(*hf);
        r.unpermuted = true;
      }
    }

    quant::TensorFacts tf;
    tf.name = t.name;
    tf.n_dims = int(t.n_dims);
    for (int d = 0; d < 4; ++d) tf.ne[d] = std::int64_t(t.ne[std::size_t(d)]);
    tf.type = t.type;
    quant::RecipeState st;
    r.nf4 = quant::QuantScheme<quant::scheme::NF4>::choose(tf, *facts, st) == quant::kNoGgmlType;

    double err2 = 0, ref2 = 0;
    if (r.nf4) {
      r.dtype = "nf4";
      quant::Nf4QuantizeOptions qo;
      qo.blocksize = opt.blocksize;
      qo.double_quant = opt.double_quant;
      qo.nested_blocksize = opt.nested_blocksize;
      auto q = quant::quantize_nf4(x, r.shape, qo);
      if (!q) return q.status().with_context(where);
      if (opt.measure_error) {
        // Decode block by block from the stored (double-quantized) scales,
        // i.e. what bitsandbytes will compute, without a second f32 tensor.
        auto scales = quant::nf4_block_scales(*q);
        if (!scales) return scales.status().with_context(where);
        const std::uint64_t bs = std::uint64_t(q->blocksize);
        for (std::uint64_t k = 0; k < q->n; ++k) {
          const double y = double(quant::nf4_value(quant::nf4_unpack(q->packed.data(), k)) * (*scales)[k / bs]);
          err2 += (y - x[k]) * (y - x[k]);
          r.error.max_abs_err = std::max(r.error.max_abs_err, std::fabs(y - x[k]));
          ref2 += double(x[k]) * x[k];
        }
      }
      auto keys = io::bnb_nf4_tensors(r.name.substr(0, r.name.size() - 6), io::BnbNf4Weight{std::move(*q), opt.dtype});
      if (!keys) return keys.status().with_context(where);
      for (auto& k : *keys) {
        r.bytes += k.bytes.size();
        encoded.push_back(std::move(k));
      }
      ++report.nf4_tensors;
      nf4_err2 += err2;
      nf4_ref2 += ref2;
    } else {
      r.dtype = store == io::StDtype::BF16 ? "BF16" : "F16";
      std::vector<std::uint16_t> h(x.size());
      for (std::size_t k = 0; k < x.size(); ++k) {
        h[k] = store == io::StDtype::BF16 ? f32_to_bf16(x[k]) : f32_to_fp16(x[k]);
        if (opt.measure_error) {
          const double y = store == io::StDtype::BF16 ? bf16_to_f32(h[k]) : fp16_to_f32(h[k]);
          err2 += (y - x[k]) * (y - x[k]);
          r.error.max_abs_err = std::max(r.error.max_abs_err, std::fabs(y - x[k]));
          ref2 += double(x[k]) * x[k];
        }
      }
      encoded.push_back(io::StTensor::from<std::uint16_t>(r.name, store, r.shape, std::span<const std::uint16_t>(h)));
      r.bytes = encoded.back().bytes.size();
    }
    r.rel_rmse = ref2 > 0 ? std::sqrt(err2 / ref2) : 0.0;
    if (opt.measure_error) {
      r.error.sum_sq_err = err2;
      r.error.sum_sq_ref = ref2;
      r.error.n = std::int64_t(x.size());
    }
    if (r.nf4) report.max_nf4_rel_rmse = std::max(report.max_nf4_rel_rmse, r.rel_rmse);
    r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    report.src_bytes += r.src_bytes;
    report.bytes += r.bytes;
    report.tensors.push_back(std::move(r));
    if (opt.on_tensor) opt.on_tensor(report.tensors.back(), i, total);
  }
  report.nf4_rel_rmse = nf4_ref2 > 0 ? std::sqrt(nf4_err2 / nf4_ref2) : 0.0;

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io(out_dir + ": cannot create directory: " + ec.message());
  {
    std::vector<io::StTensorView> views;
    views.reserve(encoded.size());
    for (const auto& e : encoded) views.push_back(e.view());
    QLORA_TRY(io::save_safetensors(report.safetensors_path, std::move(views),
                                   std::map<std::string, std::string>{{"format", "pt"}}));
  }
  encoded.clear();
  // transformers writes json.dumps(indent=2, sort_keys=True) + "\n".
  QLORA_TRY(write_text_file(report.config_path, config->dump(2) + "\n"));
  nlohmann::json gen;
  gen["_from_model_config"] = true;
  gen["bos_token_id"] = (*config)["bos_token_id"];
  gen["eos_token_id"] = (*config)["eos_token_id"];
  if (!(*config)["pad_token_id"].is_null()) gen["pad_token_id"] = (*config)["pad_token_id"];
  gen["transformers_version"] = opt.transformers_version;
  QLORA_TRY(write_text_file((dir / "generation_config.json").string(), gen.dump(2) + "\n"));
  report.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  return report;
}

}  // namespace qlora::convert
