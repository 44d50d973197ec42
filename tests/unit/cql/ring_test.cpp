// Murmur3 tokens, routing keys and replica placement against vectors the
// Python driver computed (ring_vectors.inc, made by gen_ring_vectors.py),
// and replication maps as system_schema.keyspaces holds them.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "ta/cql/session.hpp"

#include "fake_server.hpp"
#include "ring.hpp"
#include "token.hpp"

namespace ta::cql::detail {
namespace {

struct Murmur3Vector {
  const char *key_hex;
  std::int64_t token;
};
struct RoutingVector {
  const char *name;
  std::vector<std::pair<const char *, const char *>> values; // (cql type, serialized hex)
  std::vector<std::uint16_t> pk;
  const char *key_hex;
  std::int64_t token;
};
struct RingVector {
  const char *name;
  Replication replication;
  std::vector<std::pair<std::int64_t, std::uint32_t>> tokens;
  std::vector<std::string> dc;
  std::vector<std::string> rack;
  std::vector<std::pair<std::int64_t, std::vector<std::uint32_t>>> queries; // sorted replicas
};

#include "ring_vectors.inc"

std::vector<std::byte> unhex(std::string_view hex) {
  return test::Fx{}.h(hex).v;
}

TEST(Murmur3, MatchesThePythonDriver) {
  ASSERT_GE(kMurmur3Vectors.size(), 70U);
  for (const auto &v : kMurmur3Vectors) {
    const auto key = unhex(v.key_hex);
    EXPECT_EQ(murmur3_token(key), v.token)
        << "key " << v.key_hex << " (" << key.size() << " bytes)";
  }
}

TEST(RoutingKey, SingleAndCompositeKeysMatchThePythonDriver) {
  std::vector<std::byte> key;
  for (const auto &v : kRoutingVectors) {
    Values values;
    for (const auto &[type, hex] : v.values) {
      values.add_blob(unhex(hex));
    }
    ASSERT_TRUE(routing_key(values.encoded(), values.count(), v.pk, key)) << v.name;
    EXPECT_EQ(test::dump(key), test::dump(unhex(v.key_hex))) << v.name;
    EXPECT_EQ(murmur3_token(key), v.token) << v.name;
  }
}

TEST(RoutingKey, TypedValuesSerializeLikeTheDriver) {
  // The first vector is (text "example.com", int 443) with key (0, 1).
  Values values;
  values.add_text("example.com").add_int(443);
  std::vector<std::byte> key;
  const std::vector<std::uint16_t> pk{0, 1};
  ASSERT_TRUE(routing_key(values.encoded(), values.count(), pk, key));
  EXPECT_EQ(test::dump(key), test::dump(unhex(kRoutingVectors[0].key_hex)));
}

TEST(RoutingKey, NullUnsetMissingAndMalformedGiveNoKey) {
  std::vector<std::byte> key;
  Values values;
  values.add_text("a").add_null().add_int(1);
  const std::vector<std::uint16_t> on_null{1};
  const std::vector<std::uint16_t> composite_with_null{0, 1};
  const std::vector<std::uint16_t> beyond{3};
  const std::vector<std::uint16_t> none;
  EXPECT_FALSE(routing_key(values.encoded(), values.count(), on_null, key));
  EXPECT_FALSE(routing_key(values.encoded(), values.count(), composite_with_null, key));
  EXPECT_FALSE(routing_key(values.encoded(), values.count(), beyond, key));
  EXPECT_FALSE(routing_key(values.encoded(), values.count(), none, key));
  // unset ([int] -2), and a value whose length runs past the buffer.
  const auto unset = unhex("ff ff ff fe");
  const std::vector<std::uint16_t> first{0};
  EXPECT_FALSE(routing_key(unset, 1, first, key));
  const auto short_value = unhex("00 00 00 05 61 62");
  EXPECT_FALSE(routing_key(short_value, 1, first, key));
  EXPECT_FALSE(routing_key({}, 1, first, key));
  // The count says 2 but only one value is there.
  const auto one = unhex("00 00 00 01 61");
  const std::vector<std::uint16_t> second{1};
  EXPECT_FALSE(routing_key(one, 2, second, key));
  // An empty (not null) value is a key, of zero bytes.
  const auto empty = unhex("00 00 00 00");
  ASSERT_TRUE(routing_key(empty, 1, first, key));
  EXPECT_TRUE(key.empty());
}

TEST(TokenRing, ReplicasMatchThePythonDriver) {
  ASSERT_GE(kRingVectors.size(), 10U);
  for (const auto &v : kRingVectors) {
    const TokenRing ring = TokenRing::build(v.tokens, v.replication, v.dc, v.rack);
    ASSERT_FALSE(ring.empty()) << v.name;
    for (const auto &[token, expected] : v.queries) {
      const auto got = ring.replicas(token);
      std::vector<std::uint32_t> sorted(got.begin(), got.end());
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(sorted, expected) << v.name << ", token " << token;
    }
  }
}

TEST(TokenRing, SimpleStrategyWalksClockwise) {
  // Hand-made: tokens 10 (node 0), 20 (1), 30 (2), 40 (0); rf 2.
  const TokenRing ring =
      TokenRing::build({{40, 0}, {10, 0}, {30, 2}, {20, 1}}, Replication::simple(2), {}, {});
  const auto at = [&](std::int64_t t) {
    const auto r = ring.replicas(t);
    return std::vector<std::uint32_t>(r.begin(), r.end());
  };
  EXPECT_EQ(at(5), (std::vector<std::uint32_t>{0, 1}));  // range (40, 10]
  EXPECT_EQ(at(10), (std::vector<std::uint32_t>{0, 1})); // the range's own end
  EXPECT_EQ(at(11), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(at(35), (std::vector<std::uint32_t>{0, 1})); // 40 then wraps to 10 (node 0 again), 20
  EXPECT_EQ(at(41), (std::vector<std::uint32_t>{0, 1})); // past the end: wraps
  EXPECT_EQ(at(std::numeric_limits<std::int64_t>::min()), (std::vector<std::uint32_t>{0, 1}));
}

TEST(TokenRing, NetworkTopologyCapsRfAtTheNodesOfADataCentre) {
  // dc1: nodes 0, 1 (racks r1, r2), dc2: node 2; asking 5 and 4 replicas
  // gives every node once (Cassandra caps rf at a data centre's node count).
  const TokenRing ring =
      TokenRing::build({{-100, 0}, {0, 1}, {100, 2}, {200, 0}},
                       Replication::network_topology({{"dc1", 5}, {"dc2", 4}, {"dc3", 2}}),
                       {"dc1", "dc1", "dc2"}, {"r1", "r2", "x"});
  for (const std::int64_t t : {-200, -100, 50, 150, 300}) {
    const auto r = ring.replicas(t);
    std::vector<std::uint32_t> sorted(r.begin(), r.end());
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<std::uint32_t>{0, 1, 2})) << t;
  }
  // rf = the node count with fewer racks than rf, several tokens per node:
  // every node of the data centre, once.
  std::vector<std::pair<std::int64_t, std::uint32_t>> vnodes;
  for (std::int64_t i = 0; i < 12; ++i) {
    vnodes.emplace_back(i * 1000 - 6000, static_cast<std::uint32_t>((i * 7) % 4));
  }
  const TokenRing full = TokenRing::build(vnodes, Replication::network_topology({{"dc1", 4}}),
                                          {"dc1", "dc1", "dc1", "dc1"}, {"r1", "r1", "r2", "r1"});
  for (std::int64_t t = -7000; t <= 7000; t += 500) {
    const auto r = full.replicas(t);
    std::vector<std::uint32_t> sorted(r.begin(), r.end());
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<std::uint32_t>{0, 1, 2, 3})) << t;
  }
  // Only dc2 replicated: node 2 alone, whatever the token.
  const TokenRing dc2 =
      TokenRing::build({{-100, 0}, {0, 1}, {100, 2}}, Replication::network_topology({{"dc2", 3}}),
                       {"dc1", "dc1", "dc2"}, {"r1", "r2", "x"});
  const auto r = dc2.replicas(-500);
  EXPECT_EQ(std::vector<std::uint32_t>(r.begin(), r.end()), (std::vector<std::uint32_t>{2}));
}

TEST(TokenRing, LocalNoneAndEmpty) {
  const TokenRing local = TokenRing::build({{1, 2}, {5, 0}, {9, 2}}, Replication::local(), {}, {});
  const auto all = local.replicas(3);
  EXPECT_EQ(std::vector<std::uint32_t>(all.begin(), all.end()), (std::vector<std::uint32_t>{0, 2}));
  EXPECT_TRUE(TokenRing::build({{1, 0}}, Replication{}, {}, {}).replicas(1).empty());
  EXPECT_TRUE(TokenRing::build({}, Replication::simple(3), {}, {}).replicas(1).empty());
  EXPECT_TRUE(TokenRing{}.replicas(0).empty());
}

using Map = std::vector<std::pair<std::string, std::string>>;

TEST(Replication, ParsesSchemaMaps) {
  auto simple = parse_replication(
      Map{{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "3"}});
  ASSERT_TRUE(simple.ok()) << simple.status().message();
  EXPECT_EQ(simple->kind, Replication::Kind::simple);
  EXPECT_EQ(simple->rf, 3U);

  auto nts =
      parse_replication(Map{{"class", "org.apache.cassandra.locator.NetworkTopologyStrategy"},
                            {"dc1", "3"},
                            {"dc2", "2/1"}});
  ASSERT_TRUE(nts.ok()) << nts.status().message();
  EXPECT_EQ(nts->kind, Replication::Kind::network_topology);
  EXPECT_EQ(nts->dc_rf,
            (std::vector<std::pair<std::string, std::uint32_t>>{{"dc1", 3}, {"dc2", 2}}));

  auto short_name =
      parse_replication(Map{{"replication_factor", "1"}, {"class", "SimpleStrategy"}});
  ASSERT_TRUE(short_name.ok());
  EXPECT_EQ(short_name->rf, 1U);

  auto local = parse_replication(Map{{"class", "org.apache.cassandra.locator.LocalStrategy"}});
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->kind, Replication::Kind::local);
}

TEST(Replication, RefusesWhatItCannotPlace) {
  const auto everywhere =
      parse_replication(Map{{"class", "org.apache.cassandra.locator.EverywhereStrategy"}});
  ASSERT_FALSE(everywhere.ok());
  EXPECT_TRUE(everywhere.status().is(StatusCode::unsupported));
  EXPECT_NE(everywhere.status().message().find("EverywhereStrategy"), std::string::npos);
  EXPECT_NE(everywhere.status().message().find("no token-aware routing"), std::string::npos);

  EXPECT_TRUE(parse_replication(Map{}).status().is_invalid_argument());
  EXPECT_TRUE(parse_replication(Map{{"class", "SimpleStrategy"}}).status().is_invalid_argument());
  EXPECT_TRUE(parse_replication(Map{{"class", "SimpleStrategy"}, {"replication_factor", "x"}})
                  .status()
                  .is_invalid_argument());
  EXPECT_TRUE(parse_replication(Map{{"class", "NetworkTopologyStrategy"}, {"dc1", ""}})
                  .status()
                  .is_invalid_argument());
}

} // namespace
} // namespace ta::cql::detail
