#include "sim/world.h"

#include <gtest/gtest.h>

#include <set>

namespace qv::sim {
namespace {

TEST(RngTest, TheSameSeedGivesTheSameStreamAndBelowStaysInRange) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    EXPECT_NE(x, c.Next());
  }
  std::set<uint64_t> seen;
  for (uint64_t n : {1ull, 2ull, 3ull, 7ull, 1000ull}) {
    for (int i = 0; i < 200; ++i) {
      const uint64_t v = a.Below(n);
      ASSERT_LT(v, n);
      if (n == 7) seen.insert(v);
    }
  }
  EXPECT_EQ(seen.size(), 7u);  // every value drawn
}

TEST(NetworkTest, ACutLinkFailsAndTimePassesByLatencyAndBandwidth) {
  SimClock clock(1798761600);
  Network net(&clock, Rng(1));
  net.SetDefaultLinks({1, 0, 0}, {20, 1000, 0});  // WAN: 20 ms, 1000 bytes/ms
  ASSERT_TRUE(net.Transfer("a", "b", 10000).ok());
  EXPECT_EQ(clock.ms(), 30);  // 20 ms + 10 ms on the wire
  ASSERT_TRUE(net.Transfer("a", "a", 10000).ok());
  EXPECT_EQ(clock.ms(), 31);  // LAN: 1 ms, unlimited
  net.Cut("a", "b");
  EXPECT_FALSE(net.Transfer("b", "a", 1).ok());
  EXPECT_TRUE(net.Transfer("a", "c", 1).ok());
  net.HealAll();
  EXPECT_TRUE(net.Transfer("a", "b", 1).ok());
  net.SetSiteLink("b", {2000, 0, 0});
  int64_t before = clock.ms();
  ASSERT_TRUE(net.Transfer("a", "b", 1).ok());
  EXPECT_EQ(clock.ms() - before, 2000);
  // A site pair's own link wins over both sites' overrides.
  net.SetPairLink("b", "c", {5, 0, 0});
  before = clock.ms();
  ASSERT_TRUE(net.Transfer("c", "b", 1).ok());
  EXPECT_EQ(clock.ms() - before, 5);
}

TEST(NetworkTest, LossResetsAboutThatShareOfCalls) {
  SimClock clock(1798761600);
  Network net(&clock, Rng(9));
  net.SetDefaultLinks({1, 0, 0.0}, {1, 0, 0.25});
  int failed = 0;
  for (int i = 0; i < 4000; ++i) failed += !net.Transfer("a", "b", 1).ok();
  EXPECT_GT(failed, 850);
  EXPECT_LT(failed, 1150);
}

TEST(SeededExecutorTest, RunsEveryTaskOnceInASeededOrder) {
  auto order = [](uint64_t seed) {
    Rng rng(seed);
    SeededExecutor ex(&rng);
    std::vector<int> got;
    std::vector<std::function<void()>> tasks;
    for (int i = 0; i < 8; ++i) tasks.emplace_back([&got, i] { got.push_back(i); });
    ex.RunAll(std::move(tasks));
    return got;
  };
  const auto a = order(1);
  EXPECT_EQ(a, order(1));
  EXPECT_NE(a, order(2));
  EXPECT_EQ(std::set<int>(a.begin(), a.end()).size(), 8u);
}

}  // namespace
}  // namespace qv::sim
