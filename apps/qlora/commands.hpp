// apps/qlora/commands.hpp — the subcommands of the `qlora` program. Each takes
// the arguments after its name and returns the process exit code.
#pragma once

namespace qlora::app {

int cmd_quantize(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
/// `qlora convert HF_DIR OUT.gguf [--outtype auto|f32|f16|bf16]`: Hugging Face checkpoint -> GGUF.
int cmd_convert(int argc, char** argv);
/// `qlora dataset build --kg PATH... --out DIR [...]`: knowledge graph -> QA
/// pool -> rebalanced nested subsets, report and test-set check (Stage 1 data).
int cmd_dataset(int argc, char** argv);

/// `qlora generate MODEL.gguf -p PROMPT [...]`: streamed generation with timing.
int cmd_generate(int argc, char** argv);
/// `qlora nll MODEL.gguf --data FILE.jsonl` (answer-only NLL) or
/// `--protocol llama-perplexity --file TEXT` (llama-perplexity's protocol).
int cmd_nll(int argc, char** argv);
/// `qlora tokenize MODEL.gguf TEXT`: token ids and pieces.
int cmd_tokenize(int argc, char** argv);
/// `qlora bench MODEL.gguf [-p 256] [-n 64] [-r 3]`: pp / tg tokens per second.
int cmd_bench(int argc, char** argv);
/// `qlora train --model BASE.gguf --data subset.jsonl --out DIR [...]`: QLoRA fine-tuning.
int cmd_train(int argc, char** argv);
/// `qlora merge --model BASE.gguf --adapter CKPT --out OUT.gguf [--type f16]`: fold LoRA into the base.
int cmd_merge(int argc, char** argv);
/// `qlora plan [--preset NAME]`: memory a QLoRA run needs, from the model configuration.
int cmd_plan(int argc, char** argv);
/// `qlora export-adapter IN --to peft|gguf --out PATH --base BASE.gguf`:
/// LoRA adapter PEFT <-> GGUF LoRA, checked against the base model.
int cmd_export_adapter(int argc, char** argv);

/// `qlora answer MODEL.gguf --data TEST_SET.jsonl --out answers.jsonl`: answer every question.
int cmd_answer(int argc, char** argv);
/// `qlora judge ANSWERS.jsonl... --data TEST_SET.jsonl --out DIR`: 0-3 scores and the comparison.
int cmd_judge(int argc, char** argv);

/// `qlora serve MODEL.gguf [--port 11434]`: Ollama- and OpenAI-compatible HTTP server.
int cmd_serve(int argc, char** argv);

/// `qlora modelfile MODEL.gguf [--adapter A.gguf]`: an Ollama Modelfile.
int cmd_modelfile(int argc, char** argv);

/// `qlora pipeline [--config FILE]`: the three stages from one config, and report.md.
int cmd_pipeline(int argc, char** argv);
/// `qlora stage1|stage2|stage3 [--config FILE]`: one stage of the pipeline.
int cmd_stage1(int argc, char** argv);
int cmd_stage2(int argc, char** argv);
int cmd_stage3(int argc, char** argv);

}  // namespace qlora::app
