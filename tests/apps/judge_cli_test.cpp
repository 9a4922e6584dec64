// `qlora answer` then `qlora judge` end to end on SmolLM2 and the shipped
// test set: answers.jsonl per question, the comparison with the judge named,
// plots, and clear errors for answers that do not belong to the test set.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <atomic>

#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "qlora/net/http_server.hpp"
#include "temp_dir.hpp"

namespace qlora {
namespace {

#ifdef QLORA_CLI_PATH

const std::string kModel = std::string(QLORA_MODEL_CACHE_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kTestSet = std::string(QLORA_TEST_DATA_DIR) + "/../../data/test_set.jsonl";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(JudgeCli, AnswerThenJudgeTwoModels) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " not fetched";
  test::TempDir t("judge_cli", "e2e");
  const std::string answers = (t.dir / "answers.jsonl").string();
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " answer " + kModel + " --data " + kTestSet +
                                     " --out " + answers + " --limit 3 -n 8 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 answers"), std::string::npos) << r.output;
  const std::string out = (t.dir / "judge").string();
  r = test::run_command(std::string(QLORA_CLI_PATH) + " judge " + answers + "=base " + answers + "=again --data " +
                        kTestSet + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string md = slurp(t.dir / "judge" / "summary.md");
  EXPECT_NE(md.find("not an LLM judge"), std::string::npos) << md;
  EXPECT_NE(md.find("| base |"), std::string::npos) << md;
  EXPECT_NE(md.find("| again |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Survey |"), std::string::npos) << md;
  std::size_t lines = 0;
  for (char c : slurp(t.dir / "judge" / "judgements.jsonl")) lines += c == '\n';
  EXPECT_EQ(lines, 6u);
  for (const char* f : {"scores.csv", "scores.svg", "distribution.svg", "categories.svg"})
    EXPECT_TRUE(std::filesystem::exists(t.dir / "judge" / f)) << f;
}

TEST(JudgeCli, AnswersNotInTheTestSetAreAnError) {
  test::TempDir t("judge_cli", "bad");
  const std::string a = t.write("a.jsonl", "{\"id\": \"test-001\", \"answer\": \"x\"}\n{\"id\": \"nope\", \"answer\": \"y\"}\n");
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " judge " + a + " --data " + kTestSet + " --out " +
                                     (t.dir / "o").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(a + ": answer 2 has id 'nope'"), std::string::npos) << r.output;
  r = test::run_command(std::string(QLORA_CLI_PATH) + " judge " + a + " --data " + kTestSet + " --out x --judge gpt");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(JudgeCli, LlmJudgeOverOllamaApiWithRepeatAndReference) {
  // A fake Ollama judge on loopback: 3 when the answer is the reference's
  // first sentence, else 1; the first request of every answer fails with
  // 500 so the retry path runs through the real binary.
  std::atomic<int> requests{0};
  std::atomic<bool> saw_reference{false};
  net::HttpServer server;
  ASSERT_TRUE(server.start({}, [&](const net::HttpRequest& req, net::ResponseWriter& w) {
                     if (++requests % 3 == 1) {
                       (void)w.respond(500, "application/json", net::json_error("warming up"));
                       return;
                     }
                     auto j = nlohmann::json::parse(req.body);
                     const std::string user = j["messages"][1]["content"];
                     saw_reference = saw_reference || user.find("参考解答") != std::string::npos;
                     const bool good = user.find("GOOD") != std::string::npos;
                     nlohmann::json o;
                     o["message"] = {{"role", "assistant"},
                                     {"content", good ? "{\"score\": 3, \"reason\": \"ok\"}" : "評価: 1"}};
                     (void)w.respond(200, "application/json", o.dump());
                   })
                  .is_ok());
  test::TempDir t("judge_cli", "llm");
  const std::string a = t.write("a.jsonl", "{\"id\": \"test-001\", \"answer\": \"GOOD 調査編第2章\"}\n"
                                           "{\"id\": \"test-002\", \"answer\": \"わかりません\"}\n");
  const std::string out = (t.dir / "o").string();
  test::CliRun r = test::run_command(std::string(QLORA_CLI_PATH) + " judge " + a + "=m --data " + kTestSet +
                                     " --out " + out + " --judge ollama --judge-url http://127.0.0.1:" +
                                     std::to_string(server.port()) + " --judge-model fake:1b --repeat 2 --reference --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(saw_reference.load());
  const std::string md = slurp(t.dir / "o" / "summary.md");
  EXPECT_NE(md.find("LLM judge fake:1b (ollama at http://127.0.0.1:"), std::string::npos) << md;
  EXPECT_NE(md.find("reference-guided"), std::string::npos) << md;
  EXPECT_NE(md.find("| m | 2.00 | 50% | 0 | 1 | 0 | 1 | 0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| m | 1.00 | 2 | 1.00 | 1.00 | 1.00 |"), std::string::npos) << md;  // r, pairs, agreement
  const std::string raw = slurp(t.dir / "o" / "judgements.jsonl");
  EXPECT_NE(raw.find("\"attempts\":2"), std::string::npos) << raw;
  EXPECT_NE(raw.find("\"raw\":\"評価: 1\""), std::string::npos) << raw;
}

#endif

}  // namespace
}  // namespace qlora
