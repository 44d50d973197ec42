// The SQLite backend's per-batch roll-up aggregation (private header).
#include <map>
#include <random>
#include <tuple>

#include <gtest/gtest.h>

#include "rollup_table.hpp"

namespace ta::store::detail {
namespace {

TEST(RollupTable, AggregatesLikeAMapAcrossGrowthAndReuse) {
  RollupTable table;
  std::mt19937_64 rng(7);
  for (int round = 0; round < 3; ++round) { // reuse after clear()
    table.clear();
    using Key = std::tuple<std::int64_t, std::int64_t, IpAddress>;
    struct Sum {
      std::int64_t packets = 0, bytes = 0;
      TimeUs first = 0, last = 0;
    };
    std::map<Key, Sum> expect;
    for (int i = 0; i < 50'000; ++i) {
      IpAddress a;
      a.family = rng() % 3 == 0 ? 6 : 4;
      a.bytes[0] = static_cast<std::uint8_t>(rng() % 200);
      a.bytes[1] = static_cast<std::uint8_t>(rng() % 8);
      const auto eid = static_cast<std::int64_t>(rng() % 5 + 1);
      const auto ts = static_cast<TimeUs>(rng() % 20'000'000) - 5'000'000;
      const std::int64_t second = ts >= 0 ? ts / 1'000'000 : -((-ts + 999'999) / 1'000'000);
      const auto bytes = static_cast<std::int64_t>(rng() % 1500);
      table.add(RollupKey{eid, second, a}, bytes, ts);
      auto [it, fresh] = expect.try_emplace(Key{eid, second, a});
      Sum &s = it->second;
      if (fresh) {
        s.first = s.last = ts;
      }
      s.packets += 1;
      s.bytes += bytes;
      s.first = std::min(s.first, ts);
      s.last = std::max(s.last, ts);
    }
    ASSERT_EQ(table.entries().size(), expect.size());
    for (const Rollup &r : table.entries()) {
      const auto it = expect.find(Key{r.key.endpoint_id, r.key.second, r.key.address});
      ASSERT_NE(it, expect.end());
      EXPECT_EQ(r.packets, it->second.packets);
      EXPECT_EQ(r.bytes, it->second.bytes);
      EXPECT_EQ(r.first_us, it->second.first);
      EXPECT_EQ(r.last_us, it->second.last);
    }
    table.sort_by_key();
    const auto entries = table.entries();
    for (std::size_t i = 1; i < entries.size(); ++i) {
      const RollupKey &a = entries[i - 1].key;
      const RollupKey &b = entries[i].key;
      ASSERT_TRUE(std::tie(a.endpoint_id, a.second) <= std::tie(b.endpoint_id, b.second));
    }
  }
}

TEST(RollupTable, SortsAddressesLikeSqliteBlobs) {
  RollupTable table;
  const auto v4 = *IpAddress::parse("10.0.0.1");
  const auto v6 = *IpAddress::parse("10::1");    // first bytes 00 10: below 0a
  const auto v6b = *IpAddress::parse("a00:1::"); // 0a 00 00 01 ...: v4 is its prefix
  table.add({1, 1, v6b}, 1, 1);
  table.add({1, 1, v4}, 1, 1);
  table.add({1, 1, v6}, 1, 1);
  table.sort_by_key();
  ASSERT_EQ(table.entries().size(), 3U);
  EXPECT_EQ(table.entries()[0].key.address, v6);
  EXPECT_EQ(table.entries()[1].key.address, v4); // shorter first on a common prefix
  EXPECT_EQ(table.entries()[2].key.address, v6b);
}

} // namespace
} // namespace ta::store::detail
