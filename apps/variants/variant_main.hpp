// apps/variants/variant_main.hpp — the program behind every variant app.
//
// A variant app (cmake/QloraVariant.cmake) is `qlora` with one configuration
// of the method baked in: dispatch::Variant<Preset, Scheme, Attention, Rank>.
// It runs the same command implementations as `qlora` (apps/qlora/cmd_*.cpp,
// linked from the qlora_commands library — no second copy of any command),
// after two things the general program cannot do:
//   - it refuses a model file whose configuration is not its preset's (the
//     first differing field is named), before any work starts;
//   - it pins the options its template arguments mean — --rank for train,
//     --base for train (nf4 for NF4 variants, the file as stored otherwise),
//     --type for quantize and merge — and rejects a conflicting value rather
//     than silently overriding it.
#pragma once

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../qlora/commands.hpp"
#include "qlora/dispatch/variant.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/model/model_config.hpp"

namespace qlora::app {

namespace variant_detail {

/// The value given for `--name VALUE` or `--name=VALUE`, if any.
inline const char* option_value(int argc, char** argv, const std::string& name) {
  const std::string eq = name + "=";
  for (int i = 1; i < argc; ++i) {
    if (name == argv[i] && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], eq.c_str(), eq.size()) == 0) return argv[i] + eq.size();
  }
  return nullptr;
}

/// The model of nll/generate/bench/quantize: their first argument (options
/// may follow it; an option's value cannot be told from a positional here).
inline const char* leading_positional(int argc, char** argv) {
  return argc > 1 && argv[1][0] != '-' ? argv[1] : nullptr;
}

inline bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return true;
  return false;
}

}  // namespace variant_detail

template <class V>
int variant_main(const char* program, int argc, char** argv) {
  using namespace variant_detail;
  struct Command {
    const char* name;
    int (*run)(int, char**);
    bool model_is_option;  // --model (train, merge) or the first positional
    const char* summary;
  };
  static constexpr Command kCommands[] = {
      {"train", cmd_train, true, "QLoRA fine-tuning with this variant's rank and base storage"},
      {"merge", cmd_merge, true, "merge an adapter and write this variant's format"},
      {"quantize", cmd_quantize, false, "quantize a model to this variant's scheme"},
      {"nll", cmd_nll, false, "answer-only NLL / perplexity"},
      {"generate", cmd_generate, false, "generate text"},
      {"bench", cmd_bench, false, "prompt-processing and generation tokens per second"},
  };
  auto usage = [&](std::FILE* out) {
    std::fprintf(out, "usage: %s <command> [options]   (%s)\n\ncommands:\n  %-10s %s\n", program, V::name().c_str(),
                 "info", "print the configuration compiled into this app");
    for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  };
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "info") {
    std::printf("%s", V::describe().c_str());
    return 0;
  }
  const Command* c = nullptr;
  for (const auto& k : kCommands)
    if (cmd == k.name) c = &k;
  if (c == nullptr) {
    std::fprintf(stderr, "%s: unknown command '%s'\n\n", program, cmd.c_str());
    usage(stderr);
    return 2;
  }
  const int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (wants_help(sub_argc, sub_argv)) return c->run(sub_argc, sub_argv);

  // 1. The model must be the preset's.
  const char* model_path =
      c->model_is_option ? option_value(sub_argc, sub_argv, "--model") : leading_positional(sub_argc, sub_argv);
  if (model_path == nullptr && !c->model_is_option) {
    std::fprintf(stderr, "%s %s: give the model file first: %s %s MODEL.gguf [options]\n", program, cmd.c_str(),
                 program, cmd.c_str());
    return 2;
  }
  if (model_path != nullptr) {
    auto file = io::GgufFile::open(model_path);
    if (!file) {
      std::fprintf(stderr, "%s %s: %s\n", program, cmd.c_str(), file.status().message().c_str());
      return 1;
    }
    auto cfg = model::config_from_gguf(*file);
    Status ok = cfg ? V::check_model(*cfg, model_path) : cfg.status();
    if (!ok.is_ok()) {
      std::fprintf(stderr, "%s %s: %s\n", program, cmd.c_str(), ok.message().c_str());
      return 1;
    }
  }

  // 2. Pin what the template arguments mean; a different value is an error.
  std::vector<std::pair<std::string, std::string>> pinned;
  if (cmd == "train") {
    pinned = {{"--rank", std::to_string(V::kRank)}, {"--base", V::kNf4 ? "nf4" : "file"}};
  } else if (cmd == "quantize") {
    pinned = {{"--type", std::string(V::kQuant)}};
  } else if (cmd == "merge") {
    // NF4 is a training format, not a GGUF type: NF4 variants merge into the
    // NF4 base they trained against and write f16.
    pinned = {{"--type", V::kNf4 ? "f16" : std::string(V::kQuant)}};
    if (V::kNf4) pinned.emplace_back("--target", "nf4");
  }
  std::vector<std::string> storage(sub_argv, sub_argv + sub_argc);
  for (const auto& [name, value] : pinned) {
    const char* given = option_value(sub_argc, sub_argv, name);
    if (given != nullptr && value != given) {
      std::fprintf(stderr, "%s %s: this app is built for %s %s (%s); %s %s is not allowed — use `qlora` for other "
                   "configurations\n", program, cmd.c_str(), name.c_str(), value.c_str(), V::name().c_str(),
                   name.c_str(), given);
      return 2;
    }
    if (given == nullptr) {
      storage.push_back(name);
      storage.push_back(value);
    }
  }
  std::vector<char*> args;
  for (auto& s : storage) args.push_back(s.data());
  args.push_back(nullptr);
  return c->run(int(storage.size()), args.data());
}

}  // namespace qlora::app
