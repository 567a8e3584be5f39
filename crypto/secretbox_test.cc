#include "crypto/secretbox.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

TEST(SecretBoxTest, SealedSecretsOpenOnlyWithTheSameKeyAndContext) {
  SecretBytes master = SecretBytes::Random(32);
  SecretBytes secret = SecretBytes::Random(36);
  auto sealed = SealSecret(master, "share:1", secret);
  ASSERT_TRUE(sealed.ok());
  auto opened = OpenSecret(master, "share:1", *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->Equals(secret));
  EXPECT_EQ(OpenSecret(master, "share:2", *sealed).status().code(), StatusCode::kUnauthenticated);
  EXPECT_FALSE(OpenSecret(SecretBytes::Random(32), "share:1", *sealed).ok());
  Bytes tampered = *sealed;
  tampered.back() ^= 1;
  EXPECT_FALSE(OpenSecret(master, "share:1", tampered).ok());
  EXPECT_EQ(OpenSecret(master, "share:1", Bytes(10)).status().code(), StatusCode::kCorruption);
}

TEST(SecretBoxTest, SealingTwiceGivesDifferentBytes) {
  SecretBytes master = SecretBytes::Random(32);
  SecretBytes secret = SecretBytes::Random(32);
  EXPECT_NE(*SealSecret(master, "c", secret), *SealSecret(master, "c", secret));
}

TEST(SecretBoxTest, PossessionProofVerifiesOnlyForItsKeyPeerAndContext) {
  BoxKeyPair reply = NewBoxKeyPair();
  BoxKeyPair node = NewBoxKeyPair();  // stands for a node's X25519 static key
  BoxKeyPair other_node = NewBoxKeyPair();
  const Bytes context = {'r', 'e', 't', 'r', 'y'};
  auto proof = ProvePossession(reply, node.public_key, context);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(
      VerifyPossession(node.secret_key, node.public_key, reply.public_key, context, *proof).ok());
  // Another node, another context, another reply key, or an altered proof: refused.
  EXPECT_FALSE(VerifyPossession(other_node.secret_key, other_node.public_key, reply.public_key,
                                context, *proof)
                   .ok());
  EXPECT_FALSE(VerifyPossession(node.secret_key, node.public_key, reply.public_key,
                                Bytes{'r', 'e', 't', 'r', 'x'}, *proof)
                   .ok());
  EXPECT_FALSE(VerifyPossession(node.secret_key, node.public_key, NewBoxKeyPair().public_key,
                                context, *proof)
                   .ok());
  for (size_t i = 0; i < proof->size(); ++i) {
    PossessionProof bad = *proof;
    bad[i] ^= 1;
    EXPECT_FALSE(
        VerifyPossession(node.secret_key, node.public_key, reply.public_key, context, bad).ok());
  }
  EXPECT_FALSE(VerifyPossession(node.secret_key, node.public_key, reply.public_key, context,
                                ByteSpan(proof->data(), 31))
                   .ok());
}

}  // namespace
}  // namespace qv
