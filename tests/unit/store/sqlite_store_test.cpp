// The SQLite backend: schema, idempotent writes, the ledger, roll-ups, exact
// time ranges, the learnt address table, and failure atomicity.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "ta/store/sqlite.hpp"
#include "ta/store/store.hpp"

#include "test_util.hpp"

namespace ta::store {
namespace {

namespace fs = std::filesystem;
using test::BatchBuilder;
using test::ip;
using test::kSec;
using test::RawDb;
using test::SqliteStoreTest;

// ---- schema ------------------------------------------------------------------

TEST_F(SqliteStoreTest, CreatesVersionedSchemaAndReopens) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    const auto id = source(*store);
    ASSERT_TRUE(
        store->write(BatchBuilder(id).packet(0, 5 * kSec, "a.example", "10.0.0.1", 100).batch));
  }
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.integer("PRAGMA user_version"), 4);
    EXPECT_EQ(raw.integer("PRAGMA application_id"), 0x54415354);
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                          "('sources','endpoints','packets','rollups','addresses','local_hosts',"
                          "'flows')"),
              7);
    // No secondary index on packets: insert speed first.
    EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                          "tbl_name = 'packets'"),
              0);
  }
  auto store = open();
  ASSERT_TRUE(store);
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].endpoint, "a.example");
  EXPECT_EQ(eps[0].packets, 1U);
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("PRAGMA user_version"), 4);
}

TEST_F(SqliteStoreTest, LocalHostsPersistInFirstLearntOrder) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    const auto id = source(*store);
    store::Batch b;
    b.source_id = id;
    b.endpoints.emplace_back();
    b.local_hosts = {*IpAddress::parse("10.0.0.2"), *IpAddress::parse("fd00::2")};
    ASSERT_TRUE(store->write(b));
    b.local_hosts = {*IpAddress::parse("10.0.0.2")}; // again: no duplicate
    ASSERT_TRUE(store->write(b));
  }
  auto store = open();
  ASSERT_TRUE(store);
  std::vector<std::string> got;
  ASSERT_TRUE(store->load_local_hosts([&](const IpAddress &a) { got.push_back(a.to_string()); }));
  EXPECT_EQ(got.size(), 2U);
  EXPECT_NE(std::find(got.begin(), got.end(), "10.0.0.2"), got.end());
  EXPECT_NE(std::find(got.begin(), got.end(), "fd00::2"), got.end());
}

TEST_F(SqliteStoreTest, RefusesANewerSchemaVersion) {
  {
    RawDb raw(path_);
    raw.exec("CREATE TABLE future(x); PRAGMA user_version = 7; PRAGMA application_id = " +
             std::to_string(0x54415354));
  }
  std::string error;
  EXPECT_FALSE(test::take(open_sqlite_store(path_.string()), error));
  EXPECT_NE(error.find("newer"), std::string::npos) << error;
  EXPECT_NE(error.find(path_.string()), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, RefusesAForeignDatabase) {
  {
    RawDb raw(path_);
    raw.exec("CREATE TABLE songs(title TEXT)");
  }
  std::string error;
  EXPECT_FALSE(test::take(open_sqlite_store(path_.string()), error));
  EXPECT_NE(error.find("not a traffic-analyzer database"), std::string::npos) << error;
  RawDb raw(path_);
  EXPECT_NE(raw.text("PRAGMA journal_mode"), "wal"); // untouched
}

TEST_F(SqliteStoreTest, CorruptFileIsAClearOneLineError) {
  {
    std::ofstream f(path_, std::ios::binary);
    for (int i = 0; i < 200; ++i) {
      f << "this is not a database, just text. ";
    }
  }
  std::string error;
  EXPECT_FALSE(test::take(open_sqlite_store(path_.string()), error));
  EXPECT_NE(error.find(path_.string()), std::string::npos) << error;
  EXPECT_NE(error.find("not a"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, MissingDirectoryIsAClearError) {
  const auto path = (dir_ / "missing" / "traffic.db").string();
  std::string error;
  EXPECT_FALSE(test::take(open_sqlite_store(path), error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

// ---- ledger and idempotency ----------------------------------------------------

TEST_F(SqliteStoreTest, BeginSourceResumesFromTheLedger) {
  std::int64_t id = 0;
  {
    auto store = open();
    SourceState state;
    ASSERT_TRUE(store->begin_source({"fp-1", "a.pcap"}, state));
    EXPECT_GT(state.id, 0);
    EXPECT_EQ(state.frames_done, 0U);
    EXPECT_FALSE(state.complete);
    id = state.id;
    ASSERT_TRUE(
        store->write(BatchBuilder(id).packet(0, kSec, "a", "10.0.0.1", 1).through(100).batch));
  }
  auto store = open();
  SourceState state;
  ASSERT_TRUE(store->begin_source({"fp-1", "renamed.pcap"}, state));
  EXPECT_EQ(state.id, id);
  EXPECT_EQ(state.frames_done, 100U);
  EXPECT_FALSE(state.complete);

  // An old (replayed) batch never moves the ledger back.
  ASSERT_TRUE(store->write(BatchBuilder(id).through(40).batch));
  ASSERT_TRUE(store->begin_source({"fp-1", ""}, state));
  EXPECT_EQ(state.frames_done, 100U);

  ASSERT_TRUE(store->write(BatchBuilder(id).through(150, true).batch));
  ASSERT_TRUE(store->write(BatchBuilder(id).through(150, false).batch));
  ASSERT_TRUE(store->begin_source({"fp-1", ""}, state));
  EXPECT_EQ(state.frames_done, 150U);
  EXPECT_TRUE(state.complete); // complete only turns on

  SourceState other;
  ASSERT_TRUE(store->begin_source({"fp-2", "b.pcap"}, other));
  EXPECT_NE(other.id, id);
  EXPECT_EQ(other.frames_done, 0U);
}

TEST_F(SqliteStoreTest, ReplayingABatchDoesNotDoubleCount) {
  auto store = open();
  const auto id = source(*store);
  BatchBuilder b(id);
  b.packet(0, 10 * kSec + 1, "a.example", "10.0.0.1", 100)
      .packet(1, 10 * kSec + 2, "a.example", "10.0.0.1", 200)
      .packet(2, 11 * kSec, "b.example", "10.0.0.2", 300)
      .learnt("10.0.0.1", "a.example", 9 * kSec);
  ASSERT_TRUE(store->write(b.batch));
  const auto before = endpoints(*store);
  ASSERT_TRUE(store->write(b.batch));
  ASSERT_TRUE(store->write(b.batch));
  const auto after = endpoints(*store);
  ASSERT_EQ(after.size(), 2U);
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].packets, before[i].packets);
    EXPECT_EQ(after[i].bytes, before[i].bytes);
  }
  EXPECT_EQ(after[0].packets, 2U);
  EXPECT_EQ(after[0].bytes, 300U);

  // A partly overlapping batch: only the new frame counts.
  BatchBuilder overlap(id);
  overlap.packet(1, 10 * kSec + 2, "a.example", "10.0.0.1", 200)
      .packet(2, 11 * kSec, "b.example", "10.0.0.2", 300)
      .packet(3, 10 * kSec + 5, "a.example", "10.0.0.1", 7);
  ASSERT_TRUE(store->write(overlap.batch));
  const auto later = endpoints(*store);
  EXPECT_EQ(later[0].packets, 3U);
  EXPECT_EQ(later[0].bytes, 307U);
  EXPECT_EQ(later[1].packets, 1U);

  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 4);
  EXPECT_EQ(raw.integer("SELECT sum(packets) FROM rollups"), 4);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM addresses"), 1);
  // key = (source_id << 40) | frame
  EXPECT_EQ(raw.integer("SELECT max(key) FROM packets"), (id << 40) | 3);
}

// Unordered and repeated frames inside one batch, and a batch that extends
// a stored range (the resume-after-crash shape): each frame counts once.
TEST_F(SqliteStoreTest, UnorderedRepeatedAndOverlappingFramesCountOnce) {
  auto store = open();
  const auto id = source(*store);
  BatchBuilder unordered(id);
  for (std::uint64_t f = 200; f-- > 100;) {
    unordered.packet(f, kSec, "a", "10.0.0.1", 1);
  }
  unordered.packet(150, kSec, "a", "10.0.0.1", 1); // repeated
  ASSERT_TRUE(store->write(unordered.batch));
  EXPECT_EQ(endpoints(*store)[0].packets, 100U);

  BatchBuilder extend(id); // 0..99 new, 100..199 stored, 200..299 new
  for (std::uint64_t f = 0; f < 300; ++f) {
    extend.packet(f, 2 * kSec, "a", "10.0.0.1", 1);
  }
  ASSERT_TRUE(store->write(extend.batch));
  const auto eps = endpoints(*store);
  EXPECT_EQ(eps[0].packets, 300U);
  EXPECT_EQ(eps[0].bytes, 300U);
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 300);
  EXPECT_EQ(raw.integer("SELECT packets FROM rollups WHERE second = 2"), 200);
}

TEST_F(SqliteStoreTest, SameFrameOfDifferentSourcesAreDifferentRecords) {
  auto store = open();
  const auto a = source(*store, "fp-a");
  const auto b = source(*store, "fp-b");
  ASSERT_TRUE(store->write(BatchBuilder(a).packet(0, kSec, "x", "10.0.0.1", 10).batch));
  ASSERT_TRUE(store->write(BatchBuilder(b).packet(0, kSec, "x", "10.0.0.1", 10).batch));
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].packets, 2U);
}

// ---- roll-ups --------------------------------------------------------------------

TEST_F(SqliteStoreTest, RollupsSumPerEndpointSecondAndAddress) {
  auto store = open();
  const auto id = source(*store);
  BatchBuilder b(id);
  b.packet(0, 100 * kSec + 10, "a", "10.0.0.1", 10)
      .packet(1, 100 * kSec + 999'999, "a", "10.0.0.1", 20)
      .packet(2, 100 * kSec + 500, "a", "10.0.0.2", 40) // other address
      .packet(3, 101 * kSec, "a", "10.0.0.1", 80)       // next second
      .packet(4, 100 * kSec + 7, "b", "10.0.0.1", 160); // other endpoint
  ASSERT_TRUE(store->write(b.batch));
  // Same key again in a later batch: upsert adds.
  ASSERT_TRUE(store->write(BatchBuilder(id).packet(5, 100 * kSec + 3, "a", "10.0.0.1", 5).batch));

  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM rollups"), 4);
  const std::string a1 = "SELECT %s FROM rollups JOIN endpoints ON id = endpoint_id "
                         "WHERE name = 'a' AND second = 100 AND address = x'0a000001'";
  const auto col = [&](const char *c) {
    std::string q = a1;
    q.replace(q.find("%s"), 2, c);
    return raw.integer(q);
  };
  EXPECT_EQ(col("packets"), 3);
  EXPECT_EQ(col("bytes"), 35);
  EXPECT_EQ(col("first_us"), 100 * kSec + 3);
  EXPECT_EQ(col("last_us"), 100 * kSec + 999'999);
  EXPECT_EQ(raw.integer("SELECT length(address) FROM rollups LIMIT 1"), 4);
}

TEST_F(SqliteStoreTest, NegativeTimestampsRollUpIntoTheFlooredSecond) {
  auto store = open();
  const auto id = source(*store);
  ASSERT_TRUE(store->write(BatchBuilder(id).packet(0, -1, "a", "10.0.0.1", 1).batch));
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT second FROM rollups"), -1);
}

// ---- query_endpoints -------------------------------------------------------------

TEST_F(SqliteStoreTest, QueryEndpointsWithoutRange) {
  auto store = open();
  const auto id = source(*store);
  BatchBuilder b(id);
  b.packet(0, 5 * kSec + 1, "zeta.example", "10.0.0.9", 10)
      .packet(1, 6 * kSec + 2, "alpha.example", "192.168.1.1", 20)
      .packet(2, 7 * kSec + 3, "alpha.example", "10.0.0.10", 30)
      .packet(3, 4 * kSec + 4, "alpha.example", "2001:db8::1", 40)
      .packet(4, 8 * kSec, "", "8.8.8.8", 50)
      .packet(5, 9 * kSec, "alpha.example", "10.0.0.10", 60);
  ASSERT_TRUE(store->write(b.batch));
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 3U);
  EXPECT_EQ(eps[0].endpoint, ""); // the unresolved endpoint sorts first
  EXPECT_EQ(eps[0].packets, 1U);
  EXPECT_EQ(eps[0].addresses, std::vector<std::string>{"8.8.8.8"});
  EXPECT_EQ(eps[1].endpoint, "alpha.example");
  EXPECT_EQ(eps[1].packets, 4U);
  EXPECT_EQ(eps[1].bytes, 150U);
  EXPECT_EQ(eps[1].first_seen, 4 * kSec + 4);
  EXPECT_EQ(eps[1].last_seen, 9 * kSec);
  EXPECT_EQ(eps[1].addresses,
            (std::vector<std::string>{"10.0.0.10", "192.168.1.1", "2001:db8::1"}));
  EXPECT_EQ(eps[2].endpoint, "zeta.example");
}

TEST_F(SqliteStoreTest, QueryEndpointsRangeIsExactAtSubSecondBoundaries) {
  auto store = open();
  const auto id = source(*store);
  BatchBuilder b(id);
  b.packet(0, 10 * kSec + 200'000, "a", "10.0.0.1", 1)
      .packet(1, 10 * kSec + 700'000, "a", "10.0.0.2", 2)
      .packet(2, 11 * kSec + 500'000, "a", "10.0.0.1", 4)
      .packet(3, 12 * kSec, "a", "10.0.0.3", 8)
      .packet(4, 12 * kSec + 900'000, "a", "10.0.0.1", 16)
      .packet(5, 13 * kSec + 100'000, "a", "10.0.0.4", 32);
  ASSERT_TRUE(store->write(b.batch));

  // Sub-second on both ends: 10.5 .. 12.95
  auto eps = endpoints(*store, {10 * kSec + 500'000, 12 * kSec + 950'000});
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].packets, 4U);
  EXPECT_EQ(eps[0].bytes, 2U + 4 + 8 + 16);
  EXPECT_EQ(eps[0].first_seen, 10 * kSec + 700'000);
  EXPECT_EQ(eps[0].last_seen, 12 * kSec + 900'000);
  EXPECT_EQ(eps[0].addresses, (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "10.0.0.3"}));

  // since inclusive, until exclusive, exactly on a packet.
  eps = endpoints(*store, {10 * kSec + 700'000, 12 * kSec + 900'000});
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].bytes, 2U + 4 + 8);

  // Whole seconds only (answered from roll-ups).
  eps = endpoints(*store, {11 * kSec, 13 * kSec});
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].bytes, 4U + 8 + 16);
  EXPECT_EQ(eps[0].first_seen, 11 * kSec + 500'000);
  EXPECT_EQ(eps[0].last_seen, 12 * kSec + 900'000);

  // Inside a single second.
  eps = endpoints(*store, {10 * kSec + 100'000, 10 * kSec + 300'000});
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].bytes, 1U);

  // Open-ended.
  eps = endpoints(*store, {12 * kSec + 1, std::nullopt});
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].bytes, 16U + 32);
  eps = endpoints(*store, {std::nullopt, 10 * kSec + 700'001});
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].bytes, 1U + 2);

  // Nothing inside, and an empty/inverted range.
  EXPECT_TRUE(endpoints(*store, {14 * kSec, 20 * kSec}).empty());
  EXPECT_TRUE(endpoints(*store, {12 * kSec, 12 * kSec}).empty());
  EXPECT_TRUE(endpoints(*store, {13 * kSec, 11 * kSec}).empty());
}

// Random packets (including negative times) across batches with replays,
// random ranges: query_endpoints must equal a brute-force count.
TEST_F(SqliteStoreTest, QueryEndpointsMatchesBruteForceOnRandomRanges) {
  auto store = open();
  const auto id = source(*store);
  std::mt19937_64 rng(1234);
  const std::vector<std::string> names = {"", "a.example", "b.example", "c.example"};
  const std::vector<const char *> addrs = {"10.0.0.1", "10.0.0.2", "2001:db8::5", "fe80::1"};
  struct Truth {
    TimeUs ts;
    std::string name;
    std::string addr;
    std::uint32_t bytes;
  };
  std::vector<Truth> truth;
  std::uint64_t frame = 0;
  std::uniform_int_distribution<TimeUs> ts_dist(-3 * kSec, 8 * kSec);
  for (int batch_no = 0; batch_no < 4; ++batch_no) {
    BatchBuilder b(id);
    for (int i = 0; i < 500; ++i) {
      const TimeUs ts = rng() % 4 == 0 ? (ts_dist(rng) / kSec) * kSec : ts_dist(rng);
      const auto &name = names[rng() % names.size()];
      const char *addr = addrs[rng() % addrs.size()];
      const auto bytes = static_cast<std::uint32_t>(rng() % 1500 + 1);
      b.packet(frame++, ts, name, addr, bytes);
      truth.push_back({ts, name, ip(addr).to_string(), bytes});
    }
    ASSERT_TRUE(store->write(b.batch));
    ASSERT_TRUE(store->write(b.batch)); // replay
  }
  const auto check = [&](const TimeRange &range) {
    std::map<std::string, EndpointSummary> expect;
    for (const Truth &t : truth) {
      if ((range.since && t.ts < *range.since) || (range.until && t.ts >= *range.until)) {
        continue;
      }
      auto [it, fresh] = expect.try_emplace(t.name);
      EndpointSummary &e = it->second;
      if (fresh) {
        e.endpoint = t.name;
        e.first_seen = t.ts;
        e.last_seen = t.ts;
      }
      e.packets += 1;
      e.bytes += t.bytes;
      e.first_seen = std::min(e.first_seen, t.ts);
      e.last_seen = std::max(e.last_seen, t.ts);
      e.addresses.push_back(t.addr);
    }
    const auto got = endpoints(*store, range);
    ASSERT_EQ(got.size(), expect.size());
    std::size_t i = 0;
    for (auto &[name, e] : expect) {
      std::sort(e.addresses.begin(), e.addresses.end());
      e.addresses.erase(std::unique(e.addresses.begin(), e.addresses.end()), e.addresses.end());
      const auto &g = got[i++];
      EXPECT_EQ(g.endpoint, name);
      EXPECT_EQ(g.packets, e.packets) << name;
      EXPECT_EQ(g.bytes, e.bytes) << name;
      EXPECT_EQ(g.first_seen, e.first_seen) << name;
      EXPECT_EQ(g.last_seen, e.last_seen) << name;
      EXPECT_EQ(g.addresses, e.addresses) << name;
    }
  };
  check({});
  std::uniform_int_distribution<TimeUs> bound(-4 * kSec, 9 * kSec);
  for (int i = 0; i < 200; ++i) {
    TimeUs s = bound(rng);
    TimeUs u = bound(rng);
    if (i % 3 == 0) { // whole seconds
      s = (s / kSec) * kSec;
      u = (u / kSec) * kSec;
    }
    TimeRange r;
    if (i % 7 != 1) {
      r.since = std::min(s, u);
    }
    if (i % 7 != 2) {
      r.until = std::max(s, u);
    }
    SCOPED_TRACE(::testing::Message()
                 << "range " << (r.since ? *r.since : -1) << " .. " << (r.until ? *r.until : -1));
    check(r);
  }
}

// ---- query_packets ---------------------------------------------------------------

TEST_F(SqliteStoreTest, QueryPacketsMostRecentFirstWithLimit) {
  auto store = open();
  const auto id = source(*store);
  BatchBuilder b(id);
  b.packet(0, 3 * kSec, "a", "10.0.0.1", 10, 443, 6)
      .packet(1, 5 * kSec, "a", "10.0.0.2", 20, 53, 17)
      .packet(2, 5 * kSec, "a", "2001:db8::7", 30, 0, 58) // same ts: higher key first
      .packet(3, 9 * kSec, "b", "10.0.0.3", 40)
      .packet(4, 1 * kSec, "a", "10.0.0.1", 50);
  ASSERT_TRUE(store->write(b.batch));
  std::vector<PacketRow> rows;
  ASSERT_TRUE(store->query_packets("a", 0, rows));
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0].ts_us, 5 * kSec);
  EXPECT_EQ(rows[0].address, "2001:db8::7");
  EXPECT_EQ(rows[0].port, 0);
  EXPECT_EQ(rows[0].protocol, 58);
  EXPECT_EQ(rows[0].bytes, 30U);
  EXPECT_EQ(rows[0].endpoint, "a");
  EXPECT_EQ(rows[1].address, "10.0.0.2");
  EXPECT_EQ(rows[1].port, 53);
  EXPECT_EQ(rows[2].ts_us, 3 * kSec);
  EXPECT_EQ(rows[3].ts_us, 1 * kSec);

  ASSERT_TRUE(store->query_packets("a", 2, rows));
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[1].address, "10.0.0.2");

  ASSERT_TRUE(store->query_packets("nobody", 0, rows));
  EXPECT_TRUE(rows.empty());
}

TEST_F(SqliteStoreTest, UnresolvedEndpointIsTheEmptyName) {
  auto store = open();
  const auto id = source(*store);
  ASSERT_TRUE(store->write(BatchBuilder(id)
                               .packet(0, kSec, "", "1.1.1.1", 10)
                               .packet(1, 2 * kSec, "known", "1.1.1.2", 20)
                               .packet(2, 3 * kSec, "", "1.1.1.3", 30)
                               .batch));
  std::vector<PacketRow> rows;
  ASSERT_TRUE(store->query_packets("", 0, rows));
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].address, "1.1.1.3");
  EXPECT_EQ(rows[0].endpoint, "");
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 2U);
  EXPECT_EQ(eps[0].endpoint, "");
  EXPECT_EQ(eps[0].bytes, 40U);
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM endpoints WHERE name = ''"), 1);
}

TEST_F(SqliteStoreTest, Ipv6AddressesAreSixteenByteBlobsAndCanonicalText) {
  auto store = open();
  const auto id = source(*store);
  ASSERT_TRUE(store->write(BatchBuilder(id)
                               .packet(0, kSec, "v6.example", "2001:0db8:0000::0001", 10)
                               .learnt("2001:db8::1", "v6.example", kSec - 5)
                               .batch));
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT length(address) FROM packets"), 16);
  EXPECT_EQ(raw.integer("SELECT length(address) FROM rollups"), 16);
  EXPECT_EQ(raw.integer("SELECT length(address) FROM addresses"), 16);
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].addresses, std::vector<std::string>{"2001:db8::1"});
  std::vector<AddressRow> rows;
  ASSERT_TRUE(store->query_addresses(rows));
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].address, "2001:db8::1");
  int loaded = 0;
  ASSERT_TRUE(store->load_addresses([&](const IpAddress &a, std::string_view, TimeUs, TimeUs) {
    EXPECT_EQ(a, ip("2001:db8::1"));
    EXPECT_EQ(a.family, 6);
    ++loaded;
  }));
  EXPECT_EQ(loaded, 1);
}

// ---- learnt addresses -----------------------------------------------------------

TEST_F(SqliteStoreTest, LearntAddressesLatestAnswerWins) {
  auto store = open();
  const auto id = source(*store);
  ASSERT_TRUE(store->write(BatchBuilder(id)
                               .learnt("10.0.0.1", "old.example", 100)
                               .learnt("10.0.0.1", "old.example", 200)
                               .learnt("10.0.0.2", "b.example", 50)
                               .batch));
  // Renamed later: first_learnt restarts.
  ASSERT_TRUE(store->write(BatchBuilder(id).learnt("10.0.0.1", "new.example", 300).batch));
  // An older answer with another name loses.
  ASSERT_TRUE(store->write(BatchBuilder(id).learnt("10.0.0.1", "stale.example", 250).batch));
  // The same name again, out of order, widens the interval.
  ASSERT_TRUE(store->write(BatchBuilder(id)
                               .learnt("10.0.0.2", "b.example", 40)
                               .learnt("10.0.0.2", "b.example", 400)
                               .learnt("2001:db8::2", "a.example", 350)
                               .batch));

  std::vector<AddressRow> rows;
  ASSERT_TRUE(store->query_addresses(rows));
  ASSERT_EQ(rows.size(), 3U);
  // Ordered by name, then address.
  EXPECT_EQ(rows[0].name, "a.example");
  EXPECT_EQ(rows[1].name, "b.example");
  EXPECT_EQ(rows[1].address, "10.0.0.2");
  EXPECT_EQ(rows[1].first_learnt, 40);
  EXPECT_EQ(rows[1].last_learnt, 400);
  EXPECT_EQ(rows[2].name, "new.example");
  EXPECT_EQ(rows[2].address, "10.0.0.1");
  EXPECT_EQ(rows[2].first_learnt, 300);
  EXPECT_EQ(rows[2].last_learnt, 300);

  // Reload order: least recently learnt first.
  std::vector<std::pair<std::string, TimeUs>> loaded;
  ASSERT_TRUE(
      store->load_addresses([&](const IpAddress &a, std::string_view name, TimeUs, TimeUs last) {
        loaded.emplace_back(a.to_string() + "=" + std::string(name), last);
      }));
  ASSERT_EQ(loaded.size(), 3U);
  EXPECT_EQ(loaded[0].first, "10.0.0.1=new.example");
  EXPECT_EQ(loaded[1].first, "2001:db8::2=a.example");
  EXPECT_EQ(loaded[2].first, "10.0.0.2=b.example");
  EXPECT_TRUE(std::is_sorted(loaded.begin(), loaded.end(),
                             [](const auto &x, const auto &y) { return x.second < y.second; }));

  // Learnt names do not create endpoints (only packets do).
  EXPECT_TRUE(endpoints(*store).empty());
}

TEST_F(SqliteStoreTest, LearntAddressesSurviveReopen) {
  {
    auto store = open();
    const auto id = source(*store);
    ASSERT_TRUE(store->write(BatchBuilder(id).learnt("10.1.1.1", "x.example", 5).batch));
  }
  auto store = open();
  int n = 0;
  ASSERT_TRUE(store->load_addresses(
      [&](const IpAddress &a, std::string_view name, TimeUs first, TimeUs last) {
        EXPECT_EQ(a.to_string(), "10.1.1.1");
        EXPECT_EQ(name, "x.example");
        EXPECT_EQ(first, 5);
        EXPECT_EQ(last, 5);
        ++n;
      }));
  EXPECT_EQ(n, 1);
}

// ---- failures --------------------------------------------------------------------

TEST_F(SqliteStoreTest, AFailingWriteLeavesNothing) {
  auto store = open();
  const auto id = source(*store);
  ASSERT_TRUE(store->write(BatchBuilder(id).packet(0, kSec, "a", "10.0.0.1", 1).through(1).batch));

  BatchBuilder bad(id);
  bad.packet(1, 2 * kSec, "a", "10.0.0.1", 2)
      .packet(2, 2 * kSec, "fresh.example", "10.0.0.2", 4)
      .learnt("10.0.0.2", "fresh.example", 7)
      .packet(std::uint64_t{1} << 40, 3 * kSec, "a", "10.0.0.1", 8);
  bad.through(3);
  const Status st = store->write(bad.batch);
  EXPECT_FALSE(st);
  EXPECT_NE(st.message().find("2^40"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(path_.string()), std::string::npos) << st.message();

  SourceState state;
  ASSERT_TRUE(store->begin_source({"fp-1", ""}, state));
  EXPECT_EQ(state.frames_done, 1U);
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 1);
  EXPECT_EQ(raw.integer("SELECT sum(packets) FROM rollups"), 1);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM addresses"), 0);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM endpoints WHERE name = 'fresh.example'"), 0);
}

// A failure in the middle of the transaction (after a new endpoint row was
// inserted): everything rolls back, including the in-memory endpoint ids.
TEST_F(SqliteStoreTest, AFailureInsideTheTransactionRollsBackEverything) {
  auto store = open();
  const auto id = source(*store);
  ASSERT_TRUE(store->write(BatchBuilder(id).packet(0, kSec, "a", "10.0.0.1", 1).through(1).batch));
  {
    RawDb raw(path_);
    raw.exec("CREATE TRIGGER boom BEFORE INSERT ON packets WHEN (NEW.key & 1099511627775) = 7 "
             "BEGIN SELECT RAISE(ABORT, 'boom'); END");
  }
  BatchBuilder bad(id);
  bad.packet(5, 2 * kSec, "fresh.example", "10.0.0.2", 4)
      .packet(6, 2 * kSec, "a", "10.0.0.1", 2)
      .packet(7, 2 * kSec, "a", "10.0.0.1", 2)
      .learnt("10.0.0.2", "fresh.example", 7)
      .through(8);
  const Status st = store->write(bad.batch);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("boom"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(path_.string()), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.message();
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM rollups"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM addresses"), 0);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM endpoints"), 1);
    EXPECT_EQ(raw.integer("SELECT frames_done FROM sources"), 1);
    // Another endpoint takes the id "fresh.example" briefly had.
    raw.exec("DROP TRIGGER boom; INSERT INTO endpoints(name) VALUES('interloper')");
  }
  // Retrying works, and "fresh.example" gets a real id, not the rolled-back one.
  ASSERT_TRUE(store->write(bad.batch));
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 2U);
  EXPECT_EQ(eps[0].endpoint, "a");
  EXPECT_EQ(eps[0].packets, 3U);
  EXPECT_EQ(eps[1].endpoint, "fresh.example");
  EXPECT_EQ(eps[1].packets, 1U);
  std::vector<PacketRow> rows;
  ASSERT_TRUE(store->query_packets("fresh.example", 0, rows));
  EXPECT_EQ(rows.size(), 1U);
}

TEST_F(SqliteStoreTest, MalformedBatchesAreRejected) {
  auto store = open();
  const auto id = source(*store);

  Batch unknown = BatchBuilder(id + 100).packet(0, kSec, "a", "10.0.0.1", 1).batch;
  Status st = store->write(unknown);
  EXPECT_FALSE(st);
  EXPECT_NE(st.message().find("unknown source"), std::string::npos) << st.message();

  Batch bad_index = BatchBuilder(id).packet(0, kSec, "a", "10.0.0.1", 1).batch;
  bad_index.packets[0].endpoint = 9;
  st = store->write(bad_index);
  EXPECT_FALSE(st);
  EXPECT_NE(st.message().find("endpoint #9"), std::string::npos) << st.message();

  Batch no_address = BatchBuilder(id).packet(0, kSec, "a", "10.0.0.1", 1).batch;
  no_address.packets[0].dst = IpAddress{};
  EXPECT_FALSE(store->write(no_address));

  Batch bad_learnt = BatchBuilder(id).learnt("10.0.0.1", "a", 1).batch;
  bad_learnt.learnt[0].name = 3;
  EXPECT_FALSE(store->write(bad_learnt));

  Batch bad_source = BatchBuilder(0).batch;
  EXPECT_FALSE(store->write(bad_source));

  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 0);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM endpoints"), 0);

  // The store is still usable.
  EXPECT_TRUE(store->write(BatchBuilder(id).packet(0, kSec, "a", "10.0.0.1", 1).batch));
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 1);
}

TEST_F(SqliteStoreTest, BeginSourceRejectsAnEmptyFingerprint) {
  auto store = open();
  SourceState state;
  EXPECT_FALSE(store->begin_source({"", "x.pcap"}, state));
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileShareData) {
  auto a = open();
  auto b = open();
  const auto id = source(*a);
  EXPECT_EQ(source(*b), id);
  ASSERT_TRUE(a->write(BatchBuilder(id).packet(0, kSec, "a", "10.0.0.1", 1).batch));
  ASSERT_TRUE(b->write(BatchBuilder(id)
                           .packet(0, kSec, "a", "10.0.0.1", 1)
                           .packet(1, kSec, "b", "10.0.0.2", 2)
                           .batch));
  const auto eps = endpoints(*a);
  ASSERT_EQ(eps.size(), 2U);
  EXPECT_EQ(eps[0].packets, 1U);
  EXPECT_EQ(eps[1].packets, 1U);
}

} // namespace
} // namespace ta::store
