#include "base/wire.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

TEST(WireTest, RoundTripsEveryFieldType) {
  WireWriter w;
  std::array<uint8_t, 3> fixed = {7, 8, 9};
  w.U8(1).U32(0xdeadbeef).U64(1ull << 60).I64(-5).Str("héllo").Blob(AsBytes("ab")).Fixed(fixed);
  WireReader r(w.bytes());
  EXPECT_EQ(*r.U8(), 1);
  EXPECT_EQ(*r.U32(), 0xdeadbeefu);
  EXPECT_EQ(*r.U64(), 1ull << 60);
  EXPECT_EQ(*r.I64(), -5);
  EXPECT_EQ(*r.Str(64), "héllo");
  EXPECT_EQ(*r.Blob(64), Bytes({'a', 'b'}));
  EXPECT_EQ(*r.Fixed<3>(), fixed);
  EXPECT_TRUE(r.ExpectEnd().ok());
}

TEST(WireTest, EveryTruncationFailsCleanly) {
  WireWriter w;
  w.U32(5).Str("quorum").U64(9);
  const Bytes full = w.bytes();
  for (size_t cut = 0; cut < full.size(); ++cut) {
    WireReader r(ByteSpan(full.data(), cut));
    bool ok = r.U32().ok() && r.Str(64).ok() && r.U64().ok();
    EXPECT_FALSE(ok) << "cut at " << cut;
  }
}

TEST(WireTest, LengthAboveLimitFailsBeforeAllocating) {
  WireWriter w;
  w.U32(0xffffffff);
  WireReader r(w.bytes());
  auto s = r.Str(1024);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("exceeds the limit"), std::string::npos);
}

TEST(WireTest, TrailingBytesAreRejected) {
  WireWriter w;
  w.U8(1).U8(2);
  WireReader r(w.bytes());
  ASSERT_TRUE(r.U8().ok());
  EXPECT_FALSE(r.ExpectEnd().ok());
}

}  // namespace
}  // namespace qv
