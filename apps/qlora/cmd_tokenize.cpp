// `qlora tokenize MODEL.gguf "text" [--ids-only] [--special] [--no-bos]`
//
// The ids the model's tokenizer gives `text` and the bytes each stands for,
// one per line as llama-tokenize prints them (`  id -> 'piece'`); bytes that
// are only part of a UTF-8 character are shown as \xNN. --ids-only prints the
// ids as a list ([1, 2, 3]). --special parses special-token texts such as
// <|im_start|> into their ids; BOS/EOS are added as the vocabulary says
// unless --no-bos.
#include <cxxopts.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_args.hpp"
#include "commands.hpp"
#include "model_session.hpp"

namespace qlora::app {

int cmd_tokenize(int argc, char** argv) {
  const std::string cmd = "qlora tokenize";
  cxxopts::Options o(cmd, "Tokenize text with a GGUF model's tokenizer.");
  o.positional_help("MODEL.gguf TEXT");
  o.add_options()("ids-only", "print only the ids, as a list")(
      "special", "parse special-token texts (<|im_start|>, ...) into their ids")(
      "no-bos", "do not add BOS/EOS even if the vocabulary asks for them")(
      "f,file", "tokenize this file instead of TEXT", cxxopts::value<std::string>())(
      "h,help", "show this help")("model", "GGUF model", cxxopts::value<std::string>())(
      "text", "text", cxxopts::value<std::string>());
  o.parse_positional({"model", "text"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  if (!args.count("model") || (!args.count("text") && !args.count("file"))) {
    std::fprintf(stderr, "%s: need MODEL.gguf and TEXT (or -f FILE)\n%s\n", cmd.c_str(), o.help().c_str());
    return 2;
  }
  const auto text_arg = text_or_file(args, "text", "file", cmd);
  if (!text_arg) return 1;
  const std::string& text = *text_arg;
  auto s = ModelSession::open(cmd, args["model"].as<std::string>());
  if (!s) return 1;
  const text::BpeTokenizer& tok = *s->tok;
  auto ids = tok.encode(text, args.count("no-bos") == 0, args.count("special") > 0);
  if (!ids) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), ids.status().message().c_str());
    return 1;
  }
  if (args.count("ids-only")) {
    std::printf("[");
    for (std::size_t i = 0; i < ids->size(); ++i) std::printf("%s%d", i ? ", " : "", (*ids)[i]);
    std::printf("]\n");
    return 0;
  }
  for (text::TokenId id : *ids)
    std::printf("%6d -> '%s'\n", id, printable_piece(tok.token_to_piece(id, true)).c_str());
  std::printf("%zu tokens\n", ids->size());
  if (auto bad = tok.find_unencodable_byte(text))
    std::fprintf(stderr, "%s: note: byte %zu of the text has no token in this vocabulary and was dropped "
                 "(as llama.cpp does)\n", cmd.c_str(), *bad);
  return 0;
}

}  // namespace qlora::app
