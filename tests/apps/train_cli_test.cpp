// `qlora train` as a user runs it: a run killed with SIGKILL at an arbitrary
// moment and resumed with --resume auto ends with the same adapter, byte for
// byte, as a run that was never interrupted; bad input is a clear error.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "eval/tiny_lm.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/train/checkpoint.hpp"
#include "temp_dir.hpp"

#ifdef QLORA_CLI_PATH

namespace {

namespace fs = std::filesystem;
using namespace qlora;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Fixture {
  std::string model, data, dir;
};

Fixture make(const std::string& tag) {
  Fixture f;
  const fs::path dir = test::process_temp_dir("qlora_train_cli") / tag;
  fs::create_directories(dir);
  f.dir = dir.string();
  f.model = eval_test::make_tiny_lm(41, false, 256, 128).path;
  f.data = (dir / "train.jsonl").string();
  std::ofstream out(f.data);
  for (int i = 0; i < 12; ++i) {
    data::QaPair q;
    q.id = "p" + std::to_string(i);
    q.question = "question " + std::to_string(i % 4);
    q.answer = "answer number " + std::to_string(i % 4) + " is here";
    out << *data::qa_to_json(q, data::QaFormat::Plain) << "\n";
  }
  return f;
}

std::string train_args(const Fixture& f, const std::string& out) {
  return " train --model " + f.model + " --data " + f.data + " --out " + out +
         " --rank 4 --alpha 8 --dropout 0.1 --lr 1e-2 --epochs 4 --batch 2 --accum 2 --save-every 1 --threads 2 --quiet";
}

int run(const std::string& args) {
  const std::string cmd = std::string(QLORA_CLI_PATH) + args + " > /dev/null 2>&1";
  return std::system(cmd.c_str());
}

TEST(TrainCli, KilledAndResumedRunEqualsUninterruptedRun) {
  Fixture f = make("kill");
  const std::string a = f.dir + "/a", b = f.dir + "/b";
  ASSERT_EQ(run(train_args(f, a)), 0);
  const std::string want = slurp(a + "/adapter/adapter_model.safetensors");
  ASSERT_FALSE(want.empty());

  // Start the same run and SIGKILL it once its second checkpoint exists
  // (whatever it was writing at that moment), then resume.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string args = std::string(QLORA_CLI_PATH) + train_args(f, b) + " > /dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + args).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(b + "/checkpoint-0000002.safetensors") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const bool killed = WIFSIGNALED(status);
  std::printf("[ train cli ] %s; resuming from %s\n", killed ? "run SIGKILLed mid-training" : "run ended before the kill",
              fs::path(train::latest_checkpoint(b)).filename().c_str());
  ASSERT_EQ(run(train_args(f, b) + " --resume auto"), 0);
  EXPECT_EQ(slurp(b + "/adapter/adapter_model.safetensors"), want) << (killed ? "killed run" : "run finished before the kill");
  EXPECT_EQ(slurp(b + "/adapter.gguf"), slurp(a + "/adapter.gguf"));
  // The log reads as one run.
  EXPECT_EQ(slurp(b + "/train_log.csv").size() > 0, true);
  std::size_t rows_a = 0, rows_b = 0;
  for (char c : slurp(a + "/train_log.csv")) rows_a += c == '\n';
  for (char c : slurp(b + "/train_log.csv")) rows_b += c == '\n';
  EXPECT_EQ(rows_a, rows_b);
}

TEST(TrainCli, BadInputIsAClearError) {
  Fixture f = make("bad");
  const std::string bad = f.dir + "/bad.jsonl";
  std::ofstream(bad) << "{\"question\": \"q\", \"answer\": \"a\"}\n{not json\n";
  const std::string cmd = std::string(QLORA_CLI_PATH) + " train --model " + f.model + " --data " + bad + " --out " +
                          f.dir + "/o 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find(bad + ":2"), std::string::npos) << out;
  EXPECT_NE(run(" train --model " + f.model + " --data " + f.data + " --out " + f.dir + "/o --rank 0"), 0);
  EXPECT_NE(run(" train --model " + f.model + " --data " + f.data + " --out " + f.dir + "/o --schedule wavy"), 0);
}

}  // namespace

#endif  // QLORA_CLI_PATH
