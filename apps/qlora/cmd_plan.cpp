// `qlora plan [--preset NAME ...|--model M.gguf] [--rank 16] [--batch 2] [--seq 2048]
//             [--gradient-checkpointing] [--budget-gb 16]`
//   The memory a QLoRA run needs (train/memory_plan.hpp), computed from the
//   model configuration, against a GPU budget (default: the paper's 16 GB
//   card). Without --preset/--model: the paper's four Stage 2 models.
#include <cxxopts.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/train/memory_plan.hpp"

namespace qlora::app {

int cmd_plan(int argc, char** argv) {
  const std::string cmd = "qlora plan";
  cxxopts::Options o(cmd, "memory needed to QLoRA-train a model, from its configuration");
  // clang-format off
  o.add_options()
    ("preset", "model preset (a part of its name: swallow, elyza, qwen2.5-7b, tanuki, smollm2, ...)", cxxopts::value<std::vector<std::string>>())
    ("model", "read the configuration from a GGUF instead", cxxopts::value<std::string>())
    ("rank", "LoRA rank", cxxopts::value<int>()->default_value("16"))
    ("batch", "sequences per micro-batch", cxxopts::value<std::int64_t>()->default_value("2"))
    ("seq", "tokens per sequence", cxxopts::value<std::int64_t>()->default_value("2048"))
    ("scored", "share of positions that are answer tokens (reach the output head)", cxxopts::value<double>()->default_value("0.5"))
    ("gradient-checkpointing", "keep only block inputs")
    ("fp32-activations", "activations in fp32 (our CPU trainer) instead of bf16")
    ("attention-heads", "heads whose N x N probabilities coexist (0: fused kernel)", cxxopts::value<int>()->default_value("0"))
    ("budget-gb", "memory budget in GB (the paper's RTX 4060 Ti: 16)", cxxopts::value<double>()->default_value("16"))
    ("h,help", "show this help");
  // clang-format on
  cxxopts::ParseResult args;
  if (auto code = parse_args(o, argc, argv, cmd, args)) return *code;

  std::vector<model::ModelConfig> models;
  if (args.count("model")) {
    auto f = io::GgufFile::open(args["model"].as<std::string>());
    if (!f) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), f.status().message().c_str());
      return 1;
    }
    auto c = model::config_from_gguf(*f);
    if (!c) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), c.status().message().c_str());
      return 1;
    }
    models.push_back(*c);
  } else {
    const std::vector<std::string> want = args.count("preset") ? args["preset"].as<std::vector<std::string>>()
                                                               : std::vector<std::string>{"swallow", "elyza", "qwen2.5-7b", "tanuki"};
    for (const auto& w : want) {
      auto hit = model::presets::find(w);
      if (!hit) {
        std::fprintf(stderr, "%s: %s\n", cmd.c_str(), hit.status().message().c_str());
        return 2;
      }
      models.push_back(*hit);
    }
  }

  const double gb = 1e9, budget = args["budget-gb"].as<double>() * gb;
  for (const auto& m : models) {
    train::MemoryPlanInput in;
    in.model = m;
    in.lora.rank = args["rank"].as<int>();
    in.batch = args["batch"].as<std::int64_t>();
    in.seq_len = args["seq"].as<std::int64_t>();
    in.scored_fraction = args["scored"].as<double>();
    in.gradient_checkpointing = args.count("gradient-checkpointing") > 0;
    in.activation_bytes = args.count("fp32-activations") ? 4 : 2;
    in.attention_heads_at_once = args["attention-heads"].as<int>();
    const train::MemoryPlan p = train::plan_memory(in);
    std::printf("\n%s (%u layers, %u/%u heads, vocab %u): %.2fB frozen params, LoRA r=%d: %.1fM trainable\n",
                m.name.c_str(), m.n_layer, m.n_head, m.n_head_kv, m.n_vocab, double(p.frozen_params) / 1e9,
                in.lora.rank, double(p.lora_params) / 1e6);
    std::printf("  batch %lld x %lld tokens, %s, %s activations\n", (long long)in.batch, (long long)in.seq_len,
                in.gradient_checkpointing ? "gradient checkpointing" : "no checkpointing",
                in.activation_bytes == 2 ? "bf16" : "fp32");
    for (const auto& i : p.items) std::printf("  %-56s %8.2f GB\n", i.name.c_str(), i.bytes / gb);
    std::printf("  %-56s %8.2f GB  (%s the %.0f GB budget; add ~0.5 GB for a CUDA context)\n", "total", p.total() / gb,
                p.total() <= budget ? "fits" : "EXCEEDS", budget / gb);
  }
  return 0;
}

}  // namespace qlora::app
