// Tests for qlora/cpu/cpu_features.hpp: the run-time check agrees with the
// kernel's own view of the CPU (/proc/cpuinfo's flags on Linux).
#include "qlora/cpu/cpu_features.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

TEST(CpuFeatures, Avx512Bf16AgreesWithProcCpuinfo) {
  std::ifstream f("/proc/cpuinfo");
  if (!f) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line, flags;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  if (flags.empty()) GTEST_SKIP() << "no flags line";
  if (const char* env = std::getenv("QLORA_DISABLE_AVX512_BF16"); env && env[0] == '1') {
    EXPECT_FALSE(qlora::cpu::has_avx512_bf16());
    return;
  }
  const bool listed = flags.find(" avx512_bf16 ") != std::string::npos && flags.find(" avx512bw ") != std::string::npos &&
                      flags.find(" avx512vl ") != std::string::npos;
  EXPECT_EQ(qlora::cpu::has_avx512_bf16(), listed && QLORA_HAVE_AVX512_BF16_KERNELS);
}

}  // namespace
