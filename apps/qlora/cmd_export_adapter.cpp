// `qlora export-adapter IN --to peft|gguf --out PATH --base BASE.gguf
//                        [--dtype f32|f16|bf16|q8_0] [--base-model-id ID] [--name NAME]`
//
// Convert a LoRA adapter between the two formats people load: a PEFT
// directory (transformers + peft, and llama.cpp's own converter's input) and
// a llama.cpp GGUF LoRA (llama-cli --lora, llama-cpp-python lora_path). IN is
// detected: a directory with adapter_config.json is PEFT, a file with the
// GGUF magic is GGUF, a checkpoint-*.safetensors of `qlora train` is read
// as its adapter; IN and --to may be the same format (re-typing, or
// checking a file). The base model (a GGUF; only its metadata is read)
// supplies the shapes every tensor is checked against and, for llama, the
// head counts of the Q/K row permutation that separates HF from GGUF
// coordinates.
#include <cxxopts.hpp>

#include <cstdio>
#include <string>

#include "cli_args.hpp"
#include "commands.hpp"
#include "adapter_input.hpp"
#include "qlora/io/adapter_file.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::app {
namespace {

std::string target_list(lora::TargetMask m) {
  std::string s;
  for (const auto& n : lora::kTargetNames)
    if (m & lora::bit(n.target)) s += (s.empty() ? "" : ",") + std::string(n.peft);
  return s;
}

}  // namespace

int cmd_export_adapter(int argc, char** argv) {
  const std::string cmd = "qlora export-adapter";
  cxxopts::Options o(cmd, "Convert a LoRA adapter between PEFT (directory) and llama.cpp GGUF LoRA.");
  o.positional_help("IN");
  o.add_options()("to", "output format: peft or gguf", cxxopts::value<std::string>())(
      "out", "output: a directory (peft) or a file (gguf)", cxxopts::value<std::string>())(
      "base", "the base model GGUF (its metadata gives shapes and the Q/K layout)", cxxopts::value<std::string>())(
      "dtype", "tensor type: f32, f16, bf16, or q8_0 (gguf only)", cxxopts::value<std::string>()->default_value("f32"))(
      "base-model-id", "PEFT: adapter_config.json base_model_name_or_path (default null)",
      cxxopts::value<std::string>())("name", "GGUF: general.name", cxxopts::value<std::string>())(
      "h,help", "show this help")("in", "input adapter", cxxopts::value<std::string>());
  o.parse_positional({"in"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  if (!args.count("in") || !args.count("to") || !args.count("out") || !args.count("base")) {
    std::fprintf(stderr, "%s: need IN, --to, --out and --base\n%s\n", cmd.c_str(), o.help().c_str());
    return 2;
  }
  auto to = io::parse_adapter_format(args["to"].as<std::string>());
  if (!to) {
    std::fprintf(stderr, "%s: --to: %s\n", cmd.c_str(), to.status().message().c_str());
    return 2;
  }
  const std::string base_path = args["base"].as<std::string>();
  auto base = io::GgufFile::open(base_path);
  if (!base) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), base.status().message().c_str());
    return 1;
  }
  auto model = model::config_from_gguf(*base);
  if (!model) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), model.status().message().c_str());
    return 1;
  }
  const std::string in = args["in"].as<std::string>();
  auto loaded = read_any_adapter(in, *model);
  if (!loaded) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), loaded.status().message().c_str());
    return 1;
  }
  const lora::LoraAdapter& a = loaded->adapter;
  std::printf("read %s adapter %s: %zu layers x {%s}, r = %d, alpha = %g (scale %g), %zu parameters\n",
              loaded->kind.c_str(), loaded->path.c_str(), std::size_t(model->n_layer),
              target_list(a.config().targets).c_str(), a.rank(), double(a.config().alpha), double(a.scale()),
              a.params().size());
  if (!loaded->note.empty()) std::printf("note: %s\n", loaded->note.c_str());

  io::AdapterWriteOptions w;
  w.dtype = args["dtype"].as<std::string>();
  if (args.count("base-model-id")) w.base_model_name_or_path = args["base-model-id"].as<std::string>();
  if (args.count("name")) w.name = args["name"].as<std::string>();
  const std::string out = args["out"].as<std::string>();
  if (Status st = io::write_lora_adapter(a, *to, out, w); !st) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return 1;
  }
  std::printf("wrote %s adapter %s (%s, base %s, arch %s%s)\n", io::adapter_format_name(*to), out.c_str(),
              w.dtype.c_str(), base_path.c_str(), model->arch.c_str(),
              model->arch == "llama" ? ": q/k lora_B rows in each format's own order" : "");
  return 0;
}

}  // namespace qlora::app
