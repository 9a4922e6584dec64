// qlora/judge/reliability.hpp — how far a judge's scores can be trusted.
//
// An LLM judge is a noisy instrument. Reports show three checks beside the
// scores:
//   agreement  — the same answers judged twice: exact agreement, agreement
//                within one level, and Cohen's kappa with quadratic weights
//                (the usual statistic for ordinal scales: a 3-vs-0
//                disagreement costs nine times a 3-vs-2 one; 1 = perfect,
//                0 = chance level);
//   verbosity  — Pearson correlation of score with answer length in
//                characters: judges are known to reward long answers, and a
//                strong correlation is a warning sign (not proof: longer
//                answers may also be better);
//   position   — for pairwise judgements (A vs B, then B vs A), the share of
//                pairs whose winner flips when the order flips.
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace qlora::judge {

struct Agreement {
  std::size_t n = 0;
  double exact = 0.0;           // share of equal scores
  double within_one = 0.0;      // share with |a - b| <= 1
  double quadratic_kappa = 0.0; // Cohen's kappa, quadratic weights; 1 if both raters are constant and equal
};

/// Agreement of two judgements of the same answers (scores 0..3; pairs with
/// a missing score on either side are skipped by the caller).
inline Agreement agreement(std::span<const int> a, std::span<const int> b, int max_score = 3) {
  Agreement r;
  const std::size_t n = a.size() < b.size() ? a.size() : b.size();
  r.n = n;
  if (n == 0) return r;
  const int k = max_score + 1;
  std::vector<double> observed(std::size_t(k * k), 0.0), row(std::size_t(k), 0.0), col(std::size_t(k), 0.0);
  std::size_t exact = 0, near = 0;
  for (std::size_t i = 0; i < n; ++i) {
    exact += a[i] == b[i];
    near += std::abs(a[i] - b[i]) <= 1;
    observed[std::size_t(a[i] * k + b[i])] += 1.0;
    row[std::size_t(a[i])] += 1.0;
    col[std::size_t(b[i])] += 1.0;
  }
  r.exact = double(exact) / double(n);
  r.within_one = double(near) / double(n);
  // kappa_w = 1 - sum(w * O) / sum(w * E), w_ij = (i - j)^2 / (k - 1)^2,
  // E_ij = row_i * col_j / n.
  double wo = 0.0, we = 0.0;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const double w = double((i - j) * (i - j)) / double((k - 1) * (k - 1));
      wo += w * observed[std::size_t(i * k + j)];
      we += w * row[std::size_t(i)] * col[std::size_t(j)] / double(n);
    }
  r.quadratic_kappa = we > 0.0 ? 1.0 - wo / we : (wo == 0.0 ? 1.0 : 0.0);
  return r;
}

/// Pearson correlation of `x` and `y`; nullopt when either is constant.
inline std::optional<double> pearson(std::span<const double> x, std::span<const double> y) {
  const std::size_t n = x.size() < y.size() ? x.size() : y.size();
  if (n < 2) return std::nullopt;
  double mx = 0.0, my = 0.0;
  for (std::size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= double(n);
  my /= double(n);
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0.0 || syy == 0.0) return std::nullopt;
  return sxy / std::sqrt(sxx * syy);
}

/// Verbosity check: correlation of scores with answer lengths (characters).
inline std::optional<double> length_score_correlation(std::span<const int> scores, std::span<const std::size_t> chars) {
  std::vector<double> s(scores.begin(), scores.end()), l(chars.begin(), chars.end());
  return pearson(s, l);
}

/// One pairwise judgement in both orders: which answer won when A was shown
/// first, and when B was shown first (0 = A, 1 = B, -1 = tie).
struct PairVerdict {
  int winner_ab = -1;
  int winner_ba = -1;
};

/// Share of pairs whose verdict is not the same answer in both orders.
inline double position_flip_rate(std::span<const PairVerdict> v) {
  if (v.empty()) return 0.0;
  std::size_t flips = 0;
  for (const PairVerdict& p : v) flips += p.winner_ab != p.winner_ba;
  return double(flips) / double(v.size());
}

}  // namespace qlora::judge
