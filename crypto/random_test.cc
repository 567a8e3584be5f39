#include "crypto/random.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <array>

#include "crypto/identity.h"

namespace qv {
namespace {

std::array<uint8_t, 48> Draw() {
  std::array<uint8_t, 48> out{};
  randombytes_buf(out.data(), out.size());
  return out;
}

TEST(RandomTest, TheSameSeedGivesTheSameKeysAndBytesAndAnotherSeedDoesNot) {
  UseSeededRandom(7);
  const auto a = Draw();
  auto key_a = SigningKey::Generate();
  UseSeededRandom(7);
  const auto b = Draw();
  auto key_b = SigningKey::Generate();
  UseSeededRandom(8);
  const auto c = Draw();
  UseSystemRandom();
  const auto d = Draw();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  ASSERT_TRUE(key_a.ok() && key_b.ok());
  EXPECT_EQ((*key_a)->public_key(), (*key_b)->public_key());
  // Draws in one run differ from one another.
  UseSeededRandom(7);
  EXPECT_NE(Draw(), Draw());
  UseSystemRandom();
}

}  // namespace
}  // namespace qv
