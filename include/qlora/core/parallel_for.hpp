// qlora/core/parallel_for.hpp — a small persistent thread pool for host loops.
//
// The CPU backend splits work into contiguous chunks (rows of a tensor, blocks
// of a row) and runs them on a pool created once per process, so a call costs
// a wake-up, not a thread creation. Chunks are fixed by (n, threads) only, so
// results never depend on scheduling: every chunk writes disjoint output.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace qlora {

class ThreadPool {
 public:
  explicit ThreadPool(int threads) : n_threads_(std::max(1, threads)) {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  /// Run fn(thread_index) on every thread of the pool (the caller is thread 0)
  /// and return when all have finished. Calls are serialized.
  ///
  /// Why spinning: token generation issues ~200 small matrix products per
  /// token, each only a few microseconds of work; waking a sleeping thread
  /// through a condition variable costs ~50 us, which would dominate. Workers
  /// therefore spin (with a pause instruction) for a short while after each job
  /// and only then sleep; the caller spins while waiting for the others.
  void run(const std::function<void(int)>& fn) {
    if (n_threads_ == 1) {
      fn(0);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    job_ = &fn;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) cv_start_.notify_all();
    fn(0);
    for (std::uint32_t spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < kSpinLimit) cpu_relax();
      else std::this_thread::yield();
    }
    job_ = nullptr;
  }

  /// The process-wide pool. Size: QLORA_THREADS if set, else hardware threads.
  static ThreadPool& global() {
    static ThreadPool pool(default_threads());
    return pool;
  }
  static int default_threads() {
    if (const char* env = std::getenv("QLORA_THREADS")) {
      const int n = std::atoi(env);
      if (n > 0) return n;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? int(hw) : 1;
  }

 private:
  // About 100 us of spinning before a worker sleeps (pause ~ 40 cycles).
  static constexpr std::uint32_t kSpinLimit = 1u << 13;

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  void worker_loop(int index) {
    std::uint64_t seen = 0;
    for (;;) {
      std::uint32_t spins = 0;
      while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinLimit) {
        cpu_relax();
        ++spins;
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        cv_start_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      (*job_)(index);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;
  std::mutex mu_;
  std::condition_variable cv_start_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

/// Number of chunks parallel_for uses for n items of at least `grain` each.
inline std::size_t parallel_chunks(std::size_t n, std::size_t grain, const ThreadPool& pool = ThreadPool::global()) {
  grain = std::max<std::size_t>(grain, 1);
  return std::min<std::size_t>(std::size_t(pool.size()), (n + grain - 1) / grain);
}

/// Split [0, n) into parallel_chunks(n, grain) contiguous chunks and call
/// fn(begin, end) — or fn(chunk_index, begin, end), to let callers keep
/// per-chunk partial results that they merge in chunk order — in parallel.
template <class Fn>
void parallel_for(std::size_t n, std::size_t grain, Fn&& fn, ThreadPool& pool = ThreadPool::global()) {
  const std::size_t chunks = parallel_chunks(n, grain, pool);
  auto call = [&](std::size_t c, std::size_t b, std::size_t e) {
    if constexpr (std::is_invocable_v<Fn&, std::size_t, std::size_t, std::size_t>) fn(c, b, e);
    else fn(b, e);
  };
  if (chunks == 0) return;
  if (chunks == 1) {
    call(0, 0, n);
    return;
  }
  pool.run([&](int t) {
    const std::size_t ti = std::size_t(t);
    if (ti >= chunks) return;
    const std::size_t begin = n * ti / chunks;
    const std::size_t end = n * (ti + 1) / chunks;
    if (begin < end) call(ti, begin, end);
  });
}

}  // namespace qlora
