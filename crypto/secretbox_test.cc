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

}  // namespace
}  // namespace qv
