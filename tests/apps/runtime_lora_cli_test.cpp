// `--lora` on the commands that run a decoder (nll, answer, generate, bench,
// serve): an adapter applied at run time gives the NLL of the model merged
// with it (up to the merged file's f16 rounding), the base without it, and an
// adapter that does not fit the model is refused with its reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "eval/tiny_lm.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "temp_dir.hpp"

#ifdef QLORA_CLI_PATH

namespace {

namespace fs = std::filesystem;
using namespace qlora;

double mean_nll(const std::string& json) {
  std::ifstream in(json);
  return nlohmann::json::parse(in)["summary"]["mean_nll"].get<double>();
}

TEST(RuntimeLoraCli, NllWithLoraEqualsTheMergedModel) {
  const fs::path dir = test::process_temp_dir("qlora_runtime_lora_cli");
  const std::string model = eval_test::make_tiny_lm(43, false, 256, 128).path;
  const std::string data = (dir / "qa.jsonl").string();
  {
    std::ofstream out(data);
    for (int i = 0; i < 8; ++i) {
      data::QaPair q;
      q.id = "p" + std::to_string(i);
      q.question = "question " + std::to_string(i % 4);
      q.answer = "answer number " + std::to_string(i % 4) + " is here";
      out << *data::qa_to_json(q, data::QaFormat::Plain) << "\n";
    }
  }
  const std::string cli = QLORA_CLI_PATH, run = (dir / "run").string();
  test::CliRun r = test::run_command(cli + " train --model " + model + " --data " + data + " --out " + run +
                                     " --rank 4 --alpha 8 --lr 1e-2 --epochs 3 --batch 2 --accum 1 --base file --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string merged = (dir / "merged.gguf").string();
  r = test::run_command(cli + " merge --model " + model + " --adapter " + run + "/adapter.gguf --out " + merged +
                        " --type f16 --target original --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto nll = [&](const std::string& m, const std::string& extra, const std::string& tag) {
    const std::string json = (dir / (tag + ".json")).string();
    test::CliRun n = test::run_command(cli + " nll " + m + " --data " + data + " --json " + json + " --quiet" + extra);
    EXPECT_EQ(n.exit_code, 0) << n.output;
    return mean_nll(json);
  };
  const double base = nll(model, "", "base");
  const double runtime_gguf = nll(model, " --lora " + run + "/adapter.gguf", "lora_gguf");
  const double runtime_peft = nll(model, " --lora " + run + "/adapter", "lora_peft");
  const double merged_nll = nll(merged, "", "merged");
  EXPECT_LT(runtime_gguf, base - 0.1) << "the trained adapter lowers the NLL on its own data";
  EXPECT_EQ(runtime_gguf, runtime_peft);  // the same adapter from either file
  EXPECT_NEAR(runtime_gguf, merged_nll, 0.01 * (base - runtime_gguf));

  // generate and bench take it too.
  r = test::run_command(cli + " generate " + model + " -p \"question 1\" -n 4 --lora " + run + "/adapter.gguf");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("applied at run time"), std::string::npos) << r.output;

  // An adapter of another model is refused, naming the mismatch.
  const std::string other = eval_test::make_tiny_lm(44, false, 256, 64).path;
  r = test::run_command(cli + " nll " + other + " --data " + data + " --lora " + run + "/adapter.gguf");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--lora:"), std::string::npos) << r.output;
}

}  // namespace

#endif  // QLORA_CLI_PATH
