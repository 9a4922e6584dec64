// Reading the bitsandbytes golden files (tests/data/golden/nf4/, written by
// tools/gen_nf4_golden.py) for the NF4 and double-quant tests.
#pragma once

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace qlora::test {

/// A raw little-endian array of T, as numpy's tofile() writes it.
template <class T>
std::vector<T> read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<T> out(buf.size() / sizeof(T));
  std::memcpy(out.data(), buf.data(), out.size() * sizeof(T));
  return out;
}

/// Path of a file in the NF4 golden directory.
inline std::string nf4_golden(const std::string& name) {
  return std::string(QLORA_TEST_DATA_DIR) + "/golden/nf4/" + name;
}

}  // namespace qlora::test
