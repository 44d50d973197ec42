// Session::execute_paged_many and the consistency of reads, against the
// scripted fake server (fake_server.hpp). Nothing here asserts timings.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "ta/cql/session.hpp"

#include "fake_server.hpp"

namespace ta::cql {
namespace {

using test::FakeServer;

Options fast_options(std::vector<HostPort> nodes) {
  Options o;
  o.contact_points = std::move(nodes);
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.request_timeout = std::chrono::milliseconds(3000);
  o.retry_base_delay = std::chrono::milliseconds(1);
  o.retry_max_delay = std::chrono::milliseconds(4);
  return o;
}

std::string text_of(const std::optional<std::vector<std::byte>> &b) {
  return b ? std::string(reinterpret_cast<const char *>(b->data()), b->size()) : std::string();
}

// A partitioned table as the fake server plays it: the EXECUTE's one int
// value k names the partition, which holds rows_in(k) rows k*100 + 0, 1, ...
// two rows a page; the paging state is the next row's offset. Counts what
// the client asks for.
std::int32_t rows_in(std::int32_t k) {
  return k % 10 == 9 ? 0 : 5 + k % 3; // empty, or three pages or more
}

struct Partitions {
  std::mutex mu;
  std::set<std::int32_t> open; // partitions asked for whose last page is not sent yet
  std::size_t most_open = 0;
  std::vector<std::uint16_t> consistencies; // of every EXECUTE
  int failing = -1;                         // this partition answers a permanent error
  int first_pages = 0;

  bool answer(FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode != Opcode::execute) {
      return false;
    }
    BodyReader r(body);
    Bytes id;
    test::Params p;
    if (!r.read_short_bytes(id) || !test::parse_params(r, p) || p.values.size() != 1 ||
        !p.values[0] || p.page_size != 2) {
      ctx.reply(f.header.stream, Opcode::error, test::error_body(0x000A, "bad EXECUTE"));
      return true;
    }
    const std::int32_t k = as_int(p.values[0]).value_or(-1);
    const std::string state = text_of(p.paging_state);
    const std::lock_guard lock(mu);
    consistencies.push_back(p.consistency);
    if (state.empty()) {
      ++first_pages;
      open.insert(k);
      most_open = std::max(most_open, open.size());
    }
    if (k == failing) {
      open.erase(k);
      ctx.reply(f.header.stream, Opcode::error, test::error_body(0x2200, "no such partition"));
      return true;
    }
    const std::int32_t count = rows_in(k);
    const std::int32_t from = state.empty() ? 0 : std::stoi(state);
    std::vector<std::int32_t> rows;
    for (std::int32_t i = from; i < std::min(count, from + 2); ++i) {
      rows.push_back(k * 100 + i);
    }
    const bool more = from + 2 < count;
    if (!more) {
      open.erase(k);
    }
    ctx.reply(
        f.header.stream, Opcode::result,
        test::int_rows_body(rows, more ? std::optional(std::to_string(from + 2)) : std::nullopt));
    return true;
  }
};

std::vector<Statement> reads_of(const Prepared &p, std::int32_t n) {
  std::vector<Statement> reads(static_cast<std::size_t>(n));
  for (std::int32_t k = 0; k < n; ++k) {
    reads[static_cast<std::size_t>(k)].prepared = p;
    reads[static_cast<std::size_t>(k)].values.add_int(k);
  }
  return reads;
}

TEST(CqlSessionMany, EveryPartitionInOrderWithABoundInFlight) {
  Partitions table;
  FakeServer server(
      [&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) { return table.answer(ctx, f, body); });
  auto o = fast_options({server.address()});
  o.consistency = Consistency::all;
  Status st;
  auto s = Session::connect(o, st);
  ASSERT_NE(s, nullptr) << st.message();
  Prepared p;
  ASSERT_TRUE(s->prepare("SELECT v FROM t WHERE k = ?", p).ok());
  const auto reads = reads_of(p, 50);
  std::map<std::size_t, std::vector<std::int32_t>> got;
  std::size_t most_in_flight = 0;
  st = s->execute_paged_many(reads, 2, 4, [&](std::size_t i, const Row &row) {
    got[i].push_back(as_int(row.cells[0]).value_or(-1));
    most_in_flight = std::max(most_in_flight, s->stats()[0].in_flight);
  });
  ASSERT_TRUE(st.ok()) << st.message();
  // Each partition's rows, in order, computed from the table's rule.
  std::size_t partitions_with_rows = 0;
  for (std::int32_t k = 0; k < 50; ++k) {
    std::vector<std::int32_t> want;
    want.reserve(static_cast<std::size_t>(rows_in(k)));
    for (std::int32_t i = 0; i < rows_in(k); ++i) {
      want.push_back(k * 100 + i);
    }
    const auto it = got.find(static_cast<std::size_t>(k));
    EXPECT_EQ(it == got.end() ? std::vector<std::int32_t>{} : it->second, want) << k;
    partitions_with_rows += want.empty() ? 0 : 1;
  }
  EXPECT_EQ(got.size(), partitions_with_rows);
  EXPECT_EQ(table.first_pages, 50); // each partition asked once
  // One connection, the first four reads sent before any answer and each
  // three pages or more: exactly four partitions open at once on the
  // server, never more.
  EXPECT_EQ(table.most_open, 4U);
  EXPECT_LE(most_in_flight, 4U);
  // Every page asked at consistency ALL (0x0005).
  ASSERT_FALSE(table.consistencies.empty());
  for (const auto c : table.consistencies) {
    EXPECT_EQ(c, 0x0005);
  }
  EXPECT_EQ(s->stats()[0].in_flight, 0U);
  // The session is usable again afterwards (slots and tasks released).
  got.clear();
  ASSERT_TRUE(s->execute_paged_many(std::span(reads).subspan(3, 2), 2, 64,
                                    [&](std::size_t i, const Row &row) {
                                      got[i].push_back(as_int(row.cells[0]).value_or(-1));
                                    })
                  .ok());
  EXPECT_EQ(got[0], (std::vector<std::int32_t>{300, 301, 302, 303, 304}));
  EXPECT_EQ(got[1], (std::vector<std::int32_t>{400, 401, 402, 403, 404, 405}));
}

TEST(CqlSessionMany, OneBoundIsOneAtATime) {
  Partitions table;
  FakeServer server(
      [&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) { return table.answer(ctx, f, body); });
  Status st;
  auto s = Session::connect(fast_options({server.address()}), st);
  ASSERT_NE(s, nullptr) << st.message();
  Prepared p;
  ASSERT_TRUE(s->prepare("SELECT v FROM t WHERE k = ?", p).ok());
  const auto reads = reads_of(p, 12);
  std::vector<std::size_t> order;
  ASSERT_TRUE(s->execute_paged_many(reads, 2, 0, [&](std::size_t i, const Row &) {
                 order.push_back(i);
               }).ok()); // 0 is clamped to 1
  EXPECT_EQ(table.most_open, 1U);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST(CqlSessionMany, APermanentFailureEndsTheCall) {
  Partitions table;
  table.failing = 17;
  FakeServer server(
      [&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) { return table.answer(ctx, f, body); });
  Status st;
  auto s = Session::connect(fast_options({server.address()}), st);
  ASSERT_NE(s, nullptr) << st.message();
  Prepared p;
  ASSERT_TRUE(s->prepare("SELECT v FROM t WHERE k = ?", p).ok());
  const auto reads = reads_of(p, 200);
  st = s->execute_paged_many(reads, 2, 8, [](std::size_t, const Row &) {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.detail(), 0x2200) << st.message();
  EXPECT_NE(st.message().find("no such partition"), std::string::npos) << st.message();
  EXPECT_LT(table.first_pages, 200); // the rest were never started
  // A bad statement is refused before anything is sent.
  std::vector<Statement> bad(1);
  bad[0].prepared = p; // no value for its one marker
  st = s->execute_paged_many(bad, 2, 8, [](std::size_t, const Row &) {});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("takes 1 values, got 0"), std::string::npos) << st.message();
  // Nothing to read: nothing sent, success.
  EXPECT_TRUE(s->execute_paged_many({}, 2, 8, [](std::size_t, const Row &) {}).ok());
}

// The consistency of simple QUERYs and of single paged reads is the
// session's too, not only that of writes.
TEST(CqlSessionMany, ReadsCarryTheConsistency) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::uint16_t>> seen;
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    BodyReader r(body);
    test::Params p;
    if (f.header.opcode == Opcode::query) {
      std::string_view text;
      (void)r.read_long_string(text);
      if (text.starts_with("SELECT") && test::parse_params(r, p)) {
        const std::lock_guard lock(mu);
        seen.emplace_back("QUERY", p.consistency);
      }
      return false;
    }
    if (f.header.opcode == Opcode::execute) {
      Bytes id;
      if (r.read_short_bytes(id) && test::parse_params(r, p)) {
        const std::lock_guard lock(mu);
        seen.emplace_back("EXECUTE", p.consistency);
      }
      ctx.reply(f.header.stream, Opcode::result, test::int_rows_body({1}, std::nullopt));
      return true;
    }
    return false;
  });
  for (const auto &[cl, code] :
       {std::pair{Consistency::all, 0x0005}, std::pair{Consistency::quorum, 0x0004},
        std::pair{Consistency::local_one, 0x000A}}) {
    auto o = fast_options({server.address()});
    o.consistency = cl;
    Status st;
    auto s = Session::connect(o, st);
    ASSERT_NE(s, nullptr) << st.message();
    {
      const std::lock_guard lock(mu);
      seen.clear();
    }
    ASSERT_TRUE(s->query("SELECT v FROM t").ok());
    Prepared p;
    ASSERT_TRUE(s->prepare("SELECT v FROM t WHERE k = ?", p).ok());
    Values v;
    v.add_int(1);
    ASSERT_TRUE(s->execute_paged(p, v, 10, [](const Row &) {}).ok());
    const std::lock_guard lock(mu);
    ASSERT_EQ(seen.size(), 2U);
    EXPECT_EQ(seen[0], (std::pair<std::string, std::uint16_t>{"QUERY", code}));
    EXPECT_EQ(seen[1], (std::pair<std::string, std::uint16_t>{"EXECUTE", code}));
  }
}

} // namespace
} // namespace ta::cql
