// `qlora generate MODEL.gguf -p PROMPT [--chat] [--system S] [-n 128] [--temp 0]
//      [--top-k 0] [--top-p 1] [--seed 0] [--stop STR]... [--json OUT]`
//
// Streams the continuation to stdout as it is generated (valid UTF-8 pieces)
// and prints the timing to stderr: the paper's seconds per question and
// output length in characters, plus prompt / generation tokens per second.
// Without --chat the prompt is used as is (BOS added when the vocabulary adds
// one, special-token texts such as <|im_start|> parsed, as llama-cli does);
// with --chat it becomes a user turn in the model's chat template (or
// --template NAME) and generation stops at the end of the assistant's turn.
#include <cxxopts.hpp>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "model_session.hpp"
#include "qlora/eval/generate.hpp"

namespace qlora::app {

int cmd_generate(int argc, char** argv) {
  const std::string cmd = "qlora generate";
  cxxopts::Options o(cmd, "Generate text with a GGUF model (greedy or seeded sampling), streamed to stdout.");
  o.positional_help("MODEL.gguf");
  o.add_options()("p,prompt", "prompt text", cxxopts::value<std::string>())(
      "f,file", "read the prompt from this file", cxxopts::value<std::string>())(
      "chat", "wrap the prompt as a user turn in the chat template")(
      "system", "with --chat: system message (default: the template's)", cxxopts::value<std::string>())(
      "template", "with --chat: template name instead of the GGUF's (" + text::ChatTemplate::supported_names() + ")",
      cxxopts::value<std::string>()->default_value(""))(
      "n,n-predict", "maximum new tokens", cxxopts::value<std::size_t>()->default_value("128"))(
      "temp", "temperature; 0 = greedy", cxxopts::value<float>()->default_value("0"))(
      "top-k", "keep the k most likely tokens; 0 = off", cxxopts::value<int>()->default_value("0"))(
      "top-p", "nucleus mass; 1 = off", cxxopts::value<float>()->default_value("1"))(
      "seed", "sampling seed", cxxopts::value<std::uint64_t>()->default_value("0"))(
      "stop", "stop string (repeatable); not printed", cxxopts::value<std::vector<std::string>>())(
      "ignore-eos", "do not stop at end-of-generation tokens")(
      "c,ctx", "KV cache positions; 0 = prompt + n-predict", cxxopts::value<std::uint32_t>()->default_value("0"))(
      "t,threads", "threads; 0 = QLORA_THREADS or all cores", cxxopts::value<int>()->default_value("0"))(
      "json", "write text, token ids and timing to this JSON file", cxxopts::value<std::string>())(
      "q,quiet", "no timing on stderr")("h,help", "show this help")("model", "GGUF model",
                                                                   cxxopts::value<std::string>());
  o.parse_positional({"model"});
  ModelSession::add_lora_option(o);
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  if (!args.count("model") || (!args.count("prompt") && !args.count("file"))) {
    std::fprintf(stderr, "%s: need MODEL.gguf and -p PROMPT (or -f FILE)\n%s\n", cmd.c_str(), o.help().c_str());
    return 2;
  }
  const auto prompt_text_arg = text_or_file(args, "prompt", "file", cmd);
  if (!prompt_text_arg) return 1;
  const std::string& prompt_text = *prompt_text_arg;

  auto s = ModelSession::open(cmd, args["model"].as<std::string>(), args["threads"].as<int>());
  if (!s) return 1;
  const text::BpeTokenizer& tok = *s->tok;

  Result<std::vector<text::TokenId>> prompt = Status::invalid("no prompt");
  if (args.count("chat")) {
    auto tmpl = s->chat_template(cmd, args["template"].as<std::string>());
    if (!tmpl) return 1;
    std::vector<text::ChatMessage> msgs;
    if (args.count("system")) msgs.push_back({"system", args["system"].as<std::string>()});
    msgs.push_back({"user", prompt_text});
    prompt = eval::encode_chat_prompt(tok, *tmpl, msgs);
  } else {
    prompt = tok.encode(prompt_text, /*add_special=*/true, /*parse_special=*/true);
  }
  if (!prompt) {
    std::fprintf(stderr, "%s: prompt: %s\n", cmd.c_str(), prompt.status().message().c_str());
    return 1;
  }

  eval::GenerateOptions opt;
  opt.max_new_tokens = args["n-predict"].as<std::size_t>();
  opt.sampling.temperature = args["temp"].as<float>();
  opt.sampling.top_k = args["top-k"].as<int>();
  opt.sampling.top_p = args["top-p"].as<float>();
  opt.sampling.seed = args["seed"].as<std::uint64_t>();
  if (args.count("stop")) opt.stop = args["stop"].as<std::vector<std::string>>();
  opt.stop_on_eog = args.count("ignore-eos") == 0;
  opt.on_text = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  std::uint32_t n_ctx = args["ctx"].as<std::uint32_t>();
  if (n_ctx == 0) n_ctx = std::uint32_t(prompt->size() + opt.max_new_tokens);
  if (!s->open_decoder(cmd, n_ctx)) return 1;
  if (!s->apply_lora_option(args, cmd)) return 1;

  auto g = eval::generate(*s->dec, tok, *prompt, opt);
  if (!g) {
    std::fprintf(stderr, "\n%s: %s\n", cmd.c_str(), g.status().message().c_str());
    return 1;
  }
  std::printf("\n");
  const eval::GenerationStats& st = g->stats;
  if (!args.count("quiet"))
    std::fprintf(stderr,
                 "[generate] prompt %zu tokens in %.3f s (%.1f t/s); generated %zu tokens in %.3f s (%.1f t/s); "
                 "%zu chars; %.3f s total; stop: %s%s%s\n",
                 st.prompt_tokens, st.prompt_seconds, st.prompt_tokens_per_second(), st.generated_tokens,
                 st.generation_seconds, st.generation_tokens_per_second(), st.output_chars, st.seconds,
                 eval::stop_reason_name(g->stop), g->stop_string.empty() ? "" : " ",
                 g->stop_string.empty() ? "" : ("\"" + g->stop_string + "\"").c_str());
  if (args.count("json")) {
    nlohmann::ordered_json j;
    j["model"] = args["model"].as<std::string>();
    j["prompt_ids"] = *prompt;
    j["text"] = g->text;
    j["tokens"] = g->tokens;
    j["stop"] = eval::stop_reason_name(g->stop);
    j["stop_string"] = g->stop_string;
    j["prompt_tokens"] = st.prompt_tokens;
    j["generated_tokens"] = st.generated_tokens;
    j["output_chars"] = st.output_chars;
    j["seconds"] = st.seconds;
    j["prompt_seconds"] = st.prompt_seconds;
    j["generation_seconds"] = st.generation_seconds;
    j["prompt_tokens_per_second"] = st.prompt_tokens_per_second();
    j["generation_tokens_per_second"] = st.generation_tokens_per_second();
    std::ofstream out(args["json"].as<std::string>());
    out << j.dump(2, ' ', false) << "\n";
    if (!out) {
      std::fprintf(stderr, "%s: cannot write %s\n", cmd.c_str(), args["json"].as<std::string>().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace qlora::app
