// Tests for qlora/core/rng.hpp: the draws are pinned so that datasets,
// sampling, LoRA initialisation and dropout are the same on every platform.
#include "qlora/core/rng.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace {

using namespace qlora;

TEST(Rng, SplitMixAndBoundedArePinned) {
  EXPECT_EQ(splitmix64(0), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(bounded(~0ull, 10), 9u);
  EXPECT_EQ(bounded(0, 10), 0u);
}

TEST(Rng, SeededShuffleIsAPermutationAndRepeatable) {
  std::vector<int> v{0, 1, 2, 3, 4, 5, 6, 7};
  seeded_shuffle(v, 1);
  std::vector<int> w{0, 1, 2, 3, 4, 5, 6, 7};
  seeded_shuffle(w, 1);
  EXPECT_EQ(v, w);
  EXPECT_EQ(std::set<int>(v.begin(), v.end()).size(), 8u);
}

TEST(Rng, XoshiroStateRoundTrips) {
  Xoshiro256 a(123);
  for (int i = 0; i < 10; ++i) a.next();
  Xoshiro256 b(0);
  b.set_state(a.state());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.next(), b.next());
}

TEST(Rng, CounterDrawsAreUniformAndKeyed) {
  // uniform01_f32 covers [0, 1) with a mean near 1/2, and keys change draws.
  double sum = 0.0;
  float lo = 1.0f, hi = 0.0f;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float u = uniform01_f32(hash3(7, 3, std::uint64_t(i)));
    sum += u;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_GE(lo, 0.0f);
  EXPECT_LT(hi, 1.0f);
  EXPECT_NE(hash3(7, 3, 0), hash3(7, 4, 0));
  EXPECT_NE(hash3(7, 3, 0), hash3(8, 3, 0));
}

}  // namespace
