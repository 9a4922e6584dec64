// Pins core/parallel_for.hpp: every index is visited exactly once, chunks are
// contiguous and deterministic, and the pool can be reused many times.
#include "qlora/core/parallel_for.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace {

TEST(ParallelFor, VisitsEveryIndexOnce) {
  qlora::ThreadPool pool(3);
  for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 64u, 1000u}) {
    std::vector<std::atomic<int>> hits(n);
    qlora::parallel_for(n, 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) hits[i]++;
    }, pool);
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ParallelFor, RespectsGrain) {
  qlora::ThreadPool pool(4);
  std::atomic<int> calls{0};
  qlora::parallel_for(10, 8, [&](std::size_t, std::size_t) { calls++; }, pool);
  EXPECT_EQ(calls.load(), 2);  // ceil(10/8) chunks at most
}

TEST(ParallelFor, PoolSurvivesManyRuns) {
  qlora::ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int r = 0; r < 2000; ++r)
    qlora::parallel_for(100, 1, [&](std::size_t b, std::size_t e) {
      long s = 0;
      for (std::size_t i = b; i < e; ++i) s += long(i);
      sum += s;
    }, pool);
  EXPECT_EQ(sum.load(), 2000L * 4950L);
}

}  // namespace
