#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "ta/dns/address_table.hpp"

#include "dns_wire.hpp"

namespace ta::dns {
namespace {

using test::ip;

IpAddress v4(std::uint32_t n) {
  IpAddress a;
  a.family = 4;
  a.bytes[0] = static_cast<std::uint8_t>(n >> 24U);
  a.bytes[1] = static_cast<std::uint8_t>(n >> 16U);
  a.bytes[2] = static_cast<std::uint8_t>(n >> 8U);
  a.bytes[3] = static_cast<std::uint8_t>(n);
  return a;
}

std::string name_of(const AddressTable &t, const IpAddress &a) {
  const auto id = t.lookup(a);
  return id ? std::string(t.name(*id)) : std::string("<none>");
}

struct Row {
  std::string address;
  std::string name;
  TimeUs first;
  TimeUs last;
  friend bool operator==(const Row &, const Row &) = default;
};

std::vector<Row> rows(const AddressTable &t) {
  std::vector<Row> out;
  t.for_each([&](const IpAddress &a, std::string_view n, TimeUs first, TimeUs last) {
    out.push_back({a.to_string(), std::string(n), first, last});
  });
  return out;
}

TEST(AddressTable, LookupUnknown) {
  AddressTable t(16);
  EXPECT_FALSE(t.lookup(ip("192.0.2.1")).has_value());
  EXPECT_EQ(t.size(), 0U);
  EXPECT_EQ(t.capacity(), 16U);
}

TEST(AddressTable, LatestAnswerWins) {
  AddressTable t(16);
  t.learn(ip("192.0.2.1"), "a.example", 10);
  EXPECT_EQ(name_of(t, ip("192.0.2.1")), "a.example");
  t.learn(ip("192.0.2.1"), "b.example", 20);
  EXPECT_EQ(name_of(t, ip("192.0.2.1")), "b.example");
  EXPECT_EQ(t.stats().learnt, 2U);
  EXPECT_EQ(t.stats().replaced, 1U);
  EXPECT_EQ(t.size(), 1U);
  // first_learnt restarts with the new name.
  EXPECT_EQ(rows(t), (std::vector<Row>{{"192.0.2.1", "b.example", 20, 20}}));
}

TEST(AddressTable, SameNameRefreshes) {
  AddressTable t(16);
  t.learn(ip("192.0.2.1"), "a.example", 10);
  t.learn(ip("192.0.2.1"), "a.example", 30);
  EXPECT_EQ(t.stats().replaced, 0U);
  EXPECT_EQ(rows(t), (std::vector<Row>{{"192.0.2.1", "a.example", 10, 30}}));
}

TEST(AddressTable, V4AndV6AreDistinct) {
  AddressTable t(16);
  t.learn(ip("192.0.2.1"), "four", 1);
  t.learn(ip("2001:db8::1"), "six", 2);
  t.learn(ip("::ffff:192.0.2.1"), "mapped", 3);
  EXPECT_EQ(name_of(t, ip("192.0.2.1")), "four");
  EXPECT_EQ(name_of(t, ip("2001:db8::1")), "six");
  EXPECT_EQ(name_of(t, ip("::ffff:192.0.2.1")), "mapped");
  EXPECT_EQ(t.size(), 3U);
}

TEST(AddressTable, NamesAreInterned) {
  AddressTable t(16);
  t.learn(ip("192.0.2.1"), "cdn.example", 1);
  t.learn(ip("192.0.2.2"), "cdn.example", 1);
  EXPECT_EQ(t.lookup(ip("192.0.2.1")), t.lookup(ip("192.0.2.2")));
  EXPECT_EQ(t.name_count(), 1U);
}

TEST(AddressTable, EvictsLeastRecentlyLearnt) {
  AddressTable t(3);
  t.learn(ip("10.0.0.1"), "one", 1);
  t.learn(ip("10.0.0.2"), "two", 2);
  t.learn(ip("10.0.0.3"), "three", 3);
  t.learn(ip("10.0.0.1"), "one", 4); // refresh: 2 is now the oldest
  t.learn(ip("10.0.0.4"), "four", 5);
  EXPECT_EQ(t.size(), 3U);
  EXPECT_EQ(t.stats().evictions, 1U);
  EXPECT_FALSE(t.lookup(ip("10.0.0.2")).has_value());
  EXPECT_EQ(name_of(t, ip("10.0.0.1")), "one");
  EXPECT_EQ(name_of(t, ip("10.0.0.3")), "three");
  EXPECT_EQ(name_of(t, ip("10.0.0.4")), "four");
  // Lookups do not refresh: learn order alone decides.
  (void)t.lookup(ip("10.0.0.3"));
  t.learn(ip("10.0.0.5"), "five", 6);
  EXPECT_FALSE(t.lookup(ip("10.0.0.3")).has_value());
}

TEST(AddressTable, ForEachLeastRecentlyLearntFirst) {
  AddressTable t(8);
  t.learn(ip("10.0.0.1"), "a", 1);
  t.learn(ip("10.0.0.2"), "b", 2);
  t.learn(ip("2001:db8::3"), "c", 3);
  t.learn(ip("10.0.0.1"), "a", 4);
  t.learn(ip("10.0.0.2"), "bb", 5);
  EXPECT_EQ(rows(t),
            (std::vector<Row>{
                {"2001:db8::3", "c", 3, 3}, {"10.0.0.1", "a", 1, 4}, {"10.0.0.2", "bb", 5, 5}}));
}

TEST(AddressTable, ReleaseUnusedKeepsInUseNames) {
  AddressTable t(3);
  t.learn(ip("10.0.0.1"), "kept", 1);
  t.learn(ip("10.0.0.2"), "replaced", 2);
  const NameId replaced = *t.lookup(ip("10.0.0.2"));
  const NameId kept = *t.lookup(ip("10.0.0.1"));
  t.learn(ip("10.0.0.2"), "newer", 3); // "replaced" now unreferenced
  t.learn(ip("10.0.0.3"), "third", 4);
  t.learn(ip("10.0.0.4"), "kept", 5); // evicts 10.0.0.1; "kept" stays referenced
  // Until release_unused, every id handed out still reads back.
  EXPECT_EQ(t.name(replaced), "replaced");
  EXPECT_EQ(t.name(kept), "kept");
  EXPECT_EQ(t.name_count(), 4U);
  t.release_unused();
  EXPECT_EQ(t.name_count(), 3U);
  EXPECT_EQ(t.name(replaced), "");
  EXPECT_EQ(t.name(kept), "kept");
  EXPECT_EQ(name_of(t, ip("10.0.0.4")), "kept");
  EXPECT_EQ(name_of(t, ip("10.0.0.2")), "newer");
  // The freed id is reused by a new name.
  t.learn(ip("10.0.0.5"), "fresh", 6);
  EXPECT_EQ(name_of(t, ip("10.0.0.5")), "fresh");
  EXPECT_EQ(name_of(t, ip("10.0.0.4")), "kept");
  t.release_unused();
  EXPECT_EQ(name_of(t, ip("10.0.0.5")), "fresh");
  EXPECT_EQ(name_of(t, ip("10.0.0.4")), "kept");
}

TEST(AddressTable, NameRevivedBeforeReleaseSurvives) {
  AddressTable t(4);
  t.learn(ip("10.0.0.1"), "x", 1);
  t.learn(ip("10.0.0.1"), "y", 2); // x unused
  t.learn(ip("10.0.0.2"), "x", 3); // x used again
  t.release_unused();
  EXPECT_EQ(name_of(t, ip("10.0.0.2")), "x");
  EXPECT_EQ(t.name_count(), 2U);
}

TEST(AddressTable, ZeroCapacityLearnsNothing) {
  AddressTable t(0);
  t.learn(ip("10.0.0.1"), "x", 1);
  EXPECT_EQ(t.size(), 0U);
  EXPECT_FALSE(t.lookup(ip("10.0.0.1")).has_value());
}

// Against a simple model: many addresses churning through a small table,
// with periodic releases. Exercises index growth, deletion and slot reuse.
TEST(AddressTable, MatchesModelUnderChurn) {
  constexpr std::size_t kCap = 300;
  AddressTable t(kCap);
  // Model: address -> (name, first, last), plus learn order.
  std::map<IpAddress, std::tuple<std::string, TimeUs, TimeUs>> model;
  std::vector<IpAddress> order; // least recent first
  std::mt19937 rng(42);
  for (TimeUs now = 1; now <= 20000; ++now) {
    const IpAddress a = (rng() % 3 == 0)
                            ? ip("2001:db8::" + std::to_string(rng() % 700 + 1))
                            : v4(0x0A000000U + static_cast<std::uint32_t>(rng() % 700));
    const std::string n = "h" + std::to_string(rng() % 50) + ".example";
    t.learn(a, n, now);
    auto it = model.find(a);
    if (it != model.end()) {
      auto &[mn, mfirst, mlast] = it->second;
      if (mn != n) {
        mn = n;
        mfirst = now;
      }
      mlast = now;
      std::erase(order, a);
    } else {
      if (model.size() == kCap) {
        model.erase(order.front());
        order.erase(order.begin());
      }
      model.emplace(a, std::make_tuple(n, now, now));
    }
    order.push_back(a);
    if (now % 997 == 0) {
      t.release_unused();
    }
    if (now % 1000 == 0) {
      ASSERT_EQ(t.size(), model.size());
      std::size_t i = 0;
      t.for_each([&](const IpAddress &addr, std::string_view nm, TimeUs first, TimeUs last) {
        ASSERT_LT(i, order.size());
        EXPECT_EQ(addr, order[i]);
        const auto &[mn, mfirst, mlast] = model.at(addr);
        EXPECT_EQ(nm, mn);
        EXPECT_EQ(first, mfirst);
        EXPECT_EQ(last, mlast);
        ++i;
      });
      for (const auto &[addr, v] : model) {
        EXPECT_EQ(name_of(t, addr), std::get<0>(v));
      }
    }
  }
  EXPECT_GT(t.stats().evictions, 0U);
  EXPECT_GT(t.stats().replaced, 0U);
  t.release_unused();
  EXPECT_LE(t.name_count(), 50U);
}

} // namespace
} // namespace ta::dns
