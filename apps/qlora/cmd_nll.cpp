// `qlora nll MODEL.gguf --data test.jsonl [--json OUT] [--csv OUT] [--max-tokens N]`
//   answer-only NLL (the paper's equation; eval/nll.hpp): per example and in
//   aggregate, PPL = exp(token-weighted mean NLL). The data is any QA JSONL
//   read_qa_jsonl accepts, or a test set (reference_answer is the answer).
// `qlora nll MODEL.gguf --protocol llama-perplexity --file text.txt [--ctx 512]`
//   llama-perplexity's protocol: chunks of --ctx tokens, only the second half
//   of each chunk scored, BOS replacing each chunk's first token when the
//   vocabulary adds BOS. Prints llama-perplexity's running [i]ppl line and its
//   "Final estimate: PPL = x +/- y".
// The output always names the protocol: the two numbers are not comparable.
#include <cxxopts.hpp>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "model_session.hpp"
#include "progress.hpp"
#include "qa_input.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/eval/nll.hpp"

namespace qlora::app {
namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

int run_answer_nll(const std::string& cmd, const cxxopts::ParseResult& args) {
  const std::string data_path = args["data"].as<std::string>();
  auto pairs = read_pairs(data_path);
  if (!pairs) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), pairs.status().message().c_str());
    return 1;
  }
  if (pairs->empty()) {
    std::fprintf(stderr, "%s: %s holds no examples\n", cmd.c_str(), data_path.c_str());
    return 1;
  }
  auto s = ModelSession::open(cmd, args["model"].as<std::string>(), args["threads"].as<int>());
  if (!s) return 1;
  auto tmpl = s->chat_template(cmd, args["template"].as<std::string>());
  if (!tmpl) return 1;
  eval::AnswerNllOptions opt;
  opt.max_tokens = args["max-tokens"].as<std::size_t>();
  opt.score_end_of_turn = args.count("no-eot") == 0;
  if (!s->open_decoder(cmd, std::uint32_t(opt.max_tokens))) return 1;
  if (!s->apply_lora_option(args, cmd)) return 1;
  if (opt.max_tokens > s->dec->cache().capacity())
    std::fprintf(stderr, "%s: note: --max-tokens %zu exceeds the model's context; using %u\n", cmd.c_str(),
                 opt.max_tokens, s->dec->cache().capacity());

  const bool quiet = args.count("quiet") > 0;
  ProgressBar bar("nll", double(pairs->size()), "ex");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = eval::evaluate_answer_nll(*s->dec, *s->tok, *tmpl, *pairs, opt,
                                     [&](std::size_t done, std::size_t, std::size_t tokens) {
                                       if (quiet) return;
                                       const double el =
                                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                                       char note[64];
                                       std::snprintf(note, sizeof note, "%zu tok, %.0f tok/s", tokens,
                                                     el > 0 ? double(tokens) / el : 0.0);
                                       bar.update(double(done), note);
                                     });
  if (!r) {
    std::fprintf(stderr, "\n%s: %s\n", cmd.c_str(), r.status().message().c_str());
    return 1;
  }
  const eval::NllSummary& m = r->summary;
  if (!quiet) bar.finish(std::to_string(m.tokens) + " tok");

  std::printf("protocol: answer-only NLL (paper eq.; template %s; scored: answer content%s)\n", tmpl->name.c_str(),
              opt.score_end_of_turn ? " + end-of-turn token" : " only");
  std::printf("examples: %zu (scored %zu, truncated %zu, skipped %zu; %zu answer tokens dropped by --max-tokens %u)\n",
              m.examples, m.scored_examples, m.truncated_examples, m.skipped_examples, m.dropped_tokens,
              s->dec->cache().capacity());
  std::printf("answer tokens: %zu   mean NLL: %.6f nats/token   PPL: %.4f   example-mean NLL: %.6f   (%.1f s)\n",
              m.tokens, m.mean_nll, m.ppl, m.example_mean_nll, m.seconds);
  if (m.tokens == 0)
    std::fprintf(stderr, "%s: no answer token was scored (every example skipped: raise --max-tokens)\n", cmd.c_str());
  if (m.not_joint)
    std::printf("note: %zu examples tokenize differently as prompt + answer than as one text (answer scored as "
                "inference sees it)\n",
                m.not_joint);

  if (args.count("json")) {
    nlohmann::ordered_json j;
    j["model"] = args["model"].as<std::string>();
    j["data"] = data_path;
    j["protocol"] = m.protocol;
    j["template"] = tmpl->name;
    j["score_end_of_turn"] = opt.score_end_of_turn;
    j["max_tokens"] = s->dec->cache().capacity();
    j["summary"] = {{"examples", m.examples},
                    {"scored_examples", m.scored_examples},
                    {"truncated_examples", m.truncated_examples},
                    {"skipped_examples", m.skipped_examples},
                    {"dropped_tokens", m.dropped_tokens},
                    {"answer_tokens", m.tokens},
                    {"sum_nll", m.sum_nll},
                    {"mean_nll", m.mean_nll},
                    {"ppl", m.ppl},
                    {"example_mean_nll", m.example_mean_nll},
                    {"seconds", m.seconds}};
    auto& ex = j["examples"] = nlohmann::ordered_json::array();
    for (const auto& e : r->examples)
      ex.push_back({{"id", e.id},
                    {"prompt_tokens", e.prompt_tokens},
                    {"answer_tokens", e.answer_tokens},
                    {"dropped_tokens", e.dropped_tokens},
                    {"skipped", e.skipped},
                    {"sum_nll", e.sum_nll},
                    {"mean_nll", e.mean_nll()},
                    {"ppl", std::exp(e.mean_nll())},
                    {"same_as_joint", e.same_as_joint}});
    std::ofstream out(args["json"].as<std::string>());
    out << j.dump(2, ' ', false) << "\n";
    if (!out) {
      std::fprintf(stderr, "%s: cannot write %s\n", cmd.c_str(), args["json"].as<std::string>().c_str());
      return 1;
    }
  }
  if (args.count("csv")) {
    std::ofstream out(args["csv"].as<std::string>());
    out << "id,prompt_tokens,answer_tokens,dropped_tokens,skipped,sum_nll,mean_nll,ppl\n";
    char buf[128];
    for (const auto& e : r->examples) {
      std::snprintf(buf, sizeof buf, ",%zu,%zu,%zu,%d,%.9g,%.9g,%.9g\n", e.prompt_tokens, e.answer_tokens,
                    e.dropped_tokens, e.skipped ? 1 : 0, e.sum_nll, e.mean_nll(), std::exp(e.mean_nll()));
      out << csv_field(e.id) << buf;
    }
    if (!out) {
      std::fprintf(stderr, "%s: cannot write %s\n", cmd.c_str(), args["csv"].as<std::string>().c_str());
      return 1;
    }
  }
  return m.tokens == 0 ? 1 : 0;
}

int run_llama_perplexity(const std::string& cmd, const cxxopts::ParseResult& args) {
  if (!args.count("file")) {
    std::fprintf(stderr, "%s: --protocol llama-perplexity needs --file TEXT\n", cmd.c_str());
    return 2;
  }
  const std::string path = args["file"].as<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read %s\n", cmd.c_str(), path.c_str());
    return 1;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  auto s = ModelSession::open(cmd, args["model"].as<std::string>(), args["threads"].as<int>());
  if (!s) return 1;
  eval::PerplexityOptions opt;
  opt.n_ctx = args["ctx"].as<std::uint32_t>();
  opt.max_chunks = args["chunks"].as<int>();
  if (!s->open_decoder(cmd, opt.n_ctx)) return 1;
  if (!s->apply_lora_option(args, cmd)) return 1;
  const bool quiet = args.count("quiet") > 0;
  std::optional<ProgressBar> bar;  // the chunk count is known once the text is tokenized
  auto r = eval::llama_perplexity(*s->dec, *s->tok, text, opt, [&](std::size_t done, std::size_t total) {
    if (quiet) return;
    if (!bar) bar.emplace("perplexity", double(total), "chunks");
    bar->update(double(done), std::to_string(done) + "/" + std::to_string(total));
  });
  if (!r) {
    std::fprintf(stderr, "%s: %s: %s\n", cmd.c_str(), path.c_str(), r.status().message().c_str());
    return 1;
  }
  if (bar) bar->finish();
  std::printf("protocol: llama-perplexity (chunks of %u tokens, second half scored: %zu per chunk; BOS %s)\n",
              r->n_ctx, std::size_t(r->n_ctx - 1 - r->n_ctx / 2),
              r->bos_at_chunk_start ? "replaces each chunk's first token" : "not added (vocabulary adds none)");
  std::printf("text: %zu tokens, %zu chunks, %zu tokens scored\n", r->text_tokens, r->chunks, r->scored_tokens);
  for (std::size_t i = 0; i < r->running_ppl.size(); ++i) std::printf("[%zu]%.4f,", i + 1, r->running_ppl[i]);
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f   (mean NLL %.6f, %.1f s)\n", r->ppl, r->ppl_stderr, r->mean_nll,
              r->seconds);
  if (args.count("json")) {
    nlohmann::ordered_json j;
    j["model"] = args["model"].as<std::string>();
    j["file"] = path;
    j["protocol"] = r->protocol;
    j["n_ctx"] = r->n_ctx;
    j["text_tokens"] = r->text_tokens;
    j["chunks"] = r->chunks;
    j["scored_tokens"] = r->scored_tokens;
    j["bos_at_chunk_start"] = r->bos_at_chunk_start;
    j["mean_nll"] = r->mean_nll;
    j["ppl"] = r->ppl;
    j["ppl_stderr"] = r->ppl_stderr;
    j["running_ppl"] = r->running_ppl;
    j["seconds"] = r->seconds;
    std::ofstream out(args["json"].as<std::string>());
    out << j.dump(2, ' ', false) << "\n";
    if (!out) {
      std::fprintf(stderr, "%s: cannot write %s\n", cmd.c_str(), args["json"].as<std::string>().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int cmd_nll(int argc, char** argv) {
  const std::string cmd = "qlora nll";
  cxxopts::Options o(cmd,
                     "Negative log-likelihood of a GGUF model: answer-only NLL over a QA JSONL (the paper's "
                     "equation), or llama-perplexity's protocol over a text file.");
  o.positional_help("MODEL.gguf");
  o.add_options()("protocol", "answer-only | llama-perplexity",
                  cxxopts::value<std::string>()->default_value("answer-only"))(
      "data", "answer-only: QA JSONL or test set", cxxopts::value<std::string>())(
      "max-tokens", "answer-only: longest prompt + answer per example (the rest of the answer is dropped and counted)",
      cxxopts::value<std::size_t>()->default_value("2048"))(
      "no-eot", "answer-only: do not score the answer's end-of-turn token")(
      "template", "answer-only: chat template name instead of the GGUF's", cxxopts::value<std::string>()->default_value(""))(
      "csv", "answer-only: per-example CSV", cxxopts::value<std::string>())(
      "file", "llama-perplexity: text file", cxxopts::value<std::string>())(
      "ctx", "llama-perplexity: chunk length", cxxopts::value<std::uint32_t>()->default_value("512"))(
      "chunks", "llama-perplexity: at most this many chunks; -1 = all", cxxopts::value<int>()->default_value("-1"))(
      "json", "write the result as JSON", cxxopts::value<std::string>())(
      "t,threads", "threads; 0 = QLORA_THREADS or all cores", cxxopts::value<int>()->default_value("0"))(
      "q,quiet", "no progress bar")("h,help", "show this help")("model", "GGUF model", cxxopts::value<std::string>());
  o.parse_positional({"model"});
  ModelSession::add_lora_option(o);
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  if (!args.count("model")) {
    std::fprintf(stderr, "%s: missing MODEL.gguf\n%s\n", cmd.c_str(), o.help().c_str());
    return 2;
  }
  const std::string protocol = args["protocol"].as<std::string>();
  if (protocol == "llama-perplexity") return run_llama_perplexity(cmd, args);
  if (protocol != "answer-only") {
    std::fprintf(stderr, "%s: unknown --protocol '%s' (answer-only, llama-perplexity)\n", cmd.c_str(),
                 protocol.c_str());
    return 2;
  }
  if (!args.count("data")) {
    std::fprintf(stderr, "%s: answer-only NLL needs --data FILE.jsonl\n", cmd.c_str());
    return 2;
  }
  return run_answer_nll(cmd, args);
}

}  // namespace qlora::app
