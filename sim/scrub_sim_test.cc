// qv scrub (coordinator/scrub.h) against the real nodes in the simulator:
// what each kind of loss and lie looks like to a scrub.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "base/temp_dir.h"
#include "coordinator/scrub.h"
#include "sim/simulation.h"

namespace qv::sim {
namespace {

class ScrubTest : public ::testing::Test {
 protected:
  void Open(SimOptions o = {}) {
    o.dir = tmp_.path() / "sim";
    auto s = Simulation::New(Topology{}, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sim_ = std::move(s).value();
    std::string detail;
    auto id = sim_->Backup("frontier", 300000, &detail);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    id_ = *id;
  }
  BackupHealth Scrub(double sample = 1.0) {
    auto session = sim_->Session("coordinator");
    EXPECT_TRUE(session.ok());
    ScrubOptions o;
    o.sample = sample;
    auto h = ScrubBackup(**session, id_, o);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : BackupHealth{};
  }
  const FragmentHealth& On(const BackupHealth& h, const std::string& node) {
    for (const auto& f : h.fragments) {
      if (f.node == node) return f;
    }
    static FragmentHealth none;
    ADD_FAILURE() << "no fragment on " << node;
    return none;
  }
  ScopedTempDir tmp_{"qv-scrub-test"};
  std::unique_ptr<Simulation> sim_;
  BackupId id_{};
};

TEST_F(ScrubTest, AnIntactBackupIsHealthyAndEveryNodeProvesDataAndShare) {
  Open();
  BackupHealth h = Scrub();
  EXPECT_EQ(h.state, "healthy");
  EXPECT_EQ(h.good_fragments, 6u);
  EXPECT_EQ(h.good_shares, 6u);
  for (const auto& f : h.fragments) {
    EXPECT_TRUE(f.problems.empty()) << f.node << ": " << f.problems[0];
    EXPECT_GT(f.units_checked, 0u);
    EXPECT_GE(f.units_whole, 1u);
  }
  // Each node audited the scrub it answered.
  auto session = sim_->Session("coordinator");
  auto report = CheckClusterAudit(**session);
  size_t scrubs = 0;
  for (const auto& n : report.nodes) {
    for (const auto& e : n.entries) scrubs += e.event.kind == "scrub";
  }
  EXPECT_EQ(scrubs, 6u);
}

TEST_F(ScrubTest, AFlippedByteOnDiskIsNamedAndTheBackupIsDegraded) {
  Open();
  ASSERT_TRUE(sim_->CorruptFragment("node-01", "frontier").ok());
  BackupHealth h = Scrub();
  EXPECT_EQ(h.state, "degraded");
  const FragmentHealth& f = On(h, "node-01");
  EXPECT_FALSE(f.data_ok);
  EXPECT_TRUE(f.share_ok);
  ASSERT_FALSE(f.problems.empty());
  EXPECT_NE(f.problems[0].find("unit 0 does not match the fragment's signed root"),
            std::string::npos)
      << f.problems[0];
}

TEST_F(ScrubTest, LostNodesMakeItAtRiskThenLost) {
  Open();
  ASSERT_TRUE(sim_->Destroy("node-02").ok());
  ASSERT_TRUE(sim_->Destroy("node-03").ok());
  BackupHealth h = Scrub();
  EXPECT_EQ(h.state, "at risk");  // k = 4 of 6 left
  EXPECT_FALSE(On(h, "node-02").reachable);
  ASSERT_TRUE(sim_->Destroy("node-04").ok());
  EXPECT_EQ(Scrub().state, "lost");
}

// A node that kept its leaf hashes but lost its data answers every hash
// challenge, and fails the first unit it must send whole.
TEST_F(ScrubTest, ANodeAnsweringFromItsLeavesWithoutTheDataFails) {
  SimOptions o;
  o.test_scrub_from_leaves = {"node-05"};
  Open(o);
  BackupHealth h = Scrub(0.5);
  const FragmentHealth& f = On(h, "node-05");
  EXPECT_FALSE(f.data_ok);
  EXPECT_EQ(h.state, "degraded");
}

// g^share is public (anyone computes it from the commitments); a node that
// proves with a made-up share fails.
TEST_F(ScrubTest, ANodeProvingAMadeUpShareFails) {
  Open();
  sim_->MakeLiar("node-03");
  BackupHealth h = Scrub();
  const FragmentHealth& f = On(h, "node-03");
  EXPECT_FALSE(f.share_ok);
  bool named = false;
  for (const auto& p : f.problems)
    named |= p.find("did not prove it holds the share") != std::string::npos;
  EXPECT_TRUE(named);
  EXPECT_EQ(h.good_shares, 5u);
}

TEST_F(ScrubTest, OnlyTheCoordinatorMayScrub) {
  Open();
  auto session = sim_->Session("operator");
  ASSERT_TRUE(session.ok());
  auto h = ScrubBackup(**session, id_, ScrubOptions{});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->good_fragments, 0u);
  ASSERT_FALSE(h->fragments[0].problems.empty());
  EXPECT_NE(h->fragments[0].problems[0].find("scrub is not allowed for operator"),
            std::string::npos)
      << h->fragments[0].problems[0];
}

// Each scrub's sample continues every node's rotation, so small samples
// still check every unit within a cycle, and the nodes record it.
TEST_F(ScrubTest, SmallSamplesRotateThroughEveryUnitAndNodesRecordFullPasses) {
  Open();
  const int64_t start = sim_->clock().NowUnix();
  BackupHealth h = Scrub(0.0001);  // one unit per node per scrub
  ASSERT_GT(h.stripes, 1u);
  for (const auto& f : h.fragments) {
    ASSERT_TRUE(f.coverage_known) << f.node;
    EXPECT_EQ(f.coverage.cursor, 1u) << f.node;
    EXPECT_EQ(f.coverage.cycle, 0u);
    EXPECT_GE(f.coverage.cycle_started, start);
    EXPECT_EQ(f.coverage.last_complete, 0);
  }
  for (uint64_t i = 1; i < h.stripes; ++i) h = Scrub(0.0001);
  for (const auto& f : h.fragments) {
    EXPECT_EQ(f.coverage.cycle, 1u) << f.node;
    EXPECT_EQ(f.coverage.cursor, 0u) << f.node;
    EXPECT_GE(f.coverage.last_complete, start) << f.node;
  }
  // A node that cannot read a unit does not count it: a corrupt unit 0
  // still counts (the node read it; the scrubber refuses it), a torn
  // fragment's missing units do not.
  ASSERT_TRUE(sim_->TearFragment("node-02", "frontier").ok());
  h = Scrub(1.0);
  EXPECT_EQ(On(h, "node-02").coverage.cycle, 1u);
  EXPECT_EQ(On(h, "node-03").coverage.cycle, 2u);
}

// A node scrubs its own disk on its schedule: clean when intact; a flipped
// byte, a torn fragment and a share swapped under it are found, logged and
// audited as alerts.
TEST_F(ScrubTest, ANodesSelfScrubFindsWhatWentBadOnItsDisk) {
  Open();
  auto clean = sim_->SelfScrub("node-01");
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->empty()) << (*clean)[0];
  ASSERT_TRUE(sim_->CorruptFragment("node-01", "frontier").ok());
  ASSERT_TRUE(sim_->TearFragment("node-02", "frontier").ok());
  auto found2 = sim_->SelfScrub("node-02");
  ASSERT_TRUE(found2.ok());
  bool saw = false;
  for (int i = 0; i < 64 && !saw; ++i) {  // 1% of the units a run, at random
    auto run = sim_->SelfScrub("node-01");
    ASSERT_TRUE(run.ok());
    for (const auto& p : *run) saw |= p.find("does not match") != std::string::npos;
  }
  EXPECT_TRUE(saw);
  ASSERT_FALSE(found2->empty());
  EXPECT_NE((*found2)[0].find("unreadable"), std::string::npos) << (*found2)[0];
  auto session = sim_->Session("coordinator");
  size_t alerts = 0, runs = 0;
  for (const auto& n : CheckClusterAudit(**session).nodes) {
    for (const auto& e : n.entries) {
      runs += e.event.kind == "self-scrub";
      alerts += e.event.kind == "alert" && e.event.detail.rfind("self-scrub: ", 0) == 0;
    }
  }
  EXPECT_GE(runs, 3u);
  EXPECT_GE(alerts, 2u);
}

TEST(ScrubChallengesTest, HalfOfEverySampleContinuesTheRotation) {
  Manifest m;
  m.unit_size = 4096;
  m.stripe_count = 1000;
  ScrubOptions o;
  o.sample = 0.01;  // 10 units: 5 rotating
  for (uint64_t cursor : {0ull, 3ull, 997ull}) {
    std::set<uint64_t> got;
    for (const auto& c : MakeScrubChallenges(m, o, cursor)) {
      for (const auto& [i, w] : c.items) got.insert(i);
    }
    EXPECT_EQ(got.size(), 10u);
    for (uint64_t i = 0; i < 5; ++i)
      EXPECT_TRUE(got.count((cursor + i) % 1000)) << cursor << " " << i;
  }
}

TEST(ScrubChallengesTest, ASampleIsSplitIntoChallengesANodeAccepts) {
  for (uint32_t unit : {4096u, 1u << 20, 16u << 20}) {
    for (double sample : {0.0, 0.01, 0.5, 1.0}) {
      Manifest m;
      m.unit_size = unit;
      m.stripe_count = 5000;
      ScrubOptions o;
      o.sample = sample;
      o.whole_units = 3;
      const auto cs = MakeScrubChallenges(m, o);
      std::set<uint64_t> seen;
      uint64_t whole = 0;
      for (const auto& c : cs) {
        // Each one within the node's bounds: DecodeScrubChallenge takes it.
        ASSERT_TRUE(DecodeScrubChallenge(EncodeScrubChallenge(c)).ok());
        EXPECT_LE(c.items.size() * uint64_t{unit}, kScrubMaxReadBytes);
        for (const auto& [i, w] : c.items) {
          EXPECT_LT(i, m.stripe_count);
          EXPECT_TRUE(seen.insert(i).second) << "unit " << i << " challenged twice";
          whole += w;
        }
      }
      const uint64_t want = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(sample * 5000)));
      EXPECT_EQ(seen.size(), want) << unit << " " << sample;
      EXPECT_EQ(whole, std::min<uint64_t>(unit == (16u << 20) ? 1 : 3, want))
          << unit << " " << sample;
    }
  }
}

TEST(HealthStateTest, StatesFollowTheGoodCounts) {
  EXPECT_EQ(HealthState(6, 6, 6, 4, 3), "healthy");
  EXPECT_EQ(HealthState(5, 6, 6, 4, 3), "degraded");
  EXPECT_EQ(HealthState(4, 6, 6, 4, 3), "at risk");
  EXPECT_EQ(HealthState(6, 3, 6, 4, 3), "at risk");
  EXPECT_EQ(HealthState(3, 6, 6, 4, 3), "lost");
  EXPECT_EQ(HealthState(6, 2, 6, 4, 3), "lost");
}

}  // namespace
}  // namespace qv::sim
