// qlora/core/text_file.hpp — write a small text file (JSON config, SVG plot,
// Markdown report) atomically: a temporary file in the same directory, then
// rename, so a reader never sees half a file and a failure leaves the old one.
#pragma once

#include <cstdio>
#include <string>

#include "qlora/core/status.hpp"

namespace qlora {

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
