// qlora/core/json_number.hpp — numbers as a Python user's JSON would hold them.
//
// Configs we write for Python tools (transformers' config.json, PEFT's
// adapter_config.json) come from fp32 values, but the files the tools
// themselves write hold Python floats: 1e-05, not 9.999999747378752e-06. The
// shortest digits that round-trip the float, read back as a double, give the
// number the Python side would have written.
#pragma once

#include <charconv>
#include <cstdlib>

namespace qlora {

inline double shortest_double(float f) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf - 1, f);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace qlora
