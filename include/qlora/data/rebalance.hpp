// qlora/data/rebalance.hpp — undersample an over-represented relation type,
// then cut nested training subsets (subset_merged_1000 ⊂ … ⊂ subset_merged_5000).
//
// Rebalancing keeps exactly llround(keep · n) pairs of the chosen relation
// (the paper: HAS_CHAPTER, keep 70%) and llround(others_keep · n_r) of every
// other relation r ("sample the others proportionally"; others_keep = 1 keeps
// them all). Which pairs survive is a seeded shuffle per relation; survivors
// stay in pool order. Note on the paper's numbers: 24.5% × 0.7 = 17.1% is the
// target's share measured against the original pool size; against the
// rebalanced pool it is 0.7p / (1 − 0.3p) = 18.5% when everything else is kept.
//
// Nested subsets: one seeded order of the whole rebalanced pool, and subset n
// is its first n pairs — so every subset is a strict superset of the smaller
// ones by construction. The order is stratified by relation so that *every*
// prefix keeps the pool's relation mix: each relation's pairs are shuffled,
// the i-th pair of relation r (of n_r) gets the key (i + ½) / n_r, and the
// pool is sorted by key (exact integer comparison; ties in a seeded relation
// order). This is the Sainte-Laguë/Webster divisor method read as a sequence:
// a prefix of length m holds round(m · n_r / N) pairs of r up to ±1, and the
// method is house-monotone, so nesting never costs a relation its share. The
// coefficient of variation of each relation's share across subsets therefore
// stays far below the paper's 3% target.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/data/qa_generate.hpp"
#include "qlora/data/qa_jsonl.hpp"

namespace qlora::data {

struct RebalanceOptions {
  std::string relation = "HAS_CHAPTER";  // the over-represented type; "" = no undersampling
  double keep = 0.7;                     // fraction of `relation` kept
  double others_keep = 1.0;              // fraction of every other relation kept
  std::uint64_t seed = 42;
};

struct RebalanceSummary {
  std::size_t before = 0, after = 0;
  std::map<std::string, std::size_t> before_per_relation, after_per_relation;
};

/// "HAS_CHAPTER:0.7" → relation and keep fraction (the CLI's --rebalance form).
inline Status parse_rebalance_spec(const std::string& spec, RebalanceOptions& out) {
  const std::size_t colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0) return Status::invalid("--rebalance '" + spec + "': expected TYPE:FRACTION, e.g. HAS_CHAPTER:0.7");
  const std::string frac = spec.substr(colon + 1);
  char* end = nullptr;
  const double v = std::strtod(frac.c_str(), &end);
  if (frac.empty() || *end != '\0' || !(v >= 0.0 && v <= 1.0))
    return Status::invalid("--rebalance '" + spec + "': fraction must be a number in [0, 1]");
  out.relation = spec.substr(0, colon);
  out.keep = v;
  return Status::ok();
}

/// Undersample `opt.relation` to `opt.keep` and the others to `opt.others_keep`.
/// Errors: fractions outside [0, 1]; a relation that is not in the pool (a typo
/// would otherwise silently rebalance nothing).
inline Result<std::vector<QaPair>> rebalance(const std::vector<QaPair>& pool, const RebalanceOptions& opt,
                                             RebalanceSummary* summary = nullptr) {
  if (!(opt.keep >= 0.0 && opt.keep <= 1.0) || !(opt.others_keep >= 0.0 && opt.others_keep <= 1.0))
    return Status::invalid("rebalance: keep fractions must lie in [0, 1]");
  std::map<std::string, std::vector<std::size_t>> by_relation;
  for (std::size_t i = 0; i < pool.size(); ++i) by_relation[pool[i].relation].push_back(i);
  if (!opt.relation.empty() && !by_relation.count(opt.relation)) {
    std::string present;
    for (const auto& [r, v] : by_relation) present += (present.empty() ? "" : ", ") + r;
    return Status::invalid("rebalance: relation '" + opt.relation + "' does not occur in the pool (present: " + present + ")");
  }
  std::vector<char> kept(pool.size(), 0);
  RebalanceSummary s;
  s.before = pool.size();
  for (auto& [rel, idx] : by_relation) {
    const double frac = rel == opt.relation ? opt.keep : opt.others_keep;
    const std::size_t k = static_cast<std::size_t>(std::llround(frac * double(idx.size())));
    seeded_shuffle(idx, hash_key(opt.seed, {fnv1a64(rel), 0x7265626cull /* "rebl" */}));
    for (std::size_t j = 0; j < k; ++j) kept[idx[j]] = 1;
    s.before_per_relation[rel] = idx.size();
    s.after_per_relation[rel] = k;
  }
  std::vector<QaPair> out;
  for (std::size_t i = 0; i < pool.size(); ++i)
    if (kept[i]) out.push_back(pool[i]);
  s.after = out.size();
  if (summary) *summary = std::move(s);
  return out;
}

/// A seeded order of the pool, stratified by relation (see the file comment):
/// every prefix keeps the relation mix to within one pair per relation.
inline std::vector<std::size_t> stratified_order(const std::vector<QaPair>& pool, std::uint64_t seed) {
  std::map<std::string, std::vector<std::size_t>> by_relation;
  for (std::size_t i = 0; i < pool.size(); ++i) by_relation[pool[i].relation].push_back(i);
  std::vector<std::string> relations;
  for (auto& [rel, idx] : by_relation) {
    seeded_shuffle(idx, hash_key(seed, {fnv1a64(rel), 0x6f726472ull /* "ordr" */}));
    relations.push_back(rel);
  }
  seeded_shuffle(relations, hash_key(seed, {0x74696573ull /* "ties" */}));
  struct Slot {
    std::uint64_t num, den;  // key = num / den = (2i + 1) / (2 n_r)
    std::size_t tie;         // rank of the relation in the seeded tie order
    std::size_t index;       // into pool
  };
  std::vector<Slot> slots;
  slots.reserve(pool.size());
  for (std::size_t t = 0; t < relations.size(); ++t) {
    const auto& idx = by_relation[relations[t]];
    for (std::size_t i = 0; i < idx.size(); ++i) slots.push_back({2 * i + 1, 2 * idx.size(), t, idx[i]});
  }
  std::sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) {
    // num, den ≤ 2·pool size, so the products fit 64 bits for pools below 2^31 pairs.
    const std::uint64_t l = a.num * b.den, r = b.num * a.den;
    if (l != r) return l < r;
    return a.tie < b.tie || (a.tie == b.tie && a.index < b.index);
  });
  std::vector<std::size_t> order;
  order.reserve(slots.size());
  for (const Slot& s : slots) order.push_back(s.index);
  return order;
}

/// Nested subsets: `order` is a permutation of the pool; subset k is its first
/// sizes[k] entries, sizes strictly increasing.
struct NestedSubsets {
  std::vector<std::size_t> order;   // indices into the rebalanced pool
  std::vector<std::size_t> sizes;   // ascending, distinct

  /// The paper's file name for a subset size: subset_merged_<n>.jsonl.
  static std::string file_name(std::size_t n) { return "subset_merged_" + std::to_string(n) + ".jsonl"; }
  /// Pairs of the subset of size n (n must be one of `sizes` or ≤ the pool).
  std::vector<QaPair> pairs(const std::vector<QaPair>& pool, std::size_t n) const {
    std::vector<QaPair> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n && i < order.size(); ++i) out.push_back(pool[order[i]]);
    return out;
  }
};

/// Cut nested subsets of the given sizes. Errors (and nothing cut) when a size
/// is zero or repeated, or when the pool is smaller than the largest size —
/// the message names that size and the pool size.
inline Result<NestedSubsets> nested_subsets(const std::vector<QaPair>& pool, std::vector<std::size_t> sizes,
                                            std::uint64_t seed) {
  if (sizes.empty()) return Status::invalid("nested subsets: no sizes given");
  std::sort(sizes.begin(), sizes.end());
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    if (sizes[k] == 0) return Status::invalid("nested subsets: a subset size of 0 is meaningless");
    if (k && sizes[k] == sizes[k - 1])
      return Status::invalid("nested subsets: size " + std::to_string(sizes[k]) +
                             " is given twice (each subset must be a strict superset of the smaller)");
  }
  for (std::size_t n : sizes)
    if (n > pool.size())
      return Status::invalid("nested subsets: requested size " + std::to_string(n) +
                             (n == sizes.back() ? "" : " (and larger)") + " exceeds the pool of " +
                             std::to_string(pool.size()) +
                             " QA pairs after rebalancing; no subset was written (lower --sizes, keep "
                             "paraphrases on, or add relations to the graph)");
  return NestedSubsets{stratified_order(pool, seed), std::move(sizes)};
}

}  // namespace qlora::data
