// The live view's model: rates over the 2/10/40 s windows on a fake clock
// (expected values are the bytes fed divided by the window, computed here by
// hand), sorting, filtering, the row bound and plain text rendering.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/top/top.hpp"

namespace ta::top {
namespace {

Sample sample(std::string name, std::uint64_t sent_bytes, std::uint64_t received_bytes = 0,
              std::uint64_t sent_packets = 0, std::uint64_t received_packets = 0) {
  Sample s;
  s.name = std::move(name);
  s.totals = {sent_packets, sent_bytes, received_packets, received_bytes};
  return s;
}

const Row *find(const std::vector<Row> &rows, const std::string &name) {
  for (const Row &r : rows) {
    if (r.name == name) {
      return &r;
    }
  }
  return nullptr;
}

TEST(TopModel, RatesOverWindowsWithFakeClock) {
  Model m;
  m.start(100.0);
  // 1000 bytes sent every second for 50 s, 10 packets each second; nothing received.
  for (int t = 1; t <= 50; ++t) {
    m.update(100.0 + t, {sample("a.test", 1000ULL * t, 0, 10ULL * t)});
  }
  const auto rows = m.rows({});
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_DOUBLE_EQ(rows[0].sent.bytes[0], 1000.0);
  EXPECT_DOUBLE_EQ(rows[0].sent.bytes[1], 1000.0);
  EXPECT_DOUBLE_EQ(rows[0].sent.bytes[2], 1000.0);
  EXPECT_DOUBLE_EQ(rows[0].sent.packets[2], 10.0);
  EXPECT_DOUBLE_EQ(rows[0].received.bytes[2], 0.0);
  EXPECT_EQ(rows[0].totals.sent_bytes, 50000U);
}

TEST(TopModel, BurstLeavesTheShortWindowFirst) {
  Model m;
  m.start(0);
  // 4000 bytes in second 1, then nothing.
  m.update(1, {sample("a.test", 0, 4000)});
  for (int t = 2; t <= 12; ++t) {
    m.update(t, {sample("a.test", 0, 4000)});
  }
  // At t=12 the burst (at t=1) is outside 2 s and 10 s (window (2,12]), inside 40 s;
  // 40 s window spans only the 12 s since the start.
  auto rows = m.rows({});
  EXPECT_DOUBLE_EQ(rows[0].received.bytes[0], 0.0);
  EXPECT_DOUBLE_EQ(rows[0].received.bytes[1], 0.0);
  EXPECT_DOUBLE_EQ(rows[0].received.bytes[2], 4000.0 / 12.0);
  // Early on, rates are over the time since the start: at t=1, 4000/1.
  Model early;
  early.start(0);
  early.update(1, {sample("a.test", 0, 4000)});
  rows = early.rows({});
  EXPECT_DOUBLE_EQ(rows[0].received.bytes[0], 4000.0);
  EXPECT_DOUBLE_EQ(rows[0].received.bytes[2], 4000.0);
  // After 41 s more the burst has left every window; the total stays.
  for (int t = 13; t <= 53; ++t) {
    m.update(t, {sample("a.test", 0, 4000)});
  }
  rows = m.rows({});
  EXPECT_DOUBLE_EQ(rows[0].received.bytes[2], 0.0);
  EXPECT_EQ(rows[0].totals.received_bytes, 4000U);
}

TEST(TopModel, CounterThatWentDownRestarts) {
  Model m;
  m.start(0);
  m.update(1, {sample("a.test", 500)});
  m.update(2, {sample("a.test", 200)}); // folded out and back: starts again
  const auto rows = m.rows({});
  EXPECT_EQ(rows[0].totals.sent_bytes, 700U);
}

TEST(TopModel, SortByColumnsAndName) {
  Model m;
  m.start(0);
  m.update(1, {sample("b.test", 300, 10), sample("a.test", 100, 900), sample("c.test", 200, 20)});
  ViewOptions v;
  v.sort = Column::sent_rate;
  auto rows = m.rows(v);
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(rows[0].name, "b.test");
  EXPECT_EQ(rows[2].name, "a.test");
  v.sort = Column::received_total;
  rows = m.rows(v);
  EXPECT_EQ(rows[0].name, "a.test");
  v.ascending = true;
  rows = m.rows(v);
  EXPECT_EQ(rows[0].name, "b.test");
  v.sort = Column::name;
  v.ascending = false;
  rows = m.rows(v);
  EXPECT_EQ(rows[0].name, "a.test");
  EXPECT_EQ(rows[2].name, "c.test");
}

TEST(TopModel, FilterBySubstringOnTheShownName) {
  Model m;
  m.start(0);
  m.update(1, {sample("cdn.news.test", 1), sample("api.example.test", 2), sample("", 3),
               sample(std::string("x\x01y.test"), 4)});
  ViewOptions v;
  v.filter = "NEWS";
  auto rows = m.rows(v);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].name, "cdn.news.test");
  v.filter = "unresolved";
  rows = m.rows(v);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].name, "(unresolved)");
  // Names are shown escaped, and the filter reads the shown form.
  v.filter = "\\x01";
  rows = m.rows(v);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].name, "x\\x01y.test");
}

TEST(TopModel, BoundedRowsFoldIntoOther) {
  Options o;
  o.max_rows = 2;
  Model m(o);
  m.start(0);
  // Busiest by packets (both directions) are kept: c (30), a (20); b (10) and
  // d (5) and the analyzer's own rest (7 packets, 70 bytes) are "(other)".
  m.update(1,
           {sample("a.test", 100, 0, 20), sample("b.test", 1000, 0, 10),
            sample("c.test", 10, 0, 0, 30), sample("d.test", 50, 0, 5)},
           Counters{7, 70, 0, 0});
  const auto rows = m.rows({});
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_NE(find(rows, "a.test"), nullptr);
  EXPECT_NE(find(rows, "c.test"), nullptr);
  EXPECT_EQ(rows.back().name, "(other)");
  EXPECT_TRUE(rows.back().other);
  EXPECT_EQ(rows.back().totals.sent_bytes, 1000U + 50U + 70U);
  EXPECT_EQ(rows.back().totals.sent_packets, 10U + 5U + 7U);
  EXPECT_EQ(m.totals().sent_bytes, 100U + 1000U + 10U + 50U + 70U);
  EXPECT_EQ(m.row_count(), 3U);
  ViewOptions v;
  v.limit = 1;
  EXPECT_EQ(m.rows(v).size(), 2U); // one row and "(other)"
}

const std::vector<std::string> kSourceNames = {"none", "sni", "quic", "http", "dns"};
constexpr std::uint32_t kSni = 1U << 1U;
constexpr std::uint32_t kDns = 1U << 4U;

TEST(TopModel, GroupKeyHookAddsUpRows) {
  Options o;
  o.group_key = [](std::string_view name) {
    const auto dot = name.find('.');
    return std::string(dot == std::string_view::npos ? name : name.substr(dot + 1));
  };
  o.source_names = kSourceNames;
  Model m(o);
  m.start(0);
  Sample a = sample("a.example.test", 100);
  a.flows = 2;
  a.sources = kSni;
  a.programs = {"curl"};
  Sample b = sample("b.example.test", 50);
  b.flows = 1;
  b.sources = kDns;
  b.programs = {"python3", "curl", "wget"};
  m.update(1, {a, b});
  const auto rows = m.rows({});
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].name, "example.test");
  EXPECT_EQ(rows[0].totals.sent_bytes, 150U);
  EXPECT_EQ(rows[0].flows, 3);
  EXPECT_EQ(rows[0].source, "sni+dns");
  EXPECT_EQ(rows[0].program, "curl,python3+1"); // curl once, wget the one more
}

// Flows, like the counters, are totals since the start: a cumulative count
// that went down (an endpoint folded out and back) restarts from its value.
TEST(TopModel, FlowsAreTotalsSinceTheStart) {
  Model m;
  m.start(0);
  Sample a = sample("a.test", 10);
  a.flows = 3;
  m.update(1, {a});
  a.flows = 5;
  m.update(2, {a});
  EXPECT_EQ(m.rows({})[0].flows, 5);
  a.flows = 1; // folded out of the analyzer's summary and back with one flow
  m.update(3, {a});
  EXPECT_EQ(m.rows({})[0].flows, 6);
  Sample unknown = sample("b.test", 1);
  m.update(4, {a, unknown});
  const auto rows = m.rows({});
  const Row *b = find(rows, "b.test");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->flows, -1);
}

// The "(other)" row is a row like the others: rates over the windows, flows,
// sources, programs of what was folded into it.
TEST(TopModel, OtherRowHasRatesFlowsAndSources) {
  Options o;
  o.max_rows = 1;
  o.source_names = kSourceNames;
  Model m(o);
  m.start(0);
  for (int t = 1; t <= 10; ++t) {
    Sample big = sample("big.test", 0, 0, 100ULL * t);
    Sample small = sample("small.test", 300ULL * t, 0, 1ULL * t);
    small.flows = 1;
    small.sources = kDns;
    small.programs = {"curl"};
    Sample rest;
    rest.totals = {1ULL * t, 100ULL * t, 0, 0};
    rest.flows = 2;
    rest.sources = kSni;
    m.update(t, {big, small}, rest);
  }
  const auto rows = m.rows({});
  ASSERT_EQ(rows.size(), 2U);
  const Row &other = rows.back();
  ASSERT_TRUE(other.other);
  // 400 bytes/s sent (300 from small.test, 100 from the rest), 2 packets/s.
  EXPECT_DOUBLE_EQ(other.sent.bytes[0], 400.0);
  EXPECT_DOUBLE_EQ(other.sent.bytes[1], 400.0);
  EXPECT_DOUBLE_EQ(other.sent.packets[0], 2.0);
  EXPECT_EQ(other.totals.sent_bytes, 4000U);
  EXPECT_EQ(other.flows, 3);
  EXPECT_EQ(other.source, "sni+dns");
  EXPECT_EQ(other.program, "curl");
}

TEST(TopRender, PlainTextRows) {
  Model m;
  m.start(0);
  m.update(2, {sample("a.test", 2048, 4096, 4, 6)});
  const std::string text = render_table(m.rows({}));
  EXPECT_EQ(text.find('\033'), std::string::npos);
  // Header, one row; totals exact, rates over the 2 s since the start.
  const auto nl = text.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(text.substr(0, 4), "NAME");
  const std::string row = text.substr(nl + 1);
  EXPECT_EQ(row.substr(0, 6), "a.test");
  EXPECT_NE(row.find(" 2048 "), std::string::npos);
  EXPECT_NE(row.find(" 4096 "), std::string::npos);
  EXPECT_NE(row.find(" 1.0k "), std::string::npos); // 2048 B / 2 s
  EXPECT_NE(row.find(" 2.0k "), std::string::npos); // 4096 B / 2 s
  // Cut to a width.
  const std::string narrow = render_table(m.rows({}), 10);
  EXPECT_EQ(narrow, "NAME\na.test\n");
  EXPECT_EQ(human(999), "999");
  EXPECT_EQ(human(1500), "1.5k");
  EXPECT_EQ(human(2.5e6), "2.5M");
}

} // namespace
} // namespace ta::top
