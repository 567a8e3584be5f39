#include "erasure/reed_solomon.h"

#include <gtest/gtest.h>

#include <random>

namespace qv {
namespace {

// Encodes `size` bytes cut into k units (zero-padded), drops every possible
// set of m units, rebuilds them and checks they match.
void CheckAllErasures(int k, int m, size_t size) {
  auto rs = ReedSolomon::New(k, m);
  ASSERT_TRUE(rs.ok());
  const int n = k + m;
  const size_t unit = size == 0 ? 0 : (size + k - 1) / k;
  std::mt19937 rng(static_cast<uint32_t>(k * 1000 + m * 100 + size));
  std::vector<std::vector<uint8_t>> units(n, std::vector<uint8_t>(unit, 0));
  for (size_t i = 0; i < size; ++i) units[i / unit][i % unit] = static_cast<uint8_t>(rng());
  std::vector<const uint8_t*> data(k);
  std::vector<uint8_t*> parity(m);
  for (int i = 0; i < k; ++i) data[i] = units[i].data();
  for (int i = 0; i < m; ++i) parity[i] = units[k + i].data();
  (*rs)->Encode(unit, data, parity);

  // Every m-subset of lost units.
  std::vector<int> lost(m);
  for (int i = 0; i < m; ++i) lost[i] = i;
  int patterns = 0;
  while (true) {
    auto work = units;
    std::vector<bool> present(n, true), rebuild(n, false);
    for (int f : lost) {
      present[f] = false;
      rebuild[f] = true;
      std::fill(work[f].begin(), work[f].end(), 0xAA);
    }
    std::vector<uint8_t*> ptrs(n);
    for (int i = 0; i < n; ++i) ptrs[i] = work[i].data();
    Status s = (*rs)->Reconstruct(unit, ptrs, present, rebuild);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (int f : lost) ASSERT_EQ(work[f], units[f]) << "k=" << k << " m=" << m << " size=" << size;
    ++patterns;
    int i = m - 1;
    while (i >= 0 && lost[i] == n - m + i) --i;
    if (i < 0) break;
    ++lost[i];
    for (int j = i + 1; j < m; ++j) lost[j] = lost[j - 1] + 1;
  }
  EXPECT_GT(patterns, 0);
}

TEST(ReedSolomonTest, EveryChoiceOfMLostFragmentsRebuildsExactly) {
  const size_t stripe = 4096;
  for (auto [k, m] :
       std::vector<std::pair<int, int>>{{1, 1}, {2, 1}, {3, 2}, {4, 2}, {6, 3}, {10, 4}}) {
    for (size_t size : {size_t{0}, size_t{1}, stripe - 1, stripe, stripe + 1, size_t{1} << 20}) {
      SCOPED_TRACE(testing::Message() << "k=" << k << " m=" << m << " size=" << size);
      CheckAllErasures(k, m, size);
    }
  }
}

TEST(ReedSolomonTest, FewerThanKSurvivorsIsAnErrorNotGarbage) {
  auto rs = ReedSolomon::New(4, 2);
  ASSERT_TRUE(rs.ok());
  std::vector<std::vector<uint8_t>> u(6, std::vector<uint8_t>(64));
  std::vector<uint8_t*> ptrs(6);
  for (int i = 0; i < 6; ++i) ptrs[i] = u[i].data();
  std::vector<bool> present = {false, false, false, true, true, true};
  std::vector<bool> rebuild = {true, true, true, false, false, false};
  Status s = (*rs)->Reconstruct(64, ptrs, present, rebuild);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
}

TEST(ReedSolomonTest, RejectsImpossibleGeometry) {
  EXPECT_FALSE(ReedSolomon::New(0, 2).ok());
  EXPECT_FALSE(ReedSolomon::New(200, 56).ok());
  EXPECT_TRUE(ReedSolomon::New(200, 55).ok());
}

}  // namespace
}  // namespace qv
