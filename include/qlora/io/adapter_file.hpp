// qlora/io/adapter_file.hpp — a LoRA adapter on disk in either format we
// exchange, told apart by what is there: a directory with
// adapter_config.json (or one of its two files) is a PEFT adapter, a file
// starting with the GGUF magic is a llama.cpp LoRA. One entry point reads
// either, one writes either, so tools (qlora export-adapter, the trainer's
// checkpoints) do not each re-implement the dispatch.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf_lora.hpp"
#include "qlora/io/peft_adapter.hpp"

namespace qlora::io {

enum class AdapterFormat : std::uint8_t { kPeft, kGguf };

inline const char* adapter_format_name(AdapterFormat f) { return f == AdapterFormat::kPeft ? "PEFT" : "GGUF"; }

/// Parse "peft" / "gguf".
inline Result<AdapterFormat> parse_adapter_format(std::string_view s) {
  if (s == "peft") return AdapterFormat::kPeft;
  if (s == "gguf") return AdapterFormat::kGguf;
  return Status::invalid("unknown adapter format '" + std::string(s) + "' (valid: peft, gguf)");
}

/// Where an adapter is and which format it has.
struct AdapterLocation {
  AdapterFormat format = AdapterFormat::kPeft;
  std::string path;  // PEFT: the directory; GGUF: the file
};

/// Identify `path`: a PEFT directory (or its adapter_config.json /
/// adapter_model.safetensors), or a GGUF file by its magic.
inline Result<AdapterLocation> locate_adapter(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / kPeftConfigFile, ec)) return AdapterLocation{AdapterFormat::kPeft, path};
    return Status::invalid(path + ": a directory without " + std::string(kPeftConfigFile) + " is not a PEFT adapter");
  }
  if (!fs::exists(p, ec)) return Status::io(path + ": no such file or directory");
  const std::string file = p.filename().string();
  if (file == kPeftConfigFile || file == kPeftWeightsFile) {
    const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    return AdapterLocation{AdapterFormat::kPeft, dir};
  }
  std::array<char, 4> magic{};
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.read(magic.data(), 4)) return Status::invalid(path + ": cannot read its first 4 bytes");
  if (std::string_view(magic.data(), 4) == "GGUF") return AdapterLocation{AdapterFormat::kGguf, path};
  return Status::invalid(path + ": neither a PEFT adapter directory nor a GGUF file (no GGUF magic)");
}

/// An adapter read from either format, with what the reader had to interpret.
struct LoadedAdapter {
  lora::LoraAdapter adapter;
  AdapterLocation from;
  std::string note;  // e.g. rsLoRA folded into alpha; empty when nothing to say
};

/// Read the adapter at `path` (either format, see locate_adapter) for
/// `model`. Its shapes are checked against the model, and a PEFT adapter's
/// llama q/k rows are moved to GGUF order, so the result is always in the
/// GGUF model's coordinates whatever the file was.
inline Result<LoadedAdapter> read_lora_adapter(const std::string& path, const model::ModelConfig& model) {
  auto where = locate_adapter(path);
  if (!where) return where.status();
  if (where->format == AdapterFormat::kPeft) {
    auto r = read_peft_adapter(where->path, model);
    if (!r) return r.status();
    std::string note;
    if (r->config.use_rslora)
      note = "use_rslora: lora_alpha " + std::to_string(r->config.lora_alpha) + " / sqrt(r) is read as alpha " +
             std::to_string(r->adapter.config().alpha) + " / r";
    return LoadedAdapter{std::move(r->adapter), *where, note};
  }
  auto r = read_gguf_lora(where->path, model);
  if (!r) return r.status();
  return LoadedAdapter{std::move(r->adapter), *where,
                       r->alpha_absent ? "no adapter.lora.alpha: scale 1 (alpha = r), as llama.cpp applies it" : ""};
}

/// How to write: the element type and the name fields of each format.
struct AdapterWriteOptions {
  /// "f32", "f16", "bf16" (both formats) or "q8_0" (GGUF only).
  std::string dtype = "f32";
  std::string base_model_name_or_path;  // PEFT adapter_config.json
  std::string name;                     // GGUF general.name
};

/// Write `a` as `format` at `path` (a directory for PEFT, a file for GGUF).
/// A dtype the format cannot hold is an error, not a silent substitution;
/// inside a GGUF, Q8_0 tensors whose rows are not whole blocks become F16
/// as llama.cpp's converter makes them.
inline Status write_lora_adapter(const lora::LoraAdapter& a, AdapterFormat format, const std::string& path,
                                 const AdapterWriteOptions& opt = {}) {
  if (format == AdapterFormat::kPeft) {
    PeftWriteOptions o;
    o.base_model_name_or_path = opt.base_model_name_or_path;
    if (opt.dtype == "f32") o.dtype = StDtype::F32;
    else if (opt.dtype == "f16") o.dtype = StDtype::F16;
    else if (opt.dtype == "bf16") o.dtype = StDtype::BF16;
    else return Status::invalid("PEFT adapters are written as f32, f16 or bf16, not '" + opt.dtype + "'");
    return write_peft_adapter(a, path, o);
  }
  GgufLoraWriteOptions o;
  o.name = opt.name;
  const auto type = quant::ggml_type_by_name(opt.dtype);
  if (!type || (opt.dtype != "f32" && opt.dtype != "f16" && opt.dtype != "bf16" && opt.dtype != "q8_0"))
    return Status::invalid("GGUF LoRA adapters are written as f32, f16, bf16 or q8_0, not '" + opt.dtype + "'");
  o.type = type->id;
  return write_gguf_lora(a, path, o);
}

}  // namespace qlora::io
