// Pins quant/nf4_double_quant.hpp: the dynamic map (bit-for-bit against the
// map bitsandbytes generated), the dQuantize search, the nested block layout,
// round-trip error, and agreement with bitsandbytes' nested state on
// tests/data/golden/nf4/ (see tools/gen_nf4_golden.py).
#include "qlora/quant/nf4_double_quant.hpp"

#include <gtest/gtest.h>

#include "qlora/core/half.hpp"
#include "quant/nf4_golden.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/quant/nf4.hpp"

#ifndef QLORA_TEST_DATA_DIR
#define QLORA_TEST_DATA_DIR "tests/data"
#endif

namespace {

using namespace qlora::quant;

std::uint32_t bits(float f) { return qlora::f32_bits(f); }

using qlora::test::read_raw;

std::string golden(const std::string& name) { return qlora::test::nf4_golden(name); }

TEST(Nf4DoubleQuant, DynamicMapMatchesBitsandbytesBitForBit) {
  const auto want = read_raw<float>(golden("dynamic_map.f32"));
  ASSERT_EQ(want.size(), 256u);
  const auto map = create_dynamic_map_signed();
  for (int i = 0; i < 256; ++i) EXPECT_EQ(bits(map[std::size_t(i)]), bits(want[std::size_t(i)])) << "index " << i;
}

TEST(Nf4DoubleQuant, DynamicMapShape) {
  const auto m = create_dynamic_map_signed();
  EXPECT_TRUE(std::is_sorted(m.begin(), m.end()));
  EXPECT_EQ(m[127], 0.0f);
  EXPECT_EQ(m[255], 1.0f);
  EXPECT_NEAR(m[0], -0.99297f, 1e-5f);
  for (int i = 0; i < 127; ++i) EXPECT_EQ(m[std::size_t(i)], -m[std::size_t(254 - i)]) << i;  // symmetric
}

TEST(Nf4DoubleQuant, DQuantizeReturnsExactCodesAndBracketsOthers) {
  const auto m = create_dynamic_map_signed();
  // Exact table values come back as themselves.
  for (int i = 0; i < 256; ++i) EXPECT_EQ(dynamic_quantize(m.data(), m[std::size_t(i)]), i) << i;
  // Anything else lands on one of the two codes that bracket it.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int k = 0; k < 100000; ++k) {
    const float x = u(rng);
    const int q = dynamic_quantize(m.data(), x);
    const auto hi = std::lower_bound(m.begin(), m.end(), x);
    const int up = int(hi - m.begin());
    EXPECT_TRUE(q == up || q == up - 1) << x;
  }
  // Beyond the ends saturates.
  EXPECT_EQ(dynamic_quantize(m.data(), 2.0f), 255);
  EXPECT_EQ(dynamic_quantize(m.data(), -2.0f), 0);
  EXPECT_EQ(dynamic_quantize(m.data(), std::nanf("")), 0);  // the GPU's NaN answer
}

TEST(Nf4DoubleQuant, ExactMidpointTieReturnsPivot) {
  const auto m = create_dynamic_map_signed();
  // Between codes 200 and 201: the search ends on the even pivot, so a tie
  // at the fp32 midpoint returns that pivot (no x > midpoint, no x < midpoint).
  const float mid = (m[200] + m[201]) * 0.5f;
  EXPECT_EQ(dynamic_quantize(m.data(), mid), 200);
  const float mid2 = (m[201] + m[202]) * 0.5f;
  EXPECT_EQ(dynamic_quantize(m.data(), mid2), 202);
}

TEST(Nf4DoubleQuant, NestedBlocksAndRoundTripError) {
  std::mt19937 rng(3);
  std::lognormal_distribution<float> ln(0.0f, 0.5f);
  std::vector<float> absmax(600);
  for (auto& a : absmax) a = ln(rng);
  auto st = double_quantize(absmax);
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->qabsmax.size(), 600u);
  EXPECT_EQ(st->absmax2.size(), 3u);  // 256 + 256 + 88
  ASSERT_TRUE(validate(*st, 600).is_ok());
  const auto dec = double_dequantize(*st);
  for (std::size_t b = 0; b < absmax.size(); ++b) {
    // The dynamic map's spacing near +-1 is ~1/64 of absmax2 (the linear
    // fraction region), so the absolute error is bounded by ~1% of absmax2.
    const float a2 = st->absmax2[b / 256];
    EXPECT_LE(std::fabs(dec[b] - absmax[b]), 0.01f * a2 + 1e-6f) << b;
  }
}

TEST(Nf4DoubleQuant, ConstantAbsmaxGivesZeroBlock) {
  std::vector<float> absmax(10, 0.75f);
  auto st = double_quantize(absmax);
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->offset, 0.75f);
  EXPECT_EQ(st->absmax2[0], 0.0f);
  for (auto q : st->qabsmax) EXPECT_EQ(q, 0);  // index 0 on CUDA and CPU alike
  for (float v : double_dequantize(*st)) EXPECT_EQ(v, 0.75f);
}

TEST(Nf4DoubleQuant, RejectsBadInput) {
  std::vector<float> a = {1.0f, std::nanf(""), 2.0f};
  auto st = double_quantize(a);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.status().message().find("absmax[1]"), std::string::npos);
  EXPECT_FALSE(double_quantize(std::vector<float>{1.0f}, 100).is_ok());
  DoubleQuantState s = *double_quantize(std::vector<float>(300, 1.0f));
  EXPECT_FALSE(validate(s, 299).is_ok());
  s.absmax2.pop_back();
  EXPECT_FALSE(validate(s, 300).is_ok());
}

// ---- agreement with bitsandbytes 0.50.2 (CPU), tests/data/golden/nf4 ----

TEST(Nf4DoubleQuantGolden, MatchesBitsandbytesNestedState) {
  std::ifstream in(golden("MANIFEST.json"));
  const auto m = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(m.is_discarded());
  for (const auto& [name, c] : m["cases"].items()) {
    SCOPED_TRACE(name);
    const auto absmax = read_raw<float>(golden(name + ".absmax"));
    const std::uint32_t off_bits = std::uint32_t(std::stoul(c["nested_offset_hex"].get<std::string>(), nullptr, 16));
    float offset;
    std::memcpy(&offset, &off_bits, 4);

    // Our mean is bnb's to within an ulp (bit-exact where MANIFEST says so).
    const float mean = absmax_mean(absmax);
    if (c["offset_equals_qlora_absmax_mean"].get<bool>()) {
      EXPECT_EQ(bits(mean), off_bits);
    }
    EXPECT_LE(std::fabs(mean - offset), std::nextafter(std::fabs(offset), 1e30f) - std::fabs(offset));

    // With bnb's offset pinned, the nested state is reproduced exactly...
    auto st = double_quantize(absmax, c["nested_blocksize"].get<int>(), offset);
    ASSERT_TRUE(st.is_ok());
    const auto absmax2 = read_raw<float>(golden(name + ".nested_absmax"));
    ASSERT_EQ(st->absmax2.size(), absmax2.size());
    for (std::size_t k = 0; k < absmax2.size(); ++k) EXPECT_EQ(bits(st->absmax2[k]), bits(absmax2[k])) << k;
    // ...the codes equal the CUDA-rule transcription, and differ from bnb's
    // CPU lookup-table kernel exactly where MANIFEST counted differences,
    // always by one neighbouring code.
    EXPECT_EQ(st->qabsmax, read_raw<std::uint8_t>(golden(name + ".nested_q_cuda")));
    const auto cpu_q = read_raw<std::uint8_t>(golden(name + ".nested_q"));
    ASSERT_EQ(cpu_q.size(), st->qabsmax.size());
    int diff = 0;
    for (std::size_t b = 0; b < cpu_q.size(); ++b) {
      if (cpu_q[b] == st->qabsmax[b]) continue;
      ++diff;
      EXPECT_EQ(std::abs(int(cpu_q[b]) - int(st->qabsmax[b])), 1) << "block " << b;
    }
    EXPECT_EQ(diff, c["cpu_vs_cuda_nested_code_mismatches"].get<int>());

    // Decoding bnb's own stored state reproduces bnb's absmax and weights.
    DoubleQuantState bnb = *st;
    bnb.qabsmax = cpu_q;
    const auto dec = double_dequantize(bnb);
    const auto want = read_raw<float>(golden(name + ".nested_absmax_deq"));
    ASSERT_EQ(dec.size(), want.size());
    for (std::size_t b = 0; b < dec.size(); ++b) EXPECT_EQ(bits(dec[b]), bits(want[b])) << b;

    Nf4Tensor t;
    t.packed = read_raw<std::uint8_t>(golden(name + ".packed"));
    t.blocksize = c["blocksize"].get<int>();
    t.shape = c["shape"].get<std::vector<std::int64_t>>();
    t.n = std::uint64_t(t.shape[0] * t.shape[1]);
    t.double_quant = bnb;
    auto y = dequantize_nf4(t);
    ASSERT_TRUE(y.is_ok()) << y.status().message();
    const auto deq = read_raw<float>(golden(name + ".nested_deq"));
    ASSERT_EQ(y->size(), deq.size());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < deq.size(); ++i) bad += bits((*y)[i]) != bits(deq[i]);
    EXPECT_EQ(bad, 0u);
  }
}

}  // namespace
