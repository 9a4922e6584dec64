// The variant apps built by qlora_add_variant (apps/variants): `info` prints
// the baked configuration, a model of another shape is refused with the field
// named, pinned options cannot be overridden, and the commands run on
// SmolLM2 exactly as `qlora` runs them.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_run.hpp"
#include "train/tiny_model.hpp"

namespace qlora {
namespace {

#ifdef QLORA_VARIANT_DIR

const std::string kQ4 = std::string(QLORA_VARIANT_DIR) + "/qlora-smollm2-135m-q4_k_m-r32";
const std::string kNf4 = std::string(QLORA_VARIANT_DIR) + "/qlora-smollm2-135m-nf4-r16";
const std::string kModel = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";

TEST(VariantApp, InfoPrintsTheBakedConfiguration) {
  test::CliRun r = test::run_command(kQ4 + " info");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("smollm2-135m q4_k_m gqa r32"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("LoRARank<32>"), std::string::npos) << r.output;
  r = test::run_command(kNf4 + " info");
  EXPECT_NE(r.output.find("LoRARank<16>"), std::string::npos) << r.output;
  EXPECT_EQ(test::run_command(kQ4).exit_code, 2);
  EXPECT_EQ(test::run_command(kQ4 + " frobnicate").exit_code, 2);
}

TEST(VariantApp, RefusesAModelOfAnotherShape) {
  train_test::TinySpec spec;
  spec.tag = "variant";
  const std::string tiny = train_test::write_tiny_model(spec);
  test::CliRun r = test::run_command(kQ4 + " nll " + tiny + " --protocol llama-perplexity --file " + tiny);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(tiny + ": does not match this app's preset 'smollm2-135m'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("layers is 2 in the file, 30 in the preset"), std::string::npos) << r.output;
  r = test::run_command(kNf4 + " train --model " + tiny + " --data x.jsonl --out /tmp/none");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  std::filesystem::remove(tiny);
}

TEST(VariantApp, PinnedOptionsCannotBeOverridden) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  test::CliRun r = test::run_command(kNf4 + " train --model " + kModel + " --data x.jsonl --out /tmp/none --rank 32");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("built for --rank 16"), std::string::npos) << r.output;
  r = test::run_command(kQ4 + " quantize " + kModel + " /tmp/none.gguf --type q8_0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("built for --type q4_k_m"), std::string::npos) << r.output;
}

TEST(VariantApp, RunsTheSharedCommandsOnSmolLM2) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  test::CliRun r = test::run_command(kQ4 + " generate " + kModel + " -p \"The capital of France is\" -n 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Same program, same greedy tokens as `qlora generate`.
  const test::CliRun q = test::run_command(std::string(QLORA_CLI_PATH) + " generate " + kModel +
                                           " -p \"The capital of France is\" -n 4");
  ASSERT_EQ(q.exit_code, 0) << q.output;
  EXPECT_NE(r.output.find("Paris"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.substr(0, r.output.find('\n')), q.output.substr(0, q.output.find('\n')));
}

#else
TEST(VariantApp, NeedsTheVariants) { GTEST_SKIP() << "variant apps not built (QLORA_BUILD_VARIANTS=OFF)"; }
#endif

}  // namespace
}  // namespace qlora
