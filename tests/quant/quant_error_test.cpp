// Quantization error per format — one of the library's stated uses.
//
// Three kinds of rows: llama.cpp's own synthetic data with its own metric and
// limits (test-quantize-fns: sqrt(sum err^2)/n < 0.002; dot-product error
// < 0.02), Gaussian and heavy-tailed (Student t3) rows, and real weights from
// the shipped SmolLM2-135M model. Relative-RMSE bounds are the measured value
// plus ~10% headroom, so a regression in any quantizer shows up here.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "qlora/cpu/quantize.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/quant/nf4.hpp"
#include "qlora/quant/row.hpp"
#include "quant/test_data.hpp"

namespace {

using namespace qlora;
using namespace qlora::quant;

template <class F>
std::vector<float> round_trip(const std::vector<float>& x) {
  using T = FormatTraits<F>;
  std::vector<typename T::Block> q(x.size() / std::size_t(T::kBlockElems));
  std::vector<float> y(x.size());
  quantize_row<F>(x.data(), q.data(), std::int64_t(x.size()));
  dequantize_row<F>(q.data(), y.data(), std::int64_t(x.size()));
  return y;
}

template <class F>
double relative_rmse(const std::vector<float>& x) {
  return test::rmse(x, round_trip<F>(x)) / test::rms(x);
}

template <class F>
void expect_ggml_total_error_below(float limit) {
  for (const auto& [off, amp] : std::vector<std::pair<float, float>>{{0, 2}, {1, 2}, {3, 1}, {4, 1.5f}}) {
    const auto x = test::ggml_cos_data(4096, off, amp);
    EXPECT_LT(test::ggml_total_error(x, round_trip<F>(x)), limit) << FormatTraits<F>::kName << " off " << off;
  }
}

TEST(QuantError, GgmlTotalErrorLimits) {
  // test-quantize-fns' MAX_QUANTIZATION_TOTAL_ERROR for these types.
  expect_ggml_total_error_below<format::Q8_0>(0.002f);
  expect_ggml_total_error_below<format::Q5_0>(0.002f);
  expect_ggml_total_error_below<format::Q4_K>(0.002f);
  expect_ggml_total_error_below<format::Q6_K>(0.002f);
  expect_ggml_total_error_below<format::Q8_K>(0.002f);
}

TEST(QuantError, DotProductErrorWithQ8_KActivations) {
  // ggml's MAX_DOT_PRODUCT_ERROR: |dot(q(x), q8(y)) - sum x*y| / n < 0.02.
  const auto x = test::ggml_cos_data(4096, 0, 2), y = test::ggml_cos_data(4096, 1, 2);
  double exact = 0;
  for (std::size_t i = 0; i < x.size(); ++i) exact += double(x[i]) * y[i];
  std::vector<FormatTraits<format::Q8_K>::Block> q8(16);
  quantize_row<format::Q8_K>(y.data(), q8.data(), 4096);
  auto check = [&]<class F>() {
    std::vector<typename FormatTraits<F>::Block> q(16);
    quantize_row<F>(x.data(), q.data(), 4096);
    double dot = 0;
    for (int b = 0; b < 16; ++b) dot += FormatTraits<F>::dot_q8k(q[std::size_t(b)], q8[std::size_t(b)]);
    EXPECT_LT(std::fabs(dot - exact) / 4096.0, 0.02) << FormatTraits<F>::kName;
  };
  check.operator()<format::Q4_K>();
  check.operator()<format::Q6_K>();
}

TEST(QuantError, DotProductErrorWithQ8_0Activations) {
  const auto x = test::ggml_cos_data(4096, 0, 2), y = test::ggml_cos_data(4096, 1, 2);
  double exact = 0;
  for (std::size_t i = 0; i < x.size(); ++i) exact += double(x[i]) * y[i];
  std::vector<FormatTraits<format::Q8_0>::Block> q8(128);
  quantize_row<format::Q8_0>(y.data(), q8.data(), 4096);
  auto check = [&]<class F>() {
    std::vector<typename FormatTraits<F>::Block> q(128);
    std::vector<float> w(4096);
    quantize_row<F>(x.data(), q.data(), 4096);
    dequantize_row<F>(q.data(), w.data(), 4096);
    double dot = 0, dequant_dot = 0;
    for (int b = 0; b < 128; ++b) dot += FormatTraits<F>::dot_q8_0(q[std::size_t(b)], q8[std::size_t(b)]);
    std::vector<float> a(4096);
    dequantize_row<format::Q8_0>(q8.data(), a.data(), 4096);
    for (std::size_t i = 0; i < w.size(); ++i) dequant_dot += double(w[i]) * a[i];
    EXPECT_LT(std::fabs(dot - exact) / 4096.0, 0.02) << FormatTraits<F>::kName;
    // The integer path equals the float dot of the two decoded rows.
    EXPECT_NEAR(dot, dequant_dot, 1e-4 * std::fabs(dequant_dot) + 1e-3) << FormatTraits<F>::kName;
  };
  check.operator()<format::Q8_0>();
  check.operator()<format::Q5_0>();
}

TEST(QuantError, GaussianRows) {
  const auto x = test::gaussian(1 << 16, 21);
  // Measured: 0.0053, 0.0176, 0.0424, 0.0713; NF4 (absmax per 64, no
  // minimum) 0.0919 — it spends its 16 levels on a Gaussian's shape instead.
  EXPECT_LT(relative_rmse<format::NF4>(x), 0.101);
  EXPECT_LT(relative_rmse<format::Q8_0>(x), 0.0059);
  EXPECT_LT(relative_rmse<format::Q6_K>(x), 0.0194);
  EXPECT_LT(relative_rmse<format::Q5_0>(x), 0.047);
  EXPECT_LT(relative_rmse<format::Q4_K>(x), 0.079);
  // More bits, less error: the formats must rank as their bit widths do.
  EXPECT_LT(relative_rmse<format::Q8_0>(x), relative_rmse<format::Q6_K>(x));
  EXPECT_LT(relative_rmse<format::Q6_K>(x), relative_rmse<format::Q5_0>(x));
  EXPECT_LT(relative_rmse<format::Q5_0>(x), relative_rmse<format::Q4_K>(x));
}

TEST(QuantError, HeavyTailedRows) {
  const auto x = test::student_t3(1 << 16, 22);
  // Measured: 0.0082, 0.0253, 0.0655, 0.0918; NF4 0.1232.
  EXPECT_LT(relative_rmse<format::NF4>(x), 0.136);
  EXPECT_LT(relative_rmse<format::Q8_0>(x), 0.0091);
  EXPECT_LT(relative_rmse<format::Q6_K>(x), 0.028);
  EXPECT_LT(relative_rmse<format::Q5_0>(x), 0.073);
  EXPECT_LT(relative_rmse<format::Q4_K>(x), 0.101);
}

TEST(QuantError, RealWeightsFromSmolLM2) {
  const auto path = std::filesystem::path(QLORA_MODEL_CACHE_DIR) / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "SmolLM2 model absent: run tools/fetch_model.sh (CI does)";
  auto f = io::GgufFile::open(path.string());
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  // ffn_down rows are 1536 long (a multiple of 256), so every format applies.
  const auto* t = f->find_tensor("blk.3.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  std::vector<float> x(t->n_elements());
  ASSERT_TRUE(cpu::dequantize(t->type, t->data.data(), x.data(), std::int64_t(x.size())).is_ok());
  // These weights were stored as Q4_1 (16 levels per block of 32, with a
  // minimum), so Q4_K — also affine, 16 levels per 32 — nearly reproduces
  // them, while symmetric Q5_0 must re-round them.
  // Measured: 0.0055, 0.0176, 0.0431, 0.0182; NF4 0.0928.
  EXPECT_LT(relative_rmse<format::NF4>(x), 0.102);
  EXPECT_LT(relative_rmse<format::Q8_0>(x), 0.0060);
  EXPECT_LT(relative_rmse<format::Q6_K>(x), 0.0194);
  EXPECT_LT(relative_rmse<format::Q5_0>(x), 0.048);
  EXPECT_LT(relative_rmse<format::Q4_K>(x), 0.020);
  for (float v : round_trip<format::Q4_K>(x)) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
