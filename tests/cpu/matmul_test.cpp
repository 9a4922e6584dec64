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
// Q4_1 takes its min term from ggml's block_q8_1 s: the code sum times the
// unrounded scale, rounded to fp16, which both bounds allow for with an extra
// |m| |sum| d 2^-10 per block (q4_1_min_slack).
//
// Peer order. For Q8_0, Q5_0, Q4_K and Q6_K the kernels promise more: the
// exact float result of the llama.cpp kernel that handles the same weight
// type and batch size (matmul.hpp). peer_dot() below restates each of those
// float sequences as plain scalar loops over exact integer sums, and every
// output must equal it bit for bit. (Q4_K and Q6_K are therefore not batch
// invariant — neither is llama.cpp — and only the other types must give the
// matvec's bits in every row of a matmul.)
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
#include "qlora/quant/kquant_search.hpp"
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

/// ggml's 8-lane float sum: s_i = l_i + l_{i+4}, then (s0 + s2) + (s1 + s3).
float hsum8(const float (&l)[8]) {
  const float s0 = l[0] + l[4], s1 = l[1] + l[5], s2 = l[2] + l[6], s3 = l[3] + l[7];
  return (s0 + s2) + (s1 + s3);
}

/// Signed code of element e (0..31) of a Q5_0 block: 4 low bits, 1 high bit, -16.
int q5_0_code(const quant::FormatTraits<quant::format::Q5_0>::Block& b, int e) {
  std::uint32_t qh = 0;
  for (int i = 0; i < 4; ++i) qh |= std::uint32_t(b.qh[i]) << (8 * i);
  const int lo = e < 16 ? (b.qs[e] & 0x0F) : (b.qs[e - 16] >> 4);
  return (lo | int((qh >> e) & 1u) << 4) - 16;
}

bool peer_matched(GgmlType t) {
  return kSimd && (t == GgmlType::Q8_0 || t == GgmlType::Q5_0 || t == GgmlType::Q4_1 || t == GgmlType::Q4_K ||
                   t == GgmlType::Q6_K);
}

/// llama.cpp's result for weight row `w` (K elements) and activation row c of
/// a batch of N rows x (the row itself), restated from its kernels:
///   Q8_0, Q5_0 (tinyBLAS / ggml_vec_dot_*_q8_0): 8 lanes of 4 products per
///     32-block, lane = fma(float(int), d_w * d_a, lane), then hsum8;
///   Q4_1 (ggml_vec_dot_q4_1_q8_1): the same with codes 0..15, plus
///     summs = fma(m, s_a, summs) per block; y = hsum8 + summs;
///   Q4_K, rows in 4-row groups (repack gemm): per 64 elements p,
///     S = fma(float(sum sc*dot), d * d_a, S), Mn = fma(float(sum m*B), dmin * d_a, Mn);
///     the last N % 4 rows (repack gemv): the same per super-block; y = S - Mn;
///   Q6_K, N < 8 (ggml_vec_dot_q6_K_q8_K): lane k = elements 4k..4k+3 of each
///     32, minus 32 * (sc_2k * bsum_2k + sc_2k+1 * bsum_2k+1), lane = fma(float, d_a * d, lane), hsum8;
///     N >= 8 (tiled matmul): S = fma(float(total) * d, d_a, S).
float peer_dot(GgmlType type, const std::uint8_t* w, const float* x, std::int64_t K, std::int64_t N, std::int64_t c) {
  using QK = quant::FormatTraits<quant::format::Q8_K>;
  if (type == GgmlType::Q8_0 || type == GgmlType::Q5_0 || type == GgmlType::Q4_1) {
    std::vector<std::uint8_t> buf(cpu::act32_row_bytes(K));
    cpu::quantize_act32(x, K, buf.data());
    const cpu::Act32View a(buf.data(), K);
    float lane[8] = {};
    float summs = 0.0f;
    for (std::int64_t b = 0; b < K / 32; ++b) {
      float dw;
      int code[32];
      if (type == GgmlType::Q4_1) {
        const auto& blk = reinterpret_cast<const quant::FormatTraits<quant::format::Q4_1>::Block*>(w)[b];
        dw = blk.d.to_float();
        for (int e = 0; e < 32; ++e) code[e] = e < 16 ? (blk.qs[e] & 0x0F) : (blk.qs[e - 16] >> 4);
        summs = std::fma(blk.m.to_float(), a.s[b], summs);
      } else if (type == GgmlType::Q8_0) {
        const auto& blk = reinterpret_cast<const quant::FormatTraits<quant::format::Q8_0>::Block*>(w)[b];
        dw = blk.d.to_float();
        for (int e = 0; e < 32; ++e) code[e] = blk.qs[e];
      } else {
        const auto& blk = reinterpret_cast<const quant::FormatTraits<quant::format::Q5_0>::Block*>(w)[b];
        dw = blk.d.to_float();
        for (int e = 0; e < 32; ++e) code[e] = q5_0_code(blk, e);
      }
      const float dd = dw * a.d[b];
      for (int k = 0; k < 8; ++k) {
        int s = 0;
        for (int i = 4 * k; i < 4 * k + 4; ++i) s += code[i] * a.qs[32 * b + i];
        lane[k] = std::fma(float(s), dd, lane[k]);
      }
    }
    return hsum8(lane) + summs;
  }
  // K-quants: Q8_K activations, quantized as llama.cpp quantizes this row.
  const bool gemm_row = type == GgmlType::Q4_K && N >= 4 && c < N - N % 4;
  std::vector<QK::Block> act(std::size_t(K / 256));
  cpu::quantize_act_q8_K(x, K, act.data(), gemm_row ? cpu::Q8KSign::kPositiveMax : cpu::Q8KSign::kFirstMax);
  if (type == GgmlType::Q4_K) {
    using T = quant::FormatTraits<quant::format::Q4_K>;
    const auto* blk = reinterpret_cast<const T::Block*>(w);
    float S = 0.0f, Mn = 0.0f;
    for (std::int64_t b = 0; b < K / 256; ++b) {
      const QK::Block& a = act[std::size_t(b)];
      const float dd = blk[b].d.to_float() * a.d, dm = blk[b].dmin.to_float() * a.d;
      std::int32_t I = 0, Imin = 0;
      for (int p = 0; p < 4; ++p) {
        for (int j = 2 * p; j < 2 * p + 2; ++j) {
          const quant::kquant::ScaleMin sm = quant::kquant::get_scale_min_k4(j, blk[b].scales);
          std::int32_t dot = 0, bsum = 0;
          for (int e = 32 * j; e < 32 * j + 32; ++e) {
            dot += T::code(blk[b], e) * a.qs[e];
            bsum += a.qs[e];
          }
          I += sm.scale * dot;
          Imin += sm.min * bsum;
        }
        if (gemm_row) {  // one FMA per 64 elements
          S = std::fma(float(I), dd, S);
          Mn = std::fma(float(Imin), dm, Mn);
          I = Imin = 0;
        }
      }
      if (!gemm_row) {
        S = std::fma(float(I), dd, S);
        Mn = std::fma(float(Imin), dm, Mn);
      }
    }
    return S - Mn;
  }
  using T = quant::FormatTraits<quant::format::Q6_K>;
  const auto* blk = reinterpret_cast<const T::Block*>(w);
  float lane[8] = {};
  float S = 0.0f;
  for (std::int64_t b = 0; b < K / 256; ++b) {
    const QK::Block& a = act[std::size_t(b)];
    std::int32_t li[8] = {};
    for (int e = 0; e < 256; ++e) li[(e % 32) / 4] += blk[b].scales[e / 16] * (T::code(blk[b], e) + 32) * a.qs[e];
    for (int k = 0; k < 8; ++k)
      li[k] -= 32 * (blk[b].scales[2 * k] * a.bsums[2 * k] + blk[b].scales[2 * k + 1] * a.bsums[2 * k + 1]);
    const float dw = blk[b].d.to_float();
    if (N >= 8) {
      std::int32_t total = 0;
      for (int k = 0; k < 8; ++k) total += li[k];
      S = std::fma(float(total) * dw, a.d, S);
    } else {
      for (int k = 0; k < 8; ++k) lane[k] = std::fma(float(li[k]), a.d * dw, lane[k]);
    }
  }
  return N >= 8 ? S : hsum8(lane);
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

/// Q4_1 only: sum over blocks of |m| |code sum| d_a 2^-10 (see the header).
double q4_1_min_slack(GgmlType type, const std::uint8_t* w, const float* x, std::int64_t K) {
  if (type != GgmlType::Q4_1 || !kSimd) return 0.0;
  std::vector<std::uint8_t> buf(cpu::act32_row_bytes(K));
  cpu::quantize_act32(x, K, buf.data());
  const cpu::Act32View a(buf.data(), K);
  const auto* blk = reinterpret_cast<const quant::FormatTraits<quant::format::Q4_1>::Block*>(w);
  double slack = 0.0;
  for (std::int64_t b = 0; b < K / 32; ++b)
    slack += std::fabs(double(blk[b].m.to_float())) * std::fabs(double(a.sum[b])) * a.d[b] * std::ldexp(1.0, -10);
  return slack;
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
    // Batch invariance (types whose llama.cpp kernels have it): row c of the
    // product equals the matvec of x_c, bit for bit.
    const bool invariant = tc.type != GgmlType::Q4_K && tc.type != GgmlType::Q6_K;
    if (invariant) {
      ASSERT_TRUE(cpu::matvec(std::uint32_t(tc.type), q.data(), M, K, x, y1.data(), pool)) << what;
    }
    for (std::int64_t r = 0; r < M; ++r) {
      const float y = Y[std::size_t(c * M + r)];
      if (invariant) {
        ASSERT_EQ(std::memcmp(&y, &y1[std::size_t(r)], sizeof y), 0)
            << what << " matmul row " << c << " != matvec at r=" << r << ": " << y << " vs " << y1[std::size_t(r)];
      }
      if (peer_matched(tc.type)) {
        const float p = peer_dot(tc.type, q.data() + std::size_t(r) * row_bytes(tc.type, K), x, K, N, c);
        ASSERT_EQ(std::memcmp(&y, &p, sizeof y), 0)
            << what << " r=" << r << " c=" << c << ": " << y << " vs llama.cpp's steps " << p;
      }
      Bound b = reference(tc.act_block, wd.data() + r * K, x, xq.data(), K);
      const double slack = q4_1_min_slack(tc.type, q.data() + std::size_t(r) * row_bytes(tc.type, K), x, K);
      b.bound_own += slack;
      b.bound_ref += slack;
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
      for (std::int64_t N : {1, 3, 13, 17, 64}) {  // tails of 4- and 8-column tiles
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
      const double slack = q4_1_min_slack(tc.type, q.data() + std::size_t(r) * row_bytes(tc.type, K), x.data(), K);
      EXPECT_LE(std::fabs(double(b[std::size_t(r)]) - bd.y_ref), bd.bound_ref + slack) << r;
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
    // kPositiveMax (ggml_quantize_mat_q8_K_4x8): +amax anywhere sets the sign;
    // otherwise identical. Where the reference took -amax although +amax
    // occurs, the whole block is negated (RNE is symmetric).
    cpu::quantize_act_q8_K(x.data(), 512, ours, cpu::Q8KSign::kPositiveMax);
    for (int b = 0; b < 2; ++b) {
      float amax = 0.0f;
      bool pos = false;
      for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(x[std::size_t(256 * b + i)]));
      for (int i = 0; i < 256; ++i) pos |= x[std::size_t(256 * b + i)] == amax;
      QK::Block want = ref[b];
      if (pos && ref[b].d > 0.0f) {
        want.d = -want.d;
        for (auto& q : want.qs) q = std::int8_t(-q);
        for (auto& s : want.bsums) s = std::int16_t(-s);
      }
      ASSERT_EQ(0, std::memcmp(&ours[b], &want, sizeof want)) << "kPositiveMax trial " << trial << " block " << b;
    }
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
