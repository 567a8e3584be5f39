#include "sim/drill.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "base/file_util.h"
#include "base/temp_dir.h"
#include "configs/local_cluster.h"

namespace qv::sim {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> Drills() { return ShippedDrills(QV_SOURCE_DIR); }

std::string Name(const ::testing::TestParamInfo<fs::path>& p) {
  std::string n = p.param.stem().string();
  for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n;
}

class ShippedDrillTest : public ::testing::TestWithParam<fs::path> {
 protected:
  ScopedTempDir tmp_{"qv-drill-test"};
};

// Every shipped drill passes on the real code.
TEST_P(ShippedDrillTest, Passes) {
  DrillOptions o;
  o.work_dir = tmp_.path();
  auto r = RunDrill(GetParam(), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->pass) << DrillTable({*r});
  // Each names what it rehearses and checks at least one outcome.
  EXPECT_FALSE(r->rand_category.empty());
  size_t checked = 0;
  for (const auto& s : r->steps) checked += !s.expected.empty();
  EXPECT_GT(checked, 0u);
}

INSTANTIATE_TEST_SUITE_P(Drills, ShippedDrillTest, ::testing::ValuesIn(Drills()), Name);

TEST(DrillSetTest, TheRequiredDrillsShip) {
  std::set<std::string> names;
  for (const auto& f : Drills()) names.insert(f.stem().string());
  for (const char* want :
       {"site-lost-then-restore", "two-sites-lost", "crash-and-partition-during-backup",
        "enospc-during-backup", "rogue-admin-one-approval", "requester-approves-own-request",
        "colluding-custodians-below-quorum", "stolen-node", "colluding-nodes-below-threshold",
        "forged-approval", "replayed-certificate", "approval-for-another-backup",
        "expired-request-under-clock-skew", "swapped-weights", "audit-history-rewritten",
        "lying-node", "slow-site-during-restore", "misconfigured-policy"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
}

// A drill cannot pass by accident: with the nodes' quorum check switched
// off, every drill that rehearses it fails, and the others still pass.
TEST(DrillSelfTest, DrillsOfTheQuorumFailWhenNodesSkipTheQuorumCheck) {
  const std::set<std::string> quorum_drills = {"rogue-admin-one-approval",
                                               "requester-approves-own-request",
                                               "colluding-custodians-below-quorum",
                                               "coerced-custodian-denial-vetoes",
                                               "forged-approval",
                                               "approval-for-another-backup",
                                               "denial-left-out"};
  ScopedTempDir tmp("qv-drill-broken");
  size_t failed = 0;
  for (const auto& f : Drills()) {
    const bool rehearses = quorum_drills.count(f.stem().string()) > 0;
    if (!rehearses && f.stem() != "site-lost-then-restore") continue;
    DrillOptions o;
    o.work_dir = tmp.path();
    o.test_skip_quorum_check = true;
    auto r = RunDrill(f, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (rehearses) {
      EXPECT_FALSE(r->pass) << f.stem() << " passed with the quorum check off";
      EXPECT_NE(r->failure.find("restore"), std::string::npos) << r->failure;
      failed += !r->pass;
    } else {
      EXPECT_TRUE(r->pass) << DrillTable({*r});
    }
  }
  EXPECT_EQ(failed, quorum_drills.size());
}

std::string RunAll(uint64_t seed, const fs::path& work) {
  std::vector<DrillReport> reports;
  for (const auto& f : Drills()) {
    DrillOptions o;
    o.seed = seed;
    o.work_dir = work;
    auto r = RunDrill(f, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) reports.push_back(std::move(r).value());
  }
  return DrillJson(reports, seed);
}

// The same seed gives a byte-identical report (in another folder, too);
// another seed gives other event orders.
TEST(DrillDeterminismTest, TheSameSeedGivesAByteIdenticalReportAndAnotherSeedAnotherOrder) {
  ScopedTempDir a("qv-drill-a"), b("qv-drill-b");
  const std::string first = RunAll(7, a.path());
  const std::string again = RunAll(7, b.path());
  EXPECT_EQ(first, again);
  const std::string other = RunAll(8, a.path() / "other");
  EXPECT_NE(first, other);
  // Not only the seed's own line: the orders of network exchanges differ.
  auto traces = [](const std::string& json) {
    auto j = nlohmann::json::parse(json);
    std::vector<std::string> t;
    for (const auto& d : j["drills"]) t.push_back(d["trace"]);
    return t;
  };
  const auto t7 = traces(first), t8 = traces(other);
  ASSERT_EQ(t7.size(), t8.size());
  size_t differ = 0;
  for (size_t i = 0; i < t7.size(); ++i) differ += t7[i] != t8[i];
  EXPECT_GT(differ, t7.size() / 2);
}

TEST(DrillFileTest, MistakesInADrillFileNameTheFileStepAndKey) {
  ScopedTempDir tmp("qv-drill-file");
  struct Case {
    std::string text, needle;
  };
  const std::string head = "[drill]\nname = \"x\"\nrand_category = \"y\"\nkind = \"abuse\"\n";
  std::vector<Case> cases = {
      {"[drill]\nname = \"x\"\n", "missing rand_category"},
      {head, "no [[step]]"},
      {head + "[[step]]\ndo = \"teleport\"\n", "step 1: unknown action 'teleport'"},
      {head + "[[step]]\ndo = \"backup\"\nlabel = \"a\"\ncolour = 1\n", "unknown key 'colour'"},
      {head + "[[step]]\ndo = \"backup\"\nlabel = \"a\"\nsize = -1\n", "size: -1 is outside"},
      {head + "[[step]]\ndo = \"backup\"\nlabel = \"a\"\nexpect = \"maybe\"\n", "expect must be"},
      {head + "[[step]]\ndo = \"fault\"\nnode = \"node-01\"\nat = \"nowhere\"\n",
       "at: 'nowhere' is not one of"},
      {head + "[topology]\nsites = 99\n[[step]]\ndo = \"heal\"\n", "sites: 99 is outside"},
      {"[drill\n", "drill.toml"},
      // Read whole first: a bad value in a late step fails the file before
      // anything runs.
      {head + "[[step]]\ndo = \"heal\"\n[[step]]\ndo = \"fault\"\nnode = \"n\"\n"
              "at = \"begin\"\ncrash = \"yes\"\n",
       "step 2.crash: not true or false"},
  };
  for (const auto& c : cases) {
    const fs::path f = tmp.path() / "drill.toml";
    ASSERT_TRUE(WriteFileAtomic(f, AsBytes(c.text), 0600).ok());
    DrillOptions o;
    o.work_dir = tmp.path() / "work";
    auto r = RunDrill(f, o);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos)
        << c.needle << " / " << r.status().ToString();
  }
}

// A drill that expects the wrong thing fails, naming the step.
TEST(DrillFileTest, AWrongExpectationFailsTheDrill) {
  ScopedTempDir tmp("qv-drill-wrong");
  const fs::path f = tmp.path() / "wrong.toml";
  ASSERT_TRUE(WriteFileAtomic(f,
                              AsBytes("[drill]\nname = \"wrong\"\nrand_category = \"y\"\n"
                                      "kind = \"abuse\"\n[[step]]\ndo = \"backup\"\n"
                                      "label = \"a\"\nsize = 1000\nexpect = \"failed\"\n"),
                              0600)
                  .ok());
  DrillOptions o;
  o.work_dir = tmp.path() / "work";
  auto r = RunDrill(f, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->pass);
  EXPECT_NE(r->failure.find("backup a"), std::string::npos) << r->failure;
  EXPECT_NE(DrillTable({*r}).find("FAIL"), std::string::npos);
  EXPECT_NE(DrillMarkdown({*r}, 1).find("**FAIL**"), std::string::npos);
}

// Live drills delete disks and kill processes: never off loopback.
TEST(DrillFileTest, LiveDrillsRefuseAClusterOffLoopback) {
  ScopedTempDir tmp("qv-drill-live");
  LocalClusterOptions lo;
  lo.host = "10.1.2.3";
  ASSERT_TRUE(InitLocalCluster(tmp.path() / "cl", lo).ok());
  DrillOptions o;
  o.work_dir = tmp.path() / "work";
  o.live_cluster = tmp.path() / "cl" / "cluster.toml";
  o.qv_binary = "/bin/false";
  auto r = RunDrill(fs::path(QV_SOURCE_DIR) / "configs/drills/site-lost-then-restore.toml", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("only against a cluster on loopback"), std::string::npos)
      << r.status().ToString();
}

// Names, labels and summaries come from a file someone else wrote: no
// byte of them reaches a terminal or the auditor's report unescaped.
TEST(DrillFileTest, HostileNamesAndLabelsAreEscapedInEveryRendering) {
  ScopedTempDir tmp("qv-drill-hostile");
  const fs::path f = tmp.path() / "hostile.toml";
  ASSERT_TRUE(WriteFileAtomic(f,
                              AsBytes("[drill]\nname = \"x\\u001b[2J\"\nrand_category = "
                                      "\"y\\u0007\"\nkind = \"abuse\"\nsummary = \"s\\u001b]0;t\"\n"
                                      "[[step]]\ndo = \"backup\"\nlabel = \"a\\u001b[31m|b\"\n"
                                      "size = 100\nexpect = \"failed\"\n"),
                              0600)
                  .ok());
  DrillOptions o;
  o.work_dir = tmp.path() / "work";
  auto r = RunDrill(f, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const std::string& out : {DrillTable({*r}), DrillMarkdown({*r}, 1), DrillJson({*r}, 1)}) {
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
    EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace qv::sim
