// Migration of a file the previous release (schema v2) wrote: the store
// opens it in place at v3, answers query_endpoints exactly as that release
// did, and takes new batches with received traffic and flows.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/common/time.hpp"
#include "ta/store/sqlite.hpp"
#include "ta/store/store.hpp"

#include "test_util.hpp"

namespace ta::store {
namespace {

namespace fs = std::filesystem;
using test::BatchBuilder;
using test::RawDb;
using test::SqliteStoreTest;

struct OldEndpoint {
  const char *endpoint;
  std::uint64_t packets;
  std::uint64_t bytes;
  const char *first_seen;
  const char *last_seen;
  std::vector<std::string> addresses;
};

// `query endpoints --format json` of the release that wrote the file (see
// tests/data/README.md), over the whole file.
const OldEndpoint kOldWhole[] = {
    {"a.espncdn.com",
     72,
     5445,
     "2010-04-07T17:29:30.129633Z",
     "2010-04-07T17:29:30.196102Z",
     {"205.234.218.129"}},
    {"a2.espncdn.com",
     103,
     10443,
     "2010-04-07T17:29:30.343512Z",
     "2010-04-07T17:29:30.553592Z",
     {"205.234.218.129", "205.234.218.82"}},
    {"adsatt.espn.go.com",
     48,
     4952,
     "2010-04-07T17:29:30.534123Z",
     "2010-04-07T17:29:30.911908Z",
     {"63.85.36.72"}},
    {"assets.espn.go.com",
     132,
     20918,
     "2010-04-07T17:29:30.565001Z",
     "2010-04-07T17:29:31.820983Z",
     {"205.234.218.112", "205.234.218.129"}},
    {"broadband.espn.go.com",
     4,
     901,
     "2010-04-07T17:29:31.103151Z",
     "2010-04-07T17:29:31.235323Z",
     {"68.71.208.113"}},
    {"content.dl-rms.com",
     6,
     1065,
     "2010-04-07T17:29:30.937764Z",
     "2010-04-07T17:29:31.600118Z",
     {"205.234.218.67"}},
    {"espn.go.com",
     42,
     6041,
     "2010-04-07T17:29:29.939108Z",
     "2010-04-07T17:29:31.653760Z",
     {"68.71.208.11"}},
    {"games-ak.espn.go.com",
     6,
     1364,
     "2010-04-07T17:29:31.809050Z",
     "2010-04-07T17:29:31.830416Z",
     {"63.85.36.9"}},
    {"log.go.com",
     4,
     1070,
     "2010-04-07T17:29:30.589291Z",
     "2010-04-07T17:29:30.719324Z",
     {"68.71.209.72"}},
    {"streak.espn.go.com",
     10,
     1547,
     "2010-04-07T17:29:31.589296Z",
     "2010-04-07T17:29:31.793694Z",
     {"68.71.208.177"}},
    {"w88.go.com",
     9,
     4268,
     "2010-04-07T17:29:31.331960Z",
     "2010-04-07T17:29:31.595876Z",
     {"66.235.139.152"}},
    {"www.espn.com",
     4,
     595,
     "2010-04-07T17:29:29.794785Z",
     "2010-04-07T17:29:29.923989Z",
     {"199.181.132.250"}},
    {"www.masters.com",
     4,
     590,
     "2010-04-07T17:29:30.462144Z",
     "2010-04-07T17:29:30.483233Z",
     {"63.85.36.8"}},
};
// The same with --since 2010-04-07T17:29:30.5Z --until 2010-04-07T17:29:31.7Z
// (a partial second at each end).
const OldEndpoint kOldRange[] = {
    {"a2.espncdn.com",
     12,
     1471,
     "2010-04-07T17:29:30.541912Z",
     "2010-04-07T17:29:30.553592Z",
     {"205.234.218.129"}},
    {"adsatt.espn.go.com",
     48,
     4952,
     "2010-04-07T17:29:30.534123Z",
     "2010-04-07T17:29:30.911908Z",
     {"63.85.36.72"}},
    {"assets.espn.go.com",
     111,
     17614,
     "2010-04-07T17:29:30.565001Z",
     "2010-04-07T17:29:31.376125Z",
     {"205.234.218.112", "205.234.218.129"}},
    {"broadband.espn.go.com",
     4,
     901,
     "2010-04-07T17:29:31.103151Z",
     "2010-04-07T17:29:31.235323Z",
     {"68.71.208.113"}},
    {"content.dl-rms.com",
     6,
     1065,
     "2010-04-07T17:29:30.937764Z",
     "2010-04-07T17:29:31.600118Z",
     {"205.234.218.67"}},
    {"espn.go.com",
     16,
     4303,
     "2010-04-07T17:29:31.097601Z",
     "2010-04-07T17:29:31.653760Z",
     {"68.71.208.11"}},
    {"log.go.com",
     4,
     1070,
     "2010-04-07T17:29:30.589291Z",
     "2010-04-07T17:29:30.719324Z",
     {"68.71.209.72"}},
    {"streak.espn.go.com",
     3,
     1183,
     "2010-04-07T17:29:31.589296Z",
     "2010-04-07T17:29:31.666443Z",
     {"68.71.208.177"}},
    {"w88.go.com",
     9,
     4268,
     "2010-04-07T17:29:31.331960Z",
     "2010-04-07T17:29:31.595876Z",
     {"66.235.139.152"}},
};

class MigrationTest : public SqliteStoreTest {
protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    fs::copy_file(fs::path(TA_TEST_DATA_DIR) / "store_v2_espn.db", path_);
  }

  static void expect_same(const std::vector<EndpointSummary> &got, const OldEndpoint *want,
                          std::size_t n) {
    ASSERT_EQ(got.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      SCOPED_TRACE(want[i].endpoint);
      EXPECT_EQ(got[i].endpoint, want[i].endpoint);
      EXPECT_EQ(got[i].packets, want[i].packets);
      EXPECT_EQ(got[i].bytes, want[i].bytes);
      EXPECT_EQ(format_rfc3339_us(got[i].first_seen), want[i].first_seen);
      EXPECT_EQ(format_rfc3339_us(got[i].last_seen), want[i].last_seen);
      EXPECT_EQ(got[i].addresses, want[i].addresses);
      EXPECT_EQ(got[i].received_packets, 0U);
      EXPECT_EQ(got[i].received_bytes, 0U);
    }
  }
};

TEST_F(MigrationTest, TheV2FileIsAtVersionTwoBeforeOpening) {
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("PRAGMA user_version"), 2);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 444);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'flows'"), 0);
}

TEST_F(MigrationTest, OpensInPlaceAtTheCurrentVersionWithTheNewColumnsAndTable) {
  {
    auto store = open();
    ASSERT_TRUE(store);
  }
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("PRAGMA user_version"), 4);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM pragma_table_info('flows') WHERE name IN "
                        "('pid','program')"),
            2);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM pragma_table_info('rollups') WHERE name IN "
                        "('received_packets','received_bytes','names_none','names_sni',"
                        "'names_quic','names_http','names_dns')"),
            7);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'flows'"), 1);
  // Data in place: the same rows, received traffic 0, every old packet named
  // by DNS (this capture has no unresolved traffic).
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 444);
  EXPECT_EQ(raw.integer("SELECT sum(packets) FROM rollups"), 444);
  EXPECT_EQ(raw.integer("SELECT sum(received_packets) + sum(received_bytes) FROM rollups"), 0);
  EXPECT_EQ(raw.integer("SELECT sum(names_dns) FROM rollups"), 444);
  EXPECT_EQ(raw.integer("SELECT sum(names_none + names_sni + names_quic + names_http) "
                        "FROM rollups"),
            0);
}

TEST_F(MigrationTest, QueryEndpointsAnswersAsThePreviousReleaseDid) {
  auto store = open();
  ASSERT_TRUE(store);
  expect_same(endpoints(*store), kOldWhole, std::size(kOldWhole));
  TimeRange range;
  range.since = parse_time("2010-04-07T17:29:30.5Z");
  range.until = parse_time("2010-04-07T17:29:31.7Z");
  expect_same(endpoints(*store, range), kOldRange, std::size(kOldRange));
  for (const EndpointSummary &e : endpoints(*store)) {
    EXPECT_EQ(e.names[static_cast<std::size_t>(NameSource::dns)], e.packets) << e.endpoint;
  }
  // Reopening does not migrate twice.
  store.reset();
  store = open();
  ASSERT_TRUE(store);
  expect_same(endpoints(*store), kOldWhole, std::size(kOldWhole));
}

TEST_F(MigrationTest, TakesNewBatchesWithFlowsBesideTheOldData) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store, "fp-new");
  ASSERT_GT(id, 1);
  const TimeUs t0 = *parse_time("2010-04-07T17:29:40Z");
  BatchBuilder b(id);
  const auto f =
      b.flow(id, 0, "10.0.0.5", 50000, "68.71.208.11", 443, "espn.go.com", NameSource::sni);
  b.flow_packet(f, Direction::sent, 0, t0, 100)
      .flow_packet(f, Direction::received, 1, t0 + 1, 1500);
  ASSERT_TRUE(store->write(b.batch));

  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), std::size(kOldWhole));
  const auto it = std::find_if(
      eps.begin(), eps.end(), [](const EndpointSummary &e) { return e.endpoint == "espn.go.com"; });
  ASSERT_NE(it, eps.end());
  EXPECT_EQ(it->packets, 43U);
  EXPECT_EQ(it->bytes, 6141U);
  EXPECT_EQ(it->received_packets, 1U);
  EXPECT_EQ(it->received_bytes, 1500U);
  EXPECT_EQ(it->names[static_cast<std::size_t>(NameSource::dns)], 42U);
  EXPECT_EQ(it->names[static_cast<std::size_t>(NameSource::sni)], 2U);
  const auto fl = flows(*store);
  ASSERT_EQ(fl.size(), 1U);
  EXPECT_EQ(fl[0].endpoint, "espn.go.com");
  EXPECT_EQ(fl[0].source, NameSource::sni);
  EXPECT_EQ(fl[0].received_bytes, 1500U);

  // The old data's ranges still answer as before.
  TimeRange range;
  range.since = parse_time("2010-04-07T17:29:30.5Z");
  range.until = parse_time("2010-04-07T17:29:31.7Z");
  expect_same(endpoints(*store, range), kOldRange, std::size(kOldRange));
}

} // namespace
} // namespace ta::store
