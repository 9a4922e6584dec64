// apps/qlora/cli_args.hpp — what every subcommand does with its arguments
// before its own work: parse (a usage error exits 2), answer --help (exit 0),
// and read a text given either inline or as a file (-f).
#pragma once

#include <cxxopts.hpp>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace qlora::app {

/// Parse argv into `args`. Returns an exit code when the command should stop
/// here (2 after a usage error, 0 after printing --help), nullopt otherwise.
inline std::optional<int> parse_args(cxxopts::Options& o, int argc, char** argv, const std::string& cmd,
                                     cxxopts::ParseResult& args) {
  try {
    args = o.parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), e.what());
    return 2;
  }
  if (args.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  return std::nullopt;
}

/// The text of option `file_key` (a path, read whole) if given, else of
/// `text_key`; nullopt (after a message) when the file cannot be read.
inline std::optional<std::string> text_or_file(const cxxopts::ParseResult& args, const std::string& text_key,
                                               const std::string& file_key, const std::string& cmd) {
  if (!args.count(file_key)) return args[text_key].as<std::string>();
  const std::string path = args[file_key].as<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read %s\n", cmd.c_str(), path.c_str());
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace qlora::app
