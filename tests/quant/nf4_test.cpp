// Pins quant/nf4.hpp: codebook bits, thresholds, tie rule, nibble order, odd
// tails, the all-zero block, error on Gaussian data, host-API errors, and
// byte-identity with bitsandbytes (CPU) on tests/data/golden/nf4/.
#include "qlora/quant/nf4.hpp"

#include <gtest/gtest.h>

#include "qlora/core/half.hpp"
#include "quant/nf4_golden.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quant/test_data.hpp"

#ifndef QLORA_TEST_DATA_DIR
#define QLORA_TEST_DATA_DIR "tests/data"
#endif

namespace {

using namespace qlora::quant;
using NF4 = FormatTraits<format::NF4>;

std::uint32_t bits(float f) { return qlora::f32_bits(f); }

using qlora::test::read_raw;

std::string golden(const std::string& name) { return qlora::test::nf4_golden(name); }

TEST(Nf4, CodebookBitsMatchBitsandbytes) {
  // formats.md §6.1, hex of the fp32 values bnb's get_4bit_type("nf4") holds.
  const std::uint32_t want[16] = {0xBF800000, 0xBF3239B1, 0xBF066B30, 0xBECA32A0, 0xBE91A24D, 0xBE3D353F,
                                  0xBDBA7871, 0x00000000, 0x3DA2FAFF, 0x3E24CAE3, 0x3E7C04DD, 0x3EAD033A,
                                  0x3EE1A4B8, 0x3F1007AB, 0x3F3913B3, 0x3F800000};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(bits(kNf4Codebook[i]), want[i]) << "index " << i;
}

TEST(Nf4, ThresholdsAreFp32Midpoints) {
  // bnb's torch path computes (code[:-1] + code[1:]) / 2 in fp32; the CUDA
  // tree's literals round to the same floats.
  for (int i = 0; i < 15; ++i) {
    const float mid = (kNf4Codebook[i] + kNf4Codebook[i + 1]) / 2.0f;
    EXPECT_EQ(bits(kNf4Thresholds[i]), bits(mid)) << "threshold " << i;
  }
}

int count_below(float x) {
  int c = 0;
  for (float t : kNf4Thresholds) c += x > t;
  return c;
}

TEST(Nf4, IndexIsCountOfThresholdsStrictlyBelow) {
  // Every threshold, its fp32 neighbours, every code, and a dense sweep.
  std::vector<float> xs;
  for (float t : kNf4Thresholds) {
    xs.push_back(t);
    xs.push_back(std::nextafter(t, -2.0f));
    xs.push_back(std::nextafter(t, 2.0f));
  }
  for (float c : kNf4Codebook) xs.push_back(c);
  for (int i = -120000; i <= 120000; ++i) xs.push_back(float(i) / 100000.0f);
  for (float x : xs) EXPECT_EQ(nf4_index(x), count_below(x)) << x;
}

TEST(Nf4, TiesGoToLowerIndex) {
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(nf4_index(kNf4Thresholds[i]), i);
    EXPECT_EQ(nf4_index(std::nextafter(kNf4Thresholds[i], 2.0f)), i + 1);
  }
  EXPECT_EQ(nf4_index(0.0f), 7);
  EXPECT_EQ(nf4_index(-0.0f), 7);
  EXPECT_EQ(nf4_index(-1.0f), 0);
  EXPECT_EQ(nf4_index(1.0f), 15);
  EXPECT_EQ(nf4_index(5.0f), 15);
  EXPECT_EQ(nf4_index(std::numeric_limits<float>::quiet_NaN()), 0);  // as on GPU
}

TEST(Nf4, FirstElementIsHighNibble) {
  float x[64] = {};
  x[0] = -1.0f;  // index 0
  x[1] = 1.0f;   // index 15, and absmax = 1
  x[2] = 0.5626170039176941f;  // index 13
  NF4::Block b{};
  NF4::quantize_block(x, b);
  EXPECT_EQ(b.absmax, 1.0f);
  EXPECT_EQ(b.qs[0], 0x0F);
  EXPECT_EQ(b.qs[1], 0xD7);
  for (int k = 2; k < 32; ++k) EXPECT_EQ(b.qs[k], 0x77);
  float y[64];
  NF4::dequantize_block(b, y);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(y[i], x[i]) << i;  // all codebook points: exact
}

TEST(Nf4, DotBlockMatchesDequantize) {
  auto x = qlora::test::gaussian(64, 3);
  auto w = qlora::test::gaussian(64, 4);
  NF4::Block b{};
  NF4::quantize_block(x.data(), b);
  float y[64];
  NF4::dequantize_block(b, y);
  double ref = 0;
  for (int i = 0; i < 64; ++i) ref += double(y[i]) * w[std::size_t(i)];
  EXPECT_NEAR(NF4::dot_block(b, w.data()), ref, 1e-4 * (1 + std::fabs(ref)));
}

TEST(Nf4, OddTailIsPaddedWithIndex7) {
  std::vector<float> x = {1.0f, -1.0f, 0.5f};  // 3 elements, one partial block
  auto t = quantize_nf4(x);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  ASSERT_EQ(t->packed.size(), 2u);
  EXPECT_EQ(t->packed[0], 0xF0);
  EXPECT_EQ(t->packed[1] & 0x0F, 0x7);  // padding nibble
  EXPECT_EQ(t->packed[1] >> 4, nf4_index(0.5f));
  auto y = dequantize_nf4(*t);
  ASSERT_TRUE(y.is_ok());
  ASSERT_EQ(y->size(), 3u);
  EXPECT_EQ((*y)[0], 1.0f);
  EXPECT_EQ((*y)[1], -1.0f);
}

TEST(Nf4, BlocksCrossRows) {
  // 3 rows of 40 with blocksize 32: block 1 spans rows 0 and 1.
  auto x = qlora::test::gaussian(120, 9);
  auto t = quantize_nf4(x, {3, 40}, {.blocksize = 32});
  ASSERT_TRUE(t.is_ok());
  ASSERT_EQ(t->absmax.size(), 4u);
  float a1 = 0;
  for (int i = 32; i < 64; ++i) a1 = std::fmax(a1, std::fabs(x[std::size_t(i)]));
  EXPECT_EQ(t->absmax[1], a1);
}

TEST(Nf4, AllZeroBlockFollowsTorchCpuPath) {
  std::vector<float> x(128, 0.0f);
  x[64] = 2.0f;  // block 1 non-zero
  auto t = quantize_nf4(x);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->absmax[0], 0.0f);  // stored unclamped
  for (int k = 0; k < 32; ++k) EXPECT_EQ(t->packed[std::size_t(k)], 0x77) << k;  // CUDA would give 0x00
  auto y = dequantize_nf4(*t);
  ASSERT_TRUE(y.is_ok());
  for (int i = 0; i < 64; ++i) EXPECT_EQ((*y)[std::size_t(i)], 0.0f);
  // The working block agrees with the host API.
  NF4::Block b{};
  NF4::quantize_block(x.data(), b);
  EXPECT_EQ(b.absmax, 0.0f);
  EXPECT_EQ(b.qs[0], 0x77);
}

TEST(Nf4, GaussianErrorIsWhatNf4Achieves) {
  // NF4 on N(0,1) with blocksize 64: RMSE/RMS is about 0.10 (the QLoRA
  // codebook is built for this case; uniform 4-bit absmax gets ~0.12).
  for (unsigned seed : {1u, 2u, 3u}) {
    auto x = qlora::test::gaussian(64 * 256, seed);
    auto t = quantize_nf4(x, {256, 64});
    ASSERT_TRUE(t.is_ok());
    auto y = dequantize_nf4(*t);
    ASSERT_TRUE(y.is_ok());
    const double rel = qlora::test::rmse(x, *y) / qlora::test::rms(x);
    EXPECT_GT(rel, 0.07);
    EXPECT_LT(rel, 0.11) << "seed " << seed;
  }
}

TEST(Nf4, DoubleQuantRoundTripStaysClose) {
  auto x = qlora::test::gaussian(64 * 1000, 5);
  auto plain = quantize_nf4(x);
  auto dq = quantize_nf4(x, {}, {.double_quant = true});
  ASSERT_TRUE(plain.is_ok() && dq.is_ok());
  EXPECT_EQ(plain->packed, dq->packed);  // nesting never changes the nibbles
  EXPECT_TRUE(dq->absmax.empty());
  ASSERT_TRUE(dq->double_quant.has_value());
  auto y0 = dequantize_nf4(*plain);
  auto y1 = dequantize_nf4(*dq);
  ASSERT_TRUE(y0.is_ok() && y1.is_ok());
  const double e0 = qlora::test::rmse(x, *y0), e1 = qlora::test::rmse(x, *y1);
  EXPECT_LT(e1, e0 * 1.02);  // compressing the scales costs < 2% extra error
}

TEST(Nf4, RejectsNonFiniteInputNamingTheElement) {
  std::vector<float> x(100, 1.0f);
  x[77] = std::numeric_limits<float>::quiet_NaN();
  auto t = quantize_nf4(x);
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), qlora::ErrorCode::kNumeric);
  EXPECT_NE(t.status().message().find("element 77"), std::string::npos) << t.status().message();
  x[77] = -std::numeric_limits<float>::infinity();
  EXPECT_NE(quantize_nf4(x).status().message().find("infinite"), std::string::npos);
}

TEST(Nf4, RejectsBadBlocksizeAndShape) {
  std::vector<float> x(128, 1.0f);
  for (int bs : {0, 16, 48, 8192}) EXPECT_FALSE(quantize_nf4(x, {}, {.blocksize = bs}).is_ok()) << bs;
  for (int bs : {32, 64, 128, 256, 512, 1024, 2048, 4096}) EXPECT_TRUE(quantize_nf4(x, {}, {.blocksize = bs}).is_ok());
  EXPECT_FALSE(quantize_nf4(x, {3, 40}).is_ok());  // 120 != 128
  Nf4Tensor t = *quantize_nf4(x);
  t.packed.pop_back();
  EXPECT_FALSE(dequantize_nf4(t).is_ok());
}

// ---- byte-identity with bitsandbytes 0.50.2 (CPU), tests/data/golden/nf4 ----

nlohmann::json manifest() {
  std::ifstream in(golden("MANIFEST.json"));
  return nlohmann::json::parse(in, nullptr, false);
}

TEST(Nf4Golden, PackedAbsmaxAndDequantMatchBitsandbytes) {
  const auto m = manifest();
  ASSERT_FALSE(m.is_discarded()) << "missing " << golden("MANIFEST.json");
  ASSERT_GE(m["cases"].size(), 9u);
  for (const auto& [name, c] : m["cases"].items()) {
    SCOPED_TRACE(name);
    const auto x = read_raw<float>(golden(name + ".f32"));
    std::vector<std::int64_t> shape = c["shape"].get<std::vector<std::int64_t>>();
    auto t = quantize_nf4(x, shape, {.blocksize = c["blocksize"].get<int>()});
    ASSERT_TRUE(t.is_ok()) << t.status().message();
    EXPECT_EQ(t->packed, read_raw<std::uint8_t>(golden(name + ".packed")));
    const auto absmax = read_raw<float>(golden(name + ".absmax"));
    ASSERT_EQ(t->absmax.size(), absmax.size());
    for (std::size_t b = 0; b < absmax.size(); ++b) EXPECT_EQ(bits(t->absmax[b]), bits(absmax[b])) << "block " << b;
    auto y = dequantize_nf4(*t);
    ASSERT_TRUE(y.is_ok());
    const auto deq = read_raw<float>(golden(name + ".deq"));
    ASSERT_EQ(y->size(), deq.size());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < deq.size(); ++i) bad += bits((*y)[i]) != bits(deq[i]);
    EXPECT_EQ(bad, 0u);
  }
}

TEST(Nf4Golden, ZeroBlocksAre0x77) {
  const auto packed = read_raw<std::uint8_t>(golden("zero_blocks.packed"));
  ASSERT_EQ(packed.size(), 96u);
  for (std::size_t k = 0; k < 32; ++k) EXPECT_EQ(packed[k], 0x77);
  for (std::size_t k = 64; k < 96; ++k) EXPECT_EQ(packed[k], 0x77);
}

}  // namespace
