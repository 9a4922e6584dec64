// `qlora modelfile MODEL.gguf [--adapter A.gguf] [--out Modelfile]`
//
// Writes an Ollama Modelfile for a GGUF model (serve/modelfile.hpp): FROM,
// optional ADAPTER, the model's chat template as TEMPLATE, its default
// SYSTEM prompt, the end-of-turn stop string and greedy decoding. `qlora
// merge` writes one beside every merged model; this command covers models
// deployed with a separate GGUF LoRA.
#include <cxxopts.hpp>

#include <cstdio>
#include <string>

#include "cli_args.hpp"
#include "commands.hpp"
#include "qlora/core/text_file.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/serve/modelfile.hpp"

namespace qlora::app {

int cmd_modelfile(int argc, char** argv) {
  const std::string cmd = "qlora modelfile";
  cxxopts::Options o(cmd, "Write an Ollama Modelfile (FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER) for a GGUF model.");
  o.positional_help("MODEL.gguf");
  o.add_options()("adapter", "GGUF LoRA adapter to apply (ADAPTER line)", cxxopts::value<std::string>())(
      "out", "file to write (default: stdout)", cxxopts::value<std::string>())(
      "template", "chat template name instead of the GGUF's (" + text::ChatTemplate::supported_names() + ")",
      cxxopts::value<std::string>()->default_value(""))(
      "temperature", "PARAMETER temperature", cxxopts::value<float>()->default_value("0"))(
      "num-ctx", "PARAMETER num_ctx", cxxopts::value<unsigned>()->default_value("4096"))("h,help", "show this help")(
      "model", "GGUF model", cxxopts::value<std::string>());
  o.parse_positional({"model"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  if (!args.count("model")) {
    std::fprintf(stderr, "%s: need MODEL.gguf\n", cmd.c_str());
    return 2;
  }
  const std::string model = args["model"].as<std::string>();
  auto f = io::GgufFile::open(model);
  if (!f) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), f.status().message().c_str());
    return 1;
  }
  const std::string name = args["template"].as<std::string>();
  auto t = name.empty() ? text::ChatTemplate::from_gguf(*f) : text::ChatTemplate::from_name(name);
  if (!t) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), t.status().message().c_str());
    return 1;
  }
  serve::ModelfileOptions mo;
  mo.from = model;
  if (args.count("adapter")) mo.adapter = args["adapter"].as<std::string>();
  mo.temperature = args["temperature"].as<float>();
  mo.num_ctx = args["num-ctx"].as<unsigned>();
  const std::string text = serve::modelfile_text(*t, mo);
  if (!args.count("out")) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  if (Status st = write_text_file(args["out"].as<std::string>(), text); !st.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace qlora::app
