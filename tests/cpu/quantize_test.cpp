// Pins cpu/quantize.hpp: the multi-threaded, SIMD row quantizer produces the
// same bytes as the scalar reference for every format and thread count, its
// error statistics are right, and bad input is reported with its position.
#include "qlora/cpu/quantize.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "quant/test_data.hpp"

namespace {

using namespace qlora;
using quant::GgmlType;

std::vector<std::uint8_t> scalar_reference(std::uint32_t type, const std::vector<float>& x, std::int64_t rows,
                                           std::int64_t cols) {
  const auto info = *quant::ggml_type_info(type);
  const std::size_t row_bytes = std::size_t(cols / info.block_elems * info.block_bytes);
  std::vector<std::uint8_t> out(row_bytes * std::size_t(rows));
  for (std::int64_t r = 0; r < rows; ++r)
    EXPECT_TRUE(quant::quantize_row(type, x.data() + r * cols, out.data() + std::size_t(r) * row_bytes, cols).is_ok());
  return out;
}

TEST(CpuQuantize, FastPathsAndThreadsGiveReferenceBytes) {
  const std::int64_t rows = 13, cols = 512;
  auto x = test::gaussian(int(rows * cols), 5);
  // Add ties and extremes that a SIMD rounding shortcut would get wrong.
  for (int i = 0; i < 64; ++i) x[std::size_t(i)] = float(i - 32) * 0.5f;
  x[100] = 127.0f;
  for (auto type : {GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::BF16}) {
    const auto ref = scalar_reference(std::uint32_t(type), x, rows, cols);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<std::uint8_t> out(ref.size(), 0xAB);
      ASSERT_TRUE(cpu::quantize_rows(std::uint32_t(type), x.data(), out.data(), rows, cols, nullptr, pool).is_ok());
      EXPECT_EQ(std::memcmp(out.data(), ref.data(), ref.size()), 0)
          << quant::ggml_type_name(std::uint32_t(type)) << " with " << threads << " threads";
    }
  }
}

TEST(CpuQuantize, Q8_0SimdMatchesScalarOnRoundingTies) {
  // Values k/2 scaled so that x*id lands exactly on .5: the one place where
  // the SIMD rounding differs in kind from roundf.
  std::vector<float> x(32 * 64);
  for (std::size_t b = 0; b < 64; ++b)
    for (std::size_t i = 0; i < 32; ++i) x[b * 32 + i] = (i == 0 ? 127.0f : float(int(i) - 16) + 0.5f) * std::ldexp(1.0f, int(b) - 32);
  const auto ref = scalar_reference(std::uint32_t(GgmlType::Q8_0), x, 1, std::int64_t(x.size()));
  std::vector<std::uint8_t> out(ref.size());
  cpu::quantize_row_fast<quant::format::Q8_0>(x.data(), out.data(), std::int64_t(x.size()));
  EXPECT_EQ(out, ref);
}

TEST(CpuQuantize, ErrorStatistics) {
  const std::int64_t rows = 4, cols = 256;
  const auto x = test::gaussian(int(rows * cols), 9);
  std::vector<std::uint8_t> q(std::size_t(rows) * 8 * 34);
  cpu::QuantError err;
  ASSERT_TRUE(cpu::quantize_rows(std::uint32_t(GgmlType::Q8_0), x.data(), q.data(), rows, cols, &err).is_ok());
  std::vector<float> y(x.size());
  ASSERT_TRUE(cpu::dequantize(std::uint32_t(GgmlType::Q8_0), q.data(), y.data(), rows * cols).is_ok());
  EXPECT_EQ(err.n, rows * cols);
  EXPECT_NEAR(err.rmse(), test::rmse(x, y), 1e-9);
  EXPECT_GT(err.max_abs_err, 0.0);
  EXPECT_LT(err.relative_rmse(), 0.01);
}

TEST(CpuQuantize, ReportsNonFinitePositionAndBadShape) {
  std::vector<float> x(4 * 64, 1.0f);
  x[2 * 64 + 17] = INFINITY;
  std::vector<std::uint8_t> q(4 * 2 * 34);
  Status st = cpu::quantize_rows(std::uint32_t(GgmlType::Q8_0), x.data(), q.data(), 4, 64);
  EXPECT_EQ(st.code(), ErrorCode::kNumeric);
  EXPECT_NE(st.message().find("row 2, column 17"), std::string::npos) << st.message();
  st = cpu::quantize_rows(std::uint32_t(GgmlType::Q4_K), x.data(), q.data(), 1, 64);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  st = cpu::quantize_rows(std::uint32_t(GgmlType::Q4_1), x.data(), q.data(), 1, 64);
  EXPECT_EQ(st.code(), ErrorCode::kUnsupported);
}

}  // namespace
