#include "quorum/request.h"

#include <gtest/gtest.h>

#include "crypto/secretbox.h"

namespace qv {
namespace {

QuorumRequest MakeRequest(const SigningKey& requester) {
  QuorumRequest q;
  q.backup_id.fill(7);
  q.manifest_hash.fill(9);
  q.requester_id = "op1";
  q.requester_key = requester.public_key();
  q.reply_key = NewBoxKeyPair().public_key;
  q.purpose = "DR drill: restore llama-mini to site-b";
  q.destination = "site-b:/restore";
  q.created_unix = 1790000000;
  q.expires_unix = 1790003600;
  q.nonce.fill(3);
  return q;
}

TEST(RequestTest, SignedRequestRoundTripsWithStableId) {
  auto key = SigningKey::Generate();
  auto sr = SignedRequest::Sign(MakeRequest(**key), **key);
  ASSERT_TRUE(sr.ok()) << sr.status().ToString();
  auto parsed = SignedRequest::Parse(sr->encoded());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->id(), sr->id());
  EXPECT_EQ(parsed->request().purpose, "DR drill: restore llama-mini to site-b");
}

TEST(RequestTest, SignFailsWithAKeyOtherThanTheRequesters) {
  auto key = SigningKey::Generate();
  auto other = SigningKey::Generate();
  EXPECT_FALSE(SignedRequest::Sign(MakeRequest(**key), **other).ok());
}

TEST(RequestTest, EveryFlippedByteIsRejected) {
  auto key = SigningKey::Generate();
  auto sr = SignedRequest::Sign(MakeRequest(**key), **key);
  ASSERT_TRUE(sr.ok());
  for (size_t i = 0; i < sr->encoded().size(); ++i) {
    Bytes bad = sr->encoded();
    bad[i] ^= 0x01;
    EXPECT_FALSE(SignedRequest::Parse(bad).ok()) << "byte " << i;
  }
}

TEST(RequestTest, EveryTruncationIsRejected) {
  auto key = SigningKey::Generate();
  auto sr = SignedRequest::Sign(MakeRequest(**key), **key);
  ASSERT_TRUE(sr.ok());
  for (size_t n = 0; n < sr->encoded().size(); ++n) {
    EXPECT_FALSE(SignedRequest::Parse(ByteSpan(sr->encoded().data(), n)).ok()) << n;
  }
}

TEST(RequestTest, RequestWithoutPurposeOrLifetimeIsInvalid) {
  auto key = SigningKey::Generate();
  QuorumRequest q = MakeRequest(**key);
  q.purpose.clear();
  EXPECT_FALSE(SignedRequest::Sign(q, **key).ok());
  q = MakeRequest(**key);
  q.expires_unix = q.created_unix;
  EXPECT_FALSE(SignedRequest::Sign(q, **key).ok());
}

TEST(RequestTest, ApprovalAndCertificateRoundTrip) {
  auto requester = SigningKey::Generate();
  auto custodian = SigningKey::Generate();
  auto sr = SignedRequest::Sign(MakeRequest(**requester), **requester);
  ASSERT_TRUE(sr.ok());
  Approval a = Approval::Sign(*sr, **custodian, "c1", true, "", 1790000100);
  EXPECT_TRUE(a.VerifySignature().ok());
  Approval d = Approval::Sign(*sr, **custodian, "c1", false, "not during the freeze", 1790000100);
  Certificate c{*sr, {a, d}};
  auto parsed = Certificate::Parse(c.Encode());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->approvals.size(), 2u);
  EXPECT_TRUE(parsed->approvals[0].approve);
  EXPECT_FALSE(parsed->approvals[1].approve);
  EXPECT_EQ(parsed->approvals[1].note, "not during the freeze");
  EXPECT_TRUE(parsed->approvals[1].VerifySignature().ok());
}

TEST(RequestTest, ApprovalSignatureBreaksWhenAnyFieldChanges) {
  auto requester = SigningKey::Generate();
  auto custodian = SigningKey::Generate();
  auto sr = SignedRequest::Sign(MakeRequest(**requester), **requester);
  Approval a = Approval::Sign(*sr, **custodian, "c1", true, "", 1790000100);
  Approval b = a;
  b.approve = false;
  EXPECT_FALSE(b.VerifySignature().ok());
  b = a;
  b.custodian_id = "c2";
  EXPECT_FALSE(b.VerifySignature().ok());
  b = a;
  b.request_id[0] ^= 1;
  EXPECT_FALSE(b.VerifySignature().ok());
}

TEST(RequestTest, CertificateWithTooManyApprovalsIsRejected) {
  auto requester = SigningKey::Generate();
  auto custodian = SigningKey::Generate();
  auto sr = SignedRequest::Sign(MakeRequest(**requester), **requester);
  Certificate c{*sr, {}};
  for (size_t i = 0; i <= kMaxApprovals; ++i) {
    c.approvals.push_back(Approval::Sign(*sr, **custodian, "c1", true, "", 1790000100));
  }
  EXPECT_FALSE(Certificate::Parse(c.Encode()).ok());
}

}  // namespace
}  // namespace qv
