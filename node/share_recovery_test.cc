#include "node/share_recovery.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

RecoveryPlan Plan(uint8_t tag, const std::string& target = "n9") {
  RecoveryPlan p;
  p.id.fill(tag);
  p.fragment = 3;  // share x = 4
  p.target = target;
  p.helpers = {"n1", "n2", "n3"};
  p.helper_x = {1, 2, 3};
  p.expires = 1000;
  return p;
}

// Three helpers and a target, each its own ShareRecoveries as on its own
// node, passing values the way NodeService does.
TEST(ShareRecoveriesTest, HelpersAndTargetRebuildTheShare) {
  auto d = Deal(3, 5);
  ASSERT_TRUE(d.ok());
  ShareRecoveries n1("n1"), n2("n2"), n3("n3"), n9("n9");
  ShareRecoveries* helper[] = {&n1, &n2, &n3};
  const RecoveryPlan p = Plan(7);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(helper[i]->Start(p, &d->shares[i], 10).ok());
  ASSERT_TRUE(n9.Start(p, nullptr, 10).ok());
  for (int i = 0; i < 3; ++i) {
    auto out = helper[i]->TakeOutgoing(p.id);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->size(), 2u);
    for (auto& [to, v] : *out) {
      ShareRecoveries* dest = to == "n1" ? &n1 : to == "n2" ? &n2 : &n3;
      ASSERT_TRUE(dest->AddSummand(p.id, p.helpers[i], std::move(v), 11).ok());
    }
    EXPECT_FALSE(helper[i]->TakeOutgoing(p.id).ok());  // once
  }
  for (int i = 0; i < 3; ++i) {
    auto partial = helper[i]->TakePartial(p.id);
    ASSERT_TRUE(partial.ok()) << partial.status().ToString();
    EXPECT_EQ(partial->first, "n9");
    ASSERT_TRUE(n9.AddPartial(p.id, p.helpers[i], std::move(partial->second), 12).ok());
    EXPECT_EQ(helper[i]->size(), 0u);  // forgotten once sent
  }
  auto share = n9.TakeShare(p.id, p.backup, 3);
  ASSERT_TRUE(share.ok()) << share.status().ToString();
  EXPECT_EQ(share->x, 4u);
  EXPECT_TRUE(share->y.Equals(d->shares[3].y));
  EXPECT_TRUE(VerifyShare(*share, d->commitments).ok());
}

TEST(ShareRecoveriesTest, ValuesFromStrangersTwiceOrForUnknownRecoveriesAreRefused) {
  auto d = Deal(3, 5);
  ShareRecoveries n1("n1"), n9("n9");
  const RecoveryPlan p = Plan(1);
  ASSERT_TRUE(n1.Start(p, &d->shares[0], 10).ok());
  ASSERT_TRUE(n9.Start(p, nullptr, 10).ok());
  auto v = [] { return SecretBytes(32); };
  EXPECT_EQ(n1.AddSummand(p.id, "n7", v(), 10).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(n1.AddSummand(p.id, "n1", v(), 10).code(), StatusCode::kPermissionDenied);  // itself
  EXPECT_TRUE(n1.AddSummand(p.id, "n2", v(), 10).ok());
  EXPECT_EQ(n1.AddSummand(p.id, "n2", v(), 10).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(n1.AddPartial(p.id, "n2", v(), 10).code(), StatusCode::kNotFound);  // not its target
  EXPECT_EQ(n9.AddSummand(p.id, "n2", v(), 10).code(), StatusCode::kNotFound);  // not a helper
  RecoveryId other;
  other.fill(9);
  EXPECT_EQ(n9.AddPartial(other, "n2", v(), 10).code(), StatusCode::kNotFound);
  // A partial sum before every summand arrived, or a share before every
  // partial, is not made.
  EXPECT_FALSE(n1.TakePartial(p.id).ok());
  EXPECT_TRUE(n9.AddPartial(p.id, "n1", v(), 10).ok());
  EXPECT_EQ(n9.TakeShare(p.id, p.backup, 3).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(n9.TakeShare(p.id, p.backup, 2).status().code(), StatusCode::kInvalidArgument);
  // Neither helper nor target: nothing is started.
  EXPECT_EQ(ShareRecoveries("n5").Start(p, &d->shares[4], 10).code(),
            StatusCode::kPermissionDenied);
  // A helper whose share is at another index than the plan says.
  EXPECT_FALSE(ShareRecoveries("n2").Start(p, &d->shares[0], 10).ok());
}

TEST(ShareRecoveriesTest, RecoveriesAreBoundedAndExpire) {
  ShareRecoveries n9("n9");
  for (size_t i = 0; i < kMaxRecoveries; ++i) {
    RecoveryPlan p = Plan(0);
    p.id[0] = static_cast<uint8_t>(i);
    p.id[1] = 1;
    ASSERT_TRUE(n9.Start(p, nullptr, 10).ok());
  }
  RecoveryPlan more = Plan(0xee);
  EXPECT_EQ(n9.Start(more, nullptr, 10).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(n9.size(), kMaxRecoveries);
  // Past their expiry they make room.
  EXPECT_TRUE(n9.Start(more, nullptr, 2000).ok());
  EXPECT_EQ(n9.size(), 1u);
}

TEST(ShareRecoveriesTest, StartMessagesRoundTripAndBadOnesAreRefused) {
  RecoveryPlan p = Plan(3);
  auto back = DecodeRecoveryStart(EncodeRecoveryStart(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->helpers, p.helpers);
  EXPECT_EQ(back->helper_x, p.helper_x);
  EXPECT_EQ(back->target, "n9");
  for (auto change : std::vector<std::function<void(RecoveryPlan&)>>{
           [](RecoveryPlan& q) { q.helpers[1] = "n1"; },  // repeated helper
           [](RecoveryPlan& q) { q.helper_x[2] = 1; },    // repeated index
           [](RecoveryPlan& q) { q.helper_x[0] = 0; },    // index 0: the secret
           [](RecoveryPlan& q) { q.target = "n2"; },      // target helps itself
           [](RecoveryPlan& q) {
             q.helpers.clear();
             q.helper_x.clear();
           }}) {
    RecoveryPlan q = p;
    change(q);
    EXPECT_FALSE(DecodeRecoveryStart(EncodeRecoveryStart(q)).ok());
  }
  Bytes e = EncodeRecoveryStart(p);
  for (size_t cut = 0; cut < e.size(); ++cut) {
    EXPECT_FALSE(DecodeRecoveryStart(ByteSpan(e).first(cut)).ok()) << cut;
  }
  EXPECT_FALSE(DecodeRecoveryValue(Bytes(47)).ok());
  EXPECT_TRUE(DecodeRecoveryValue(Bytes(48)).ok());
}

}  // namespace
}  // namespace qv
