// qlora/data/test_set_check.hpp — does any test question leak into the
// training pool? Character n-gram overlap between each test question and
// every pool question.
//
// Both sides are compared in normalize_codepoints() form (qa_generate.hpp:
// width-folded, case-folded, no whitespace or punctuation), so 「砂防堰堤とは？」
// and 「砂防堰堤とは」 are the same text. For a test question with distinct
// character n-grams G (default n = 8; Japanese carries about one word per two
// characters, so 8 characters is a phrase, not a term), the overlap with a
// pool question P is |G ∩ grams(P)| / |G|. A test question is reported when,
// for some single pool question,
//   - the overlap exceeds `max_fraction` (default 0.5), or
//   - they share a run of at least `max_shared_run` characters (default 20),
//     which catches a long copied clause inside an otherwise different question, or
//   - the normalized texts are equal (covers questions shorter than n).
// One finding per offending test question: its worst pool partner. An empty
// list is the pass condition; dataset_build.hpp fails the build otherwise.
//
// Cost: an inverted index n-gram → pool questions, so each test question
// touches only pool questions it shares an n-gram with; the longest-run
// dynamic programme runs only where enough n-grams are shared to make a long
// run possible (a run of L characters implies L − n + 1 shared n-grams).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "qlora/data/qa_generate.hpp"
#include "qlora/data/qa_jsonl.hpp"

namespace qlora::data {

struct OverlapOptions {
  std::size_t n = 8;                  // n-gram length in characters (code points of the normalized text)
  double max_fraction = 0.5;          // report when more than this share of a test question's n-grams is in one pool question
  std::size_t max_shared_run = 20;    // report a shared run of at least this many characters
};

struct OverlapFinding {
  std::string test_id, test_question;
  std::string pool_id, pool_question;
  double fraction = 0;                // share of the test question's n-grams found in the pool question
  std::size_t shared_run = 0;         // longest common run of normalized characters
};

struct OverlapReport {
  std::size_t tests_checked = 0, pool_size = 0;
  OverlapOptions options;
  std::vector<OverlapFinding> findings;   // offending test questions only
  double max_fraction_seen = 0;           // over all test questions (for the summary)
  std::size_t max_run_seen = 0;
  bool ok() const { return findings.empty(); }
};

namespace detail {

/// Longest common substring length (code points), O(|a|·|b|) with one row.
inline std::size_t longest_common_run(const std::u32string& a, const std::u32string& b) {
  std::vector<std::size_t> row(b.size() + 1, 0);
  std::size_t best = 0;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = 0;  // row[j-1] of the previous i
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = a[i - 1] == b[j - 1] ? diag + 1 : 0;
      best = std::max(best, row[j]);
      diag = up;
    }
  }
  return best;
}

}  // namespace detail

/// Check every test question against every pool question. `TestRange` is any
/// range of records with `id` and `question` (TestItem from qa_jsonl.hpp, or QaPair).
template <class TestRange>
OverlapReport check_test_overlap(const TestRange& tests, const std::vector<QaPair>& pool, const OverlapOptions& opt = {}) {
  OverlapReport rep;
  rep.options = opt;
  rep.pool_size = pool.size();
  const std::size_t n = std::max<std::size_t>(1, opt.n);

  std::vector<std::u32string> norm(pool.size());
  std::unordered_map<std::u32string, std::vector<std::uint32_t>> index;   // n-gram → pool questions holding it
  std::unordered_map<std::u32string, std::uint32_t> whole;                // short questions, by full text
  for (std::size_t i = 0; i < pool.size(); ++i) {
    norm[i] = normalize_codepoints(pool[i].question);
    whole.emplace(norm[i], std::uint32_t(i));
    for (std::size_t k = 0; k + n <= norm[i].size(); ++k) {
      auto& v = index[norm[i].substr(k, n)];
      if (v.empty() || v.back() != i) v.push_back(std::uint32_t(i));
    }
  }

  for (const auto& t : tests) {
    ++rep.tests_checked;
    const std::u32string q = normalize_codepoints(t.question);
    OverlapFinding best;
    bool flagged = false;
    auto consider = [&](std::size_t pi, double fraction, std::size_t run) {
      const bool bad = fraction > opt.max_fraction || run >= opt.max_shared_run;
      const bool better = (bad && !flagged) || (bad == flagged && (fraction > best.fraction ||
                                                                  (fraction == best.fraction && run > best.shared_run)));
      if (!better) return;
      flagged = flagged || bad;
      best = {t.id, t.question, pool[pi].id, pool[pi].question, fraction, run};
    };
    if (auto it = whole.find(q); it != whole.end() && !q.empty()) consider(it->second, 1.0, q.size());
    std::unordered_set<std::u32string> grams;
    for (std::size_t k = 0; k + n <= q.size(); ++k) grams.insert(q.substr(k, n));
    std::unordered_map<std::uint32_t, std::uint32_t> shared;
    for (const auto& g : grams)
      if (auto it = index.find(g); it != index.end())
        for (std::uint32_t pi : it->second) ++shared[pi];
    // Deterministic visiting order (unordered_map order is not portable).
    std::vector<std::pair<std::uint32_t, std::uint32_t>> cand(shared.begin(), shared.end());
    std::sort(cand.begin(), cand.end());
    const std::size_t run_needs = opt.max_shared_run >= n ? opt.max_shared_run - n + 1 : 1;
    for (const auto& [pi, count] : cand) {
      const double fraction = double(count) / double(grams.size());
      // Fewer shared n-grams than a long run needs: the run cannot reach the
      // limit, so the quadratic DP is only spent where it can decide or where
      // this pool question may become the reported partner.
      if (count < run_needs && fraction <= opt.max_fraction && (flagged || fraction < best.fraction)) continue;
      consider(pi, fraction, detail::longest_common_run(q, norm[pi]));
    }
    rep.max_fraction_seen = std::max(rep.max_fraction_seen, best.fraction);
    rep.max_run_seen = std::max(rep.max_run_seen, best.shared_run);
    if (flagged) rep.findings.push_back(std::move(best));
  }
  return rep;
}

/// A one-line-per-finding description, for error messages and the CLI.
inline std::string describe_overlaps(const OverlapReport& r, std::size_t max_lines = 10) {
  std::string s;
  for (std::size_t i = 0; i < r.findings.size() && i < max_lines; ++i) {
    const auto& f = r.findings[i];
    char num[64];
    std::snprintf(num, sizeof num, "%.0f%% of %zu-grams, shared run %zu", 100.0 * f.fraction, r.options.n, f.shared_run);
    s += "  test " + f.test_id + " 「" + f.test_question + "」 ~ pool " + f.pool_id + " 「" + f.pool_question + "」 (" + num + ")\n";
  }
  if (r.findings.size() > max_lines) s += "  ... and " + std::to_string(r.findings.size() - max_lines) + " more\n";
  return s;
}

}  // namespace qlora::data
