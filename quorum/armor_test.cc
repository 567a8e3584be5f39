#include "quorum/armor.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 37 + 11);
  return b;
}

// Every length around the base64 and line boundaries reads back exactly.
TEST(ArmorTest, EveryLengthRoundTripsByteExact) {
  for (size_t n : {0, 1, 2, 3, 4, 47, 48, 49, 95, 96, 97, 300, 8192}) {
    const Bytes data = Pattern(n);
    const std::string armored = Armor(kArmorRequest, data);
    auto back = Dearmor(AsBytes(armored), kArmorRequest);
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().ToString();
    EXPECT_EQ(*back, data) << n;
    for (size_t at = 0; (at = armored.find('\n', at)) != std::string::npos; ++at) {
      const size_t next = armored.find('\n', at + 1);
      if (next != std::string::npos) {
        EXPECT_LE(next - at - 1, 64u);
      }
    }
  }
}

// The exact text, pinned: what one release writes another reads.
TEST(ArmorTest, TheFormatIsPinned) {
  EXPECT_EQ(Armor(kArmorApproval, AsBytes("QVAP\x01")),
            "-----BEGIN QUORUMVAULT APPROVAL-----\nUVZBUAE=\n-----END QUORUMVAULT APPROVAL-----\n");
}

// What a chat or ticket does to pasted text is undone; anything else is refused.
TEST(ArmorTest, PastedTextReadsBackAndDamageIsRefused) {
  const Bytes data = Pattern(200);
  std::string armored = Armor(kArmorRequest, data);
  std::string pasted = "Hi, please approve:\r\n\r\n";
  for (size_t at = 0, next; at < armored.size(); at = next + 1) {
    next = armored.find('\n', at);
    pasted += "    " + armored.substr(at, next - at) + "\r\n";
  }
  pasted += "Thanks!\n";
  auto back = Dearmor(AsBytes(pasted), kArmorRequest);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, data);
  EXPECT_TRUE(LooksArmored(AsBytes(pasted)));
  EXPECT_FALSE(LooksArmored(data));
  // Another kind, two blocks, no end, a stray character, a cut line.
  EXPECT_NE(Dearmor(AsBytes(armored), kArmorApproval)
                .status()
                .message()
                .find("armored REQUEST where an armored APPROVAL belongs"),
            std::string::npos);
  EXPECT_FALSE(Dearmor(AsBytes(armored + armored), kArmorRequest).ok());
  EXPECT_FALSE(Dearmor(AsBytes(armored.substr(0, armored.size() - 10)), kArmorRequest).ok());
  std::string stray = armored;
  stray[40] = '*';
  EXPECT_FALSE(Dearmor(AsBytes(stray), kArmorRequest).ok());
  std::string cut = armored;
  cut.erase(45, 3);
  EXPECT_FALSE(Dearmor(AsBytes(cut), kArmorRequest).ok());
  EXPECT_FALSE(Dearmor(AsBytes("no armor here"), kArmorRequest).ok());
  EXPECT_FALSE(Dearmor(Bytes(kMaxArmoredBytes + 1, 'A'), kArmorRequest).ok());
}

}  // namespace
}  // namespace qv
