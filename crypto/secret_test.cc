#include "crypto/secret.h"

#include <gtest/gtest.h>

#include <type_traits>

namespace qv {
namespace {

TEST(SecretBytesTest, StartsZeroedAndComparesByContent) {
  SecretBytes a(32);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.data()[i], 0);
  SecretBytes b = SecretBytes::Random(32);
  SecretBytes c = b.Clone();
  EXPECT_TRUE(b.Equals(c));
  EXPECT_FALSE(a.Equals(b));
  c.data()[31] ^= 1;
  EXPECT_FALSE(b.Equals(c));
  EXPECT_FALSE(b.Equals(SecretBytes(16)));
}

TEST(SecretBytesTest, MovesLeaveTheSourceEmpty) {
  SecretBytes a = SecretBytes::Random(8);
  SecretBytes b = std::move(a);
  EXPECT_EQ(b.size(), 8u);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_EQ(a.data(), nullptr);
}

TEST(SecretBytesTest, IsNotCopyable) {
  static_assert(!std::is_copy_constructible_v<SecretBytes>);
  static_assert(!std::is_copy_assignable_v<SecretBytes>);
}

}  // namespace
}  // namespace qv
