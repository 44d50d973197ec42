// normalize_hostname (ta_common): the one normalisation of every name source.
#include <string>

#include <gtest/gtest.h>

#include "ta/common/hostname.hpp"

#include "test_util.hpp"

namespace ta {
namespace {

std::string norm(std::string_view raw) {
  std::string out = "previous content";
  normalize_hostname(tls::test::bytes(raw), out);
  return out;
}

TEST(NormalizeHostname, LowerCasesAsciiOnly) {
  EXPECT_EQ(norm("WWW.Example.COM"), "www.example.com");
  EXPECT_EQ(norm("_Sip._TCP.Example"), "_sip._tcp.example");
  // Bytes >= 0x80 (UTF-8 "É") and punctuation stay as they are.
  EXPECT_EQ(norm("\xC3\x89t\xC3\xA9.Fr"), "\xC3\x89t\xC3\xA9.fr");
  EXPECT_EQ(norm("A@B[]Z"), "a@b[]z");
  EXPECT_EQ(norm("[2001:DB8::1]"), "[2001:db8::1]");
}

TEST(NormalizeHostname, StripsOneTrailingDot) {
  EXPECT_EQ(norm("example.com."), "example.com");
  EXPECT_EQ(norm("example.com.."), "example.com.");
  EXPECT_EQ(norm("."), "");
  EXPECT_EQ(norm(""), "");
  EXPECT_EQ(norm(".a"), ".a");
}

TEST(NormalizeHostname, KeepsNulAndControlBytes) {
  const std::string raw("a\x00"
                        "B\x01\n",
                        5);
  EXPECT_EQ(norm(raw), std::string("a\x00"
                                   "b\x01\n",
                                   5));
}

} // namespace
} // namespace ta
