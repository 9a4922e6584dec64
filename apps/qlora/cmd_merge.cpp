// `qlora merge --model BASE.gguf --adapter CHECKPOINT --out MERGED.gguf
//              [--type f16|q8_0|q4_k_m] [--target nf4|original]`
//   Folds a trained LoRA adapter into its base (W + alpha/r · B·A) and writes
//   a GGUF in one of our schemes (convert/merge_gguf.hpp): f16 for the paper's
//   flow (then `qlora quantize` or llama-quantize), or q8_0 / q4_k_m directly
//   — the same bytes as quantizing the merged f16. --target nf4 (default)
//   merges into the NF4-dequantized base the adapter was trained against;
//   --target original into the base as stored (see lora/merge.hpp).
#include <cxxopts.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

#include "adapter_input.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "qlora/convert/merge_gguf.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/serve/modelfile.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::app {
namespace {

template <class S>
Result<convert::QuantizeReport> run_merge(const io::GgufFile& base, const lora::LoraAdapter& ad,
                                          lora::MergeTarget target, const std::string& out, bool quiet) {
  std::uint64_t total = 0;
  for (const auto& t : base.tensors()) total += t.n_bytes;
  ProgressBar bar("merge " + std::string(quant::QuantScheme<S>::kName), double(total) / (1 << 20), "MiB");
  double done = 0;
  convert::QuantizeOptions opt;
  opt.measure_error = false;
  opt.on_tensor = [&](const convert::TensorReport& t, std::size_t, std::size_t) {
    done += double(t.src_bytes) / (1 << 20);
    if (!quiet) bar.update(done, t.name);
  };
  auto r = convert::merge_lora_gguf<S>(base, ad, target, out, opt);
  if (r && !quiet) bar.finish(out);
  return r;
}

/// The schemes a merged model can be written in (explicit instantiations).
struct MergeRow {
  std::string_view name;
  Result<convert::QuantizeReport> (*run)(const io::GgufFile&, const lora::LoraAdapter&, lora::MergeTarget,
                                         const std::string&, bool);
};
constexpr MergeRow kMergeSchemes[] = {
    {quant::QuantScheme<quant::scheme::F16>::kName, &run_merge<quant::scheme::F16>},
    {quant::QuantScheme<quant::scheme::Q8_0>::kName, &run_merge<quant::scheme::Q8_0>},
    {quant::QuantScheme<quant::scheme::Q4_K_M>::kName, &run_merge<quant::scheme::Q4_K_M>},
};

}  // namespace

int cmd_merge(int argc, char** argv) {
  const std::string cmd = "qlora merge";
  cxxopts::Options o(cmd, "merge a trained LoRA adapter into its base model and write a GGUF");
  // clang-format off
  o.add_options()
    ("model", "base model GGUF (the one the adapter was trained on)", cxxopts::value<std::string>())
    ("adapter", "the adapter: a qlora train checkpoint, a PEFT directory or a GGUF LoRA", cxxopts::value<std::string>())
    ("out", "merged GGUF to write", cxxopts::value<std::string>())
    ("type", "f16, q8_0 or q4_k_m", cxxopts::value<std::string>()->default_value("f16"))
    ("target", "nf4 (the base the adapter was trained against) or original (the base as stored)",
     cxxopts::value<std::string>()->default_value("nf4"))
    ("quiet", "no progress bar")
    ("h,help", "show this help");
  // clang-format on
  cxxopts::ParseResult args;
  if (auto code = parse_args(o, argc, argv, cmd, args)) return *code;
  for (const char* need : {"model", "adapter", "out"})
    if (!args.count(need)) {
      std::fprintf(stderr, "%s: --%s is required (see --help)\n", cmd.c_str(), need);
      return 2;
    }
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "\n%s: %s\n", cmd.c_str(), s.message().c_str());
    return 1;
  };
  auto target = lora::parse_merge_target(args["target"].as<std::string>());
  if (!target) return fail(target.status());
  const std::string type = args["type"].as<std::string>();
  const MergeRow* row = nullptr;
  for (const auto& r : kMergeSchemes)
    if (r.name == type) row = &r;
  if (!row) return fail(Status::invalid("unknown --type '" + type + "' (valid: f16, q8_0, q4_k_m)"));

  auto base = io::GgufFile::open(args["model"].as<std::string>());
  if (!base) return fail(base.status());
  auto cfg = model::config_from_gguf(*base);
  if (!cfg) return fail(cfg.status());
  auto in = read_any_adapter(args["adapter"].as<std::string>(), *cfg);
  if (!in) return fail(in.status());
  if (!in->note.empty()) std::printf("note: %s\n", in->note.c_str());
  const lora::LoraAdapter* ad = &in->adapter;
  const std::string out = args["out"].as<std::string>();
  auto r = row->run(*base, *ad, *target, out, args.count("quiet") > 0);
  if (!r) return fail(r.status());
  std::size_t merged = 0;
  for (const auto& t : r->tensors) merged += convert::slot_for_tensor(*ad, t.name) != nullptr;
  std::printf("merged %zu projections (r=%d, alpha=%g, target %s) into %s: %s, %.1f MiB, %.1f s\n", merged, ad->rank(),
              double(ad->config().alpha), args["target"].as<std::string>().c_str(), out.c_str(), type.c_str(),
              double(r->dst_bytes) / (1 << 20), r->seconds);
  // Beside the merged file: an Ollama Modelfile with the model's chat template.
  if (auto tmpl = text::ChatTemplate::from_gguf(*base)) {
    serve::ModelfileOptions mo;
    mo.from = "./" + std::filesystem::path(out).filename().string();
    const std::string mf = out + ".Modelfile";
    if (Status st = write_text_file(mf, serve::modelfile_text(*tmpl, mo)); st.is_ok())
      std::printf("Ollama Modelfile: %s (ollama create NAME -f %s)\n", mf.c_str(), mf.c_str());
    else
      std::printf("note: no Modelfile written: %s\n", st.message().c_str());
  } else {
    std::printf("note: no Modelfile written: %s\n", tmpl.status().message().c_str());
  }
  return 0;
}

}  // namespace qlora::app
