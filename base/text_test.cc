#include "base/text.h"

#include <gtest/gtest.h>

#include <cctype>

namespace qv {
namespace {

struct TextCase {
  const char* name;
  std::string text;
  bool acceptable;
  std::string printed;
};

class DisplayTextTest : public ::testing::TestWithParam<TextCase> {};

TEST_P(DisplayTextTest, IsCheckedAndPrintedEscaped) {
  const TextCase& c = GetParam();
  Status st = CheckDisplayText("purpose", c.text);
  EXPECT_EQ(st.ok(), c.acceptable) << st.ToString();
  if (!st.ok()) {
    EXPECT_EQ(st.message().rfind("purpose: ", 0), 0u) << st.message();
  }
  EXPECT_EQ(Printable(c.text), c.printed);
  // What is printed never holds a byte a terminal would act on.
  for (unsigned char ch : Printable(c.text)) {
    EXPECT_TRUE(ch >= 0x20 && ch != 0x7F) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DisplayTextTest,
    ::testing::Values(TextCase{"plain", "quarterly DR drill", true, "quarterly DR drill"},
                      TextCase{"empty", "", true, ""},
                      TextCase{"utf8", "Überprüfung – 模型", true, "Überprüfung – 模型"},
                      TextCase{"emoji", "\xF0\x9F\x94\x91 key", true, "\xF0\x9F\x94\x91 key"},
                      TextCase{"backslash", "a\\e", true, "a\\\\e"},
                      TextCase{"overwrite attack", "copy weights\r\033[2K  purpose: DR drill",
                               false, "copy weights\\r\\e[2K  purpose: DR drill"},
                      TextCase{"newline", "a\nb", false, "a\\nb"},
                      TextCase{"tab", "a\tb", false, "a\\tb"},
                      TextCase{"nul", std::string("a\0b", 3), false, "a\\x00b"},
                      TextCase{"del", "a\x7f", false, "a\\x7f"},
                      TextCase{"c1 csi",
                               "a\xC2\x9B"
                               "2J",
                               false, "a\\u{009B}2J"},
                      TextCase{"bidi override",
                               "abc\xE2\x80\xAE"
                               "fed",
                               false, "abc\\u{202E}fed"},
                      TextCase{"bidi isolate", "\xE2\x81\xA6x", false, "\\u{2066}x"},
                      TextCase{"line separator",
                               "a\xE2\x80\xA8"
                               "b",
                               false, "a\\u{2028}b"},
                      TextCase{"lone continuation", "a\x80", false, "a\\x80"},
                      TextCase{"overlong slash", "\xC0\xAF", false, "\\xc0\\xaf"},
                      TextCase{"surrogate", "\xED\xA0\x80", false, "\\xed\\xa0\\x80"},
                      TextCase{"past U+10FFFF", "\xF4\x90\x80\x80", false, "\\xf4\\x90\\x80\\x80"},
                      TextCase{"truncated", "ab\xE6\xA8", false, "ab\\xe6\\xa8"}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& ch : n) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

TEST(DisplayTextTest, ErrorNamesTheByteOffset) {
  EXPECT_EQ(CheckDisplayText("destination", "abc\x1b").message(),
            "destination: control character U+001B at byte 3 (not allowed in text people read)");
  EXPECT_EQ(CheckDisplayText("note", "ok\xff").message(), "note: invalid UTF-8 at byte 2");
}

}  // namespace
}  // namespace qv
