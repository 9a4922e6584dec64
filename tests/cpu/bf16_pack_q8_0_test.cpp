// Tests for qlora/cpu/bf16_pack_q8_0.hpp: packing Q8_0 blocks equals decoding
// them (dequantize_block) and packing the fp32 values, in both orientations,
// and the AVX-512 packers equal the scalar ones (offsets, tails, widths).
#include "qlora/cpu/bf16_pack_q8_0.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <vector>

namespace {

using namespace qlora;
using namespace qlora::cpu;

/// A Q8_0 matrix of rows x cols (cols a multiple of 32) with random quants.
std::vector<Q8_0Block> random_q8_0(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Q8_0Block> b(std::size_t(rows * cols / 32));
  for (auto& x : b) {
    x.d = Half::from_float(1e-3f * float(1 + rng() % 1000));
    for (auto& q : x.qs) q = std::int8_t(int(rng() % 255) - 127);
  }
  return b;
}

TEST(Bf16PackQ8_0, EqualsDecodingThenPacking) {
  const std::int64_t rows = 70, cols = 160;
  const auto blocks = random_q8_0(rows, cols, 1);
  std::vector<float> dense(std::size_t(rows * cols));
  for (std::size_t i = 0; i < blocks.size(); ++i)
    quant::FormatTraits<quant::format::Q8_0>::dequantize_block(blocks[i], dense.data() + 32 * i);
  std::vector<std::uint32_t> a(std::size_t(bf16_packed_words(50, 96, 48))), b(a.size());
  pack_bf16_q8_0_rows_ref(blocks.data(), cols, 3, 50, 64, 96, 48, a.data());
  pack_bf16_ref(dense.data() + 3 * cols + 64, cols, 1, 50, 96, 48, b.data());
  EXPECT_EQ(a, b);
  std::vector<std::uint32_t> c(std::size_t(bf16_packed_words(70, 33, 16))), d(c.size());
  pack_bf16_q8_0_cols_ref(blocks.data(), cols, 16, 70, 5, 33, 16, c.data());
  pack_bf16_ref(dense.data() + 5 * cols + 16, 1, cols, 70, 33, 16, d.data());
  EXPECT_EQ(c, d);
}

#if QLORA_HAVE_AVX512_BF16_KERNELS  // the vector kernels exist only there
TEST(Bf16PackQ8_0, VectorPackersEqualScalar) {
  if (!has_avx512_bf16()) GTEST_SKIP() << "CPU (or build) lacks AVX512_BF16";
  const std::int64_t rows = 130, cols = 576;
  const auto blocks = random_q8_0(rows, cols, 2);
  for (int W : {48, 16, 8}) {
    for (auto [r0, n, c0, depth] : std::vector<std::array<std::int64_t, 4>>{
             {0, 130, 0, 576}, {7, 41, 256, 256}, {48, 48, 512, 64}, {1, 3, 32, 96}}) {
      std::vector<std::uint32_t> got(std::size_t(bf16_packed_words(n, depth, W))), want(got.size());
      pack_bf16_q8_0_rows(blocks.data(), cols, r0, n, c0, depth, W, got.data());
      pack_bf16_q8_0_rows_ref(blocks.data(), cols, r0, n, c0, depth, W, want.data());
      EXPECT_EQ(got, want) << "rows W=" << W << " r0=" << r0 << " n=" << n << " c0=" << c0 << " depth=" << depth;
    }
    for (auto [c0, n, r0, depth] : std::vector<std::array<std::int64_t, 4>>{
             {0, 576, 0, 130}, {48, 96, 2, 127}, {560, 16, 7, 3}, {288, 40, 0, 1}}) {
      std::vector<std::uint32_t> got(std::size_t(bf16_packed_words(n, depth, W))), want(got.size());
      pack_bf16_q8_0_cols(blocks.data(), cols, c0, n, r0, depth, W, got.data());
      pack_bf16_q8_0_cols_ref(blocks.data(), cols, c0, n, r0, depth, W, want.data());
      EXPECT_EQ(got, want) << "cols W=" << W << " c0=" << c0 << " n=" << n << " r0=" << r0 << " depth=" << depth;
    }
  }
}
#endif

}  // namespace
