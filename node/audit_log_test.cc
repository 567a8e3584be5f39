#include "node/audit_log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "base/temp_dir.h"

namespace qv {
namespace {

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::move(SigningKey::Generate()).value();
    auto log = AuditLog::Open(file_, "node-00", key_.get(), &clock_, 1000);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
  }

  std::vector<std::string> Verify() {
    return VerifyAuditChain(*log_->Entries(1, 100), *log_->Checkpoints(), key_->public_key());
  }

  ScopedTempDir tmp_{"qv-audit-test"};
  const std::filesystem::path file_ = tmp_.path() / "audit.db";
  FakeClock clock_{1790000000};
  std::unique_ptr<SigningKey> key_;
  std::unique_ptr<AuditLog> log_;
};

// A checkpoint of entry 0 (validly signed with the node's own key) would
// make every reader index entry -1: refused by verification everywhere.
TEST_F(AuditLogTest, ACheckpointAtEntryZeroIsRefused) {
  ASSERT_TRUE(log_->Append({"start", "", "", "", ""}).ok());
  Checkpoint c;
  c.node_id = "node-00";
  c.seq = 0;
  c.time = clock_.NowUnix();
  c.signature = key_->Sign(c.SignedBytes());
  EXPECT_FALSE(c.Verify(key_->public_key()).ok());
  auto problems = VerifyAuditChain(*log_->Entries(1, 100), {c}, key_->public_key());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("entry 0"), std::string::npos) << problems[0];
  WitnessRecord w{"node-01", c, {}};
  auto other = SigningKey::Generate();
  w.countersignature = (*other)->Sign(w.SignedBytes());
  EXPECT_FALSE(w.Verify((*other)->public_key(), key_->public_key()).ok());
}

// A node whose clock is stepped back (-2 h) writes entries dated before
// earlier ones: verification names the first. Steps within the tolerance
// (what NTP does) pass.
TEST_F(AuditLogTest, EntriesDatedBeforeEarlierOnesAreFlagged) {
  ASSERT_TRUE(log_->Append({"start", "", "", "", ""}).ok());
  clock_.Advance(-kAuditTimeTolerance);
  ASSERT_TRUE(log_->Append({"request", "op", "", "r1", ""}).ok());
  EXPECT_TRUE(Verify().empty());
  clock_.Advance(-7200);
  ASSERT_TRUE(log_->Append({"release", "op", "", "r1", ""}).ok());
  ASSERT_TRUE(log_->Append({"release", "op", "", "r2", ""}).ok());
  auto problems = Verify();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("entry 3 (release): dated 7320 s before an earlier entry"),
            std::string::npos)
      << problems[0];
}

TEST_F(AuditLogTest, AnEntryAppendedWithACheckpointIsCheckpointedAtOnce) {
  ASSERT_TRUE(log_->Append({"request", "op", "", "r1", ""}).ok());
  EXPECT_TRUE(log_->Checkpoints()->empty());
  ASSERT_TRUE(log_->Append({"release", "op", "", "r1", ""}, /*checkpoint=*/true).ok());
  auto cps = *log_->Checkpoints();
  ASSERT_EQ(cps.size(), 1u);
  EXPECT_EQ(cps[0].seq, 2u);
  EXPECT_EQ(cps[0].head, (*log_->Entries(2, 1))[0].hash);
  EXPECT_TRUE(Verify().empty());
}

// Another writer holds the database (as a full disk or a failing device
// would refuse the write): the append fails, leaves neither the entry nor
// its checkpoint, and the log goes on intact afterwards.
TEST_F(AuditLogTest, AFailedAppendLeavesNothingAndTheChainGoesOn) {
  ASSERT_TRUE(log_->Append({"start", "", "", "", ""}).ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  for (bool checkpoint : {false, true}) {
    EXPECT_FALSE(log_->Append({"release", "op", "", "r1", ""}, checkpoint).ok()) << checkpoint;
  }
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(log_->head_seq(), 1u);
  EXPECT_TRUE(log_->Checkpoints()->empty());
  ASSERT_TRUE(log_->Append({"release", "op", "", "r2", ""}, true).ok());
  EXPECT_EQ(log_->head_seq(), 2u);
  EXPECT_EQ(log_->Entries(1, 100)->size(), 2u);
  EXPECT_TRUE(Verify().empty());
}

// A history rewritten with care: entry 3 of 6 deleted, the later entries
// renumbered and their hashes recomputed, so sequence numbers and hashes are
// all consistent. Only the link to the entry before catches it, wherever the
// deletion is.
TEST_F(AuditLogTest, ADeletionWithRenumberedSeqsAndRecomputedHashesBreaksTheLink) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(log_->Append({"event", "", "", "", "n=" + std::to_string(i)}).ok());
  }
  const std::vector<AuditEntry> all = *log_->Entries(1, 100);
  ASSERT_EQ(all.size(), 6u);
  ASSERT_TRUE(VerifyAuditChain(all, {}, key_->public_key()).empty());
  // Entry 1 has no predecessor to miss; dropping the last is truncation,
  // which checkpoints catch (AuditVerifyNames...Truncated...).
  for (size_t gone = 1; gone + 1 < all.size(); ++gone) {
    std::vector<AuditEntry> rewritten;
    for (size_t i = 0; i < all.size(); ++i) {
      if (i == gone) continue;
      AuditEntry e = all[i];
      e.seq = rewritten.size() + 1;
      e.hash = e.ComputeHash();
      rewritten.push_back(e);
    }
    auto problems = VerifyAuditChain(rewritten, {}, key_->public_key());
    ASSERT_EQ(problems.size(), 1u) << "deleted entry " << gone + 1;
    EXPECT_EQ(problems[0].find("entry " + std::to_string(gone + 1) +
                               ": does not link to the entry before it"),
              0u)
        << problems[0];
  }
}

// A history rewritten from entry 2 on with every link and hash recomputed
// (what anyone with database access can do) still contradicts the head the
// node signed in its checkpoint; and a checkpoint over the new head signed
// with any key but the node's is refused. Each problem is named once.
TEST_F(AuditLogTest, ARecomputedChainContradictsTheSignedCheckpointAndForgedOnesAreRefused) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(log_->Append({"event", "", "", "", "n=" + std::to_string(i)}, i == 3).ok());
  }
  const std::vector<Checkpoint> signed_cps = *log_->Checkpoints();
  ASSERT_EQ(signed_cps.size(), 1u);
  ASSERT_EQ(signed_cps[0].seq, 4u);
  std::vector<AuditEntry> entries = *log_->Entries(1, 100);
  entries[1].event.detail = "n=rewritten";
  for (size_t i = 1; i < entries.size(); ++i) {
    entries[i].prev = entries[i - 1].hash;
    entries[i].hash = entries[i].ComputeHash();
  }
  auto problems = VerifyAuditChain(entries, signed_cps, key_->public_key());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0],
            "checkpoint at entry 4: signed head differs from the log's entry 4 (history "
            "rewritten)");
  // The rewriter signs a checkpoint of the new head, without the node's key.
  auto other = std::move(SigningKey::Generate()).value();
  Checkpoint forged = signed_cps[0];
  forged.head = entries[3].hash;
  forged.signature = other->Sign(forged.SignedBytes());
  problems = VerifyAuditChain(entries, {forged}, key_->public_key());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "checkpoint at entry 4: signature does not verify under the node's key");
  // Signed with the node's key (stolen), the rewrite passes this check:
  // the peers' witness records are what catch that (WitnessTest, ClusterTest).
  forged.signature = key_->Sign(forged.SignedBytes());
  EXPECT_TRUE(VerifyAuditChain(entries, {forged}, key_->public_key()).empty());
}

}  // namespace
}  // namespace qv
