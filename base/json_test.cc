#include "base/json.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

TEST(JsonTest, WritesNestedValuesWithCommas) {
  JsonWriter j;
  j.BeginObject()
      .Field("a", uint64_t{1})
      .Key("b")
      .BeginArray()
      .String("x")
      .Bool(true)
      .EndArray()
      .Field("c", 0.5)
      .EndObject();
  EXPECT_EQ(j.str(), R"({"a":1,"b":["x",true],"c":0.5})");
}

TEST(JsonTest, EscapesControlCharactersAndQuotes) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), R"("a\"b\\c\nd\u0001")");
}

}  // namespace
}  // namespace qv
