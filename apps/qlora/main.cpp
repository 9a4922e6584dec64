// apps/qlora/main.cpp — the `qlora` command-line program: one binary, one
// subcommand per stage of the method. Later stages add their subcommands here.
#include <cstdio>
#include <cstring>
#include <string>

#include "commands.hpp"

namespace {

struct Subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

constexpr Subcommand kSubcommands[] = {
    {"quantize", qlora::app::cmd_quantize, "rewrite a GGUF model as q8_0, q4_k_m or f16 (llama.cpp-identical)"},
    {"convert", qlora::app::cmd_convert, "Hugging Face checkpoint (safetensors) -> GGUF, as llama.cpp's converter writes it"},
    {"inspect", qlora::app::cmd_inspect, "print a GGUF or safetensors file's metadata and tensor table"},
    {"dataset", qlora::app::cmd_dataset, "build Stage 1's QA pool and nested subsets from a knowledge graph"},
    {"generate", qlora::app::cmd_generate, "generate text (greedy or sampled), streamed, with s/Q and length"},
    {"nll", qlora::app::cmd_nll, "answer-only NLL on a QA JSONL, or llama-perplexity's protocol on a text"},
    {"tokenize", qlora::app::cmd_tokenize, "print the token ids and pieces of a text"},
    {"bench", qlora::app::cmd_bench, "prompt-processing and token-generation tokens per second"},
    {"train", qlora::app::cmd_train, "QLoRA fine-tuning on answer tokens (NF4 base, LoRA, AdamW, cosine)"},
    {"plan", qlora::app::cmd_plan, "memory a QLoRA run needs (NF4 base, adapter, activations) vs a GPU budget"},
    {"merge", qlora::app::cmd_merge, "merge a trained adapter into its base and write f16/q8_0/q4_k_m GGUF"},
    {"answer", qlora::app::cmd_answer, "answer every question of a test set (answers.jsonl with s/Q and length)"},
    {"judge", qlora::app::cmd_judge, "score answers on the 0-3 rubric and write the model comparison"},
    {"serve", qlora::app::cmd_serve, "HTTP server with Ollama and OpenAI chat endpoints (streaming)"},
    {"modelfile", qlora::app::cmd_modelfile, "write an Ollama Modelfile (FROM, ADAPTER, TEMPLATE, PARAMETER) for a GGUF"},
    {"pipeline", qlora::app::cmd_pipeline, "the paper's three stages from one config: scale, compare, quantize; report.md"},
    {"stage1", qlora::app::cmd_stage1, "Stage 1: one adapter per subset size, the test-NLL U-curve"},
    {"stage2", qlora::app::cmd_stage2, "Stage 2: train each base, answer the test set, judge and compare"},
    {"stage3", qlora::app::cmd_stage3, "Stage 3: merged model as F16 / Q8_0 / Q4_K_M: score, s/Q, size, NLL"},
    {"export-adapter", qlora::app::cmd_export_adapter, "convert a LoRA adapter between PEFT and llama.cpp GGUF"},
};

void usage(std::FILE* out) {
  std::fprintf(out, "usage: qlora <command> [options]\n\ncommands:\n");
  for (const auto& c : kSubcommands) std::fprintf(out, "  %-15s %s\n", c.name, c.summary);
  std::fprintf(out, "\n`qlora <command> --help` shows a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kSubcommands)
    if (std::string(argv[1]) == c.name) return c.run(argc - 1, argv + 1);
  std::fprintf(stderr, "qlora: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
