// judge/reliability.hpp: agreement statistics against hand-computed values.
#include "qlora/judge/reliability.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace qlora::judge {
namespace {

TEST(Reliability, PerfectAgreement) {
  const std::vector<int> a{0, 1, 2, 3, 3, 2};
  const Agreement r = agreement(a, a);
  EXPECT_EQ(r.n, 6u);
  EXPECT_DOUBLE_EQ(r.exact, 1.0);
  EXPECT_DOUBLE_EQ(r.within_one, 1.0);
  EXPECT_DOUBLE_EQ(r.quadratic_kappa, 1.0);
}

TEST(Reliability, QuadraticKappaByHand) {
  // a = {0,1,2,3}, b = {1,1,2,2}. Weights (i-j)^2/9. Observed cost:
  // (0,1): 1/9, (3,2): 1/9 -> 2/9. Expected: rows 1 each; cols: 1 -> 2, 2 -> 2;
  // E_ij = row_i * col_j / 4 = 0.5 for j in {1,2}: sum_i 0.5 * [(i-1)^2 + (i-2)^2] / 9
  // = 0.5 * (1+4 + 0+1 + 1+0 + 4+1) / 9 = 6/9. kappa = 1 - (2/9)/(6/9) = 2/3.
  const std::vector<int> a{0, 1, 2, 3}, b{1, 1, 2, 2};
  const Agreement r = agreement(a, b);
  EXPECT_DOUBLE_EQ(r.exact, 0.5);
  EXPECT_DOUBLE_EQ(r.within_one, 1.0);
  EXPECT_NEAR(r.quadratic_kappa, 2.0 / 3.0, 1e-12);
}

TEST(Reliability, SystematicDisagreementIsNegative) {
  const std::vector<int> a{0, 0, 3, 3}, b{3, 3, 0, 0};
  EXPECT_LT(agreement(a, b).quadratic_kappa, 0.0);
  EXPECT_DOUBLE_EQ(agreement(a, b).within_one, 0.0);
}

TEST(Reliability, VerbosityAndPosition) {
  const std::vector<int> s{0, 1, 2, 3};
  const std::vector<std::size_t> longer{10, 20, 30, 40}, flat{5, 5, 5, 5};
  EXPECT_NEAR(*length_score_correlation(s, longer), 1.0, 1e-12);
  EXPECT_FALSE(length_score_correlation(s, flat).has_value());
  const std::vector<PairVerdict> v{{0, 0}, {0, 1}, {1, 1}, {-1, 0}};
  EXPECT_DOUBLE_EQ(position_flip_rate(v), 0.5);
}

}  // namespace
}  // namespace qlora::judge
