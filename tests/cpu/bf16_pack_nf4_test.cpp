// Tests for qlora/cpu/bf16_pack_nf4.hpp: packing NF4 blocks equals decoding
// them (dequantize_block) and packing the fp32 values, in both orientations,
// and the AVX-512 packers equal the scalar ones (offsets, tails, widths).
#include "qlora/cpu/bf16_pack_nf4.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace {

using namespace qlora;
using namespace qlora::cpu;

#define SKIP_WITHOUT_BF16()                                                  \
  if (!has_avx512_bf16()) GTEST_SKIP() << "CPU (or build) lacks AVX512_BF16"

/// An NF4 matrix of rows x cols (cols a multiple of 64) with random codes.
std::vector<Nf4Block> random_nf4(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Nf4Block> b(std::size_t(rows * cols / 64));
  for (auto& x : b) {
    x.absmax = 0.01f + 0.1f * float(rng() % 1000) / 1000.0f;
    for (auto& q : x.qs) q = std::uint8_t(rng());
  }
  return b;
}

TEST(Bf16PackNf4, EqualsDecodingThenPacking) {
  const std::int64_t rows = 100, cols = 192;
  const auto blocks = random_nf4(rows, cols, 2);
  std::vector<float> dense(std::size_t(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; c += 64) {
      quant::FormatTraits<quant::format::NF4>::dequantize_block(blocks[std::size_t(r * cols / 64 + c / 64)],
                                                               dense.data() + r * cols + c);
    }
  // Forward orientation: rows [3, 3+50) x columns [64, 64+128).
  std::vector<std::uint32_t> a(std::size_t(bf16_packed_words(50, 128, 48))), b(a.size());
  pack_bf16_nf4_rows_ref(blocks.data(), cols, 3, 50, 64, 128, 48, a.data());
  pack_bf16_ref(dense.data() + 3 * cols + 64, cols, 1, 50, 128, 48, b.data());
  EXPECT_EQ(a, b);
  // Backward orientation: columns [16, 16+70) x rows [5, 5+33) (odd depth).
  std::vector<std::uint32_t> c(std::size_t(bf16_packed_words(70, 33, 48))), d(c.size());
  pack_bf16_nf4_cols_ref(blocks.data(), cols, 16, 70, 5, 33, 48, c.data());
  pack_bf16_ref(dense.data() + 5 * cols + 16, 1, cols, 70, 33, 48, d.data());
  EXPECT_EQ(c, d);
}

#if QLORA_HAVE_AVX512_BF16_KERNELS  // the vector kernels exist only there
TEST(Bf16PackNf4, VectorPackersEqualScalar) {
  SKIP_WITHOUT_BF16();
  const std::int64_t rows = 130, cols = 576;
  const auto blocks = random_nf4(rows, cols, 3);
  for (int W : {48, 16, 8}) {
    // Rows: whole-matrix and offset slices, line tails, k slices of 256 / 64.
    for (auto [r0, n, c0, depth] : std::vector<std::array<std::int64_t, 4>>{
             {0, 130, 0, 576}, {7, 41, 256, 256}, {48, 48, 512, 64}, {1, 3, 32, 96}}) {
      std::vector<std::uint32_t> got(std::size_t(bf16_packed_words(n, depth, W))), want(got.size());
      pack_bf16_nf4_rows(blocks.data(), cols, r0, n, c0, depth, W, got.data());
      pack_bf16_nf4_rows_ref(blocks.data(), cols, r0, n, c0, depth, W, want.data());
      EXPECT_EQ(got, want) << "rows W=" << W << " r0=" << r0 << " n=" << n << " c0=" << c0 << " depth=" << depth;
    }
    // Columns: 16-aligned starts, column tails, odd row counts.
    for (auto [c0, n, r0, depth] : std::vector<std::array<std::int64_t, 4>>{
             {0, 576, 0, 130}, {48, 96, 2, 256 - 129}, {560, 16, 7, 3}, {288, 40, 0, 1}}) {
      std::vector<std::uint32_t> got(std::size_t(bf16_packed_words(n, depth, W))), want(got.size());
      pack_bf16_nf4_cols(blocks.data(), cols, c0, n, r0, depth, W, got.data());
      pack_bf16_nf4_cols_ref(blocks.data(), cols, c0, n, r0, depth, W, want.data());
      EXPECT_EQ(got, want) << "cols W=" << W << " c0=" << c0 << " n=" << n << " r0=" << r0 << " depth=" << depth;
    }
  }
}
#endif

}  // namespace
