// Shared test inputs and metrics for the quantization tests, so every format
// is judged on the same rows and by llama.cpp's own error metric.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace qlora::test {

/// test-quantize-fns' synthetic data, x_i = 0.1 + amplitude * cosf(i + offset),
/// evaluated as upstream does (cosf in float, the sum in double) so that for
/// amplitude 2 the inputs equal llama.cpp's test inputs bit for bit.
inline std::vector<float> ggml_cos_data(int n, float offset, float amplitude = 2.0f) {
  std::vector<float> x(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) x[std::size_t(i)] = float(0.1 + double(amplitude * cosf(float(i) + offset)));
  return x;
}

/// Every element times `s` (for tiny and huge magnitudes of the same shape).
inline std::vector<float> scaled(std::vector<float> x, float s) {
  for (auto& v : x) v *= s;
  return x;
}

/// FNV-1a of raw bytes: a compact way to pin a quantizer's output in a test.
inline std::uint64_t fnv1a(const void* p, std::size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  std::uint64_t h = 14695981039346656037ull;  // the standard 64-bit offset basis
  for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

/// test-quantize-fns' error metric: sqrt(sum (a-b)^2) / n (not an RMSE).
inline float ggml_total_error(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i] - b[i]) * double(a[i] - b[i]);
  return float(std::sqrt(s) / double(a.size()));
}

/// Root mean square error, and RMS of the reference for relative bounds.
inline double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i] - b[i]) * double(a[i] - b[i]);
  return std::sqrt(s / double(a.size()));
}
inline double rms(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += double(v) * v;
  return std::sqrt(s / double(a.size()));
}

inline std::vector<float> gaussian(int n, unsigned seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = g(rng);
  return x;
}

/// Heavy-tailed rows (Student t, 3 degrees of freedom), like outlier-rich weights.
inline std::vector<float> student_t3(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = t(rng);
  return x;
}

/// Finite edge rows every quantizer must survive: zeros, constants, tiny and
/// huge magnitudes, one outlier, alternating signs.
inline std::vector<std::vector<float>> edge_rows(int n) {
  std::vector<std::vector<float>> rows;
  rows.emplace_back(std::size_t(n), 0.0f);
  rows.emplace_back(std::size_t(n), 0.5f);
  rows.emplace_back(std::size_t(n), -3.0f);
  auto g = gaussian(n, 11);
  auto scaled = [&](float s) {
    auto r = g;
    for (auto& v : r) v *= s;
    return r;
  };
  rows.push_back(scaled(1e-30f));
  rows.push_back(scaled(1e-8f));
  rows.push_back(scaled(1e4f));
  rows.push_back(scaled(1e30f));
  auto outlier = scaled(0.01f);
  outlier[std::size_t(n) / 3] = 50.0f;
  rows.push_back(outlier);
  std::vector<float> alt(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) alt[std::size_t(i)] = (i % 2 ? -1.0f : 1.0f) * float(i + 1);
  rows.push_back(alt);
  rows.emplace_back(std::size_t(n), std::numeric_limits<float>::denorm_min());
  return rows;
}

}  // namespace qlora::test
