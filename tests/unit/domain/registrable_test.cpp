// Expected keys come from the Public Suffix List's own rules (the entry
// quoted beside each case), not from running the code under test.
#include <string>

#include <gtest/gtest.h>

#include "ta/domain/registrable.hpp"

namespace {

using ta::domain::Grouper;
using ta::domain::Kind;

Grouper make(std::size_t cap = Grouper::default_max_cached) {
  auto g = Grouper::create(cap);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return std::move(g).value();
}

void expect_group(Grouper &g, std::string_view host, std::string_view key, Kind kind) {
  const auto r = g.group(host);
  EXPECT_EQ(r.key, key) << "host " << host;
  EXPECT_EQ(r.kind, kind) << "host " << host << " got " << ta::domain::kind_name(r.kind);
}

TEST(Domain, IcannSuffixes) {
  Grouper g = make();
  // ICANN section: "co.uk", "com".
  expect_group(g, "a.b.example.co.uk", "example.co.uk", Kind::registrable);
  expect_group(g, "example.co.uk", "example.co.uk", Kind::registrable);
  expect_group(g, "www.example.com", "example.com", Kind::registrable);
  // "*.ck" with the exception "!www.ck".
  expect_group(g, "x.shop.ck", "x.shop.ck", Kind::registrable);
  expect_group(g, "a.www.ck", "www.ck", Kind::registrable);
}

TEST(Domain, PrivateSuffixesAreTheirOwnDomains) {
  Grouper g = make();
  // Private section: "github.io", "blogspot.com", "s3.amazonaws.com".
  expect_group(g, "foo.github.io", "foo.github.io", Kind::registrable);
  expect_group(g, "x.foo.github.io", "foo.github.io", Kind::registrable);
  expect_group(g, "bar.github.io", "bar.github.io", Kind::registrable);
  expect_group(g, "me.blogspot.com", "me.blogspot.com", Kind::registrable);
  expect_group(g, "bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com", Kind::registrable);
}

TEST(Domain, GoogleVideoCachesGroupIntoOneDomain) {
  Grouper g = make();
  // googlevideo.com is not in the list: its suffix is "com".
  for (const char *h : {"rr1---sn-4g5e6nzz.googlevideo.com", "rr3---sn-q4fl6nsy.googlevideo.com",
                        "rr5---sn-ab5sznly.googlevideo.com", "redirector.googlevideo.com",
                        "RR2---SN-XXX.GoogleVideo.COM."}) {
    expect_group(g, h, "googlevideo.com", Kind::registrable);
  }
}

TEST(Domain, NamesThatArePublicSuffixes) {
  Grouper g = make();
  expect_group(g, "co.uk", "co.uk", Kind::public_suffix);
  expect_group(g, "github.io", "github.io", Kind::public_suffix);
  expect_group(g, "CO.UK.", "co.uk", Kind::public_suffix);
  expect_group(g, "shop.ck", "shop.ck", Kind::public_suffix); // "*.ck"
}

TEST(Domain, UnresolvedAndIpLiteralsStayAsTheyAre) {
  Grouper g = make();
  expect_group(g, "", "", Kind::unresolved);
  expect_group(g, "192.0.2.1", "192.0.2.1", Kind::ip_literal);
  expect_group(g, "10.1.2.3", "10.1.2.3", Kind::ip_literal);
  expect_group(g, "2001:db8::1", "2001:db8::1", Kind::ip_literal);
  expect_group(g, "2001:DB8::1", "2001:DB8::1", Kind::ip_literal);
  expect_group(g, "[2001:db8::1]", "[2001:db8::1]", Kind::ip_literal);
  expect_group(g, "::ffff:192.0.2.1", "::ffff:192.0.2.1", Kind::ip_literal);
  // Not addresses: a fifth number, a name made of hex letters.
  expect_group(g, "1.2.3.4.5", "4.5", Kind::registrable); // default rule "*": suffix "5"
  expect_group(g, "cafe.face", "cafe.face", Kind::registrable);
}

TEST(Domain, SingleLabelsTrailingDotsAndCase) {
  Grouper g = make();
  expect_group(g, "localhost", "localhost", Kind::single_label);
  expect_group(g, "LOCALHOST.", "localhost", Kind::single_label);
  expect_group(g, "com", "com", Kind::single_label);
  expect_group(g, "Www.Example.COM.", "example.com", Kind::registrable);
  // Unknown top-level label: the default rule "*".
  expect_group(g, "nas.home.internal", "home.internal", Kind::registrable);
}

TEST(Domain, HostileBytesAreNeverHandedToTheList) {
  Grouper g = make();
  using namespace std::string_literals;
  expect_group(g, "a..example.com", "a..example.com", Kind::not_a_name);
  expect_group(g, ".example.com", ".example.com", Kind::not_a_name);
  expect_group(g, "example.com..", "example.com.", Kind::not_a_name);
  expect_group(g, ".", ".", Kind::not_a_name);
  expect_group(g, "ex ample.com", "ex ample.com", Kind::not_a_name);
  expect_group(g, "a\0b.example.com"s, "a\0b.example.com"s, Kind::not_a_name);
  expect_group(g, "x\xff\xfe.example.com", "x\xff\xfe.example.com", Kind::not_a_name);
  expect_group(g, "caf\xc3\xa9.example.com", "caf\xc3\xa9.example.com", Kind::not_a_name);
  expect_group(g, "a\n.example.com", "a\n.example.com", Kind::not_a_name);
  const std::string label(63, 'a');
  std::string too_long = label + "." + label + "." + label + "." + label + ".com"; // 259 bytes
  expect_group(g, too_long, too_long, Kind::not_a_name);
  const std::string huge(100000, 'z');
  expect_group(g, huge, huge, Kind::not_a_name);
  // Underscores occur in real names (service labels) and stay names.
  expect_group(g, "_dmarc.mail.example.com", "example.com", Kind::registrable);
  // Punycode (A-labels) are plain LDH.
  expect_group(g, "www.xn--mnchen-3ya.de", "xn--mnchen-3ya.de", Kind::registrable);
}

TEST(Domain, CacheIsBoundedUnderANameFlood) {
  constexpr std::size_t cap = 1000;
  Grouper g = make(cap);
  for (int i = 0; i < 50000; ++i) {
    const auto r = g.group("n" + std::to_string(i) + ".flood.example.com");
    ASSERT_EQ(r.key, "example.com");
    ASSERT_LE(g.counters().entries, cap);
  }
  const auto c = g.counters();
  EXPECT_EQ(c.misses, 50000U);
  EXPECT_GT(c.generations_dropped, 0U);
}

TEST(Domain, NamesInSteadyUseStayCached) {
  Grouper g = make(100);
  for (int round = 0; round < 20; ++round) {
    (void)g.group("www.example.com");
    for (int i = 0; i < 30; ++i) {
      (void)g.group("n" + std::to_string(round * 100 + i) + ".example.org");
    }
  }
  // Looked up once per 31 names with 50 per generation: always found again.
  const auto before = g.counters().misses;
  (void)g.group("www.example.com");
  EXPECT_EQ(g.counters().misses, before);
}

} // namespace
