#include "base/status.h"

#include <gtest/gtest.h>

#include "base/bytes.h"

namespace qv {
namespace {

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd: " + std::to_string(v));
  return v / 2;
}

Status Quarter(int v, int* out) {
  QV_ASSIGN_OR_RETURN(int h, Half(v));
  QV_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(StatusTest, ErrorsCarryCodeAndMessage) {
  Status s = Corruption("fragment 3 is short");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_EQ(s.ToString(), "corruption: fragment 3 is short");
  EXPECT_EQ(s.WithContext("node-03").message(), "node-03: fragment 3 is short");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstError) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "odd: 3");
}

TEST(BytesTest, HexRoundTripsAndRejectsBadText) {
  Bytes b = {0x00, 0x7f, 0x80, 0xff};
  EXPECT_EQ(HexEncode(b), "007f80ff");
  auto back = HexDecode("007F80ff");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
  EXPECT_FALSE((HexDecodeFixed<2>("0011aa", "thing")).ok());
}

TEST(BytesTest, FormatBytesUsesBinaryUnits) {
  EXPECT_EQ(FormatBytes(999), "999 B");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(3ull << 30), "3.00 GiB");
}

}  // namespace
}  // namespace qv
