#include "manifest/repair_plan.h"

#include <gtest/gtest.h>

#include <optional>

#include "crypto/identity.h"
#include "crypto/vss.h"

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

SignedManifest Signed(const SigningKey& key) {
  Manifest m;
  m.backup_id.fill(7);
  m.artifact_name = "model";
  m.files = {{"w.bin", 100, Sha256Of(AsBytes("w"))}};
  m.plaintext_size = 100;
  m.k = 2;
  m.m = 1;
  m.t = 2;
  m.unit_size = 1024;
  m.chunk_size = 2 * 1024 - 16;
  m.stripe_count = 1;
  m.commitments = Deal(2, 3)->commitments;
  for (uint32_t f = 0; f < 3; ++f) {
    m.fragment_roots.push_back(Sha256Of(AsBytes(std::to_string(f))));
    m.placement.push_back({f, "n" + std::to_string(f), "s" + std::to_string(f)});
  }
  m.created_unix = 1790000000;
  return std::move(SignedManifest::Sign(m, key)).value();
}

std::optional<std::string> SiteOf(const std::string& node) {
  if (node == "n0" || node == "n1" || node == "n2" || node == "spare") return "s-" + node;
  return std::nullopt;
}

TEST(RepairPlanTest, APlanGivesTheNextRevisionOnlyWhenAFragmentMoves) {
  auto key = SigningKey::Generate();
  const SignedManifest cur = Signed(**key);
  auto in_place = ApplyRepairPlan(cur, RepairPlan{{{1, "n1"}}}, SiteOf);
  ASSERT_TRUE(in_place.ok()) << in_place.status().ToString();
  // n1's site differs in SiteOf ("s-n1" vs "s1"): a site change is a move.
  EXPECT_EQ(in_place->revision, 1u);
  auto moved = ApplyRepairPlan(cur, RepairPlan{{{2, "spare"}}}, SiteOf);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->revision, 1u);
  EXPECT_EQ(moved->previous, cur.Hash());
  EXPECT_EQ(moved->placement[2].node_id, "spare");
  EXPECT_EQ(moved->placement[2].site, "s-spare");
  auto next = SignedManifest::Sign(*moved, **key);
  ASSERT_TRUE(next.ok());
  std::vector<uint32_t> which;
  EXPECT_TRUE(CheckSuccessor(cur, *next, &which).ok());
  EXPECT_EQ(which, (std::vector<uint32_t>{2}));
  EXPECT_NE(ApplyRepairPlan(cur, RepairPlan{{{3, "spare"}}}, SiteOf)
                .status()
                .message()
                .find("fragment 3"),
            std::string::npos);
  EXPECT_NE(ApplyRepairPlan(cur, RepairPlan{{{0, "stranger"}}}, SiteOf)
                .status()
                .message()
                .find("not a cluster node"),
            std::string::npos);
  EXPECT_NE(ApplyRepairPlan(cur, RepairPlan{{{0, "n2"}}}, SiteOf)
                .status()
                .message()
                .find("n2 holding two fragments"),
            std::string::npos);
}

}  // namespace
}  // namespace qv
