#include "coordinator/audit_check.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

#include "base/file_util.h"
#include "base/temp_dir.h"
#include "configs/local_cluster.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

// A node that answers every page of its log full, forever, with entries
// that chain correctly: what a lying node does to hang `audit verify`.
class EndlessLog : public NodeCaller {
 public:
  const std::string& name() const override { return name_; }
  Result<Response> Call(Request r) override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    Response resp;
    if (r.op == Op::kGetAudit) {
      std::vector<AuditEntry> page;
      for (uint64_t i = 0; i < r.b; ++i) {
        AuditEntry e;
        e.seq = r.a + i;
        e.time = 1790000000;
        e.event = {"noise", "", "", "", std::string(200, 'x')};
        e.prev = head_;
        e.hash = e.ComputeHash();
        head_ = e.hash;
        page.push_back(std::move(e));
      }
      resp.payload = EncodeEntries(page);
    } else {
      resp.payload = EncodeCheckpoints({});
    }
    return resp;
  }
  std::chrono::milliseconds delay_{0};

 private:
  std::string name_ = "node-05";
  ChainHash head_{};
};

class AuditCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = InitLocalCluster(tmp_.path() / "c", LocalClusterOptions{});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = *c;
    for (int i = 0; i < 5; ++i) {
      const std::string id = cluster_.nodes[i].id;
      const fs::path nd = tmp_.path() / "c/nodes" / id;
      keys_.push_back(std::move(SigningKey::Load(nd / "node.key")).value());
      audits_.push_back(
          std::move(AuditLog::Open(nd / "audit.db", id, keys_.back().get(), &clock_, 4)).value());
      for (int e = 0; e < 10; ++e)
        ASSERT_TRUE(audits_.back()->Append({"start", "", "", "", ""}).ok());
      Bytes mk = *ReadFileBytes(nd / "master.key", 32);
      stores_.push_back(std::move(NodeStore::Open(nd / "data", SecretBytes::CopyFrom(mk), id,
                                                  cluster_.coordinator))
                            .value());
      NodeServiceOptions opt;
      opt.audit = audits_.back().get();
      services_.push_back(std::make_unique<NodeService>(
          stores_.back().get(), cluster_, id, [](const std::string&) {}, opt));
      callers_.push_back(std::make_unique<InProcessCaller>(
          services_.back().get(), PeerInfo{PeerRole::kCoordinator, "coordinator"}));
    }
  }

  std::vector<NodeCaller*> Callers(NodeCaller* sixth) {
    std::vector<NodeCaller*> out;
    for (auto& c : callers_) out.push_back(c.get());
    out.push_back(sixth);
    return out;
  }

  ScopedTempDir tmp_{"qv-audit-check-test"};
  FakeClock clock_{1790000000};
  ClusterConfig cluster_;
  std::vector<std::unique_ptr<SigningKey>> keys_;
  std::vector<std::unique_ptr<AuditLog>> audits_;
  std::vector<std::unique_ptr<NodeStore>> stores_;
  std::vector<std::unique_ptr<NodeService>> services_;
  std::vector<std::unique_ptr<InProcessCaller>> callers_;
};

TEST_F(AuditCheckTest, ANodeAnsweringFullPagesForeverIsStoppedAtTheBoundAndNamed) {
  EndlessLog liar;
  AuditLimits limits;
  limits.max_entries = 50000;
  const auto start = std::chrono::steady_clock::now();
  AuditReport r = CheckClusterAudit(cluster_, Callers(&liar), limits);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  ASSERT_EQ(r.nodes.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(r.nodes[i].reachable) << i;
    EXPECT_TRUE(r.nodes[i].problems.empty()) << r.nodes[i].problems[0];
    EXPECT_EQ(r.nodes[i].entries.size(), 10u);
  }
  ASSERT_EQ(r.nodes[5].problems.size(), 1u);
  EXPECT_NE(r.nodes[5].problems[0].find("more than 50000 entries"), std::string::npos)
      << r.nodes[5].problems[0];
  EXPECT_LE(r.nodes[5].entries.size(), 50000u + kListPage);
  EXPECT_FALSE(r.ok());
}

TEST_F(AuditCheckTest, ASlowNodeIsStoppedAtTheTimeBoundAndTheOthersAreChecked) {
  EndlessLog liar;
  liar.delay_ = std::chrono::milliseconds(30);
  AuditLimits limits;
  limits.max_time = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  AuditReport r = CheckClusterAudit(cluster_, Callers(&liar), limits);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_EQ(r.nodes[5].problems.size(), 1u);
  EXPECT_NE(r.nodes[5].problems[0].find("took longer than"), std::string::npos)
      << r.nodes[5].problems[0];
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(r.nodes[i].problems.empty()) << i;
}

// Lists longer than one page (5,000 checkpoints: checkpoint_every 1) are
// read whole, not cut at the first page.
TEST_F(AuditCheckTest, CheckpointListsLongerThanAPageAreReadWhole) {
  auto log = AuditLog::Open(tmp_.path() / "c/nodes/node-00/audit.db", "node-00", keys_[0].get(),
                            &clock_, 1);
  audits_[0].reset();
  ASSERT_TRUE(log.ok());
  for (int e = 0; e < 5000; ++e) ASSERT_TRUE((*log)->Append({"x", "", "", "", ""}, true).ok());
  NodeServiceOptions opt;
  opt.audit = log->get();
  services_[0] = std::make_unique<NodeService>(
      stores_[0].get(), cluster_, "node-00", [](const std::string&) {}, opt);
  callers_[0] = std::make_unique<InProcessCaller>(services_[0].get(),
                                                  PeerInfo{PeerRole::kCoordinator, "coordinator"});
  AuditReport r = CheckClusterAudit(cluster_, Callers(nullptr));
  EXPECT_EQ(r.nodes[0].entries.size(), 5010u);
  EXPECT_GE(r.nodes[0].checkpoints.size(), 5000u);
  EXPECT_TRUE(r.nodes[0].problems.empty()) << r.nodes[0].problems[0];
}

// 210,000 witness records held by one node: more than one answer can carry
// (about 200 bytes each, over 24 MiB). They are read in pages, all of them.
TEST_F(AuditCheckTest, WitnessListsLargerThanAMessageAreReadWhole) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((tmp_.path() / "c/nodes/node-01/audit.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO witnessed VALUES ('elsewhere', ?, ?, ?, ?, ?)", -1,
                               &st, nullptr),
            SQLITE_OK);
  const Bytes head(32, 1), sig(64, 2);
  for (int i = 1; i <= 210000; ++i) {
    sqlite3_bind_int64(st, 1, i);
    sqlite3_bind_blob(st, 2, head.data(), 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, 1790000000);
    sqlite3_bind_blob(st, 4, sig.data(), 64, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, sig.data(), 64, SQLITE_STATIC);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  AuditReport r = CheckClusterAudit(cluster_, Callers(nullptr));
  EXPECT_TRUE(r.nodes[1].reachable) << r.nodes[1].problems[0];
  EXPECT_EQ(r.nodes[1].witnessed.size(), 210000u);
}

}  // namespace
}  // namespace qv
