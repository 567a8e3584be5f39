#include "manifest/repair_plan.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

TEST(RepairPlanTest, RoundTripsAndRefusesAnythingElse) {
  RepairPlan p{{{2, "node-09"}, {4, "node-04"}}};
  const std::string text = FormatRepairPlan(p);
  EXPECT_EQ(text, "fragment 2 to node-09; fragment 4 to node-04");
  auto back = ParseRepairPlan(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->moves.size(), 2u);
  EXPECT_EQ(back->moves[1].node_id, "node-04");
  EXPECT_EQ(back->Find(4)->node_id, "node-04");
  EXPECT_EQ(back->Find(3), nullptr);
  for (const char* bad :
       {"", "fragment 2 to", "fragment  2 to n", "fragment 2 to n;", "fragment 2 to n; ",
        "fragment 02 to n", "fragment 2 to n x", "fragment 3 to a; fragment 2 to b",
        "fragment 2 to a; fragment 2 to b", "fragment 1000 to n", "fragment -1 to n",
        "fragment 2 to n\x1b[31m", "fragments 2 to n", "fragment 2 to n;fragment 3 to m"}) {
    EXPECT_FALSE(ParseRepairPlan(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace qv
