// qlora/core/parallel_for.hpp — a small persistent thread pool for host loops.
//
// The CPU backend splits work into contiguous chunks (rows of a tensor, blocks
// of a row) and runs them on a pool created once per process, so a call costs
// a wake-up, not a thread creation. Chunks are fixed by (n, threads) only, so
// results never depend on scheduling: every chunk writes disjoint output.
#pragma once

#include <algorithm>
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
      stop_ = true;
      ++generation_;
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  /// Run fn(thread_index) on every thread of the pool (the caller is thread 0)
  /// and return when all have finished. Not re-entrant.
  void run(const std::function<void(int)>& fn) {
    if (n_threads_ == 1) {
      fn(0);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      pending_ = n_threads_ - 1;
      ++generation_;
    }
    cv_start_.notify_all();
    fn(0);
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, [this] { return pending_ == 0; });
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
  void worker_loop(int index) {
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_start_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        job = job_;
      }
      (*job)(index);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) cv_done_.notify_one();
      }
    }
  }

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  int pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
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
