// Pins cpu/matmul.hpp (and the kernels in vec_dot_avx2.hpp, the activation
// quantizers in activation_quant.hpp).
//
// Accuracy bound. For weights W (exactly their dequantized values w) and
// activations x, the kernels compute sum_i w_i * x~_i where x~ is x quantized
// per block (Act32: 32 elements, Q8_K: 256; float weight types: x~ = x), with
// exact integer block sums and fp32 scaling/accumulation. Per element
//   |x_i - x~_i| <= h_i = amax_b / 254 * (1 + 2^-10)          (Q8_K, fp32 d)
//   |x_i - x~_i| <= h_i = amax_b / 254 * (1 + 2^-10) + amax_b / 2048  (Act32)
// (round to nearest with step d = amax/127; the 2^-10 slack covers the fp32
// rounding of d and of x * 127/amax, each a few ulps of d; Act32 stores d in
// fp16 as ggml does, which moves each of the |q| <= 127 steps by up to
// 2^-11 d, i.e. the value by up to amax * 2^-11). The fp32 part is
// at most one rounding per block and lane per accumulation step plus the
// horizontal sum: relative gamma = (K/8 + 8) * 2^-23 of sum |w| (|x| + h).
// So, per output,
//   |y - sum_i w_i x_i| <= sum_i |w_i| h_i + gamma * sum_i |w_i| (|x_i| + h_i)
// (the first term vanishes for F32/F16/BF16). Without AVX2 the fallback
// uses f32 activations and sequential sums: h = 0, gamma = (K + 8) * 2^-23. A second, much tighter check
// recomputes the reference from the kernel's OWN quantized activations (read
// back from the Act32 / Q8_K buffers): then only the fp32 term remains, which
// catches any integer/offset/scale bug that a loose bound could hide.
#include "qlora/cpu/matmul.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/cpu/activation_quant.hpp"
#include "qlora/quant/row.hpp"

namespace {

using namespace qlora;
using quant::GgmlType;

struct TypeCase {
  GgmlType type;
  int act_block;  // 0: float activations; 32: Act32; 256: Q8_K
  std::vector<std::int64_t> Ks;
};

#if defined(QLORA_CPU_AVX2_KERNELS)
constexpr bool kSimd = true;
#else
constexpr bool kSimd = false;  // scalar fallback: f32 activations, sequential fp32 sums
#endif

std::vector<TypeCase> cases() {
  return {
      {GgmlType::F32, 0, {1, 13, 576}},   {GgmlType::F16, 0, {1, 13, 576}},     {GgmlType::BF16, 0, {1, 13, 576}},
      {GgmlType::Q8_0, 32, {32, 576}},    {GgmlType::Q5_0, 32, {32, 576}},      {GgmlType::Q4_1, 32, {32, 576}},
      {GgmlType::Q4_K, 256, {256, 1536}}, {GgmlType::Q6_K, 256, {256, 1536}},
  };
}

std::size_t row_bytes(GgmlType t, std::int64_t K) {
  return *quant::ggml_row_bytes(*quant::ggml_type_info(std::uint32_t(t)), std::uint64_t(K));
}

/// Random M x K weights in `type` (our reference quantizers; Q4_1, which we
/// cannot produce, gets random blocks) and their decoded values.
void make_weights(GgmlType type, std::int64_t M, std::int64_t K, std::mt19937& rng, std::vector<std::uint8_t>& q,
                  std::vector<float>& wd) {
  const std::size_t rb = row_bytes(type, K);
  q.assign(rb * std::size_t(M), 0);
  wd.assign(std::size_t(M * K), 0.0f);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::uniform_int_distribution<int> pick(0, 199);
  if (type == GgmlType::Q4_1) {
    using B = quant::FormatTraits<quant::format::Q4_1>::Block;
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> ud(0.0005f, 0.01f), um(-0.08f, 0.0f);
    for (std::int64_t r = 0; r < M; ++r) {
      auto* blocks = reinterpret_cast<B*>(q.data() + std::size_t(r) * rb);
      for (std::int64_t b = 0; b < K / 32; ++b) {
        blocks[b].d = Half::from_float(ud(rng));
        blocks[b].m = Half::from_float(um(rng));
        for (auto& v : blocks[b].qs) v = std::uint8_t(byte(rng));
      }
    }
  } else {
    std::vector<float> w(std::size_t(M * K));
    for (float& v : w) v = normal(rng) * (pick(rng) == 0 ? 8.0f : 1.0f);
    for (std::int64_t r = 0; r < M; ++r)
      ASSERT_TRUE(quant::quantize_row(std::uint32_t(type), w.data() + r * K, q.data() + std::size_t(r) * rb, K));
  }
  for (std::int64_t r = 0; r < M; ++r)
    ASSERT_TRUE(quant::dequantize_row(std::uint32_t(type), q.data() + std::size_t(r) * rb, wd.data() + r * K, K));
}

std::vector<float> make_acts(std::int64_t N, std::int64_t K, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> x(std::size_t(N * K));
  for (float& v : x) v = normal(rng) * (pick(rng) == 0 ? 20.0f : 1.0f);  // activation outliers
  return x;
}

/// The activation values the kernels actually use (decoded from our own
/// quantizer's output), or x itself for float weights.
std::vector<float> kernel_acts(int act_block, const float* x, std::int64_t K) {
  std::vector<float> out(x, x + K);
  if (!kSimd) return out;
  if (act_block == 32) {
    std::vector<std::uint8_t> buf(cpu::act32_row_bytes(K) + 64);
    std::uint8_t* row = buf.data() + ((64 - (reinterpret_cast<std::uintptr_t>(buf.data()) & 63)) & 63);
    cpu::quantize_act32(x, K, row);
    const cpu::Act32View v(row, K);
    for (std::int64_t i = 0; i < K; ++i) out[std::size_t(i)] = v.d[i / 32] * float(v.qs[i]);
    for (std::int64_t b = 0; b < K / 32; ++b) {
      int s = 0;
      for (int i = 0; i < 32; ++i) s += v.qs[32 * b + i];
      EXPECT_EQ(s, v.sum[b]);
    }
  } else if (act_block == 256) {
    using QK = quant::FormatTraits<quant::format::Q8_K>;
    std::vector<QK::Block> blocks(std::size_t(K / 256));
    cpu::quantize_act_q8_K(x, K, blocks.data());
    for (std::int64_t i = 0; i < K; ++i) out[std::size_t(i)] = blocks[std::size_t(i / 256)].d * float(blocks[std::size_t(i / 256)].qs[i % 256]);
  }
  return out;
}

struct Bound {
  double y_ref;      // exact activations
  double y_own;      // the kernel's own quantized activations
  double bound_ref;  // |y - y_ref| allowed
  double bound_own;  // |y - y_own| allowed
};

Bound reference(int act_block, const float* w, const float* x, const float* xq, std::int64_t K) {
  Bound b{0, 0, 0, 0};
  if (!kSimd) act_block = 0;
  double sum_h = 0, sum_abs = 0, sum_abs_own = 0;
  for (std::int64_t blk = 0; blk < (act_block ? K / act_block : 1); ++blk) {
    const std::int64_t i0 = act_block ? blk * act_block : 0, i1 = act_block ? i0 + act_block : K;
    double amax = 0;
    for (std::int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(double(x[i])));
    const double h = act_block ? amax / 254.0 * (1.0 + std::ldexp(1.0, -10)) +
                                     (act_block == 32 ? amax * std::ldexp(1.0, -11) : 0.0)
                               : 0.0;
    for (std::int64_t i = i0; i < i1; ++i) {
      b.y_ref += double(w[i]) * double(x[i]);
      b.y_own += double(w[i]) * double(xq[i]);
      sum_h += std::fabs(double(w[i])) * h;
      sum_abs += std::fabs(double(w[i])) * (std::fabs(double(x[i])) + h);
      sum_abs_own += std::fabs(double(w[i]) * double(xq[i]));
    }
  }
  const double gamma = (double(K) / (kSimd ? 8.0 : 1.0) + 8.0) * std::ldexp(1.0, -23);
  b.bound_ref = sum_h + gamma * sum_abs;
  b.bound_own = gamma * sum_abs_own + 1e-30;
  return b;
}

void check_case(const TypeCase& tc, std::int64_t M, std::int64_t K, std::int64_t N, ThreadPool& pool,
                std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> q;
  std::vector<float> wd;
  make_weights(tc.type, M, K, rng, q, wd);
  const std::vector<float> X = make_acts(N, K, rng);
  std::vector<float> Y(std::size_t(M * N), std::nanf(""));
  const std::string what = quant::ggml_type_name(std::uint32_t(tc.type)) + " M=" + std::to_string(M) +
                           " K=" + std::to_string(K) + " N=" + std::to_string(N) + " threads=" +
                           std::to_string(pool.size());
  ASSERT_TRUE(cpu::matmul(std::uint32_t(tc.type), q.data(), M, K, X.data(), N, Y.data(), pool)) << what;
  std::vector<float> y1(static_cast<std::size_t>(M));
  double worst_ratio = 0;
  for (std::int64_t c = 0; c < N; ++c) {
    const float* x = X.data() + c * K;
    const std::vector<float> xq = kernel_acts(tc.act_block, x, K);
    // Batch invariance: row c of the product equals the matvec of x_c, bit for bit.
    ASSERT_TRUE(cpu::matvec(std::uint32_t(tc.type), q.data(), M, K, x, y1.data(), pool)) << what;
    for (std::int64_t r = 0; r < M; ++r) {
      const float y = Y[std::size_t(c * M + r)];
      ASSERT_EQ(std::memcmp(&y, &y1[std::size_t(r)], sizeof y), 0)
          << what << " matmul row " << c << " != matvec at r=" << r << ": " << y << " vs " << y1[std::size_t(r)];
      const Bound b = reference(tc.act_block, wd.data() + r * K, x, xq.data(), K);
      ASSERT_LE(std::fabs(double(y) - b.y_own), b.bound_own)
          << what << " (own activations) r=" << r << " c=" << c << " y=" << y << " ref=" << b.y_own;
      ASSERT_LE(std::fabs(double(y) - b.y_ref), b.bound_ref)
          << what << " (exact activations) r=" << r << " c=" << c << " y=" << y << " ref=" << b.y_ref;
      worst_ratio = std::max(worst_ratio, std::fabs(double(y) - b.y_ref) / b.bound_ref);
    }
  }
  ::testing::Test::RecordProperty(what, std::to_string(worst_ratio));
}

TEST(CpuMatmul, AllTypesAllShapesWithinBound) {
  ThreadPool pool2(2);
  std::uint32_t seed = 1;
  for (const TypeCase& tc : cases()) {
    for (std::int64_t K : tc.Ks) {
      for (std::int64_t N : {1, 3, 17, 64}) {
        for (std::int64_t M : {1, 37, 67}) {
          SCOPED_TRACE(quant::ggml_type_name(std::uint32_t(tc.type)));
          check_case(tc, M, K, N, pool2, seed++);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(CpuMatmul, ResultsDoNotDependOnThreadCount) {
  ThreadPool p1(1), p2(2), p3(3);
  for (const TypeCase& tc : cases()) {
    const std::int64_t K = tc.Ks.back(), M = 301, N = 9;
    std::mt19937 rng(77);
    std::vector<std::uint8_t> q;
    std::vector<float> wd;
    make_weights(tc.type, M, K, rng, q, wd);
    const std::vector<float> X = make_acts(N, K, rng);
    std::vector<float> a(std::size_t(M * N)), b(a.size()), c(a.size());
    ASSERT_TRUE(cpu::matmul(std::uint32_t(tc.type), q.data(), M, K, X.data(), N, a.data(), p1));
    ASSERT_TRUE(cpu::matmul(std::uint32_t(tc.type), q.data(), M, K, X.data(), N, b.data(), p2));
    ASSERT_TRUE(cpu::matmul(std::uint32_t(tc.type), q.data(), M, K, X.data(), N, c.data(), p3));
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << quant::ggml_type_name(std::uint32_t(tc.type));
    EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float))) << quant::ggml_type_name(std::uint32_t(tc.type));
  }
}

TEST(CpuMatmul, LargeMatvecSplitsAcrossThreads) {
  // Big enough that the row range is split between threads (grain 64 KiB).
  ThreadPool p1(1), p2(2);
  for (const TypeCase& tc : cases()) {
    const std::int64_t K = tc.Ks.back(), M = 2051;
    std::mt19937 rng(5);
    std::vector<std::uint8_t> q;
    std::vector<float> wd;
    make_weights(tc.type, M, K, rng, q, wd);
    const std::vector<float> x = make_acts(1, K, rng);
    std::vector<float> a(static_cast<std::size_t>(M)), b(a.size());
    ASSERT_TRUE(cpu::matvec(std::uint32_t(tc.type), q.data(), M, K, x.data(), a.data(), p1));
    ASSERT_TRUE(cpu::matvec(std::uint32_t(tc.type), q.data(), M, K, x.data(), b.data(), p2));
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
    const std::vector<float> xq = kernel_acts(tc.act_block, x.data(), K);
    for (std::int64_t r = 0; r < M; r += 97) {
      const Bound bd = reference(tc.act_block, wd.data() + r * K, x.data(), xq.data(), K);
      EXPECT_LE(std::fabs(double(b[std::size_t(r)]) - bd.y_ref), bd.bound_ref) << r;
    }
  }
}

TEST(CpuMatmul, ActQ8KMatchesReferenceQuantizer) {
  using QK = quant::FormatTraits<quant::format::Q8_K>;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> x(512);
    for (float& v : x) v = normal(rng) * (trial % 3 == 0 ? 1e-3f : 1.0f);
    if (trial % 7 == 0) std::fill(x.begin(), x.begin() + 256, 0.0f);        // all-zero block
    if (trial % 5 == 0) { x[3] = 4.0f; x[100] = -4.0f; }                      // tie on |max|: first wins
    if (trial % 5 == 1) { x[3] = -4.0f; x[100] = 4.0f; }
    for (int i = 0; i < 512; i += 37) x[i] = std::round(x[i] * 4.0f) / 4.0f;  // some exact .5 ties after scaling
    QK::Block ours[2], ref[2];
    std::memset(ref, 0, sizeof ref);
    cpu::quantize_act_q8_K(x.data(), 512, ours);
    QK::quantize_block(x.data(), ref[0]);
    QK::quantize_block(x.data() + 256, ref[1]);
    ASSERT_EQ(0, std::memcmp(ours, ref, sizeof ours)) << "trial " << trial;
  }
}

TEST(CpuMatmul, Act32RoundingAndSums) {
  // Zero block: d = 0, codes 0; extreme value maps to +-127.
  std::vector<float> x(64, 0.0f);
  x[33] = -3.0f;
  x[40] = 1.5f;
  std::vector<std::uint8_t> row(cpu::act32_row_bytes(64));
  cpu::quantize_act32(x.data(), 64, row.data());
  const cpu::Act32View v(row.data(), 64);
  EXPECT_EQ(v.d[0], 0.0f);
  EXPECT_EQ(v.sum[0], 0);
  EXPECT_EQ(v.qs[33], -127);
  EXPECT_EQ(v.qs[40], 64);  // 1.5 * 127/3 = 63.5 -> 64 (half to even)
  EXPECT_EQ(v.sum[1], -127 + 64);
  EXPECT_EQ(v.d[1], fp16_to_f32(f32_to_fp16(3.0f / 127.0f)));  // ggml's fp16 scale
}

TEST(CpuMatmul, ErrorCases) {
  std::vector<std::uint8_t> w(4096, 0);
  std::vector<float> x(1024, 1.0f), y(1024);
  ThreadPool pool(2);
  // Unsupported types: Q8_K (activation-only), Q4_0, an unknown id.
  for (std::uint32_t t : {15u, 2u, 999u}) {
    const Status st = cpu::matvec(t, w.data(), 4, 256, x.data(), y.data(), pool);
    EXPECT_EQ(st.code(), ErrorCode::kUnsupported) << t << " " << st.message();
  }
  // K not a multiple of the block.
  Status st = cpu::matvec(std::uint32_t(GgmlType::Q8_0), w.data(), 4, 48, x.data(), y.data(), pool);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("q8_0"), std::string::npos) << st.message();
  st = cpu::matmul(std::uint32_t(GgmlType::Q4_K), w.data(), 4, 576, x.data(), 1, y.data(), pool);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  // Null pointers.
  EXPECT_EQ(cpu::matvec(std::uint32_t(GgmlType::F32), nullptr, 4, 8, x.data(), y.data(), pool).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(cpu::matvec(std::uint32_t(GgmlType::F32), w.data(), 4, 8, nullptr, y.data(), pool).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(cpu::matmul(std::uint32_t(GgmlType::F32), w.data(), 4, 8, x.data(), 2, nullptr, pool).code(),
            ErrorCode::kInvalidArgument);
  // Bad shapes.
  EXPECT_EQ(cpu::matmul(std::uint32_t(GgmlType::F32), w.data(), -1, 8, x.data(), 2, y.data(), pool).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(cpu::matmul(std::uint32_t(GgmlType::F32), w.data(), 4, 0, x.data(), 2, y.data(), pool).code(),
            ErrorCode::kInvalidArgument);
  // Empty products are fine and touch nothing.
  EXPECT_TRUE(cpu::matvec(std::uint32_t(GgmlType::Q8_0), nullptr, 0, 32, nullptr, nullptr, pool));
  EXPECT_TRUE(cpu::matmul(std::uint32_t(GgmlType::Q8_0), nullptr, 4, 32, nullptr, 0, nullptr, pool));
}

}  // namespace
