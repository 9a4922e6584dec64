// `qlora convert HF_DIR OUT.gguf [--outtype auto|f32|f16|bf16] [--name NAME]`
//   A Hugging Face llama / qwen2 checkpoint directory (config.json, one or
//   more model*.safetensors, tokenizer.json) -> GGUF, the bytes llama.cpp's
//   convert_hf_to_gguf.py writes for it (convert/convert_hf.hpp says where
//   and why we differ). The result loads in every qlora command and in
//   llama.cpp; `qlora quantize` then makes Q8_0 / Q4_K_M from it.
#include <cxxopts.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "cli_args.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "qlora/convert/convert_hf.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::app {

int cmd_convert(int argc, char** argv) {
  cxxopts::Options o("qlora convert", "Hugging Face checkpoint directory -> GGUF (llama.cpp-compatible)");
  o.add_options()("outtype", "auto (the checkpoint's 16-bit type), f32, f16 or bf16",
                  cxxopts::value<std::string>()->default_value("auto"))(
      "name", "general.name (default: the directory's name)", cxxopts::value<std::string>())(
      "tensors", "print the tensor table")("q,quiet", "no progress bar")("h,help", "show this help")(
      "in", "checkpoint directory", cxxopts::value<std::string>())("out", "output GGUF", cxxopts::value<std::string>());
  o.parse_positional({"in", "out"});
  o.positional_help("HF_DIR OUT.gguf");
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, "qlora convert", args)) return *exit_code;
  if (!args.count("in") || !args.count("out")) {
    std::fprintf(stderr, "qlora convert: need a checkpoint directory and an output file\n%s\n", o.help().c_str());
    return 2;
  }
  auto outtype = convert::parse_hf_outtype(args["outtype"].as<std::string>());
  if (!outtype) {
    std::fprintf(stderr, "qlora convert: %s\n", outtype.status().message().c_str());
    return 2;
  }
  const std::string in = args["in"].as<std::string>(), out = args["out"].as<std::string>();
  convert::HfConvertOptions opt;
  opt.outtype = *outtype;
  if (args.count("name")) opt.name = args["name"].as<std::string>();
  std::optional<ProgressBar> bar;
  const bool quiet = args.count("quiet") > 0;
  opt.on_tensor = [&](std::size_t i, std::size_t n, std::uint64_t done, std::uint64_t total) {
    if (quiet) return;
    if (!bar) bar.emplace("convert", double(total) / (1 << 20), "MiB");
    bar->update(double(done) / (1 << 20), std::to_string(i + 1) + "/" + std::to_string(n));
    if (i + 1 == n) bar->finish();
  };
  if (const auto parent = std::filesystem::path(out).parent_path(); !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);  // a failure shows up as the write's error
  }
  auto rep = convert::convert_hf_to_gguf(in, out, opt);
  if (!rep) {
    std::fprintf(stderr, "qlora convert: %s\n", rep.status().message().c_str());
    return 1;
  }
  const auto& c = rep->config;
  std::printf("%s: %s (%s), %lld layers, hidden %lld, heads %lld/%lld, vocab %lld\n", in.c_str(), c.hf_class.c_str(),
              rep->arch.c_str(), (long long)c.num_hidden_layers, (long long)c.hidden_size,
              (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.vocab_size);
  std::printf("tokenizer: gpt2 / pre %s, %zu tokens (%zu control, %zu unused), %zu merges\n", rep->pre.c_str(),
              rep->n_tokens, rep->n_control, rep->n_unused, rep->n_merges);
  if (args.count("tensors")) {
    std::printf("%-40s %-5s -> %-5s %s\n", "tensor", "from", "to", "ne");
    for (const auto& t : rep->tensors) {
      std::string ne;
      for (auto d : t.ne) ne += (ne.empty() ? "" : ", ") + std::to_string(d);
      std::printf("%-40s %-5s -> %-5s [%s]%s\n", t.name.c_str(),
                  t.hf_name.empty() ? "gen" : std::string(io::st_dtype_info(t.src_dtype).name).c_str(),
                  quant::ggml_type_name(std::uint32_t(t.type)).c_str(), ne.c_str(),
                  t.permute_heads ? "  (Q/K rows permuted)" : "");
    }
  }
  std::printf("wrote %s: %zu tensors, %.2f MiB of weights as %s, %zu metadata keys, %.1f s\n", out.c_str(),
              rep->tensors.size(), double(rep->bytes) / (1 << 20), quant::ggml_type_name(std::uint32_t(rep->file_type)).c_str(),
              rep->kvs.size(), rep->seconds);
  return 0;
}

}  // namespace qlora::app
