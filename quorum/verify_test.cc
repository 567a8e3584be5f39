#include "quorum/verify.h"

#include <gtest/gtest.h>

#include "crypto/secretbox.h"
#include "crypto/vss.h"

namespace qv {
namespace {

constexpr int64_t kNow = 1790000000;

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    requester_ = std::move(SigningKey::Generate()).value();
    for (int i = 0; i < 5; ++i) custodians_.push_back(std::move(SigningKey::Generate()).value());
    Manifest m;
    m.backup_id.fill(1);
    m.artifact_name = "llama-mini";
    m.files = {{"w.safetensors", 100, Sha256Of(AsBytes("w"))}};
    m.plaintext_size = 100;
    m.k = 4;
    m.m = 2;
    m.t = 3;
    m.unit_size = 64;
    m.chunk_size = 4 * 64 - 16;
    m.stripe_count = StripeCountFor(m.plaintext_size, m.chunk_size);
    m.commitments = Deal(3, 6)->commitments;
    m.created_unix = kNow - 86400;
    for (int f = 0; f < 6; ++f) m.fragment_roots.push_back(Sha256Of(AsBytes(std::to_string(f))));
    for (int i = 0; i < 5; ++i) {
      m.policy.custodians.push_back({"c" + std::to_string(i + 1), custodians_[i]->public_key()});
    }
    m.policy.quorum = 3;
    m.policy.max_request_seconds = 86400;
    m.policy.quorum_ops = {"restore", "delete"};
    auto coordinator = SigningKey::Generate();
    manifest_ = std::move(SignedManifest::Sign(m, **coordinator)).value();
    requesters_ = {{"op1", requester_->public_key()}};
    signer_ = requester_.get();
  }

  SignedRequest Request(int64_t created = kNow, int64_t ttl = 3600) {
    QuorumRequest q;
    q.backup_id = manifest_.manifest().backup_id;
    q.manifest_hash = manifest_.Hash();
    q.backup_name = manifest_.manifest().artifact_name;
    q.requester_id = "op1";
    q.requester_key = signer_->public_key();
    q.reply_key = NewBoxKeyPair().public_key;
    q.purpose = "drill";
    q.created_unix = created;
    q.expires_unix = created + ttl;
    q.nonce.fill(5);
    return std::move(SignedRequest::Sign(q, *signer_)).value();
  }

  Approval Approve(const SignedRequest& r, int custodian, bool yes = true) {
    return *Approval::Sign(r, *custodians_[custodian], "c" + std::to_string(custodian + 1), yes, "",
                           kNow + 10);
  }

  VerifyInput Input(int64_t now = kNow + 60) {
    VerifyInput in;
    in.operation = "restore";
    in.backup_id = manifest_.manifest().backup_id;
    in.manifest = &manifest_;
    in.requesters = &requesters_;
    in.now = now;
    in.max_skew = 300;
    return in;
  }

  Result<Verdict> Verify(const Certificate& c, int64_t now = kNow + 60,
                         std::string operation = "restore") {
    VerifyInput in;
    in.operation = std::move(operation);
    in.backup_id = manifest_.manifest().backup_id;
    in.manifest = &manifest_;
    in.requesters = &requesters_;
    in.now = now;
    in.max_skew = 300;
    return VerifyCertificate(c, in);
  }

  static std::string Reason(const Result<Verdict>& v) {
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), StatusCode::kPermissionDenied);
    return v.status().message();
  }

  std::unique_ptr<SigningKey> requester_;
  const SigningKey* signer_ = nullptr;  // who signs requests
  std::vector<std::unique_ptr<SigningKey>> custodians_;
  SignedManifest manifest_;
  std::vector<Principal> requesters_;
};

TEST_F(VerifyTest, QuorumOfDistinctCustodiansIsAccepted) {
  auto r = Request();
  auto v = Verify({r, {Approve(r, 0), Approve(r, 2), Approve(r, 4)}});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->approvers, (std::vector<std::string>{"c1", "c3", "c5"}));
  EXPECT_EQ(v->request_id, r.id());
}

TEST_F(VerifyTest, EveryCountBelowQuorumIsRefusedWithTheCount) {
  auto r = Request();
  for (int count = 0; count < 3; ++count) {
    Certificate c{r, {}};
    for (int i = 0; i < count; ++i) c.approvals.push_back(Approve(r, i));
    EXPECT_EQ(Reason(Verify(c)).rfind("below quorum: " + std::to_string(count) + " of 3", 0), 0u);
  }
}

TEST_F(VerifyTest, CustodianSigningTwiceCountsOnce) {
  auto r = Request();
  auto v = Verify({r, {Approve(r, 0), Approve(r, 0), Approve(r, 1)}});
  EXPECT_EQ(Reason(v).rfind("below quorum: 2 of 3", 0), 0u);
}

TEST_F(VerifyTest, UnknownCustodianIsRefusedByName) {
  auto r = Request();
  auto stranger = SigningKey::Generate();
  Certificate c{r, {Approve(r, 0), Approve(r, 1)}};
  c.approvals.push_back(*Approval::Sign(r, **stranger, "c7", true, "", kNow + 10));
  EXPECT_EQ(Reason(Verify(c)), "unknown custodian c7");
}

TEST_F(VerifyTest, CustodianIdPairedWithAnotherKeyIsUnknown) {
  auto r = Request();
  Certificate c{r, {Approve(r, 0), Approve(r, 1)}};
  c.approvals.push_back(*Approval::Sign(r, *custodians_[2], "c4", true, "", kNow + 10));
  EXPECT_EQ(Reason(Verify(c)), "unknown custodian c4");
}

TEST_F(VerifyTest, BadSignatureIsRefusedNamingTheCustodian) {
  auto r = Request();
  Certificate c{r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}};
  c.approvals[1].signature[5] ^= 1;
  EXPECT_EQ(Reason(Verify(c)), "bad signature from c2");
}

TEST_F(VerifyTest, SignatureOverADifferentRequestIsRefused) {
  auto r = Request();
  auto other = Request(kNow + 1);
  Certificate c{r, {Approve(r, 0), Approve(r, 1), Approve(other, 2)}};
  EXPECT_EQ(Reason(Verify(c)), "approval from c3 is for a different request");
}

TEST_F(VerifyTest, RequesterApprovingOwnRequestIsRefused) {
  // The requester also holds custodian c1's key.
  requesters_ = {{"op1", custodians_[0]->public_key()}};
  signer_ = custodians_[0].get();
  auto r = Request();
  auto v = Verify({r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}});
  EXPECT_EQ(Reason(v).rfind("requester approved own request", 0), 0u);
}

TEST_F(VerifyTest, ExpiredRequestIsRefusedButSkewIsTolerated) {
  auto r = Request(kNow, 3600);
  Certificate c{r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}};
  EXPECT_TRUE(Verify(c, kNow + 3600 + 299).ok());
  EXPECT_EQ(Reason(Verify(c, kNow + 3600 + 301)).rfind("request expired", 0), 0u);
}

TEST_F(VerifyTest, RequestFromTheFutureIsRefused) {
  auto r = Request(kNow + 1000);
  Certificate c{r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}};
  EXPECT_NE(Reason(Verify(c, kNow)).find("in the future"), std::string::npos);
}

TEST_F(VerifyTest, LifetimeBeyondPolicyIsRefused) {
  auto r = Request(kNow, 86400 * 2);
  Certificate c{r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}};
  EXPECT_NE(Reason(Verify(c)).find("exceeds the policy"), std::string::npos);
}

TEST_F(VerifyTest, RequestForAnotherBackupIsRefused) {
  auto r = Request();
  Certificate c{r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}};
  VerifyInput in;
  in.operation = "restore";
  in.backup_id.fill(2);
  in.manifest = &manifest_;
  in.requesters = &requesters_;
  in.now = kNow;
  EXPECT_EQ(Reason(VerifyCertificate(c, in)).rfind("certificate is for backup", 0), 0u);
}

// The same backup id under another manifest (an earlier revision, or one
// re-signed with the coordinator key under other custodians): the request
// binds the manifest by hash, and a node judging it against the manifest
// it holds refuses any other, even with a full quorum of valid approvals.
TEST_F(VerifyTest, ARequestNamingAnotherManifestOfTheBackupIsRefused) {
  for (int bit = 0; bit < 256; bit += 85) {
    QuorumRequest q = Request().request();
    q.manifest_hash[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    auto r = SignedRequest::Sign(q, *signer_);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(Reason(Verify({*r, {Approve(*r, 0), Approve(*r, 1), Approve(*r, 2)}})),
              "request names a different manifest of backup " +
                  BackupIdToText(manifest_.manifest().backup_id));
  }
}

// The key is a listed requester's but the request names another id: the
// name custodians read would not be who signed, so it is refused.
TEST_F(VerifyTest, ARequestNamingAnotherRequestersIdIsRefused) {
  QuorumRequest q = Request().request();
  q.requester_id = "op2";
  auto r = SignedRequest::Sign(q, *signer_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Reason(Verify({*r, {Approve(*r, 0), Approve(*r, 1), Approve(*r, 2)}})),
            "request names requester op2 but is signed by op1");
}

TEST_F(VerifyTest, UnlistedRequesterIsRefused) {
  auto r = Request();
  requesters_.clear();
  EXPECT_EQ(Reason(Verify({r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}})),
            "requester op1 is not listed in the cluster file");
}

TEST_F(VerifyTest, DenialDoesNotCountAndOverridesThatCustodiansApproval) {
  auto r = Request();
  auto v = Verify({r, {Approve(r, 0), Approve(r, 1), Approve(r, 2), Approve(r, 2, false)}});
  EXPECT_EQ(Reason(v), "denied by c3 (approved by c1, c2)");
}

// Any custodian's denial vetoes the request, even beside a quorum of
// approvals; and a denial a node saw before counts when it is left out.
TEST_F(VerifyTest, ADenialVetoesTheRequestEvenWhenLeftOut) {
  auto r = Request();
  EXPECT_EQ(Reason(Verify({r,
                           {Approve(r, 0), Approve(r, 1), Approve(r, 2), Approve(r, 3, false),
                            Approve(r, 4, false)}})),
            "denied by c4, c5 (approved by c1, c2, c3)");
  const std::vector<std::string> seen = {"c4"};
  VerifyInput in = Input();
  in.known_deniers = &seen;
  auto v = VerifyCertificate({r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}}, in);
  EXPECT_EQ(Reason(v), "denied by c4 (earlier) (approved by c1, c2, c3)");
  EXPECT_TRUE(VerifyCertificate({r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}}, Input()).ok());
}

TEST_F(VerifyTest, OperationOutsideThePolicyIsRefused) {
  auto r = Request();
  EXPECT_FALSE(Verify({r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}}, kNow, "export").ok());
}

TEST_F(VerifyTest, BackupNameOtherThanTheSignedManifestsIsRefused) {
  QuorumRequest q = Request().request();
  q.backup_name = "tiny-ci-test-model-1M";
  auto r = std::move(SignedRequest::Sign(q, *signer_)).value();
  EXPECT_EQ(Reason(Verify({r, {Approve(r, 0), Approve(r, 1), Approve(r, 2)}})),
            "request names backup \"tiny-ci-test-model-1M\" but its signed manifest names \"" +
                manifest_.manifest().artifact_name + "\"");
}

TEST_F(VerifyTest, EveryBadApprovalIsNamedAndReportedWithItsResult) {
  auto r = Request();
  auto stranger = SigningKey::Generate();
  auto other = Request(kNow + 1);
  Certificate c{r, {Approve(r, 0), Approve(r, 1), Approve(other, 2)}};
  c.approvals.push_back(*Approval::Sign(r, **stranger, "c7", true, "", kNow + 10));
  c.approvals[1].signature[5] ^= 1;
  std::vector<ApprovalCheck> checks;
  auto v = VerifyCertificate(c, Input(), &checks);
  EXPECT_EQ(Reason(v),
            "bad signature from c2; approval from c3 is for a different request; unknown "
            "custodian c7");
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[0].custodian, "c1");
  EXPECT_EQ(checks[0].result, "valid");
  EXPECT_EQ(checks[1].result, "bad signature");
  EXPECT_EQ(checks[2].result, "for a different request");
  EXPECT_EQ(checks[3].custodian, "c7");
  EXPECT_EQ(checks[3].result, "unknown custodian");
}

TEST_F(VerifyTest, ApprovalsAreJudgedEvenWhenTheRequestIsRefused) {
  auto r = Request(kNow, 3600);
  Certificate c{r, {Approve(r, 0), Approve(r, 1)}};
  c.approvals[1].signature[0] ^= 1;
  std::vector<ApprovalCheck> checks;
  auto v = VerifyCertificate(c, Input(kNow + 99999), &checks);
  EXPECT_EQ(Reason(v).rfind("request expired", 0), 0u);
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_TRUE(checks[0].valid());
  EXPECT_FALSE(checks[1].valid());
}

TEST_F(VerifyTest, ApprovalSignedBeforeTheRequestOrAfterItExpiredIsRefused) {
  auto r = Request(kNow, 3600);
  for (int64_t when : {kNow - 301, kNow + 3600 + 301}) {
    Certificate c{r, {Approve(r, 0), Approve(r, 1)}};
    c.approvals.push_back(*Approval::Sign(r, *custodians_[2], "c3", true, "", when));
    EXPECT_EQ(Reason(Verify(c, kNow + 3000)),
              "approval from c3 is not within the request's lifetime")
        << when;
  }
}

}  // namespace
}  // namespace qv
