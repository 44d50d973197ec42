// The private helpers: label values, legacy names, listen addresses, EWMA.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "ewma.hpp"
#include "labels.hpp"
#include "listen.hpp"

namespace ta::metrics {
namespace {

using namespace std::string_literals;

TEST(Utf8Label, ValidTextIsUnchanged) {
  EXPECT_EQ(utf8_label("www.example.com"), "www.example.com");
  EXPECT_EQ(utf8_label(""), "");
  EXPECT_EQ(utf8_label("a\"b\\c\nd"), "a\"b\\c\nd"); // the serializer escapes these
  EXPECT_EQ(utf8_label("b\xC3\xBC\x63her.de"), "b\xC3\xBC\x63her.de"); // U+00FC
  EXPECT_EQ(utf8_label("\xE2\x82\xAC.\xF0\x9F\x98\x80"), "\xE2\x82\xAC.\xF0\x9F\x98\x80");
}

TEST(Utf8Label, InvalidBytesAndNulBecomeHexText) {
  EXPECT_EQ(utf8_label("a\xFFz"), "a\\xFFz");
  EXPECT_EQ(utf8_label("a\0z"s), "a\\x00z");
  EXPECT_EQ(utf8_label("\xC0\xAF"), "\\xC0\\xAF");                   // overlong '/'
  EXPECT_EQ(utf8_label("\xED\xA0\x80"), "\\xED\\xA0\\x80");          // surrogate U+D800
  EXPECT_EQ(utf8_label("\xF4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80"); // > U+10FFFF
  EXPECT_EQ(utf8_label("x\xE2\x82"), "x\\xE2\\x82");                 // truncated at the end
  EXPECT_EQ(utf8_label("\xC3(\x80"), "\\xC3(\\x80");                 // bad continuation
  EXPECT_EQ(utf8_label("\x80"), "\\x80");                            // lone continuation
}

TEST(LegacyHost, ReplacesNonWordBytesAndPrefixesDigits) {
  EXPECT_EQ(legacy_host("www.example.com"), "www_example_com");
  EXPECT_EQ(legacy_host("api-v2.Example.io"), "api_v2_Example_io");
  EXPECT_EQ(legacy_host("1e100.net"), "_1e100_net");
  EXPECT_EQ(legacy_host("b\xC3\xBC"), "b__"); // bytewise, like sed in the C locale
  EXPECT_EQ(legacy_host("a\"\n\0"s), "a___");
  EXPECT_EQ(legacy_host(""), "");
}

TEST(ParseListen, AcceptsNumericAddressAndPort) {
  auto a = parse_listen("0.0.0.0:9100");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_FALSE(a->ipv6);
  EXPECT_EQ(a->port, 9100);
  EXPECT_EQ(a->with_port(80), "0.0.0.0:80");

  a = parse_listen("[::]:9100");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::");
  EXPECT_TRUE(a->ipv6);
  EXPECT_EQ(a->with_port(0), "[::]:0");
  EXPECT_TRUE(parse_listen("127.0.0.1:0"));
  EXPECT_TRUE(parse_listen("[::1]:65535"));
}

TEST(ParseListen, RejectsEverythingElse) {
  for (const char *bad :
       {"", "9100", ":9100", "0.0.0.0", "0.0.0.0:", "0.0.0.0:65536", "0.0.0.0:-1", "0.0.0.0:91a0",
        "localhost:9100", "::1:9100", "[::1]", "[0.0.0.0]:9100", "1.2.3:80", "0.0.0.0:123456"}) {
    EXPECT_FALSE(parse_listen(bad)) << bad;
  }
}

TEST(Ewma, FollowsDropwizardOneMinuteRate) {
  const double alpha = Ewma::alpha(std::chrono::seconds(5), std::chrono::seconds(60));
  EXPECT_DOUBLE_EQ(alpha, 1.0 - std::exp(-5.0 / 60.0));
  Ewma m;
  EXPECT_EQ(m.rate(), 0.0);
  m.mark(300);
  m.mark(200);
  EXPECT_DOUBLE_EQ(m.tick(alpha, 5.0), 100.0); // first tick: the instant rate
  double expected = 100.0;
  for (int i = 0; i < 12; ++i) { // a quiet minute decays by exp(-1)
    expected += alpha * (0.0 - expected);
    EXPECT_DOUBLE_EQ(m.tick(alpha, 5.0), expected);
  }
  EXPECT_NEAR(m.rate(), 100.0 * std::exp(-1.0), 1e-9);
  m.mark(50); // 10/s
  EXPECT_DOUBLE_EQ(m.tick(alpha, 5.0), expected + alpha * (10.0 - expected));
}

TEST(Ewma, FirstTickWithoutEventsStartsAtZero) {
  const double alpha = Ewma::alpha(std::chrono::seconds(5), std::chrono::seconds(60));
  Ewma m;
  EXPECT_EQ(m.tick(alpha, 5.0), 0.0);
  m.mark(5); // 1/s, but the first tick already happened: smoothed
  EXPECT_DOUBLE_EQ(m.tick(alpha, 5.0), alpha * 1.0);
}

} // namespace
} // namespace ta::metrics
