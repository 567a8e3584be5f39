// Repair (coordinator/repair.h) on the simulator's real nodes: a lost
// site rebuilt onto spare nodes, a corrupt fragment rebuilt in place, and
// the refusals that keep a repair to what a quorum approved.
#include <gtest/gtest.h>

#include "base/temp_dir.h"
#include "coordinator/audit_check.h"
#include "coordinator/repair.h"
#include "crypto/vss.h"
#include "sim/simulation.h"

namespace qv::sim {
namespace {

class RepairTest : public ::testing::Test {
 protected:
  // Four sites of two nodes; backups on the first six (k = 4, m = 2,
  // t = 3), site-d's two nodes spare.
  void Open() {
    Topology t;
    t.sites = 4;
    t.nodes_per_site = 2;
    t.k = 4;
    t.m = 2;
    t.t = 3;
    SimOptions o;
    o.dir = tmp_.path() / "sim";
    auto s = Simulation::New(t, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sim_ = std::move(s).value();
    std::string detail;
    auto id = sim_->Backup("frontier", 300000, &detail);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
  }
  void Approved(const std::string& label, const std::string& plan, int approvals = 3) {
    ASSERT_TRUE(sim_->Request(label, "frontier", "operator", 3600, "repair", plan).ok());
    for (int c = 1; c <= approvals; ++c) {
      const std::string id = "c" + std::to_string(c);
      ASSERT_TRUE(sim_->Approve(label, id, id, true).ok());
    }
  }
  bool Restores(const std::string& label) {
    EXPECT_TRUE(sim_->Request(label, "frontier", "operator", 3600).ok());
    for (const char* c : {"c1", "c2", "c3"}) EXPECT_TRUE(sim_->Approve(label, c, c, true).ok());
    auto r = sim_->Restore(label, "operator", "", true);
    EXPECT_TRUE(r.restored) << r.detail;
    return r.restored && r.identical;
  }
  size_t Entries(const std::string& kind) {
    auto session = sim_->Session("coordinator");
    auto report = CheckClusterAudit(**session);
    size_t n = 0;
    for (const auto& node : report.nodes) {
      for (const auto& e : node.entries) n += e.event.kind == kind;
    }
    return n;
  }
  ScopedTempDir tmp_{"qv-repair-test"};
  std::unique_ptr<Simulation> sim_;
};

TEST_F(RepairTest, ALostSiteIsRebuiltOntoSparesAndTheBackupSurvivesASecondSiteLoss) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  ASSERT_TRUE(sim_->Destroy("node-01").ok());
  auto before = sim_->Scrub("frontier");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->state, "at risk");
  auto plan = sim_->PlanRepairOf("frontier");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(FormatRepairPlan(*plan), "fragment 0 to node-06; fragment 1 to node-07");
  Approved("fix", FormatRepairPlan(*plan));
  const uint64_t interpolations = InterpolationsForTest();
  auto report = sim_->Repair("fix");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  // The key was never put together anywhere, not even in this process.
  EXPECT_EQ(InterpolationsForTest(), interpolations);
  EXPECT_EQ(report->revision, 1u);
  EXPECT_EQ(report->shares_rebuilt, 2u);
  EXPECT_EQ(report->nodes_updated, 4u);
  EXPECT_TRUE(report->problems.empty()) << report->problems[0];
  auto after = sim_->Scrub("frontier");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state, "healthy");
  EXPECT_EQ(Entries("repair-approved"), 6u);
  EXPECT_EQ(Entries("repair-installed"), 2u);
  EXPECT_EQ(Entries("manifest-revision"), 4u);
  // A different site lost: still restorable, byte for byte.
  ASSERT_TRUE(sim_->Destroy("node-02").ok());
  ASSERT_TRUE(sim_->Destroy("node-03").ok());
  EXPECT_TRUE(Restores("after"));
}

TEST_F(RepairTest, ACorruptFragmentIsRebuiltInPlace) {
  Open();
  ASSERT_TRUE(sim_->CorruptFragment("node-01", "frontier").ok());
  auto plan = sim_->PlanRepairOf("frontier");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(FormatRepairPlan(*plan), "fragment 1 to node-01");
  Approved("fix", FormatRepairPlan(*plan));
  auto report = sim_->Repair("fix");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->revision, 0u);  // nothing moved
  auto after = sim_->Scrub("frontier");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state, "healthy");
  // The certificate's manifest is still current, but the repair is done;
  // and the backup restores.
  EXPECT_TRUE(Restores("after"));
}

TEST_F(RepairTest, ARepairBelowQuorumIsRefusedByEveryNodeAndChangesNothing) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  Approved("fix", "fragment 0 to node-06", /*approvals=*/2);
  auto report = sim_->Repair("fix");
  EXPECT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("node-06 did not take the repair"), std::string::npos)
      << report.status().message();
  EXPECT_NE(report.status().message().find("below quorum"), std::string::npos);
  EXPECT_EQ(Entries("repair-approved"), 0u);
  auto h = sim_->Scrub("frontier");
  EXPECT_EQ(h->state, "degraded");
}

TEST_F(RepairTest, ARestoreCertificateCannotRepairAndARepairOneCannotRestore) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  ASSERT_TRUE(sim_->Request("restore", "frontier", "operator", 3600).ok());
  for (const char* c : {"c1", "c2", "c3"}) ASSERT_TRUE(sim_->Approve("restore", c, c, true).ok());
  // The coordinator-side check is the first; each node's is the one that
  // counts, so the nodes are asked directly too.
  EXPECT_FALSE(sim_->Repair("restore").ok());
  Approved("fix", "fragment 0 to node-06");
  auto r = sim_->Restore("fix", "operator", "", true);
  EXPECT_FALSE(r.restored);
  EXPECT_NE(r.detail.find("request is for repair, not restore"), std::string::npos) << r.detail;
}

TEST_F(RepairTest, APlanThatGivesANodeTwoFragmentsIsRefused) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  Approved("fix", "fragment 0 to node-02");
  auto report = sim_->Repair("fix");
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("node-02 holding two fragments"), std::string::npos)
      << report.status().message();
}

}  // namespace
}  // namespace qv::sim
