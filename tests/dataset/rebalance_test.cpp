// Pins data/rebalance.hpp: the exact number kept per relation, nesting
// (strict supersets), the relation mix of every prefix, determinism under a
// seed, and the pool-too-small error.
#include "qlora/data/rebalance.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

namespace {

using namespace qlora::data;

/// 1000 HAS_CHAPTER, 500 HAS_SECTION, 300 MITIGATES, 50 PRECEDES (ids r-i).
std::vector<QaPair> synthetic_pool() {
  std::vector<QaPair> pool;
  const std::pair<const char*, int> mix[] = {{"HAS_CHAPTER", 1000}, {"HAS_SECTION", 500}, {"MITIGATES", 300}, {"PRECEDES", 50}};
  for (auto [rel, n] : mix)
    for (int i = 0; i < n; ++i) {
      QaPair p;
      p.id = std::string(rel) + "-" + std::to_string(i);
      p.question = p.id + "？";
      p.answer = "answer";
      p.relation = rel;
      p.category = "Survey";
      p.source = "a -" + std::string(rel) + "-> b";
      pool.push_back(p);
    }
  return pool;
}

std::size_t count_rel(const std::vector<QaPair>& v, const std::string& rel) {
  std::size_t n = 0;
  for (const auto& p : v) n += p.relation == rel;
  return n;
}

TEST(Rebalance, KeepsExactlyTheRequestedFraction) {
  const auto pool = synthetic_pool();
  RebalanceSummary s;
  auto r = rebalance(pool, {}, &s);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(count_rel(*r, "HAS_CHAPTER"), 700u);  // llround(0.7 * 1000)
  EXPECT_EQ(count_rel(*r, "HAS_SECTION"), 500u);  // others kept whole
  EXPECT_EQ(r->size(), 1550u);
  EXPECT_EQ(s.before, 1850u);
  EXPECT_EQ(s.after, 1550u);
  EXPECT_EQ(s.after_per_relation.at("HAS_CHAPTER"), 700u);
  // Survivors keep pool order.
  for (std::size_t i = 1; i < r->size(); ++i) {
    if ((*r)[i].relation == (*r)[i - 1].relation) {
      auto num = [](const std::string& id) { return std::stoi(id.substr(id.rfind('-') + 1)); };
      EXPECT_LT(num((*r)[i - 1].id), num((*r)[i].id));
    }
  }
  // Proportional sampling of the others, and rounding of halves.
  RebalanceOptions o;
  o.keep = 0.5;
  o.others_keep = 0.5;
  auto h = rebalance(pool, o);
  EXPECT_EQ(count_rel(*h, "HAS_CHAPTER"), 500u);
  EXPECT_EQ(count_rel(*h, "PRECEDES"), 25u);
  EXPECT_EQ(count_rel(*h, "MITIGATES"), 150u);
}

TEST(Rebalance, RejectsBadSpecsAndUnknownRelations) {
  RebalanceOptions o;
  EXPECT_TRUE(parse_rebalance_spec("HAS_SECTION:0.25", o).is_ok());
  EXPECT_EQ(o.relation, "HAS_SECTION");
  EXPECT_DOUBLE_EQ(o.keep, 0.25);
  EXPECT_FALSE(parse_rebalance_spec("HAS_CHAPTER", o).is_ok());
  EXPECT_FALSE(parse_rebalance_spec("HAS_CHAPTER:1.5", o).is_ok());
  EXPECT_FALSE(parse_rebalance_spec("HAS_CHAPTER:x", o).is_ok());
  o.relation = "HAS_CHAPTERS";
  o.keep = 0.7;
  auto r = rebalance(synthetic_pool(), o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("HAS_CHAPTERS"), std::string::npos);
}

TEST(NestedSubsets, StrictSupersetsWithTheRelationMixInEveryPrefix) {
  auto pool = *rebalance(synthetic_pool(), {});
  auto ns = nested_subsets(pool, {1500, 100, 500, 1000}, 42);
  ASSERT_TRUE(ns.is_ok()) << ns.status().message();
  EXPECT_EQ(ns->sizes, (std::vector<std::size_t>{100, 500, 1000, 1500}));
  // A permutation of the pool.
  std::set<std::size_t> all(ns->order.begin(), ns->order.end());
  EXPECT_EQ(all.size(), pool.size());
  std::set<std::string> prev;
  for (std::size_t n : ns->sizes) {
    const auto sub = ns->pairs(pool, n);
    ASSERT_EQ(sub.size(), n);
    std::set<std::string> ids;
    for (const auto& p : sub) ids.insert(p.id);
    EXPECT_EQ(ids.size(), n);
    for (const auto& id : prev) EXPECT_TRUE(ids.count(id)) << "subset " << n << " lacks " << id;
    EXPECT_GT(ids.size(), prev.size());
    prev = ids;
    EXPECT_EQ(NestedSubsets::file_name(n), "subset_merged_" + std::to_string(n) + ".jsonl");
  }
  // Every prefix holds each relation's share to within one pair.
  std::map<std::string, std::size_t> total, seen;
  for (const auto& p : pool) total[p.relation]++;
  for (std::size_t m = 1; m <= pool.size(); ++m) {
    seen[pool[ns->order[m - 1]].relation]++;
    for (const auto& [rel, n] : total) {
      const double expect = double(m) * double(n) / double(pool.size());
      ASSERT_LE(std::fabs(double(seen[rel]) - expect), 1.0) << rel << " at prefix " << m;
    }
  }
}

TEST(NestedSubsets, DeterministicUnderASeed) {
  auto pool = *rebalance(synthetic_pool(), {});
  auto a = nested_subsets(pool, {100}, 1), b = nested_subsets(pool, {100}, 1), c = nested_subsets(pool, {100}, 2);
  EXPECT_EQ(a->order, b->order);
  EXPECT_NE(a->order, c->order);
  // The rebalancing seed also matters.
  RebalanceOptions o;
  o.seed = 9;
  auto r1 = *rebalance(synthetic_pool(), o), r2 = *rebalance(synthetic_pool(), {});
  std::size_t differ = 0;
  for (std::size_t i = 0; i < r1.size(); ++i) differ += r1[i].id != r2[i].id;
  EXPECT_GT(differ, 0u);
}

TEST(NestedSubsets, PoolTooSmallNamesTheSizeAndThePool) {
  auto pool = *rebalance(synthetic_pool(), {});
  auto r = nested_subsets(pool, {1000, 2000, 3000}, 42);
  ASSERT_FALSE(r.is_ok());
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("2000"), std::string::npos) << m;
  EXPECT_NE(m.find("1550"), std::string::npos) << m;
  EXPECT_FALSE(nested_subsets(pool, {100, 100}, 1).is_ok());
  EXPECT_FALSE(nested_subsets(pool, {0, 100}, 1).is_ok());
  EXPECT_FALSE(nested_subsets(pool, {}, 1).is_ok());
}

}  // namespace
