// `qlora modelfile`: the SmolLM2 GGUF gets a ChatML Modelfile; a file that is
// not a GGUF is an error naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.hpp"
#include "temp_dir.hpp"

namespace qlora {
namespace {

#ifdef QLORA_CLI_PATH

TEST(ModelfileCli, WritesTheModelsTemplate) {
  const std::string model = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << model << " not fetched";
  test::TempDir t("modelfile_cli", "ok");
  const std::string out = (t.dir / "Modelfile").string();
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " modelfile " + model + " --adapter a.gguf --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(out);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_NE(s.str().find("FROM " + model), std::string::npos) << s.str();
  EXPECT_NE(s.str().find("ADAPTER a.gguf"), std::string::npos);
  EXPECT_NE(s.str().find("PARAMETER stop \"<|im_end|>\""), std::string::npos);
}

TEST(ModelfileCli, NotAGgufIsAnError) {
  test::TempDir t("modelfile_cli", "bad");
  const std::string bad = t.write("x.gguf", "not a gguf at all");
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " modelfile " + bad);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(bad), std::string::npos) << r.output;
}

#endif

}  // namespace
}  // namespace qlora
