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
  JsonWriter j;
  j.String("a\"b\\c\nd\x01");
  EXPECT_EQ(j.str(), R"("a\"b\\c\nd\u0001")");
}

// What used to break: bytes that are not UTF-8 (a file name) made output no
// parser accepts, and large integers came out as 1.23457e+08.
TEST(JsonTest, InvalidUtf8StillParsesAndLargeNumbersStayExact) {
  JsonWriter j;
  j.BeginObject()
      .Field("path", std::string_view("w\xff\xfe.bin"))
      .Field("bytes", uint64_t{123456789012})
      .Field("max", uint64_t{UINT64_MAX})
      .Key("nested")
      .BeginArray()
      .BeginObject()
      .Field("x", uint64_t{1})
      .EndObject()
      .EndArray()
      .EndObject();
  auto parsed = nlohmann::json::parse(j.str());
  EXPECT_EQ(parsed["path"].get<std::string>(), "w\xEF\xBF\xBD\xEF\xBF\xBD.bin");
  EXPECT_EQ(parsed["bytes"].get<uint64_t>(), 123456789012u);
  EXPECT_EQ(parsed["max"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(parsed["nested"][0]["x"].get<int>(), 1);
  EXPECT_NE(j.str().find("123456789012"), std::string::npos);
}

}  // namespace
}  // namespace qv
