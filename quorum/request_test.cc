#include "quorum/request.h"

#include <gtest/gtest.h>

#include "base/wire.h"
#include "crypto/kdf.h"
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
  Approval a = *Approval::Sign(*sr, **custodian, "c1", true, "", 1790000100);
  EXPECT_TRUE(a.VerifySignature().ok());
  Approval d = *Approval::Sign(*sr, **custodian, "c1", false, "not during the freeze", 1790000100);
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
  Approval a = *Approval::Sign(*sr, **custodian, "c1", true, "", 1790000100);
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
    c.approvals.push_back(*Approval::Sign(*sr, **custodian, "c1", true, "", 1790000100));
  }
  EXPECT_FALSE(Certificate::Parse(c.Encode()).ok());
}

// A request signed by its requester exactly as given, skipping Validate: what
// a hostile requester with its own key can send a node.
Bytes SignRaw(const QuorumRequest& q, const SigningKey& key) {
  const Bytes body = q.CanonicalBody();
  WireWriter w;
  w.Raw(AsBytes("QVRQ")).Raw(body).Fixed(key.Sign(ContextMessage(kRequestContext, body)));
  return w.Take();
}

TEST(RequestTest, ControlCharactersAndBadUtf8AreRefusedInEveryReadableField) {
  auto key = SigningKey::Generate();
  const std::vector<std::string> hostile = {
      "copy weights to my laptop\r\033[2K  purpose: quarterly DR drill", "a\nb", "bad\xff",
      "abc\xE2\x80\xAE"
      "fed",
      "x\xC2\x9B"
      "2J"};
  for (const char* field : {"backup_name", "requester", "purpose", "destination"}) {
    for (const auto& text : hostile) {
      QuorumRequest q = MakeRequest(**key);
      if (std::string(field) == "backup_name") q.backup_name = text;
      if (std::string(field) == "requester") q.requester_id = text;
      if (std::string(field) == "purpose") q.purpose = text;
      if (std::string(field) == "destination") q.destination = text;
      auto signed_request = SignedRequest::Sign(q, **key);
      ASSERT_FALSE(signed_request.ok()) << field;
      EXPECT_EQ(signed_request.status().message().rfind(std::string("request field ") + field, 0),
                0u)
          << signed_request.status().message();
      // Signed anyway by a hostile requester: every parser (so every node) refuses it.
      auto parsed = SignedRequest::Parse(SignRaw(q, **key));
      ASSERT_FALSE(parsed.ok()) << field;
      EXPECT_NE(parsed.status().message().find(field), std::string::npos)
          << parsed.status().message();
    }
  }
}

TEST(RequestTest, ImplausibleTimesAreRefused) {
  auto key = SigningKey::Generate();
  for (auto [created, expires] :
       std::vector<std::pair<int64_t, int64_t>>{{INT64_MIN + 1, 1790000000},
                                                {0, 1790000000},
                                                {1790000000, INT64_MAX},
                                                {1790000000, kMaxPlausibleUnix + 1},
                                                {kMinPlausibleUnix - 1, 1790000000}}) {
    QuorumRequest q = MakeRequest(**key);
    q.created_unix = created;
    q.expires_unix = expires;
    EXPECT_FALSE(SignedRequest::Sign(q, **key).ok()) << created << " " << expires;
    EXPECT_FALSE(SignedRequest::Parse(SignRaw(q, **key)).ok()) << created << " " << expires;
  }
}

TEST(RequestTest, ApprovalANodeWouldRefuseIsNeverSigned) {
  auto requester = SigningKey::Generate();
  auto custodian = SigningKey::Generate();
  auto sr = SignedRequest::Sign(MakeRequest(**requester), **requester);
  ASSERT_TRUE(sr.ok());
  EXPECT_TRUE(
      Approval::Sign(*sr, **custodian, "c1", true, std::string(kMaxNote, 'n'), 1790000100).ok());
  auto long_note =
      Approval::Sign(*sr, **custodian, "c1", true, std::string(kMaxNote + 1, 'n'), 1790000100);
  ASSERT_FALSE(long_note.ok());
  EXPECT_EQ(long_note.status().message(), "approval note: 1025 bytes, at most 1024");
  auto control = Approval::Sign(*sr, **custodian, "c1", true, "ok\033[2K", 1790000100);
  ASSERT_FALSE(control.ok());
  EXPECT_EQ(control.status().message().rfind("approval note: control character U+001B", 0), 0u);
  EXPECT_FALSE(Approval::Sign(*sr, **custodian, "c\n1", true, "", 1790000100).ok());
  // Forged with the custodian's own key anyway: the parser refuses it.
  Approval a = *Approval::Sign(*sr, **custodian, "c1", true, "", 1790000100);
  a.note = "ok\033[2K";
  a.signature = (*custodian)->Sign(ContextMessage(kApprovalContext, a.CanonicalBody()));
  EXPECT_TRUE(a.VerifySignature().ok());
  EXPECT_FALSE(Approval::Parse(a.Encode()).ok());
}

}  // namespace
}  // namespace qv
