#include "coordinator/cluster.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

using Order = std::vector<uint32_t>;

TEST(FragmentReadOrderTest, EquallyFastNodesAreReadDataFragmentsFirst) {
  // Loopback-like times: all within jitter of each other, parity (4, 5)
  // measured a hair faster than data. Reading parity would cost a decode.
  EXPECT_EQ(FragmentReadOrder({{1.2, 5}, {1.0, 4}, {1.3, 0}, {1.1, 1}, {1.4, 2}, {1.0, 3}}),
            (Order{0, 1, 2, 3, 4, 5}));
}

TEST(FragmentReadOrderTest, AMarkedlySlowerNodeIsReadLastEvenIfItHoldsData) {
  EXPECT_EQ(FragmentReadOrder({{40, 0}, {1, 1}, {1.2, 2}, {1.1, 3}, {1.0, 4}, {1.1, 5}}),
            (Order{1, 2, 3, 4, 5, 0}));
}

TEST(FragmentReadOrderTest, NodesBeyondTheJitterAreReadFastestFirst) {
  // A remote site at 30-45 ms, a local one at 2 ms.
  EXPECT_EQ(FragmentReadOrder({{45, 0}, {30, 1}, {2, 2}, {2.5, 3}, {31, 4}, {44, 5}}),
            (Order{2, 3, 1, 4, 5, 0}));
}

TEST(FragmentReadOrderTest, TheBoundaryOfTheJitterIsInclusive) {
  for (double fastest : {0.0, 0.5, 10.0}) {
    const double edge = 2 * fastest + kSameSpeedMs;
    EXPECT_EQ(FragmentReadOrder({{edge, 0}, {fastest, 1}}), (Order{0, 1})) << fastest;
    EXPECT_EQ(FragmentReadOrder({{edge + 0.01, 0}, {fastest, 1}}), (Order{1, 0})) << fastest;
  }
  EXPECT_TRUE(FragmentReadOrder({}).empty());
}

}  // namespace
}  // namespace qv
