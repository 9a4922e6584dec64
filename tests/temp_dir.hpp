// A fresh temporary directory per test (named by test file, process and tag),
// removed afterwards, with a helper that writes a file into it. Shared by the
// tests that need files on disk so that each does not carry its own copy.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace qlora::test {

struct TempDir {
  std::filesystem::path dir;
  TempDir(const std::string& prefix, const std::string& tag) {
    dir = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()) + "_" + tag);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~TempDir() { std::filesystem::remove_all(dir); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Write `bytes` to dir/name (creating subdirectories) and return the path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::filesystem::path path = dir / name;
    std::filesystem::create_directories(path.parent_path());
    const std::string p = path.string();
    std::FILE* f = std::fopen(p.c_str(), "wb");
    if (f) {
      std::fwrite(bytes.data(), 1, bytes.size(), f);
      std::fclose(f);
    }
    return p;
  }
};

/// One directory per test process (prefix + pid), created on first use and
/// removed when the process exits — for tests that share files across cases
/// (e.g. a quantized model made once and read by several tests).
inline std::filesystem::path process_temp_dir(const std::string& prefix) {
  struct RemoveAtExit {
    std::filesystem::path dir;
    ~RemoveAtExit() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static RemoveAtExit holder{std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()))};
  std::filesystem::create_directories(holder.dir);
  return holder.dir;
}

}  // namespace qlora::test
