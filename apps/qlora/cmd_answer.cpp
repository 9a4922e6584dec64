// `qlora answer MODEL.gguf --data TEST_SET.jsonl --out answers.jsonl [-n 256]
//      [--limit N] [--system S] [--template NAME] [--temp 0 ...]`
//
// Stages 2 and 3's first half: every test question as a user turn in the
// model's chat template, answered greedily (by default), one JSONL record per
// question with the answer, seconds ("s/Q"), characters ("Avg Length"),
// tokens and stop reason (eval/answer_set.hpp). `qlora judge` scores them.
#include <cxxopts.hpp>

#include <cstdio>
#include <string>

#include "cli_args.hpp"
#include "commands.hpp"
#include "model_session.hpp"
#include "progress.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/eval/answer_set.hpp"

namespace qlora::app {

int cmd_answer(int argc, char** argv) {
  const std::string cmd = "qlora answer";
  cxxopts::Options o(cmd, "Answer every question of a test set with a GGUF model (for `qlora judge`).");
  o.positional_help("MODEL.gguf");
  o.add_options()("data", "test set JSONL (data/test_set.jsonl form)", cxxopts::value<std::string>())(
      "out", "answers JSONL to write", cxxopts::value<std::string>())(
      "n,n-predict", "maximum answer tokens", cxxopts::value<std::size_t>()->default_value("256"))(
      "limit", "answer only the first N questions (0: all)", cxxopts::value<std::size_t>()->default_value("0"))(
      "system", "system message (default: none)", cxxopts::value<std::string>()->default_value(""))(
      "template", "chat template name instead of the GGUF's (" + text::ChatTemplate::supported_names() + ")",
      cxxopts::value<std::string>()->default_value(""))(
      "temp", "temperature; 0 = greedy (the paper's comparison)", cxxopts::value<float>()->default_value("0"))(
      "top-k", "keep the k most likely tokens; 0 = off", cxxopts::value<int>()->default_value("0"))(
      "top-p", "nucleus mass; 1 = off", cxxopts::value<float>()->default_value("1"))(
      "seed", "sampling seed", cxxopts::value<std::uint64_t>()->default_value("0"))(
      "t,threads", "threads; 0 = QLORA_THREADS or all cores", cxxopts::value<int>()->default_value("0"))(
      "q,quiet", "no progress bar")("h,help", "show this help")("model", "GGUF model", cxxopts::value<std::string>());
  o.parse_positional({"model"});
  ModelSession::add_lora_option(o);
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  for (const char* need : {"model", "data", "out"})
    if (!args.count(need)) {
      std::fprintf(stderr, "%s: --%s is required\n%s\n", cmd.c_str(), need, o.help().c_str());
      return 2;
    }
  auto items = data::read_test_set(args["data"].as<std::string>());
  if (!items) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), items.status().message().c_str());
    return 1;
  }
  const std::size_t limit = args["limit"].as<std::size_t>();
  if (limit > 0 && limit < items->size()) items->resize(limit);

  auto s = ModelSession::open(cmd, args["model"].as<std::string>(), args["threads"].as<int>());
  if (!s) return 1;
  auto tmpl = s->chat_template(cmd, args["template"].as<std::string>());
  if (!tmpl) return 1;
  eval::AnswerOptions opt;
  opt.generate.max_new_tokens = args["n-predict"].as<std::size_t>();
  opt.generate.sampling.temperature = args["temp"].as<float>();
  opt.generate.sampling.top_k = args["top-k"].as<int>();
  opt.generate.sampling.top_p = args["top-p"].as<float>();
  opt.generate.sampling.seed = args["seed"].as<std::uint64_t>();
  opt.system = args["system"].as<std::string>();
  // The longest question's prompt plus the answer budget bounds the cache.
  if (!s->open_decoder(cmd, std::uint32_t(2048 + opt.generate.max_new_tokens))) return 1;
  if (!s->apply_lora_option(args, cmd)) return 1;
  const bool quiet = args.count("quiet") > 0;
  ProgressBar bar("answer", double(items->size()), "q");
  opt.on_answer = [&](std::size_t done, std::size_t, const eval::AnswerRecord& r) {
    if (!quiet) bar.update(double(done), r.id + " " + std::to_string(r.chars) + " chars");
  };
  auto answers = eval::answer_test_set(*s->dec, *s->tok, *tmpl, *items, opt);
  if (!answers) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), answers.status().message().c_str());
    return 1;
  }
  if (!quiet) bar.finish();
  const std::string out = args["out"].as<std::string>();
  if (Status st = eval::write_answers(out, *answers); !st.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return 1;
  }
  double seconds = 0, chars = 0;
  for (const auto& r : *answers) seconds += r.seconds, chars += double(r.chars);
  std::printf("%zu answers -> %s: %.2f s/question, %.0f characters on average\n", answers->size(), out.c_str(),
              seconds / double(answers->size()), chars / double(answers->size()));
  return 0;
}

}  // namespace qlora::app
