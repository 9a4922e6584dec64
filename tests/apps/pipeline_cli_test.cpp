// `qlora pipeline` end to end on configs/tiny.toml (SmolLM2, subsets of 4 and
// 8 pairs, two seeds, three test questions): every stage's steps run as the
// subcommands they are, report.md carries the three stages' tables and plots
// with the offline scorer labelled, results.json is machine-readable, a rerun
// resumes (skips every finished step), and config mistakes are named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "convert/hf_checkpoint_fixture.hpp"
#include "qlora/pipeline/config.hpp"
#include "temp_dir.hpp"

namespace qlora {
namespace {

#ifdef QLORA_CLI_PATH

const std::string kModel = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kConfigs = std::string(QLORA_TEST_DATA_DIR) + "/../../configs";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(PipelineCli, TinyConfigRunsEveryStageAndResumes) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  test::TempDir t("pipeline_cli", "tiny");
  const std::string cmd = std::string(QLORA_CLI_PATH) + " pipeline --config " + kConfigs + "/tiny.toml --out " +
                          (t.dir / "run").string() + " --quiet";
  test::CliRun r = test::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto run = t.dir / "run";
  const std::string md = slurp(run / "report.md");
  for (const char* want : {"## Stage 1 — training scale", "## Stage 2 — fine-tuned models compared",
                           "## Stage 3 — quantization", "## Provenance", "not an LLM judge", "| 0 (base) |",
                           "**minimum**", "(tuned) |", "(base) |", "| q4_k_m |", "stage1/u_curve.svg",
                           "stage3/per_question.svg", "sha256", "pipeline --config"})
    EXPECT_NE(md.find(want), std::string::npos) << "report.md lacks '" << want << "':\n" << md;
  for (const char* file : {"stage1/u_curve.svg", "stage1/loss_curves.svg", "stage1/runs.csv", "stage2/scores.svg",
                           "stage2/distribution.svg", "stage2/categories.svg", "stage3/formats.svg",
                           "stage3/per_question.svg", "stage3/quantization.csv", "stage2/judge/judgements.jsonl",
                           "config.json", "steps.json", "test_set.jsonl"})
    EXPECT_TRUE(std::filesystem::exists(run / file)) << file;
  const auto j = nlohmann::json::parse(slurp(run / "results.json"));
  ASSERT_EQ(j["stage1"]["points"].size(), 2u);
  EXPECT_EQ(j["stage1"]["points"][0]["seeds"], 2);  // two seeds per size: a spread
  EXPECT_TRUE(j["stage1"]["base_nll"].is_number());
  EXPECT_EQ(j["stage2"]["models"].size(), 2u);      // tuned + base
  ASSERT_EQ(j["stage3"]["formats"].size(), 3u);
  for (const auto& f : j["stage3"]["formats"]) {
    EXPECT_GT(f["bytes"].get<double>(), 0);
    EXPECT_TRUE(f["test_nll"].is_number());
  }
  // Q4_K_M is smaller than Q8_0, which is smaller than F16.
  EXPECT_LT(j["stage3"]["formats"][2]["bytes"], j["stage3"]["formats"][1]["bytes"]);
  EXPECT_LT(j["stage3"]["formats"][1]["bytes"], j["stage3"]["formats"][0]["bytes"]);
  EXPECT_EQ(slurp(run / "test_set.jsonl").size() > 0, true);

  // The same command again (another thread count is the same experiment):
  // every step is found finished.
  r = test::run_command(cmd + " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("$ qlora"), std::string::npos) << "a finished step ran again:\n" << r.output;
  EXPECT_NE(r.output.find("done before, skipped"), std::string::npos) << r.output;

  // Another experiment in the same directory is refused.
  // (written elsewhere, so its inputs are named by absolute paths)
  std::string text = slurp(kConfigs + "/tiny.toml") + "\n[stage1]\nenabled = false\n";
  for (const char* p : {"../data/", "../.cache/"}) text.replace(text.find(p), 3, kConfigs + "/../");
  const std::string other = t.write("other.toml", text);
  r = test::run_command(std::string(QLORA_CLI_PATH) + " stage3 --config " + other + " --out " + run.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("holds a run of a different config"), std::string::npos) << r.output;
}

// Stage 2 on a Hugging Face checkpoint (two safetensors shards, BF16, llama3
// rope scaling): the run converts it to GGUF F16 first, then trains, merges,
// measures and answers as for any GGUF.
TEST(PipelineCli, Stage2ConvertsAHuggingFaceCheckpoint) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  test::TempDir t("pipeline_cli", "hf");
  const auto hf = t.dir / "tiny-llama-hf";
  test::build_case(hf, test::cases()[0]);
  std::string text = slurp(kConfigs + "/tiny.toml");
  for (const char* p : {"../data/", "../.cache/"}) text.replace(text.find(p), 3, kConfigs + "/../");
  text.replace(text.find("[stage2]\n"), 9,
               "[stage2]\ninclude_base = false\nmodels = [{name = \"tiny-hf\", path = \"" + hf.string() + "\"}]\n");
  const std::string cfg = t.write("hf.toml", text);
  const auto run = t.dir / "run";
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " stage2 --quiet --config " + cfg + " --out " +
                                     run.string() + " --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("$ qlora convert " + hf.string()), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(run / "stage2" / "tiny-hf" / "base-f16.gguf"));
  EXPECT_TRUE(std::filesystem::exists(run / "stage2" / "tiny-hf" / "merged-f16.gguf"));
  EXPECT_NE(slurp(run / "report.md").find("tiny-hf"), std::string::npos);

  // A checkpoint whose tokenizer cannot be converted is refused before any step runs.
  std::ofstream(hf / "tokenizer.model") << "spm";
  r = test::run_command(std::string(QLORA_CLI_PATH) + " stage2 --quiet --config " + cfg + " --out " +
                        (t.dir / "run2").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("stage2.models (tiny-hf): " + (hf / "tokenizer.model").string() + ": a SentencePiece vocabulary"),
            std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("$ qlora"), std::string::npos) << r.output;
}

TEST(PipelineCli, ConfigMistakesAreNamed) {
  test::TempDir t("pipeline_cli", "errors");
  const std::string bad = t.write("bad.toml", "[train]\nrank = 16\nlearning_rate = 1e-4\n");
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " pipeline --config " + bad);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(bad + ":3: train.learning_rate: unknown field"), std::string::npos) << r.output;
  const std::string missing = t.write("missing.toml", "[model]\npath = \"no-such-model.gguf\"\n");
  r = test::run_command(std::string(QLORA_CLI_PATH) + " stage1 --config " + missing + " --out " +
                        (t.dir / "run").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("model.path does not exist"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no-such-model.gguf"), std::string::npos) << r.output;
  t.write("hf/config.json", "{}");
  const std::string hf = t.write("hf.toml", "[model]\npath = \"hf\"\n");
  r = test::run_command(std::string(QLORA_CLI_PATH) + " stage1 --config " + hf + " --out " + (t.dir / "run").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is a Hugging Face checkpoint"), std::string::npos) << r.output;
  // A model named with a preset must have its shape.
  if (std::filesystem::exists(kModel)) {
    const std::string wrong = t.write("wrong.toml", "[stage2]\nmodels = [{name = \"q\", path = \"" + kModel +
                                                        "\", preset = \"qwen2.5-0.5b\"}]\n[model]\npath = \"" +
                                                        kModel + "\"\n[data]\ntest_set = \"" + kConfigs +
                                                        "/../data/test_set.jsonl\"\n");
    r = test::run_command(std::string(QLORA_CLI_PATH) + " stage2 --config " + wrong + " --out " +
                          (t.dir / "run").string());
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("stage2.models (q): " + kModel + ": does not match the preset 'qwen2.5-0.5b'"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("architecture is llama in the file, qwen2 in the preset"), std::string::npos) << r.output;
  }
}

TEST(PipelineCli, EmbeddedDefaultIsTheShippedFile) {
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " pipeline --print-default-config");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, slurp(kConfigs + "/default.toml"));
  for (const char* f : {"default.toml", "paper.toml", "tiny.toml"}) {
    auto c = pipeline::load_config(kConfigs + "/" + f);
    EXPECT_TRUE(c.is_ok()) << f << ": " << c.status().message();
  }
  auto paper = pipeline::load_config(kConfigs + "/paper.toml");
  ASSERT_TRUE(paper.is_ok());
  EXPECT_EQ(paper->subsets, (std::vector<std::int64_t>{1000, 2000, 3000, 4000, 5000}));
  EXPECT_EQ(paper->stage2_models.size(), 3u);  // Tanuki-8B waits for a Unigram tokenizer (paper.toml)
  EXPECT_DOUBLE_EQ(paper->lr, 2e-4);
}

#endif  // QLORA_CLI_PATH

}  // namespace
}  // namespace qlora
