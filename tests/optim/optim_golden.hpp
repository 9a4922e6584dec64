// The optimizer tests' golden file: tests/data/optim/adamw_golden.json,
// written by tools/gen_optim_golden.py from the real torch 1.13 (see there for
// what each section holds). Floats are stored as their IEEE-754 bits in hex
// so that comparisons can be bit for bit; doubles as Python reprs.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qlora/core/half.hpp"

namespace qlora::test {

/// The parsed golden file, read once per test binary.
inline const nlohmann::json& optim_golden() {
  static const nlohmann::json doc = [] {
    const auto path = std::filesystem::path(QLORA_TEST_DATA_DIR) / "optim" / "adamw_golden.json";
    std::ifstream in(path);
    if (!in) {
      ADD_FAILURE() << "cannot open " << path;
      return nlohmann::json::object();
    }
    return nlohmann::json::parse(in);
  }();
  return doc;
}

/// "3f800000bf800000" -> {1.0f, -1.0f}.
inline std::vector<float> floats_from_hex(const std::string& hex) {
  EXPECT_EQ(hex.size() % 8, 0u) << "hex float string of odd length";
  std::vector<float> out(hex.size() / 8);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = f32_from_bits(std::uint32_t(std::stoul(hex.substr(8 * i, 8), nullptr, 16)));
  return out;
}

/// A Python repr of a double ("0.1", "1e-08", "0.0") back to the same double.
inline double double_from_repr(const nlohmann::json& s) { return std::strtod(s.get<std::string>().c_str(), nullptr); }

/// Elements whose bits differ, and the first such index (or -1).
struct BitDiff {
  std::size_t count = 0;
  long first = -1;
};
inline BitDiff bit_diff(const std::vector<float>& a, const std::vector<float>& b) {
  BitDiff d;
  if (a.size() != b.size()) return {a.size() + b.size(), 0};
  for (std::size_t i = 0; i < a.size(); ++i)
    if (f32_bits(a[i]) != f32_bits(b[i])) {
      if (d.first < 0) d.first = long(i);
      ++d.count;
    }
  return d;
}

}  // namespace qlora::test
