#include "node/witness.h"

#include <gtest/gtest.h>

#include <thread>

#include "base/temp_dir.h"

namespace qv {
namespace {

using Kind = WitnessOutcome::Kind;

// A peer that says whatever the test wants: a checkpoint signed with the
// peer's own (stolen or its own) key, and a run of entries, generated on
// demand, that chain correctly from entry 1 on forever.
class FakePeer : public NodeCaller {
 public:
  FakePeer(const SigningKey* key, int64_t now) : key_(key), now_(now) {}
  const std::string& name() const override { return name_; }

  AuditEntry EntryAt(uint64_t seq) {
    while (chain_.size() < seq) {
      AuditEntry e;
      e.seq = chain_.size() + 1;
      e.time = now_;
      e.event = {"noise", "", "", "", std::to_string(e.seq)};
      e.prev = chain_.empty() ? ChainHash{} : chain_.back().hash;
      if (e.seq == break_link_at_) e.prev = ChainHash{9};  // hash recomputed below
      e.hash = e.ComputeHash();
      chain_.push_back(e);
    }
    return chain_[seq - 1];
  }

  // Checkpoint at `seq`, over the chain's real head or over a made-up one.
  void Claim(uint64_t seq, bool matching) {
    claim_.node_id = "node-01";
    claim_.seq = seq;
    claim_.head = matching ? EntryAt(seq).hash : ChainHash{7};
    claim_.time = now_;
    claim_.signature = key_->Sign(claim_.SignedBytes());
  }

  Result<Response> Call(Request r) override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    Response resp;
    switch (r.op) {
      case Op::kHealth:
        resp.payload.resize(8);
        PutU64BE(resp.payload.data(), static_cast<uint64_t>(now_ + clock_offset_));
        break;
      case Op::kGetCheckpoints:
        resp.payload = EncodeCheckpoints({claim_});
        break;
      case Op::kGetAudit: {
        std::vector<AuditEntry> page;
        for (uint64_t i = 0; i < std::min<uint64_t>(r.b, 4096); ++i)
          page.push_back(EntryAt(r.a + i));
        resp.payload = EncodeEntries(page);
        ++pages_;
        break;
      }
      default:
        resp.code = static_cast<uint8_t>(StatusCode::kInvalidArgument);
    }
    return resp;
  }

  std::chrono::milliseconds delay_{0};
  uint64_t break_link_at_ = 0;  // this entry links to a made-up predecessor
  int64_t clock_offset_ = 0;
  uint64_t pages_ = 0;

 private:
  std::string name_ = "node-01";
  const SigningKey* key_;
  int64_t now_;
  Checkpoint claim_;
  std::vector<AuditEntry> chain_;
};

class WitnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    self_key_ = std::move(SigningKey::Generate()).value();
    peer_key_ = std::move(SigningKey::Generate()).value();
    auto log = AuditLog::Open(tmp_.path() / "audit.db", "node-00", self_key_.get(), &clock_, 16);
    ASSERT_TRUE(log.ok());
    audit_ = std::move(log).value();
    peer_.id = "node-01";
    peer_.public_key = peer_key_->public_key();
  }

  std::unique_ptr<Witness> Make(WitnessLimits limits) {
    return std::move(Witness::New(audit_.get(), self_key_.get(), &clock_, limits)).value();
  }

  ScopedTempDir tmp_{"qv-witness-test"};
  FakeClock clock_{1790000000};
  std::unique_ptr<SigningKey> self_key_, peer_key_;
  std::unique_ptr<AuditLog> audit_;
  NodeEntry peer_;
};

// The comparisons a witness makes before it countersigns: every entry
// links to the one before it (its own hash recomputed does not help), and
// the newest checkpoint signs the head those entries reach. A peer failing
// either is a mismatch, alerted, and nothing is countersigned.
TEST_F(WitnessTest, AHistoryThatDoesNotLinkOrMatchItsCheckpointIsNotCountersigned) {
  auto w = Make({});
  {
    FakePeer honest(peer_key_.get(), clock_.NowUnix());
    honest.Claim(3, true);
    ASSERT_EQ(w->CheckPeer(peer_, honest).kind, Kind::kWitnessed);
  }
  const size_t witnessed = audit_->Witnessed()->size();
  {
    // Entry 5 rewritten: it links elsewhere, its hash is recomputed, and the
    // checkpoint at 8 is signed over the rewritten chain's real head.
    FakePeer rewritten(peer_key_.get(), clock_.NowUnix());
    rewritten.break_link_at_ = 5;
    rewritten.Claim(8, true);
    WitnessOutcome out = w->CheckPeer(peer_, rewritten);
    EXPECT_EQ(out.kind, Kind::kMismatch) << out.detail;
    EXPECT_TRUE(out.alert());
    EXPECT_EQ(out.detail, "entry 5 does not extend the history witnessed at entry 3");
  }
  {
    // A well-linked chain under a checkpoint over some other head.
    FakePeer lying(peer_key_.get(), clock_.NowUnix());
    lying.Claim(8, false);
    WitnessOutcome out = w->CheckPeer(peer_, lying);
    EXPECT_EQ(out.kind, Kind::kMismatch) << out.detail;
    EXPECT_EQ(out.detail, "newest checkpoint does not match the entries");
  }
  EXPECT_EQ(audit_->Witnessed()->size(), witnessed);
  FakePeer honest(peer_key_.get(), clock_.NowUnix());
  honest.Claim(8, true);
  EXPECT_EQ(w->CheckPeer(peer_, honest).kind, Kind::kWitnessed);
  EXPECT_EQ(audit_->Witnessed()->size(), witnessed + 1);
}

// A validly signed checkpoint 2^40 entries ahead: refused at once, as an
// alert, without reading one entry.
TEST_F(WitnessTest, AHeadImplausiblyFarAheadIsAlertedAndSkipped) {
  FakePeer fake(peer_key_.get(), clock_.NowUnix());
  fake.Claim(3, true);
  auto w = Make({});
  ASSERT_EQ(w->CheckPeer(peer_, fake).kind, Kind::kWitnessed);
  Checkpoint far;
  fake.Claim(1ull << 40, false);
  const auto start = std::chrono::steady_clock::now();
  WitnessOutcome out = w->CheckPeer(peer_, fake);
  EXPECT_EQ(out.kind, Kind::kBoundExceeded) << out.detail;
  EXPECT_TRUE(out.alert());
  EXPECT_EQ(out.entries_read, 0u);
  EXPECT_EQ(fake.pages_, 1u);  // only the first round's walk
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_NE(out.detail.find("past the last witnessed"), std::string::npos) << out.detail;
}

// An endless, correctly chained run towards a far checkpoint: every round
// reads at most its bound, the next resumes where it stopped, and the
// checkpoint is countersigned only when the entries reach it. A made-up
// head at the end is a mismatch.
TEST_F(WitnessTest, ALongCatchUpIsWalkedInBoundedRoundsThatResume) {
  FakePeer fake(peer_key_.get(), clock_.NowUnix());
  WitnessLimits limits;
  limits.max_entries = 4096;
  auto w = Make(limits);
  fake.Claim(20000, true);
  int rounds = 0;
  uint64_t read = 0;
  WitnessOutcome out;
  do {
    out = w->CheckPeer(peer_, fake);
    EXPECT_LE(out.entries_read, limits.max_entries);
    read += out.entries_read;
    ++rounds;
  } while (out.kind == Kind::kCatchingUp && rounds < 10);
  EXPECT_EQ(out.kind, Kind::kWitnessed) << out.detail;
  EXPECT_EQ(rounds, 5);
  EXPECT_EQ(read, 20000u);  // no entry read twice
  ASSERT_TRUE(audit_->LastWitnessed("node-01").has_value());
  EXPECT_EQ(audit_->LastWitnessed("node-01")->seq, 20000u);

  fake.Claim(30000, false);
  do {
    out = w->CheckPeer(peer_, fake);
  } while (out.kind == Kind::kCatchingUp);
  EXPECT_EQ(out.kind, Kind::kMismatch) << out.detail;
  EXPECT_EQ(audit_->LastWitnessed("node-01")->seq, 20000u);
}

// A peer that answers slowly is cut off at the round's time bound.
TEST_F(WitnessTest, ASlowPeerIsCutOffAtTheRoundsTimeBound) {
  FakePeer fake(peer_key_.get(), clock_.NowUnix());
  fake.Claim(50000, true);
  fake.delay_ = std::chrono::milliseconds(40);
  WitnessLimits limits;
  limits.max_time = std::chrono::milliseconds(300);
  auto w = Make(limits);
  const auto start = std::chrono::steady_clock::now();
  WitnessOutcome out = w->CheckPeer(peer_, fake);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.kind, Kind::kCatchingUp) << out.detail;
  EXPECT_NE(out.detail.find("time bound"), std::string::npos) << out.detail;
  EXPECT_LT(took, std::chrono::milliseconds(500));
}

// The peer's clock is read each round: two hours ahead is measured as such.
TEST_F(WitnessTest, EachRoundMeasuresThePeersClock) {
  FakePeer fake(peer_key_.get(), clock_.NowUnix());
  fake.Claim(2, true);
  auto w = Make({});
  for (int64_t offset : {int64_t{0}, int64_t{7200}, int64_t{-7200}, int64_t{365} * 86400}) {
    fake.clock_offset_ = offset;
    WitnessOutcome out = w->CheckPeer(peer_, fake);
    ASSERT_TRUE(out.skew.has_value());
    EXPECT_EQ(*out.skew, offset);
  }
}

TEST_F(WitnessTest, LimitsMustBePositive) {
  WitnessLimits bad;
  bad.max_entries = 0;
  EXPECT_FALSE(Witness::New(audit_.get(), self_key_.get(), &clock_, bad).ok());
  EXPECT_FALSE(Witness::New(nullptr, self_key_.get(), &clock_, {}).ok());
}

}  // namespace
}  // namespace qv
