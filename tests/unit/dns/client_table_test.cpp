#include <string>

#include <gtest/gtest.h>

#include "ta/dns/client_table.hpp"

#include "dns_wire.hpp"

namespace ta::dns {
namespace {

using test::ip;

TEST(ClientTable, LatestAnswerToEachClientWins) {
  ClientTable t(16);
  const IpAddress c1 = ip("10.0.0.2");
  const IpAddress c2 = ip("10.0.0.3");
  const IpAddress server = ip("192.0.2.10");
  t.learn(c1, server, "a.test");
  t.learn(c2, server, "b.test");
  EXPECT_EQ(t.lookup(c1, server), "a.test");
  EXPECT_EQ(t.lookup(c2, server), "b.test");
  t.learn(c1, server, "c.test");
  EXPECT_EQ(t.lookup(c1, server), "c.test");
  EXPECT_EQ(t.lookup(c2, server), "b.test");
  EXPECT_FALSE(t.lookup(ip("10.0.0.4"), server));
  EXPECT_FALSE(t.lookup(c1, ip("192.0.2.11")));
  EXPECT_EQ(t.size(), 2U);
}

TEST(ClientTable, FullTableEvictsTheLeastRecentlyLearntPair) {
  ClientTable t(2);
  const IpAddress c = ip("fd00::2");
  t.learn(c, ip("2001:db8::1"), "one.test");
  t.learn(c, ip("2001:db8::2"), "two.test");
  t.learn(c, ip("2001:db8::1"), "one.test"); // refreshed: now the most recent
  t.learn(c, ip("2001:db8::3"), "three.test");
  EXPECT_EQ(t.lookup(c, ip("2001:db8::1")), "one.test");
  EXPECT_FALSE(t.lookup(c, ip("2001:db8::2")));
  EXPECT_EQ(t.lookup(c, ip("2001:db8::3")), "three.test");
  EXPECT_EQ(t.stats().evictions, 1U);
  EXPECT_EQ(t.size(), 2U);
}

TEST(ClientTable, ZeroCapacityLearnsNothing) {
  ClientTable t(0);
  t.learn(ip("10.0.0.2"), ip("192.0.2.1"), "x.test");
  EXPECT_FALSE(t.lookup(ip("10.0.0.2"), ip("192.0.2.1")));
}

TEST(ClientTable, ManyPairsStayFindableUpToCapacity) {
  ClientTable t(5000);
  for (int i = 0; i < 5000; ++i) {
    const IpAddress c =
        ip(("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250)).c_str());
    t.learn(c, ip("192.0.2.1"), "n" + std::to_string(i) + ".test");
  }
  for (int i = 0; i < 5000; i += 37) {
    const IpAddress c =
        ip(("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250)).c_str());
    EXPECT_EQ(t.lookup(c, ip("192.0.2.1")), "n" + std::to_string(i) + ".test");
  }
  EXPECT_EQ(t.stats().evictions, 0U);
}

} // namespace
} // namespace ta::dns
