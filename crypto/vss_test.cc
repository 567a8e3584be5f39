#include "crypto/vss.h"

#include <gtest/gtest.h>

#include <cstring>

#include "crypto/kdf.h"

namespace qv {
namespace {

std::vector<Share> Pick(const std::vector<Share>& all, const std::vector<size_t>& idx) {
  std::vector<Share> out;
  for (size_t i : idx) out.push_back(all[i].Clone());
  return out;
}

// Calls f on every k-subset of {0..n-1}.
template <typename F>
void ForEachSubset(size_t n, size_t k, F f) {
  std::vector<size_t> idx(k);
  for (size_t i = 0; i < k; ++i) idx[i] = i;
  while (true) {
    f(idx);
    int i = static_cast<int>(k) - 1;
    while (i >= 0 && idx[i] == n - k + i) --i;
    if (i < 0) return;
    ++idx[i];
    for (size_t j = i + 1; j < k; ++j) idx[j] = idx[j - 1] + 1;
  }
}

TEST(VssTest, RoundTripsForManyThresholds) {
  for (uint32_t n = 1; n <= 9; ++n) {
    for (uint32_t t = 1; t <= n; ++t) {
      auto d = Deal(t, n);
      ASSERT_TRUE(d.ok());
      ASSERT_EQ(d->shares.size(), n);
      ASSERT_EQ(d->commitments.size(), t);
      for (const auto& s : d->shares) EXPECT_TRUE(VerifyShare(s, d->commitments).ok());
      auto r = Combine(d->shares, d->commitments);
      ASSERT_TRUE(r.ok()) << t << "/" << n << ": " << r.status().ToString();
      EXPECT_TRUE(r->secret.Equals(d->secret));
      EXPECT_TRUE(r->rejected.empty());
    }
  }
}

TEST(VssTest, EverySubsetOfSizeTGivesTheSameKey) {
  const uint32_t t = 3, n = 6;
  auto d = Deal(t, n);
  ASSERT_TRUE(d.ok());
  std::array<uint8_t, 16> id{};
  SecretBytes want = DeriveKey(d->secret, kDataKeyLabel, id);
  int subsets = 0;
  ForEachSubset(n, t, [&](const std::vector<size_t>& idx) {
    auto r = Combine(Pick(d->shares, idx), d->commitments);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(DeriveKey(r->secret, kDataKeyLabel, id).Equals(want));
    ++subsets;
  });
  EXPECT_EQ(subsets, 20);
}

TEST(VssTest, AFlippedBitInAnyShareIsNamedAndRoutedAround) {
  auto d = Deal(3, 5);
  ASSERT_TRUE(d.ok());
  for (int bit : {0, 7, 100, 250}) {
    auto shares = Pick(d->shares, {0, 1, 2, 3});
    shares[1].y.data()[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    Status s = VerifyShare(shares[1], d->commitments);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("x=2"), std::string::npos) << s.message();
    auto r = Combine(shares, d->commitments);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->secret.Equals(d->secret));
    ASSERT_EQ(r->rejected, std::vector<uint32_t>{2});
  }
}

TEST(VssTest, AShareFromAnotherBackupFailsTheCommitmentCheck) {
  auto a = Deal(2, 3);
  auto b = Deal(2, 3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(VerifyShare(b->shares[0], a->commitments).code(), StatusCode::kUnauthenticated);
  std::vector<Share> mixed = Pick(a->shares, {0});
  mixed.push_back(b->shares[1].Clone());
  auto r = Combine(mixed, a->commitments);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("x=2"), std::string::npos);
}

TEST(VssTest, AShareWithTheWrongXFailsTheCommitmentCheck) {
  auto d = Deal(3, 5);
  ASSERT_TRUE(d.ok());
  Share moved = d->shares[2].Clone();
  moved.x = 4;  // holder 3's value presented as holder 4's
  EXPECT_EQ(VerifyShare(moved, d->commitments).code(), StatusCode::kUnauthenticated);
}

TEST(VssTest, TMinusOneGoodSharesPlusABadOneAreRefusedNotCombined) {
  auto d = Deal(3, 5);
  ASSERT_TRUE(d.ok());
  auto shares = Pick(d->shares, {0, 1, 2});
  shares[2].y.data()[0] ^= 1;
  auto r = Combine(shares, d->commitments);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("need 3 good shares, have 2"), std::string::npos);
  EXPECT_NE(r.status().message().find("x=3"), std::string::npos);
}

TEST(VssTest, FewerThanTSharesAreRefused) {
  auto d = Deal(4, 6);
  ASSERT_TRUE(d.ok());
  auto r = Combine(Pick(d->shares, {0, 3, 5}), d->commitments);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  // Interpolating t-1 shares as if they were enough gives a different secret.
  auto raw = InterpolateAtZero(Pick(d->shares, {0, 3, 5}));
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(raw->Equals(d->secret));
}

// A forged dealing: commitments {g^s, identity, identity} describe the
// constant polynomial s, so every "share" is the secret itself; and all
// identities with zero shares. Both pass the Feldman equation; both are
// refused.
TEST(VssTest, IdentityCommitmentsAndZeroSharesAreRefused) {
  auto one = Deal(1, 1);
  ASSERT_TRUE(one.ok());
  std::vector<Point> constant = {one->commitments[0], Point{}, Point{}};
  for (uint32_t x = 1; x <= 3; ++x) {
    Share s{x, one->secret.Clone()};
    Status st = VerifyShare(s, constant);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << x;
    EXPECT_NE(st.message().find("identity"), std::string::npos) << st.message();
  }
  std::vector<Share> held;
  for (uint32_t x = 1; x <= 3; ++x) held.push_back(Share{x, one->secret.Clone()});
  EXPECT_FALSE(Combine(held, constant).ok());
  const std::vector<Point> zeros(3);
  EXPECT_FALSE(VerifyShare(Share{1, SecretBytes(kScalarSize)}, zeros).ok());
  // A zero share against real commitments is refused as zero.
  auto d = Deal(3, 5);
  ASSERT_TRUE(d.ok());
  Status zero = VerifyShare(Share{1, SecretBytes(kScalarSize)}, d->commitments);
  EXPECT_NE(zero.message().find("zero"), std::string::npos) << zero.message();
}

TEST(VssTest, DuplicateOrZeroXIsAnError) {
  auto d = Deal(2, 3);
  ASSERT_TRUE(d.ok());
  auto dup = Pick(d->shares, {0, 0, 1});
  EXPECT_EQ(Combine(dup, d->commitments).status().code(), StatusCode::kInvalidArgument);
  auto zero = Pick(d->shares, {0, 1});
  zero[0].x = 0;
  EXPECT_EQ(Combine(zero, d->commitments).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyShare(zero[0], d->commitments).code(), StatusCode::kInvalidArgument);
}

TEST(VssTest, MismatchedCommitmentsAreRefused) {
  auto a = Deal(2, 3);
  auto b = Deal(2, 3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(Combine(a->shares, b->commitments).ok());
  // Wrong length: shares of a 2-of-3 dealing against 3 commitments.
  auto c = Deal(3, 3);
  EXPECT_FALSE(Combine(a->shares, c->commitments).ok());
  // A commitment that is not a point.
  auto bad = a->commitments;
  bad[1].fill(0xff);
  EXPECT_EQ(VerifyShare(a->shares[0], bad).code(), StatusCode::kInvalidArgument);
}

TEST(VssTest, AddingAZeroSecretDealingRefreshesSharesButKeepsTheKey) {
  const uint32_t t = 3, n = 5;
  auto d = Deal(t, n);
  ASSERT_TRUE(d.ok());
  auto zero = DealSecret(SecretBytes(kScalarSize), t, n);
  ASSERT_TRUE(zero.ok());
  auto commitments = AddCommitments(d->commitments, zero->commitments);
  ASSERT_TRUE(commitments.ok());
  EXPECT_EQ((*commitments)[0], d->commitments[0]);  // C_0 is unchanged
  std::vector<Share> fresh;
  for (uint32_t i = 0; i < n; ++i) {
    auto s = AddShares(d->shares[i], zero->shares[i]);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(s->y.Equals(d->shares[i].y)) << "share " << i << " did not change";
    EXPECT_TRUE(VerifyShare(*s, *commitments).ok());
    fresh.push_back(std::move(s).value());
  }
  auto r = Combine(Pick(fresh, {1, 3, 4}), *commitments);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->secret.Equals(d->secret));
  // Old and new shares do not mix.
  std::vector<Share> mixed = Pick(fresh, {0, 1});
  mixed.push_back(d->shares[2].Clone());
  EXPECT_FALSE(Combine(mixed, *commitments).ok());
}

TEST(VssTest, RejectsBadParameters) {
  EXPECT_FALSE(Deal(0, 3).ok());
  EXPECT_FALSE(Deal(4, 3).ok());
  EXPECT_FALSE(Deal(2, 256).ok());
  SecretBytes not_canonical(kScalarSize);
  for (size_t i = 0; i < kScalarSize; ++i) not_canonical.data()[i] = 0xff;
  EXPECT_FALSE(DealSecret(not_canonical, 2, 3).ok());
}

// The enrollment protocol end to end, for every threshold and every lost
// index: t helpers rebuild the lost share exactly, it verifies against the
// commitments, and no interpolation to the secret happens anywhere.
TEST(ShareRepairTest, THelpersRebuildALostShareWithoutTheSecret) {
  for (uint32_t t : {1u, 2u, 3u, 5u}) {
    const uint32_t n = t + 2;
    auto d = Deal(t, n);
    ASSERT_TRUE(d.ok());
    for (uint32_t lost = 1; lost <= n; ++lost) {
      std::vector<uint32_t> helpers;
      for (uint32_t x = 1; x <= n && helpers.size() < t; ++x) {
        if (x != lost) helpers.push_back(x);
      }
      const uint64_t before = InterpolationsForTest();
      // held[i]: the summands helper i received (its own included).
      std::vector<std::vector<SecretBytes>> held(t);
      for (size_t j = 0; j < t; ++j) {
        auto term = LagrangeTerm(d->shares[helpers[j] - 1], helpers, lost);
        ASSERT_TRUE(term.ok()) << term.status().ToString();
        auto parts = SplitIntoSummands(*term, t);
        ASSERT_TRUE(parts.ok());
        for (size_t i = 0; i < t; ++i) held[i].push_back(std::move((*parts)[i]));
      }
      std::vector<SecretBytes> sums;
      for (auto& h : held) sums.push_back(std::move(SumScalars(h)).value());
      Share rebuilt{lost, std::move(SumScalars(sums)).value()};
      EXPECT_TRUE(VerifyShare(rebuilt, d->commitments).ok()) << t << " " << lost;
      EXPECT_TRUE(rebuilt.y.Equals(d->shares[lost - 1].y)) << t << " " << lost;
      EXPECT_EQ(InterpolationsForTest(), before);
      // No single summand or partial sum is the lost share or a helper's.
      for (const auto& s : sums) {
        if (t > 1) {
          EXPECT_FALSE(s.Equals(rebuilt.y));
        }
      }
    }
  }
}

TEST(ShareRepairTest, FewerHelpersOrACheatingOneGiveAShareTheCommitmentsRefuse) {
  auto d = Deal(3, 5);
  // Two helpers of a threshold-3 dealing interpolate a line, not f.
  std::vector<uint32_t> two = {1, 2};
  std::vector<SecretBytes> terms;
  for (uint32_t x : two) terms.push_back(std::move(LagrangeTerm(d->shares[x - 1], two, 5)).value());
  Share wrong{5, std::move(SumScalars(terms)).value()};
  EXPECT_EQ(VerifyShare(wrong, d->commitments).code(), StatusCode::kUnauthenticated);
  // Three helpers, one of which adds noise.
  std::vector<uint32_t> three = {1, 2, 3};
  terms.clear();
  for (uint32_t x : three) {
    terms.push_back(std::move(LagrangeTerm(d->shares[x - 1], three, 5)).value());
  }
  terms[1].data()[0] ^= 1;
  Share cheated{5, std::move(SumScalars(terms)).value()};
  EXPECT_EQ(VerifyShare(cheated, d->commitments).code(), StatusCode::kUnauthenticated);
}

TEST(ShareRepairTest, BadHelperSetsAreRefused) {
  auto d = Deal(2, 4);
  const Share& s1 = d->shares[0];
  EXPECT_FALSE(LagrangeTerm(s1, std::vector<uint32_t>{2, 3}, 4).ok());  // not a helper
  EXPECT_FALSE(LagrangeTerm(s1, std::vector<uint32_t>{1, 1}, 4).ok());  // repeated
  EXPECT_FALSE(LagrangeTerm(s1, std::vector<uint32_t>{1, 4}, 4).ok());  // holds the target
  EXPECT_FALSE(LagrangeTerm(s1, std::vector<uint32_t>{1, 2}, 0).ok());  // the secret
  EXPECT_FALSE(LagrangeTerm(s1, std::vector<uint32_t>{}, 3).ok());
  EXPECT_FALSE(SplitIntoSummands(s1.y, 0).ok());
  SecretBytes big(32);
  std::memset(big.data(), 0xff, 32);
  std::vector<SecretBytes> parts;
  parts.push_back(std::move(big));
  EXPECT_FALSE(SumScalars(parts).ok());  // not canonical
}

TEST(KdfTest, LabelsAndContextsGiveIndependentKeys) {
  SecretBytes ikm = SecretBytes::Random(32);
  Bytes a = {1}, b = {2};
  SecretBytes k1 = DeriveKey(ikm, "label-a", a);
  EXPECT_TRUE(k1.Equals(DeriveKey(ikm, "label-a", a)));
  EXPECT_FALSE(k1.Equals(DeriveKey(ikm, "label-b", a)));
  EXPECT_FALSE(k1.Equals(DeriveKey(ikm, "label-a", b)));
  EXPECT_EQ(k1.size(), 32u);
}

}  // namespace
}  // namespace qv

namespace qv {
namespace {

// A holder proves it holds its share without showing it; what anyone can
// compute from the commitments (g^share) is not enough to prove it, a
// proof does not carry over to another challenge, and a wrong share fails.
TEST(ShareProofTest, OnlyTheHolderOfTheShareCanProveItForThisChallenge) {
  auto d = Deal(3, 6);
  ASSERT_TRUE(d.ok());
  const Bytes nonce = {1, 2, 3, 4};
  for (const auto& share : d->shares) {
    auto proof = ProveShare(share, nonce);
    ASSERT_TRUE(proof.ok());
    EXPECT_TRUE(VerifyShareProof(share.x, *proof, nonce, d->commitments).ok());
    auto back = DecodeShareProof(EncodeShareProof(*proof));
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(VerifyShareProof(share.x, *back, nonce, d->commitments).ok());
    // Replayed against a fresh challenge, or claimed for another holder.
    EXPECT_EQ(VerifyShareProof(share.x, *proof, Bytes{9}, d->commitments).code(),
              StatusCode::kUnauthenticated);
    EXPECT_EQ(VerifyShareProof(share.x % 6 + 1, *proof, nonce, d->commitments).code(),
              StatusCode::kUnauthenticated);
  }
  // A holder that lost its share and proves with a made-up value.
  Share made_up{2, SecretBytes(kScalarSize)};
  made_up.y.data()[0] = 7;
  auto forged = ProveShare(made_up, nonce);
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(VerifyShareProof(2, *forged, nonce, d->commitments).code(),
            StatusCode::kUnauthenticated);
  // Garbage is refused as malformed, never crashes.
  ShareProof junk;
  junk.r.fill(0xff);
  EXPECT_EQ(VerifyShareProof(1, junk, nonce, d->commitments).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeShareProof(Bytes(63)).ok());
}

}  // namespace
}  // namespace qv
