#include "quorum/enrollment.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

constexpr int64_t kNow = 1790000000;

std::unique_ptr<SigningKey> NewKey() { return std::move(SigningKey::Generate()).value(); }

class EnrollmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    requester_ = NewKey();
    for (int i = 0; i < 5; ++i) custodians_.push_back(NewKey());
    cluster_.name = "prod";
    cluster_.coordinator = NewKey()->public_key();
    cluster_.sites = {"a", "b", "c"};
    for (int i = 0; i < 6; ++i) {
      cluster_.nodes.push_back({"n" + std::to_string(i), cluster_.sites[i / 2], "127.0.0.1",
                                static_cast<uint16_t>(7000 + i), NewKey()->public_key()});
    }
    for (int i = 0; i < 5; ++i) {
      cluster_.custodians.push_back({"c" + std::to_string(i + 1), custodians_[i]->public_key()});
    }
    cluster_.requesters = {{"op", requester_->public_key()}};
    cluster_.k = 4;
    cluster_.m = 2;
    cluster_.t = 3;
    cluster_.quorum = 3;
    spare_ = {"n6", "c", "127.0.0.1", 7006, NewKey()->public_key()};
  }

  SignedRequest Request(const ClusterConfig& c, const NodeEntry& node, int64_t created = kNow) {
    QuorumRequest q = EnrollmentRequest(c, node, {"op", requester_->public_key()}, "site c rebuilt",
                                        created, created + 3600);
    return std::move(SignedRequest::Sign(q, *requester_)).value();
  }

  Certificate Approved(const SignedRequest& r, int approvals = 3, bool deny_last = false) {
    Certificate cert{r, {}};
    for (int i = 0; i < approvals; ++i) {
      const bool yes = !(deny_last && i == approvals - 1);
      cert.approvals.push_back(*Approval::Sign(r, *custodians_[i], "c" + std::to_string(i + 1), yes,
                                               "", r.request().created_unix + 10));
    }
    return cert;
  }

  Result<Verdict> Verify(const Certificate& cert, const ClusterConfig& c, int64_t now = kNow + 60) {
    VerifyInput in;
    in.operation = kOpEnroll;
    in.now = now;
    return VerifyEnrollment(cert, c, in);
  }

  ClusterConfig cluster_;
  NodeEntry spare_;
  std::unique_ptr<SigningKey> requester_;
  std::vector<std::unique_ptr<SigningKey>> custodians_;
};

TEST_F(EnrollmentTest, EnrollmentTextRoundTripsAndHasOneSpelling) {
  const std::string text = EnrollmentText(spare_);
  auto back = ParseEnrollmentText(text);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->id, "n6");
  EXPECT_EQ(back->port, 7006);
  EXPECT_EQ(back->public_key, spare_.public_key);
  for (const std::string& bad :
       {text + " ", "node n6  site c" + text.substr(11), text.substr(0, text.size() - 1),
        std::string("node n6 site c at 127.0.0.1:0 key ") + PublicKeyToText(spare_.public_key),
        std::string("node n6 site c at 127.0.0.1:070006 key ") + PublicKeyToText(spare_.public_key),
        std::string("node n6 site c at :7006 key ") + PublicKeyToText(spare_.public_key),
        std::string("")}) {
    EXPECT_FALSE(ParseEnrollmentText(bad).ok()) << bad;
  }
}

TEST_F(EnrollmentTest, MembershipDigestCoversIdsSitesKeysAndOrderButNotAddresses) {
  const Digest d = MembershipDigest(cluster_);
  ClusterConfig moved = cluster_;
  moved.nodes[2].host = "10.0.0.9";
  moved.nodes[2].port = 9999;
  EXPECT_EQ(MembershipDigest(moved), d);
  for (int change = 0; change < 5; ++change) {
    ClusterConfig c = cluster_;
    if (change == 0) c.nodes[1].public_key = spare_.public_key;
    if (change == 1) c.nodes[1].site = "c";
    if (change == 2) c.nodes[1].id = "n9";
    if (change == 3) std::swap(c.nodes[0], c.nodes[1]);
    if (change == 4) c.name = "staging";
    EXPECT_NE(MembershipDigest(c), d) << change;
  }
}

TEST_F(EnrollmentTest, AQuorumOfCustodiansEnrollsANode) {
  auto v = Verify(Approved(Request(cluster_, spare_)), cluster_);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->approvers.size(), 3u);
}

TEST_F(EnrollmentTest, EnrollmentBelowQuorumOrDeniedIsRefused) {
  auto below = Verify(Approved(Request(cluster_, spare_), 2), cluster_);
  ASSERT_FALSE(below.ok());
  EXPECT_NE(below.status().message().find("below quorum: 2 of 3"), std::string::npos);
  auto denied = Verify(Approved(Request(cluster_, spare_), 4, /*deny_last=*/true), cluster_);
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.status().message().find("denied by c4"), std::string::npos);
}

TEST_F(EnrollmentTest, ApprovalsByKeysThatAreNotCustodiansAreRefused) {
  SignedRequest r = Request(cluster_, spare_);
  Certificate cert{r, {}};
  for (int i = 0; i < 3; ++i) {
    auto outsider = NewKey();
    cert.approvals.push_back(
        *Approval::Sign(r, *outsider, "c" + std::to_string(i + 1), true, "", kNow + 10));
  }
  auto v = Verify(cert, cluster_);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("unknown custodian c1"), std::string::npos);
}

TEST_F(EnrollmentTest, RequestFromAnUnlistedRequesterIsRefused) {
  requester_ = NewKey();  // signs, but the cluster pins another key for "op"
  auto v = Verify(Approved(Request(cluster_, spare_)), cluster_);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("is not listed"), std::string::npos);
}

TEST_F(EnrollmentTest, ExpiredEnrollmentIsRefusedLive) {
  auto v = Verify(Approved(Request(cluster_, spare_)), cluster_, kNow + 3600 + 301);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("expired"), std::string::npos);
}

TEST_F(EnrollmentTest, CertificateForAnotherMembershipIsRefused) {
  // Approved for this cluster, then presented after another change, or to
  // another cluster with the same custodians.
  const Certificate cert = Approved(Request(cluster_, spare_));
  ClusterConfig changed = cluster_;
  changed.nodes.pop_back();
  changed.k = 3;
  ClusterConfig other = cluster_;
  other.name = "staging";
  for (const auto* c : {&changed, &other}) {
    auto v = Verify(cert, *c);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.status().message().find("another membership"), std::string::npos);
  }
}

TEST_F(EnrollmentTest, EnrollingAKeyOrIdOrAddressAlreadyInTheClusterIsRefused) {
  for (int clash = 0; clash < 4; ++clash) {
    NodeEntry n = spare_;
    if (clash == 0) n.public_key = cluster_.nodes[0].public_key;
    if (clash == 1) n.id = "n0";
    if (clash == 2) n.port = cluster_.nodes[3].port;
    if (clash == 3) n.site = "mars";
    auto v = Verify(Approved(Request(cluster_, n)), cluster_);
    EXPECT_FALSE(v.ok()) << clash;
  }
  // Nor a custodian's or the coordinator's key: one key, one party.
  NodeEntry n = spare_;
  n.public_key = custodians_[0]->public_key();
  EXPECT_FALSE(Verify(Approved(Request(cluster_, n)), cluster_).ok());
}

TEST_F(EnrollmentTest, ClusterWithoutCustodiansEnrollsNothing) {
  ClusterConfig c = cluster_;
  c.custodians.clear();
  c.quorum = 0;
  auto v = Verify(Certificate{Request(c, spare_), {}}, c);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("no custodians"), std::string::npos);
}

TEST_F(EnrollmentTest, ChainOfEnrollmentsChecksFromTheFile) {
  // Two nodes enrolled one after the other, long after both requests
  // expired: the file's chain still checks, and gives the first membership.
  auto one = ApplyEnrollment(cluster_, Approved(Request(cluster_, spare_)).Encode());
  ASSERT_TRUE(one.ok()) << one.status().message();
  NodeEntry second = {"n7", "a", "127.0.0.1", 7007, NewKey()->public_key()};
  auto two = ApplyEnrollment(*one, Approved(Request(*one, second, kNow + 100)).Encode());
  ASSERT_TRUE(two.ok()) << two.status().message();
  ASSERT_EQ(two->nodes.size(), 8u);
  auto first = CheckEnrollments(*two);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, MembershipDigest(cluster_));
  // Round trip through the file format.
  auto reread = ClusterConfig::Parse(two->ToToml(), "cluster.toml");
  ASSERT_TRUE(reread.ok()) << reread.status().message();
  EXPECT_EQ(reread->enrollments, two->enrollments);
  EXPECT_TRUE(CheckEnrollments(*reread).ok());
  // A moved node is still the node it was.
  ClusterConfig moved = *two;
  moved.nodes[6].port = 9006;
  EXPECT_TRUE(CheckEnrollments(moved).ok());
}

TEST_F(EnrollmentTest, FileEditedAroundTheCertificatesIsRefused) {
  auto one = ApplyEnrollment(cluster_, Approved(Request(cluster_, spare_)).Encode());
  ASSERT_TRUE(one.ok());
  const NodeEntry intruder = {"n8", "b", "127.0.0.1", 7008, NewKey()->public_key()};
  // The key swapped for another under the enrolled id.
  ClusterConfig swapped = *one;
  swapped.nodes[6].public_key = intruder.public_key;
  EXPECT_FALSE(CheckEnrollments(swapped).ok());
  // A certificate copied beside a node it never enrolled.
  ClusterConfig reused = *one;
  reused.nodes[6] = intruder;
  EXPECT_FALSE(CheckEnrollments(reused).ok());
  // The enrolled node moved before the first membership.
  ClusterConfig reordered = *one;
  std::rotate(reordered.nodes.begin(), reordered.nodes.end() - 1, reordered.nodes.end());
  EXPECT_FALSE(CheckEnrollments(reordered).ok());
  // Its certificate altered: one approval dropped.
  auto cert = Certificate::Parse(one->enrollments[0]);
  cert->approvals.pop_back();
  ClusterConfig short_cert = *one;
  short_cert.enrollments[0] = cert->Encode();
  auto v = CheckEnrollments(short_cert);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("below quorum"), std::string::npos);
  // The certificate dropped: the node just sits in the file. Its first
  // membership then differs from the one the nodes recorded.
  ClusterConfig bare = *one;
  bare.enrollments.clear();
  auto d = CheckEnrollments(bare);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(*d, MembershipDigest(cluster_));
}

PublicKey SeededKey(uint8_t seed) {
  SecretBytes s = SecretBytes::Random(32);
  std::fill(s.data(), s.data() + 32, seed);
  return std::move(SigningKey::FromSeed(s)).value()->public_key();
}

TEST(EnrollmentFormatTest, MembershipDigestAndEnrollmentTextArePinned) {
  ClusterConfig c;
  c.name = "prod";
  c.coordinator = SeededKey(1);
  c.sites = {"a", "b"};
  c.nodes = {{"n0", "a", "10.0.0.1", 7000, SeededKey(2)},
             {"n1", "b", "10.0.0.2", 7001, SeededKey(3)}};
  EXPECT_EQ(HexEncode(MembershipDigest(c)),
            "cda982ba930ca7a44e6a5b7862a83c0ebc46f09d4c349abc7c3f9f3f3aaa5a4d");
  EXPECT_EQ(EnrollmentText({"n2", "b", "10.0.0.3", 7002, SeededKey(4)}),
            "node n2 site b at 10.0.0.3:7002 key "
            "ed25519:ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c");
}

}  // namespace
}  // namespace qv
