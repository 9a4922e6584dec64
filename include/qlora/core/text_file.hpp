// qlora/core/text_file.hpp — read a whole text file (configs, JSON, CSV), and
// write a small one (JSON config, SVG plot, Markdown report) atomically: a
// temporary file in the same directory, then rename, so a reader never sees
// half a file and a failure leaves the old one.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "qlora/core/status.hpp"

namespace qlora {

/// The whole file as bytes; an io error names the path and the OS reason.
inline Result<std::string> read_text_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::io(path + ": cannot open: " + std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Status::io(path + ": read error");
  return data;
}

inline Status write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::io(path + ": cannot open " + tmp + " for writing");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    return Status::io(path + ": write of " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::io(path + ": rename from " + tmp + " failed");
  }
  return Status::ok();
}

}  // namespace qlora
