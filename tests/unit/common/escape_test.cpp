// escape_name / unescape_name: names as text (ta/common/escape.hpp). The
// expected strings are written out by hand from the rule in the header.
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/common/escape.hpp"

namespace ta {
namespace {

using namespace std::string_literals;

TEST(EscapeName, KeepsPrintableAsciiAndValidUtf8) {
  EXPECT_EQ(escape_name("www.example.com"), "www.example.com");
  EXPECT_EQ(escape_name(""), "");
  EXPECT_EQ(escape_name("b\xc3\xbc"
                        "cher.de"),
            "b\xc3\xbc"
            "cher.de");                                           // U+00FC
  EXPECT_EQ(escape_name("\xe2\x82\xac"), "\xe2\x82\xac");         // U+20AC
  EXPECT_EQ(escape_name("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80"); // U+1F600
  EXPECT_EQ(escape_name("\xc2\xa0"), "\xc2\xa0");                 // U+00A0, first past C1
}

TEST(EscapeName, EscapesBytesOutsideUtf8ControlsAndTheBackslash) {
  EXPECT_EQ(escape_name("a\xfe"
                        "b"),
            "a\\xfeb");
  EXPECT_EQ(escape_name("a\xff"
                        "b"),
            "a\\xffb");
  EXPECT_EQ(escape_name("nul\0byte"s), "nul\\x00byte");
  EXPECT_EQ(escape_name("esc\x1b[31m"), "esc\\x1b[31m");
  EXPECT_EQ(escape_name("a\nb\rc\td\x7f"), "a\\x0ab\\x0dc\\x09d\\x7f");
  EXPECT_EQ(escape_name("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(escape_name("\xc2\x9b"), "\\xc2\\x9b");                   // C1 CSI
  EXPECT_EQ(escape_name("\xc0\xaf"), "\\xc0\\xaf");                   // overlong '/'
  EXPECT_EQ(escape_name("\xed\xa0\x80"), "\\xed\\xa0\\x80");          // a surrogate
  EXPECT_EQ(escape_name("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); // > U+10FFFF
  EXPECT_EQ(escape_name("\xe2\x82"), "\\xe2\\x82");                   // truncated
  EXPECT_EQ(escape_name("\xc3"), "\\xc3");
}

TEST(EscapeName, OutputIsPrintableValidUtf8) {
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all += static_cast<char>(b);
  }
  const std::string out = escape_name(all);
  for (std::size_t i = 0; i < out.size();) {
    const std::size_t len = utf8_sequence_length(out, i);
    ASSERT_GT(len, 0U) << i;
    ASSERT_TRUE(len > 1 || (out[i] >= 0x20 && out[i] != 0x7f)) << i;
    i += len;
  }
}

// Every byte string of length up to 2, and some longer ones: escaping is
// injective (distinct names print distinctly) and unescape_name inverts it.
TEST(EscapeName, RoundTripsAndKeepsNamesDistinct) {
  std::vector<std::string> names = {"",
                                    "a\xfe"
                                    "b",
                                    "a\xff"
                                    "b",
                                    "a\\xfeb",
                                    "a\\x5cb",
                                    "\\",
                                    "\\x",
                                    "\xe2\x82\xac\xe2\x82",
                                    "x\0y"s,
                                    "\xf0\x9f\x98\x80\xf0"};
  for (int a = 0; a < 256; ++a) {
    names.emplace_back(1, static_cast<char>(a));
    for (int b = 0; b < 256; ++b) {
      names.push_back(std::string{static_cast<char>(a), static_cast<char>(b)});
    }
  }
  std::set<std::string> seen;
  for (const auto &name : names) {
    const std::string text = escape_name(name);
    EXPECT_EQ(unescape_name(text), name) << text;
    seen.insert(text);
  }
  EXPECT_EQ(seen.size(), std::set<std::string>(names.begin(), names.end()).size());
  EXPECT_NE(escape_name("a\xfe"
                        "b"),
            escape_name("a\xff"
                        "b"));
}

TEST(UnescapeName, AcceptsEitherHexCaseAndRefusesBrokenEscapes) {
  EXPECT_EQ(unescape_name("a\\xFEb"), "a\xfe"
                                      "b");
  EXPECT_EQ(unescape_name("plain.example"), "plain.example");
  EXPECT_EQ(unescape_name("a\\b"), std::nullopt);
  EXPECT_EQ(unescape_name("a\\x4"), std::nullopt);
  EXPECT_EQ(unescape_name("a\\xg0"), std::nullopt);
  EXPECT_EQ(unescape_name("\\"), std::nullopt);
}

} // namespace
} // namespace ta
