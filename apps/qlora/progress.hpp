// apps/qlora/progress.hpp — a terminal progress bar with rate and ETA.
//
// Long work (quantizing a model, later training) reports progress on stderr:
// a bar, the fraction done, a rate in the caller's unit, and an ETA. On a
// terminal the line is redrawn in place; otherwise (CI logs, pipes) a plain
// line is printed at most every few seconds, so logs stay readable.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace qlora::app {

class ProgressBar {
 public:
  ProgressBar(std::string label, double total, std::string unit)
      : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(STDERR_FILENO) != 0),
        start_(clock::now()), last_draw_(start_) {}

  /// Advance to `done` (same unit as total) with a short note (e.g. a tensor name).
  void update(double done, const std::string& note = "") {
    done_ = done;
    const auto now = clock::now();
    const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
    if (since_draw < (tty_ ? 0.1 : 5.0)) return;  // finish() draws the last state
    last_draw_ = now;
    draw(note);
  }

  /// Final line with the total time and mean rate.
  void finish(const std::string& note = "") {
    done_ = total_;
    draw(note);
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  using clock = std::chrono::steady_clock;

  void draw(const std::string& note) {
    const double elapsed = std::chrono::duration<double>(clock::now() - start_).count();
    const double frac = total_ > 0 ? done_ / total_ : 1.0;
    const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
    const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
    constexpr int kWidth = 28;
    std::string bar(std::size_t(kWidth), ' ');
    const int filled = int(frac * kWidth + 0.5);
    for (int i = 0; i < filled && i < kWidth; ++i) bar[std::size_t(i)] = '#';
    std::string n = note.size() > kNoteWidth ? note.substr(0, kNoteWidth - 3) + "..." : note;
    // Slow units (training steps take seconds) read better as seconds per
    // unit than as "0.0 step/s".
    char rate_text[48];
    if (rate >= 1.0 || rate <= 0.0) std::snprintf(rate_text, sizeof rate_text, "%8.1f %s/s", rate, unit_.c_str());
    else std::snprintf(rate_text, sizeof rate_text, "%8.1f s/%s", 1.0 / rate, unit_.c_str());
    std::fprintf(stderr, "%s%s [%s] %5.1f%% %s  %s %s  %-*s%s", tty_ ? "\r" : "", label_.c_str(), bar.c_str(),
                 100.0 * frac, rate_text, done_ >= total_ ? "took" : "ETA",
                 format_seconds(done_ >= total_ ? elapsed : eta).c_str(), int(kNoteWidth), n.c_str(),
                 tty_ ? "" : "\n");
    std::fflush(stderr);
  }

  static std::string format_seconds(double s) {
    char buf[32];
    const int t = int(s + 0.5);
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, t / 60 % 60);
    else std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
    return buf;
  }

  static constexpr std::size_t kNoteWidth = 64;
  std::string label_, unit_;
  double total_, done_ = 0;
  bool tty_;
  clock::time_point start_, last_draw_;
};

}  // namespace qlora::app
