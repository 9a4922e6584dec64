// apps/qlora/adapter_input.hpp — an adapter from any file a command accepts:
// a training checkpoint of `qlora train` (checkpoint-*.safetensors), a PEFT
// directory, or a llama.cpp GGUF LoRA (io/adapter_file.hpp tells the last two
// apart). Lives in apps/ so io/ never depends on train/.
#pragma once

#include <fstream>
#include <string>

#include "qlora/io/adapter_file.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/train/checkpoint.hpp"

namespace qlora::app {

struct AdapterInput {
  lora::LoraAdapter adapter;
  std::string kind;  // "checkpoint", "PEFT", "GGUF"
  std::string path;
  std::string note;
};

inline Result<AdapterInput> read_any_adapter(const std::string& path, const model::ModelConfig& model) {
  // A qlora checkpoint is a safetensors file with "qlora.checkpoint" metadata.
  if (path.size() > 12 && path.substr(path.size() - 12) == ".safetensors") {
    auto f = io::SafetensorsFile::open(path);
    if (f && f->metadata().count("qlora.checkpoint")) {
      auto a = train::load_checkpoint_adapter(path, model);
      if (!a) return a.status();
      return AdapterInput{std::move(*a), "checkpoint", path, ""};
    }
  }
  auto loaded = io::read_lora_adapter(path, model);
  if (!loaded) return loaded.status();
  return AdapterInput{std::move(loaded->adapter), io::adapter_format_name(loaded->from.format), loaded->from.path,
                      loaded->note};
}

}  // namespace qlora::app
