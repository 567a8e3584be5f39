// Repair (coordinator/repair.h) on the simulator's real nodes: a lost
// site rebuilt onto spare nodes, a corrupt fragment rebuilt in place, and
// the refusals that keep a repair to what a quorum approved.
#include <gtest/gtest.h>

#include <optional>

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
  // The destroyed nodes cannot wipe what they held; the report says so.
  ASSERT_EQ(report->problems.size(), 2u);
  EXPECT_NE(report->problems[0].find("node-00: unreachable, so whatever it still holds"),
            std::string::npos)
      << report->problems[0];
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

// A helper that sends wrong values: the new holder's commitment check
// refuses the share and raises an alert; the coordinator rebuilds it again
// with other helpers and names the one in every refused set.
TEST_F(RepairTest, AHelperSendingWrongValuesIsCaughtRoutedAroundAndNamed) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  sim_->MakeLiar("node-02");  // a helper: the first surviving share holder
  Approved("fix", "fragment 0 to node-06");
  auto report = sim_->Repair("fix");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  bool named = false;
  for (const auto& p : report->problems) {
    named |= p.rfind("node-02: a share recovery it helped with gave share 1", 0) == 0;
    EXPECT_EQ(p.find("node-03: a share"), std::string::npos) << p;
  }
  EXPECT_TRUE(named);
  // The new holder raised the alarm for each refused share.
  auto session = sim_->Session("coordinator");
  size_t alerts = 0;
  for (const auto& n : CheckClusterAudit(**session).nodes) {
    for (const auto& e : n.entries) {
      alerts += e.event.kind == "alert" &&
                e.event.detail.find("a helper sent a wrong value") != std::string::npos;
    }
  }
  EXPECT_GE(alerts, 1u);
  EXPECT_EQ(Entries("repair-installed"), 1u);
  EXPECT_EQ(sim_->Scrub("frontier")->state, "degraded");  // node-02 still lies about its share
}

// With fewer honest nodes than needed (the simulator's liars also alter
// the units they serve), the repair fails and nothing is installed.
TEST_F(RepairTest, WhenTooFewHonestNodesAnswerNothingIsInstalled) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  ASSERT_TRUE(sim_->Destroy("node-01").ok());  // four holders left, t = 3
  sim_->MakeLiar("node-02");
  sim_->MakeLiar("node-03");
  Approved("fix", "fragment 0 to node-06; fragment 1 to node-07");
  auto report = sim_->Repair("fix");
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("intact fragments"), std::string::npos)
      << report.status().message();
  EXPECT_EQ(Entries("repair-installed"), 0u);
}

TEST_F(RepairTest, NodesRefuseEveryRepairStepWithoutACertificateOrOffThePlan) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  auto session = sim_->Session("coordinator");
  ASSERT_TRUE(session.ok());
  NodeCaller* n2 = (*session)->caller("node-02");
  ASSERT_NE(n2, nullptr);
  const BackupId id = sim_->Backed("frontier")->id;
  auto call = [&](NodeCaller* c, Op op, uint32_t fragment = 0, Bytes payload = {}) {
    Request r;
    r.op = op;
    r.backup_id = id;
    r.fragment = fragment;
    r.a = 1;
    r.b = 1;
    r.payload = std::move(payload);
    return CallChecked(*c, std::move(r)).status();
  };
  // No certificate on this connection: no units, no recovery, no install.
  EXPECT_EQ(call(n2, Op::kFetchUnits).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(call(n2, Op::kShareRecoverStart, 0, Bytes(40)).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(call(n2, Op::kShareRecoverDeal, 0, Bytes(16)).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(call(n2, Op::kRepairInstall).code(), StatusCode::kPermissionDenied);
  // Node-to-node values come only from nodes.
  EXPECT_EQ(call(n2, Op::kShareSummand, 0, Bytes(48)).code(), StatusCode::kPermissionDenied);
  // Another backup's upload over this one is not a repair.
  EXPECT_EQ(call(n2, Op::kBeginFragment, 2).code(), StatusCode::kAlreadyExists);
  // From a node: a value for a recovery nobody started.
  auto as_node = sim_->Session("node-03");
  ASSERT_TRUE(as_node.ok());
  EXPECT_EQ(call((*as_node)->caller("node-02"), Op::kShareSummand, 0, Bytes(48)).code(),
            StatusCode::kNotFound);
  // With a certificate: the plan, and only the plan. A fragment it does
  // not rebuild here is not uploaded, and a manifest revision that places
  // the fragment elsewhere is not installed.
  Approved("fix", "fragment 0 to node-06");
  auto cert = sim_->CertificateOf("fix");
  ASSERT_TRUE(cert.ok());
  Request open;
  open.op = Op::kRepairOpen;
  open.backup_id = id;
  open.payload = cert->Encode();
  ASSERT_TRUE(CallChecked(*n2, std::move(open)).ok());
  EXPECT_EQ(call(n2, Op::kBeginFragment, 2).code(), StatusCode::kPermissionDenied);
  std::vector<std::string> problems;
  auto current = (*session)->Manifest(id, &problems);
  ASSERT_TRUE(current.ok());
  Manifest other = current->manifest();
  other.revision = 1;
  other.previous = current->Hash();
  other.placement[0].node_id = "node-07";
  other.placement[0].site = "site-d";
  auto key = sim_->Key("coordinator");
  auto forged = SignedManifest::Sign(other, **key);
  ASSERT_TRUE(forged.ok());
  Status st = call(n2, Op::kRepairInstall, 0, forged->encoded());
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("not what the approved repair plan gives"), std::string::npos)
      << st.ToString();
}

// Decommission: a live node's fragment and share rebuilt on a spare, then
// erased on the node itself (the wipe audited), the backup healthy
// without it.
TEST_F(RepairTest, ADecommissionedNodesCopyIsRebuiltElsewhereThenWiped) {
  Open();
  Approved("retire", "fragment 2 to node-06");
  auto report = sim_->Repair("retire");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->nodes_wiped, 1u);
  EXPECT_TRUE(report->problems.empty()) << report->problems[0];
  EXPECT_EQ(Entries("wipe"), 1u);
  const std::string id = BackupIdToText(sim_->Backed("frontier")->id);
  EXPECT_FALSE(
      std::filesystem::exists(tmp_.path() / "sim/cluster/nodes/node-02/data/backups" / id));
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() / "sim/cluster/nodes/node-02/data/wiping" / id));
  auto h = sim_->Scrub("frontier");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->state, "healthy");
  // node-02 may go: the backup survives losing a whole site besides.
  ASSERT_TRUE(sim_->Destroy("node-02").ok());
  ASSERT_TRUE(sim_->Destroy("node-00").ok());
  ASSERT_TRUE(sim_->Destroy("node-01").ok());
  EXPECT_TRUE(Restores("after"));
}

// A node wipes its copy only once the new holder itself says it holds the
// fragment under the new revision: a coordinator that sends the wipe first
// (a bug, or a hostile key holder with an approved plan) wipes nothing.
TEST_F(RepairTest, ANodeWipesNothingBeforeTheNewHolderHasItsFragment) {
  Open();
  Approved("retire", "fragment 2 to node-06");
  auto cert = sim_->CertificateOf("retire");
  ASSERT_TRUE(cert.ok());
  auto session = sim_->Session("coordinator");
  ASSERT_TRUE(session.ok());
  const BackupId id = sim_->Backed("frontier")->id;
  NodeCaller* n2 = (*session)->caller("node-02");
  Request open;
  open.op = Op::kRepairOpen;
  open.backup_id = id;
  open.payload = cert->Encode();
  ASSERT_TRUE(CallChecked(*n2, std::move(open)).ok());
  std::vector<std::string> problems;
  auto current = (*session)->Manifest(id, &problems);
  ASSERT_TRUE(current.ok());
  auto planned = ApplyRepairPlan(*current, *ParseRepairPlan("fragment 2 to node-06"),
                                 [&](const std::string& n) -> std::optional<std::string> {
                                   const NodeEntry* e = sim_->cluster().FindNode(n);
                                   if (e == nullptr) return std::nullopt;
                                   return e->site;
                                 });
  ASSERT_TRUE(planned.ok());
  auto next = SignedManifest::Sign(*planned, **sim_->Key("coordinator"));
  ASSERT_TRUE(next.ok());
  Request wipe;
  wipe.op = Op::kRepairInstall;
  wipe.backup_id = id;
  wipe.payload = next->encoded();
  Status st = CallChecked(*n2, std::move(wipe)).status();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("node-06 does not hold fragment 2 under this revision yet"),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(Entries("wipe"), 0u);
  EXPECT_EQ(sim_->Scrub("frontier")->state, "healthy");
}

// A node killed at each step of taking part in a repair. After it comes
// back, running the same approved repair again finishes it (the request
// is not spent, and each node resumes from what it holds), and the backup
// scrubs healthy and restores byte-identical.
enum Scenario { kSiteLost, kInPlace, kDecommission };
struct CrashCase {
  const char* node;
  const char* point;  // base/storage_faults.h
  Scenario scenario;  // site-a lost; a corrupt fragment on node-01; node-02 retired
};

class RepairCrashTest : public RepairTest, public ::testing::WithParamInterface<CrashCase> {};

TEST_P(RepairCrashTest, RunningTheRepairAgainFinishesIt) {
  const CrashCase c = GetParam();
  Open();
  std::string plan = "fragment 1 to node-01";
  if (c.scenario == kSiteLost) {
    ASSERT_TRUE(sim_->Destroy("node-00").ok());
    ASSERT_TRUE(sim_->Destroy("node-01").ok());
    plan = "fragment 0 to node-06; fragment 1 to node-07";
  } else if (c.scenario == kInPlace) {
    ASSERT_TRUE(sim_->CorruptFragment("node-01", "frontier").ok());
  } else {
    plan = "fragment 2 to node-06";
  }
  Approved("fix", plan);
  sim_->AddFault(c.node, c.point, IoError("injected"), /*crash=*/true);
  auto first = sim_->Repair("fix");
  EXPECT_FALSE(sim_->Running(c.node)) << "the fault never fired";
  EXPECT_TRUE(!first.ok() || !first->problems.empty());
  sim_->ClearFaults();
  ASSERT_TRUE(sim_->Restart(c.node).ok());
  auto again = sim_->Repair("fix");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto h = sim_->Scrub("frontier");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->state, "healthy");
  for (const auto& f : h->fragments) {
    for (const auto& p : f.problems) ADD_FAILURE() << f.node << ": " << p;
  }
  EXPECT_TRUE(Restores("after"));
}

INSTANTIATE_TEST_SUITE_P(EveryStep, RepairCrashTest,
                         ::testing::Values(CrashCase{"node-06", "begin", kSiteLost},
                                           CrashCase{"node-06", "unit-write", kSiteLost},
                                           CrashCase{"node-06", "install-files", kSiteLost},
                                           CrashCase{"node-06", "install-rename", kSiteLost},
                                           CrashCase{"node-07", "install-row", kSiteLost},
                                           CrashCase{"node-02", "revision-history", kSiteLost},
                                           CrashCase{"node-05", "revision-manifest", kSiteLost},
                                           CrashCase{"node-01", "begin", kInPlace},
                                           CrashCase{"node-01", "install-leaves", kInPlace},
                                           CrashCase{"node-01", "install-fragment", kInPlace},
                                           CrashCase{"node-02", "wipe-rename", kDecommission},
                                           CrashCase{"node-02", "wipe-row", kDecommission}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.node) + "_" + info.param.point;
                           for (char& ch : n) {
                             if (ch == '-') ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace qv::sim
