// Run a program through the shell and collect its exit code and output
// (stdout and stderr together): what the tests of the apps need.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace qlora::test {

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved as written
};

inline CliRun run_command(const std::string& command_line) {
  CliRun r;
  const std::string command = command_line + " 2>&1";
  std::FILE* p = ::popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace qlora::test
