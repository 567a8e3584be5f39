#include "manifest/commit_record.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

class CommitRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SecretBytes seed(32);
    for (size_t i = 0; i < seed.size(); ++i) seed.data()[i] = static_cast<uint8_t>(i);
    key_ = std::move(SigningKey::FromSeed(seed)).value();
    id_.fill(0xab);
    hash_.fill(0x5c);
  }
  CommitRecord Make(int64_t deadline = 1790000600, int64_t now = 1790000000) {
    return CommitRecord::Sign(*key_, id_, hash_, deadline, now);
  }
  std::unique_ptr<SigningKey> key_;
  BackupId id_{};
  Digest hash_{};
};

// The exact bytes of a record: a format change must be a new version.
TEST_F(CommitRecordTest, EncodingIsPinned) {
  const Bytes e = Make().Encode();
  EXPECT_EQ(HexEncode(ByteSpan(e.data(), e.size() - kSignatureSize)),
            "5156434d00000001abababababababababababababababab5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c"
            "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c000000006ab13dd8000000006ab13b80");
  EXPECT_EQ(e.size(), 4 + 4 + 16 + 32 + 8 + 8 + kSignatureSize);
  auto parsed = CommitRecord::Parse(e);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Encode(), e);
  EXPECT_TRUE(parsed->Verify(key_->public_key(), id_, hash_).ok());
}

TEST_F(CommitRecordTest, OnlyTheCoordinatorsTimelyRecordForThisBackupVerifies) {
  const CommitRecord r = Make();
  auto other = SigningKey::Generate();
  EXPECT_FALSE(r.Verify((*other)->public_key(), id_, hash_).ok());
  BackupId id2 = id_;
  id2[0] ^= 1;
  EXPECT_FALSE(r.Verify(key_->public_key(), id2, hash_).ok());
  Digest h2 = hash_;
  h2[31] ^= 1;
  EXPECT_FALSE(r.Verify(key_->public_key(), id_, h2).ok());
  // Signed after its own deadline: refused even with a good signature.
  EXPECT_FALSE(Make(1790000000, 1790000001).Verify(key_->public_key(), id_, hash_).ok());
  const Bytes e = r.Encode();
  for (size_t i = 0; i < e.size(); ++i) {
    Bytes bad = e;
    bad[i] ^= 0x01;
    auto p = CommitRecord::Parse(bad);
    EXPECT_TRUE(!p.ok() || !p->Verify(key_->public_key(), id_, hash_).ok()) << i;
  }
  for (size_t n = 0; n < e.size(); ++n) {
    EXPECT_FALSE(CommitRecord::Parse(ByteSpan(e.data(), n)).ok()) << n;
  }
}

}  // namespace
}  // namespace qv
