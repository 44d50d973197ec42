// The SQLite backend under flow naming: received traffic and name sources in
// the roll-ups (not in the packets table), the flows table, replays that
// count nothing twice, range semantics of the received counts, query_flows.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/store/sqlite.hpp"
#include "ta/store/store.hpp"

#include "test_util.hpp"

namespace ta::store {
namespace {

using test::BatchBuilder;
using test::kSec;
using test::RawDb;
using test::SqliteStoreTest;

constexpr std::size_t idx(NameSource s) {
  return static_cast<std::size_t>(s);
}

// Two flows of one client: a TLS flow named by SNI (3 sent, 2 received
// packets) and a QUIC flow named by its Initial (1 sent, 1 received), plus
// one per-packet (ICMP) sent packet to an unresolved endpoint.
Batch two_flows(std::int64_t id) {
  BatchBuilder b(id);
  const auto tls =
      b.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::sni);
  const auto quic =
      b.flow(id, 3, "10.0.0.5", 50001, "142.250.1.1", 443, "www.google.com", NameSource::quic, 17);
  b.flow_packet(tls, Direction::sent, 0, 10 * kSec, 60)
      .flow_packet(tls, Direction::received, 1, 10 * kSec + 100, 60)
      .flow_packet(tls, Direction::sent, 2, 10 * kSec + 200, 52)
      .flow_packet(quic, Direction::sent, 3, 10 * kSec + 300, 1250)
      .flow_packet(tls, Direction::sent, 4, 11 * kSec, 600)
      .flow_packet(tls, Direction::received, 5, 11 * kSec + 50, 1500)
      .flow_packet(quic, Direction::received, 6, 12 * kSec, 1200)
      .packet(7, 12 * kSec + 10, "", "192.0.2.9", 84, 0, 1);
  return b.batch;
}

TEST_F(SqliteStoreTest, ReceivedTrafficAndNameSourcesRollUpButKeepNoPacketRows) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  ASSERT_TRUE(store->write(two_flows(id)));

  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM packets"), 5); // the sent ones
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 3U);
  EXPECT_EQ(eps[0].endpoint, "");
  EXPECT_EQ(eps[0].packets, 1U);
  EXPECT_EQ(eps[0].names[idx(NameSource::none)], 1U);
  EXPECT_EQ(eps[1].endpoint, "example.com");
  EXPECT_EQ(eps[1].packets, 3U);
  EXPECT_EQ(eps[1].bytes, 712U);
  EXPECT_EQ(eps[1].received_packets, 2U);
  EXPECT_EQ(eps[1].received_bytes, 1560U);
  EXPECT_EQ(eps[1].names[idx(NameSource::sni)], 5U);
  EXPECT_EQ(eps[1].first_seen, 10 * kSec);
  EXPECT_EQ(eps[1].last_seen, 11 * kSec + 50);
  EXPECT_EQ(eps[1].addresses, std::vector<std::string>{"93.184.216.34"});
  EXPECT_EQ(eps[2].endpoint, "www.google.com");
  EXPECT_EQ(eps[2].packets, 1U);
  EXPECT_EQ(eps[2].received_packets, 1U);
  EXPECT_EQ(eps[2].received_bytes, 1200U);
  EXPECT_EQ(eps[2].names[idx(NameSource::quic)], 2U);

  const auto fl = flows(*store);
  ASSERT_EQ(fl.size(), 2U);
  EXPECT_EQ(fl[0].endpoint, "example.com");
  EXPECT_EQ(fl[0].source, NameSource::sni);
  EXPECT_EQ(fl[0].protocol, 6);
  EXPECT_EQ(fl[0].client, "10.0.0.5");
  EXPECT_EQ(fl[0].client_port, 50000);
  EXPECT_EQ(fl[0].endpoint_address, "93.184.216.34");
  EXPECT_EQ(fl[0].endpoint_port, 443);
  EXPECT_EQ(fl[0].sent_packets, 3U);
  EXPECT_EQ(fl[0].sent_bytes, 712U);
  EXPECT_EQ(fl[0].received_packets, 2U);
  EXPECT_EQ(fl[0].received_bytes, 1560U);
  EXPECT_EQ(fl[0].first_seen, 10 * kSec);
  EXPECT_EQ(fl[0].last_seen, 11 * kSec + 50);
  EXPECT_EQ(fl[1].endpoint, "www.google.com");
  EXPECT_EQ(fl[1].source, NameSource::quic);
  EXPECT_EQ(fl[1].protocol, 17);
  EXPECT_EQ(fl[1].sent_packets + fl[1].received_packets, 2U);
}

TEST_F(SqliteStoreTest, AFlowAddsUpAcrossBatchesAndKeepsItsFirstName) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  BatchBuilder b1(id);
  const auto f1 =
      b1.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::sni);
  b1.flow_packet(f1, Direction::sent, 0, 5 * kSec, 100);
  ASSERT_TRUE(store->write(b1.batch));
  BatchBuilder b2(id);
  // The same flow (same identity) in the next batch; a different name here
  // would be a producer's bug: the stored one stays.
  const auto f2 =
      b2.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::sni);
  b2.flow_packet(f2, Direction::received, 1, 7 * kSec, 900)
      .flow_packet(f2, Direction::sent, 2, 8 * kSec, 40);
  ASSERT_TRUE(store->write(b2.batch));

  const auto fl = flows(*store);
  ASSERT_EQ(fl.size(), 1U);
  EXPECT_EQ(fl[0].sent_packets, 2U);
  EXPECT_EQ(fl[0].sent_bytes, 140U);
  EXPECT_EQ(fl[0].received_packets, 1U);
  EXPECT_EQ(fl[0].received_bytes, 900U);
  EXPECT_EQ(fl[0].first_seen, 5 * kSec);
  EXPECT_EQ(fl[0].last_seen, 8 * kSec);
}

// The program of a flow: unknown in its first batch (the lookup came later),
// known in the second, absent again in a third (a producer that forgot it):
// the stored flow keeps the first program any batch knew. A flow never
// mapped reads back as pid 0 and "". Command names are bytes.
TEST_F(SqliteStoreTest, AFlowKeepsTheFirstProgramABatchKnew) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  const std::string comm("py\xfe\n3", 5);
  for (int i = 0; i < 3; ++i) {
    BatchBuilder b(id);
    const auto f =
        b.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::sni);
    const auto other =
        b.flow(id, 1, "10.0.0.5", 50001, "93.184.216.34", 443, "example.com", NameSource::sni);
    b.flow_packet(f, Direction::sent, static_cast<std::uint64_t>(2 * i), (5 + i) * kSec, 100)
        .flow_packet(other, Direction::sent, static_cast<std::uint64_t>(2 * i + 1), (5 + i) * kSec,
                     50);
    if (i == 1) {
      b.batch.flows[f].pid = 4242;
      b.batch.flows[f].program = comm;
    }
    if (i == 2) {
      b.batch.flows[f].pid = 1;
      b.batch.flows[f].program = "";
    }
    ASSERT_TRUE(store->write(b.batch));
  }
  const auto fl = flows(*store);
  ASSERT_EQ(fl.size(), 2U);
  EXPECT_EQ(fl[0].pid, 4242);
  EXPECT_EQ(fl[0].program, comm);
  EXPECT_EQ(fl[0].sent_packets, 3U);
  EXPECT_EQ(fl[1].pid, 0);
  EXPECT_EQ(fl[1].program, "");
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT pid FROM flows WHERE first_frame = 0"), 4242);
}

TEST_F(SqliteStoreTest, ReplayedBatchesWithFlowsCountNothingTwice) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  const Batch first = two_flows(id);
  ASSERT_TRUE(store->write(first));
  const auto eps = endpoints(*store);
  const auto fl = flows(*store);

  // The same batch again, and again after a later batch.
  ASSERT_TRUE(store->write(first));
  BatchBuilder later(id);
  later.packet(8, 20 * kSec, "later.example", "198.51.100.1", 10);
  ASSERT_TRUE(store->write(later.batch));
  ASSERT_TRUE(store->write(first));

  auto eps2 = endpoints(*store);
  ASSERT_EQ(eps2.size(), eps.size() + 1);
  eps2.erase(std::remove_if(eps2.begin(), eps2.end(),
                            [](const EndpointSummary &e) { return e.endpoint == "later.example"; }),
             eps2.end());
  ASSERT_EQ(eps2.size(), eps.size());
  for (std::size_t i = 0; i < eps.size(); ++i) {
    EXPECT_EQ(eps2[i].endpoint, eps[i].endpoint);
    EXPECT_EQ(eps2[i].packets, eps[i].packets) << eps[i].endpoint;
    EXPECT_EQ(eps2[i].received_packets, eps[i].received_packets) << eps[i].endpoint;
    EXPECT_EQ(eps2[i].received_bytes, eps[i].received_bytes) << eps[i].endpoint;
    EXPECT_EQ(eps2[i].names, eps[i].names) << eps[i].endpoint;
  }
  const auto fl2 = flows(*store);
  ASSERT_EQ(fl2.size(), fl.size());
  for (std::size_t i = 0; i < fl.size(); ++i) {
    EXPECT_EQ(fl2[i].sent_packets, fl[i].sent_packets);
    EXPECT_EQ(fl2[i].sent_bytes, fl[i].sent_bytes);
    EXPECT_EQ(fl2[i].received_packets, fl[i].received_packets);
    EXPECT_EQ(fl2[i].received_bytes, fl[i].received_bytes);
  }
}

// A batch retried over frames already accounted for (frames 0..3 stored,
// then 2..5 in one batch): only frames 4 and 5 are new, in the roll-ups and
// in the flow's deltas.
TEST_F(SqliteStoreTest, AnOverlappingBatchAddsOnlyItsNewPacketsToRollupsAndFlows) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  const auto make = [&](std::uint64_t from, std::uint64_t to) {
    BatchBuilder b(id);
    const auto f =
        b.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::http);
    for (std::uint64_t frame = from; frame < to; ++frame) {
      b.flow_packet(f, frame % 2 == 0 ? Direction::sent : Direction::received, frame,
                    static_cast<TimeUs>(frame) * kSec, static_cast<std::uint32_t>(100 + frame));
    }
    return b.batch;
  };
  ASSERT_TRUE(store->write(make(0, 4)));
  ASSERT_TRUE(store->write(make(2, 6)));

  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 1U);
  EXPECT_EQ(eps[0].packets, 3U);               // frames 0, 2, 4
  EXPECT_EQ(eps[0].bytes, 100U + 102U + 104U); //
  EXPECT_EQ(eps[0].received_packets, 3U);      // frames 1, 3, 5
  EXPECT_EQ(eps[0].received_bytes, 101U + 103U + 105U);
  EXPECT_EQ(eps[0].names[idx(NameSource::http)], 6U);
  const auto fl = flows(*store);
  ASSERT_EQ(fl.size(), 1U);
  EXPECT_EQ(fl[0].sent_packets, 3U);
  EXPECT_EQ(fl[0].sent_bytes, 306U);
  EXPECT_EQ(fl[0].received_packets, 3U);
  EXPECT_EQ(fl[0].received_bytes, 309U);
  EXPECT_EQ(fl[0].first_seen, 0);
  EXPECT_EQ(fl[0].last_seen, 5 * kSec);
}

TEST_F(SqliteStoreTest, TodaysBatchesStillAnswerAsBefore) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  ASSERT_TRUE(store->write(BatchBuilder(id)
                               .packet(0, 5 * kSec, "a.example", "10.0.0.1", 100)
                               .packet(1, 5 * kSec + 5, "", "10.0.0.2", 60)
                               .batch));
  const auto eps = endpoints(*store);
  ASSERT_EQ(eps.size(), 2U);
  EXPECT_EQ(eps[1].packets, 1U);
  EXPECT_EQ(eps[1].received_packets, 0U);
  EXPECT_EQ(eps[1].names[idx(NameSource::none)], 1U);
  EXPECT_TRUE(flows(*store).empty());
}

// Received counts have no packet rows: they come from whole seconds only.
// Sent counts stay exact.
TEST_F(SqliteStoreTest, ReceivedCountsComeFromWholeSecondsOnly) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  BatchBuilder b(id);
  const auto f =
      b.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::sni);
  b.flow_packet(f, Direction::sent, 0, 10 * kSec + 100'000, 10)
      .flow_packet(f, Direction::received, 1, 10 * kSec + 200'000, 1000)
      .flow_packet(f, Direction::sent, 2, 11 * kSec + 100'000, 20)
      .flow_packet(f, Direction::received, 3, 11 * kSec + 700'000, 2000);
  ASSERT_TRUE(store->write(b.batch));

  const auto sum = [&](TimeUs since, TimeUs until) {
    TimeRange r;
    r.since = since;
    r.until = until;
    const auto eps = endpoints(*store, r);
    EXPECT_LE(eps.size(), 1U);
    return eps.empty() ? EndpointSummary{} : eps[0];
  };
  // Whole seconds: exact.
  EXPECT_EQ(sum(10 * kSec, 11 * kSec).received_bytes, 1000U);
  const auto both = sum(10 * kSec, 12 * kSec);
  EXPECT_EQ(both.received_bytes, 3000U);
  EXPECT_EQ(both.names[idx(NameSource::sni)], 4U);
  // [10.15, 11.5): the sent packet at 11.1 exactly; no whole second inside,
  // so no received or name counts.
  const auto mid = sum(10 * kSec + 150'000, 11 * kSec + 500'000);
  EXPECT_EQ(mid.packets, 1U);
  EXPECT_EQ(mid.bytes, 20U);
  EXPECT_EQ(mid.received_bytes, 0U);
  EXPECT_EQ(mid.names[idx(NameSource::sni)], 0U);
  // Two ranges meeting inside second 10: sent bytes split exactly, second
  // 10's received bytes are in neither.
  const TimeUs cut = 10 * kSec + 500'000;
  EXPECT_EQ(sum(0, cut).bytes + sum(cut, 20 * kSec).bytes, 30U);
  EXPECT_EQ(sum(0, cut).received_bytes + sum(cut, 20 * kSec).received_bytes, 2000U);
}

TEST_F(SqliteStoreTest, QueryFlowsFiltersByNameAndOverlapAndOrdersByFirstSeen) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  BatchBuilder b(id);
  const auto late = b.flow(id, 2, "10.0.0.5", 50002, "198.51.100.7", 80, "", NameSource::none);
  const auto early =
      b.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::sni);
  const auto mid =
      b.flow(id, 1, "10.0.0.6", 50001, "93.184.216.34", 443, "example.com", NameSource::dns);
  b.flow_packet(early, Direction::sent, 0, 10 * kSec, 1)
      .flow_packet(early, Direction::received, 3, 20 * kSec, 1)
      .flow_packet(mid, Direction::sent, 1, 15 * kSec, 1)
      .flow_packet(late, Direction::sent, 2, 30 * kSec, 1)
      .flow_packet(late, Direction::received, 4, 40 * kSec, 1);
  ASSERT_TRUE(store->write(b.batch));

  auto all = flows(*store);
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0].first_seen, 10 * kSec);
  EXPECT_EQ(all[1].first_seen, 15 * kSec);
  EXPECT_EQ(all[1].source, NameSource::dns);
  EXPECT_EQ(all[2].endpoint, "");

  FlowQuery q;
  q.endpoint = "example.com";
  EXPECT_EQ(flows(*store, q).size(), 2U);
  q.endpoint = "";
  ASSERT_EQ(flows(*store, q).size(), 1U);
  EXPECT_EQ(flows(*store, q)[0].endpoint_port, 80);
  q.endpoint = "nobody.example";
  EXPECT_TRUE(flows(*store, q).empty());

  FlowQuery r;
  r.range.since = 20 * kSec; // last_seen >= since: early (ends at 20) and late
  r.range.until = 30 * kSec; // first_seen < until: not late (starts at 30)
  const auto overlap = flows(*store, r);
  ASSERT_EQ(overlap.size(), 1U);
  EXPECT_EQ(overlap[0].first_seen, 10 * kSec);
  r.range.until = 30 * kSec + 1;
  EXPECT_EQ(flows(*store, r).size(), 2U);
  r.range.since = 50 * kSec;
  r.range.until = 40 * kSec;
  EXPECT_TRUE(flows(*store, r).empty());
}

TEST_F(SqliteStoreTest, MalformedFlowBatchesAreRejectedWhole) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store);
  const auto check = [&](const Batch &batch, const char *what) {
    const Status st = store->write(batch);
    EXPECT_FALSE(st) << what;
    EXPECT_EQ(st.code(), StatusCode::invalid_argument) << what << ": " << st.message();
  };
  {
    Batch b = two_flows(id);
    b.packets[0].flow = 7;
    check(b, "packet names a flow out of range");
  }
  {
    Batch b = two_flows(id);
    b.flows[0].name = 99;
    check(b, "flow names an endpoint out of range");
  }
  {
    Batch b = two_flows(id);
    b.flows[1].client = IpAddress{};
    check(b, "flow without a client address");
  }
  {
    Batch b = two_flows(id);
    b.packets[1].source = NameSource::count_;
    check(b, "unknown name source");
  }
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM flows"), 0);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM rollups"), 0);
  EXPECT_EQ(raw.integer("SELECT frames_done FROM sources"), 0);
}

// A store of schema version 3 (flows without a program) is migrated in place
// by a writer: its flows read back with no program, and new ones keep theirs.
TEST_F(SqliteStoreTest, AVersionThreeStoreGainsThePidAndProgramColumns) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    const auto id = source(*store);
    BatchBuilder b(id);
    const auto f =
        b.flow(id, 0, "10.0.0.5", 50000, "93.184.216.34", 443, "example.com", NameSource::sni);
    b.flow_packet(f, Direction::sent, 0, 5 * kSec, 100);
    ASSERT_TRUE(store->write(b.batch));
  }
  {
    RawDb raw(path_);
    raw.exec("ALTER TABLE flows DROP COLUMN pid; ALTER TABLE flows DROP COLUMN program; "
             "PRAGMA user_version = 3");
  }
  auto store = open();
  ASSERT_TRUE(store);
  const auto id = source(*store, "fp-2");
  BatchBuilder b(id);
  const auto f =
      b.flow(id, 0, "10.0.0.6", 40000, "93.184.216.34", 443, "example.com", NameSource::sni);
  b.flow_packet(f, Direction::sent, 0, 6 * kSec, 100);
  b.batch.flows[f].pid = 77;
  b.batch.flows[f].program = "curl";
  ASSERT_TRUE(store->write(b.batch));
  const auto fl = flows(*store);
  ASSERT_EQ(fl.size(), 2U);
  EXPECT_EQ(fl[0].pid, 0);
  EXPECT_EQ(fl[0].program, "");
  EXPECT_EQ(fl[1].pid, 77);
  EXPECT_EQ(fl[1].program, "curl");
  RawDb raw(path_);
  EXPECT_EQ(raw.integer("PRAGMA user_version"), 4);
}

} // namespace
} // namespace ta::store
