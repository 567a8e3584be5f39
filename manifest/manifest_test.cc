#include "manifest/manifest.h"

#include <gtest/gtest.h>

#include <functional>

#include "base/clock.h"
#include "base/file_util.h"

namespace qv {
namespace {

Manifest Sample() {
  Manifest m;
  for (size_t i = 0; i < m.backup_id.size(); ++i) m.backup_id[i] = static_cast<uint8_t>(i);
  m.artifact_name = "llama-mini";
  m.files = {{"config.json", 100, Sha256Of(AsBytes("a"))},
             {"model-00001-of-00002.safetensors", 5000, Sha256Of(AsBytes("b"))},
             {"tokenizer/with space.json", 0, Sha256Of({})}};
  m.plaintext_size = 5100;
  m.k = 4;
  m.m = 2;
  m.t = 3;
  m.unit_size = 1024;
  m.chunk_size = 4 * 1024 - 16;
  m.stripe_count = StripeCountFor(m.plaintext_size, m.chunk_size);
  auto d = Deal(3, 6);
  m.commitments = d->commitments;
  for (int f = 0; f < 6; ++f) m.fragment_roots.push_back(Sha256Of(AsBytes(std::to_string(f))));
  for (uint32_t f = 0; f < 6; ++f) {
    m.placement.push_back({f, "node-0" + std::to_string(f), "site-" + std::to_string(f / 2)});
  }
  m.created_unix = 1790000000;
  m.provenance.parent_backup = "";
  m.provenance.source_path = "/models/llama-mini";
  m.provenance.tool_version = "qv test";
  return m;
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override { key_ = std::move(SigningKey::Generate()).value(); }
  std::unique_ptr<SigningKey> key_;
};

TEST_F(ManifestTest, RoundTripsEveryField) {
  Manifest m = Sample();
  auto sm = SignedManifest::Sign(m, *key_);
  ASSERT_TRUE(sm.ok()) << sm.status().ToString();
  auto back = SignedManifest::Parse(sm->encoded(), &key_->public_key());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const Manifest& r = back->manifest();
  EXPECT_EQ(r.backup_id, m.backup_id);
  EXPECT_EQ(r.artifact_name, m.artifact_name);
  ASSERT_EQ(r.files.size(), 3u);
  EXPECT_EQ(r.files[2].path, "tokenizer/with space.json");
  EXPECT_EQ(r.files[1].sha256, m.files[1].sha256);
  EXPECT_EQ(r.commitments, m.commitments);
  EXPECT_EQ(r.fragment_roots, m.fragment_roots);
  EXPECT_EQ(r.placement[5].site, "site-2");
  EXPECT_EQ(r.stripe_count, 2u);
  EXPECT_EQ(r.provenance.creator, PublicKeyToText(key_->public_key()));
  EXPECT_EQ(r.cipher, CipherSuite::kChaCha20Poly1305);
  EXPECT_EQ(back->Hash(), sm->Hash());
}

TEST_F(ManifestTest, AnyFlippedByteIsRejected) {
  auto sm = SignedManifest::Sign(Sample(), *key_);
  ASSERT_TRUE(sm.ok());
  const Bytes& good = sm->encoded();
  for (size_t i = 0; i < good.size(); i += 7) {
    Bytes bad = good;
    bad[i] ^= 0x01;
    EXPECT_FALSE(SignedManifest::Parse(bad, nullptr).ok()) << "byte " << i;
  }
}

TEST_F(ManifestTest, BadSignatureIsNamed) {
  auto sm = SignedManifest::Sign(Sample(), *key_);
  Bytes bad = sm->encoded();
  bad[bad.size() - 1] ^= 0x80;
  auto r = SignedManifest::Parse(bad, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("signature"), std::string::npos);
}

TEST_F(ManifestTest, WrongSignerIsRefusedEvenWithAValidSignature) {
  auto sm = SignedManifest::Sign(Sample(), *key_);
  auto other = SigningKey::Generate();
  auto r = SignedManifest::Parse(sm->encoded(), &(*other)->public_key());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("expected"), std::string::npos);
}

TEST_F(ManifestTest, TruncationAtEveryLengthIsAClearError) {
  auto sm = SignedManifest::Sign(Sample(), *key_);
  const Bytes& good = sm->encoded();
  for (size_t len = 0; len < good.size(); len += (len < 200 ? 1 : 97)) {
    auto r = SignedManifest::Parse(ByteSpan(good.data(), len), nullptr);
    EXPECT_FALSE(r.ok()) << len;
  }
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_EQ(SignedManifest::Parse(longer, nullptr).status().code(), StatusCode::kCorruption);
}

TEST_F(ManifestTest, UnknownVersionIsRefusedBeforeParsing) {
  auto sm = SignedManifest::Sign(Sample(), *key_);
  Bytes future = sm->encoded();
  for (uint8_t v : {uint8_t{1}, uint8_t{Manifest::kFormatVersion + 1}}) {
    future[7] = v;
    auto r = SignedManifest::Parse(future, nullptr);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("version " + std::to_string(v)), std::string::npos);
  }
  Bytes not_manifest = sm->encoded();
  not_manifest[0] = 'X';
  EXPECT_EQ(SignedManifest::Parse(not_manifest, nullptr).status().code(), StatusCode::kCorruption);
}

TEST_F(ManifestTest, InconsistentManifestsAreNotSigned) {
  Manifest m = Sample();
  m.files[0].size += 1;  // sizes no longer add up
  EXPECT_FALSE(SignedManifest::Sign(m, *key_).ok());
  m = Sample();
  m.commitments.pop_back();
  EXPECT_FALSE(SignedManifest::Sign(m, *key_).ok());
  m = Sample();
  m.t = 7;
  EXPECT_FALSE(SignedManifest::Sign(m, *key_).ok());
  m = Sample();
  m.files[1].path = "../escape";
  EXPECT_FALSE(SignedManifest::Sign(m, *key_).ok());
  m = Sample();
  m.files[1].path = m.files[0].path;
  EXPECT_FALSE(SignedManifest::Sign(m, *key_).ok());
}

// What a hostile holder of the coordinator key signed for a node that lost
// its copy: identity commitments (a constant polynomial: every share is
// the key), a threshold of one for a custodied backup, an absurd date.
TEST_F(ManifestTest, ManifestsThatWouldHandOutTheKeyOrOverflowTimesAreNotSigned) {
  Manifest m = Sample();
  m.policy.custodians = {{"c1", key_->public_key()}};
  m.policy.quorum = 1;
  m.policy.max_request_seconds = 3600;
  m.policy.quorum_ops = {"restore"};
  ASSERT_TRUE(SignedManifest::Sign(m, *key_).ok());
  for (size_t j = 0; j < m.commitments.size(); ++j) {
    Manifest bad = m;
    bad.commitments[j].fill(0);
    auto s = SignedManifest::Sign(bad, *key_);
    ASSERT_FALSE(s.ok()) << j;
    EXPECT_NE(s.status().message().find("identity"), std::string::npos) << s.status().message();
  }
  Manifest one = m;
  one.t = 1;
  one.commitments.resize(1);
  auto s = SignedManifest::Sign(one, *key_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("t=1"), std::string::npos) << s.status().message();
  one.policy = Policy{};  // a local, uncustodied backup may use t=1
  EXPECT_TRUE(SignedManifest::Sign(one, *key_).ok());
  for (int64_t t : {INT64_MIN, int64_t{-1}, int64_t{0}, kMinPlausibleUnix - 1,
                    kMaxPlausibleUnix + 1, INT64_MAX}) {
    Manifest bad = m;
    bad.created_unix = t;
    EXPECT_FALSE(SignedManifest::Sign(bad, *key_).ok()) << t;
  }
}

TEST(PathTest, OnlyPlainRelativePathsAreAccepted) {
  for (const char* ok : {"a", "a/b.safetensors", "dir with space/x", ".hidden/x"}) {
    EXPECT_TRUE(ValidateRelativePath(ok).ok()) << ok;
  }
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "a/./b", "a/", "."}) {
    EXPECT_FALSE(ValidateRelativePath(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateRelativePath(std::string("a\0b", 3)).ok());
}

TEST(GeometryTest, StripeCountCoversEveryByteAndEmptyArtifacts) {
  EXPECT_EQ(StripeCountFor(0, 100), 1u);
  EXPECT_EQ(StripeCountFor(1, 100), 1u);
  EXPECT_EQ(StripeCountFor(100, 100), 1u);
  EXPECT_EQ(StripeCountFor(101, 100), 2u);
}

// The fixed key the format pins are signed with.
Result<std::unique_ptr<SigningKey>> PinnedKey() {
  SecretBytes seed(32);
  for (size_t i = 0; i < 32; ++i) seed.data()[i] = static_cast<uint8_t>(7 * i);
  return SigningKey::FromSeed(seed);
}

// The exact bytes of a version 3 manifest (canonical body, no library's
// archive format): deterministic fields and key, pinned by their SHA-256.
// Any change to the format must come with a new version.
TEST(ManifestFormatTest, Version3BytesArePinned) {
  Manifest m = Sample();
  m.commitments.assign(3, Point{});
  for (size_t i = 0; i < 3; ++i) m.commitments[i].fill(static_cast<uint8_t>(0x10 + i));
  m.policy.custodians = {{"c1", PublicKey{}}, {"c2", PublicKey{}}};
  m.policy.custodians[0].public_key.fill(1);
  m.policy.custodians[1].public_key.fill(2);
  m.policy.quorum = 2;
  m.policy.max_request_seconds = 86400;
  m.policy.quorum_ops = {"restore"};
  auto key = PinnedKey();
  auto sm = SignedManifest::Sign(m, **key);
  ASSERT_TRUE(sm.ok()) << sm.status().ToString();
  const Bytes& e = sm->encoded();
  EXPECT_EQ(HexEncode(ByteSpan(e.data(), 8)), "51564d4600000003");
  EXPECT_EQ(HexEncode(Sha256Of(e)),
            "11a4b3b379891d0c791c94526f71b0b2387d1c859226a9e7e26e93d465b0ef89");
  auto back = SignedManifest::Parse(e, &(*key)->public_key());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->encoded(), e);
  EXPECT_EQ(back->manifest().files.size(), 3u);
  EXPECT_EQ(back->manifest().policy.custodians[1].id, "c2");
}

// A version 2 manifest (a Boost text archive) written by the previous
// release still verifies and reads: old backups stay restorable.
TEST(ManifestFormatTest, AVersion2ManifestFromThePreviousReleaseStillReads) {
  auto bytes = ReadFileBytes(std::string(QV_VECTORS_DIR) + "/manifest-v2.bin", 1 << 20);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(HexEncode(ByteSpan(bytes->data(), 8)), "51564d4600000002");
  auto sm = SignedManifest::Parse(*bytes, nullptr);
  ASSERT_TRUE(sm.ok()) << sm.status().ToString();
  EXPECT_EQ(sm->manifest().artifact_name, "model");
  ASSERT_EQ(sm->manifest().files.size(), 2u);
  EXPECT_EQ(sm->manifest().files[1].path, "w.bin");
  EXPECT_EQ(sm->manifest().files[1].sha256, Sha256Of(AsBytes("weights-v2-fixture")));
  // Its signature covers its bytes: one flipped byte and it is refused.
  Bytes bad = *bytes;
  bad[40] ^= 1;
  EXPECT_FALSE(SignedManifest::Parse(bad, nullptr).ok());
}

// A repair's revision: format 4, naming the previous one by hash, read
// back with both; pinned like version 3.
TEST(ManifestFormatTest, Version4RevisionBytesArePinned) {
  Manifest m = Sample();
  m.commitments.assign(3, Point{});
  for (size_t i = 0; i < 3; ++i) m.commitments[i].fill(static_cast<uint8_t>(0x10 + i));
  m.revision = 1;
  m.previous.fill(0xab);
  auto key = PinnedKey();
  auto sm = SignedManifest::Sign(m, **key);
  ASSERT_TRUE(sm.ok()) << sm.status().ToString();
  const Bytes& e = sm->encoded();
  EXPECT_EQ(HexEncode(ByteSpan(e.data(), 8)), "51564d4600000004");
  EXPECT_EQ(HexEncode(Sha256Of(e)),
            "e68d8a7a227bb8134133584fde948c67e92830a8d88ab8bb62ccfddb474b5e89");
  auto back = SignedManifest::Parse(e, &(*key)->public_key());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->manifest().revision, 1u);
  EXPECT_EQ(back->manifest().previous, m.previous);
  // A revision without a previous hash, or a first one with one, is not signed.
  m.previous = Digest{};
  EXPECT_FALSE(SignedManifest::Sign(m, **key).ok());
  m.revision = 0;
  m.previous.fill(1);
  EXPECT_FALSE(SignedManifest::Sign(m, **key).ok());
}

// Tags and file times (issue 17): format 5, pinned like 3 and 4; a
// manifest without them keeps its earlier format (the pins above).
TEST(ManifestFormatTest, Version5LabelBytesArePinned) {
  Manifest m = Sample();
  m.commitments.assign(3, Point{});
  for (size_t i = 0; i < 3; ++i) m.commitments[i].fill(static_cast<uint8_t>(0x10 + i));
  m.tags = {"prod", "step-12000"};
  for (size_t i = 0; i < m.files.size(); ++i) m.files[i].mtime_unix = 1764600000 + int64_t(i);
  auto key = PinnedKey();
  auto sm = SignedManifest::Sign(m, **key);
  ASSERT_TRUE(sm.ok()) << sm.status().ToString();
  const Bytes& e = sm->encoded();
  EXPECT_EQ(HexEncode(ByteSpan(e.data(), 8)), "51564d4600000005");
  EXPECT_EQ(HexEncode(Sha256Of(e)),
            "8ae90ad1ba555f2160ef724a24bf2043a143b395c2267658a1ed48c864a9dbe3");
  auto back = SignedManifest::Parse(e, &(*key)->public_key());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->manifest().tags, m.tags);
  EXPECT_EQ(back->manifest().files[2].mtime_unix, 1764600002);
  EXPECT_EQ(back->encoded(), e);
  // A revision of it keeps its labels; only the placement may change.
  Manifest next = back->manifest();
  next.revision = 1;
  next.previous = back->Hash();
  next.placement[0].node_id = "node-09";
  auto rev = SignedManifest::Sign(next, **key);
  ASSERT_TRUE(rev.ok());
  std::vector<uint32_t> moved;
  EXPECT_TRUE(CheckSuccessor(*back, *rev, &moved).ok());
  next.tags.push_back("retagged");
  EXPECT_FALSE(CheckSuccessor(*back, *SignedManifest::Sign(next, **key), &moved).ok());
  // Bad tags are not signed.
  for (const char* bad : {"", "has space", "\x1b[2J", "x/y"}) {
    Manifest t = m;
    t.tags = {bad};
    EXPECT_FALSE(SignedManifest::Sign(t, **key).ok()) << bad;
  }
  Manifest dup = m;
  dup.tags = {"a", "a"};
  EXPECT_FALSE(SignedManifest::Sign(dup, **key).ok());
  dup.tags.assign(Manifest::kMaxTags + 1, "x");
  for (size_t i = 0; i < dup.tags.size(); ++i) dup.tags[i] += std::to_string(i);
  EXPECT_FALSE(SignedManifest::Sign(dup, **key).ok());
}

class SuccessorTest : public ManifestTest {
 protected:
  SignedManifest First() { return std::move(SignedManifest::Sign(Sample(), *key_)).value(); }
  Manifest Next(const SignedManifest& cur) {
    Manifest m = cur.manifest();
    m.revision = cur.manifest().revision + 1;
    m.previous = cur.Hash();
    m.placement[2] = {2, "node-09", "site-9"};
    return m;
  }
};

TEST_F(SuccessorTest, ARevisionThatOnlyMovesFragmentsFollows) {
  const SignedManifest a = First();
  auto b = SignedManifest::Sign(Next(a), *key_);
  std::vector<uint32_t> moved;
  ASSERT_TRUE(CheckSuccessor(a, *b, &moved).ok()) << CheckSuccessor(a, *b).ToString();
  EXPECT_EQ(moved, std::vector<uint32_t>{2});
}

TEST_F(SuccessorTest, EveryOtherChangeIsRefusedAndNamed) {
  const SignedManifest a = First();
  struct Case {
    const char* why;
    std::function<void(Manifest&)> change;
  };
  const std::vector<Case> cases = {
      {"not the next revision", [](Manifest& m) { m.revision = 2; }},
      {"names another previous", [](Manifest& m) { m.previous.fill(3); }},
      {"changes more than the placement", [](Manifest& m) { m.files[0].sha256.fill(9); }},
      {"changes more than the placement", [](Manifest& m) { m.fragment_roots[1].fill(9); }},
      {"changes more than the placement",
       [](Manifest& m) { m.policy.quorum_ops.push_back("repair"); }},
      {"changes more than the placement", [](Manifest& m) { m.artifact_name = "other"; }},
      {"would hold two fragments", [](Manifest& m) { m.placement[2].node_id = "node-01"; }},
      {"placed twice", [](Manifest& m) { m.placement[2].fragment = 1; }},
      {"placed in one and not the other", [](Manifest& m) { m.placement.pop_back(); }},
  };
  for (const auto& c : cases) {
    Manifest m = Next(a);
    c.change(m);
    auto b = SignedManifest::Sign(m, *key_);
    ASSERT_TRUE(b.ok()) << c.why << ": " << b.status().ToString();
    Status st = CheckSuccessor(a, *b);
    EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << c.why;
    EXPECT_NE(st.message().find(c.why), std::string::npos) << st.message();
  }
  auto other = SigningKey::Generate();
  auto b = SignedManifest::Sign(Next(a), **other);
  EXPECT_NE(CheckSuccessor(a, *b).message().find("signed by another key"), std::string::npos);
}

}  // namespace
}  // namespace qv
