// Token-aware routing in the Session: three scripted fake servers on
// 127.0.0.1 are nodes 0, 1, 2 (contact-point order); the test gives the
// Session a token ring (SessionAccess::impl(s).set_ring, the hook the node
// discovery uses) and checks on which server each EXECUTE / BATCH lands.
//
// Keys and their tokens, from the Python driver's murmur3 (see
// ring_vectors.inc): 0x61 -> -8839064797231613815, 0xff ->
// -4442228696663692417, 0x8080808080808080 -> -1779431913235548342,
// "example.com" -> 5263683394119058897, "hello world" -> 5998619086395760910.
// Ring: node 0 ends at -5e18, node 1 at 0, node 2 at 5.5e18, so with rf 1:
// 61 -> 0, ff -> 1, 8080808080808080 -> 1, example.com -> 2, hello world ->
// past the last token, wraps to node 0.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/cql/session.hpp"

#include "fake_server.hpp"
#include "ring.hpp"
#include "session_impl.hpp"

namespace ta::cql {
namespace {

using test::FakeServer;

// PREPARED: 2 bind columns, the first is the partition key.
std::vector<std::byte> prepared_with_key(Bytes id) {
  std::vector<std::byte> b;
  BodyWriter w(b);
  w.put_int(4);
  w.put_short_bytes(id);
  w.put_int(0x0001);
  w.put_int(2);
  w.put_int(1); // pk_count
  w.put_short(0);
  w.put_string("ks");
  w.put_string("t");
  w.put_string("k");
  w.put_short(0x0003); // blob
  w.put_string("v");
  w.put_short(0x0009); // int
  w.put_int(0x0004);
  w.put_int(0);
  return b;
}

// Notes "KEY <hex>" for each EXECUTE (its first value) and "BATCH" for a
// BATCH; PREPARE gets the metadata above; the rest the default answer.
FakeServer::Handler node_handler() {
  return [](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode == Opcode::prepare) {
      ctx.reply(f.header.stream, Opcode::result, prepared_with_key(test::to_bytes("id:route")));
      return true;
    }
    if (f.header.opcode == Opcode::execute) {
      BodyReader r(body);
      Bytes id;
      test::Params p;
      if (r.read_short_bytes(id) && test::parse_params(r, p) && !p.values.empty()) {
        ctx.server.note("KEY " + (p.values[0] ? test::dump(*p.values[0]) : std::string("null")));
      }
    }
    return false;
  };
}

struct Cluster {
  std::array<std::unique_ptr<FakeServer>, 3> servers;
  std::unique_ptr<Session> session;
  Prepared insert;

  explicit Cluster(Routing routing = Routing::token_aware) {
    Options o;
    for (auto &s : servers) {
      s = std::make_unique<FakeServer>(node_handler());
      o.contact_points.push_back(s->address());
    }
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.request_timeout = std::chrono::milliseconds(3000);
    o.retry_base_delay = std::chrono::milliseconds(1);
    o.retry_max_delay = std::chrono::milliseconds(4);
    o.routing = routing;
    // These tests set the ring by hand; discovery would rebuild it from the
    // fake servers' system tables after a run (cluster_test.cpp covers that).
    o.discover = false;
    Status st;
    session = Session::connect(o, st);
    EXPECT_TRUE(st.ok()) << st.message();
    if (session) {
      EXPECT_TRUE(session->prepare("INSERT INTO t (k, v) VALUES (?, ?)", insert).ok());
    }
  }
  void set_ring(std::uint32_t rf) {
    auto ring = std::make_shared<const detail::TokenRing>(detail::TokenRing::build(
        {{-5'000'000'000'000'000'000LL, 0}, {0, 1}, {5'500'000'000'000'000'000LL, 2}},
        detail::Replication::simple(rf), {}, {}));
    SessionAccess::impl(*session).set_ring(std::move(ring), "ks");
  }
  // How many EXECUTEs of `key_hex` each server saw.
  std::array<int, 3> landed(const std::string &key_hex) {
    std::array<int, 3> out{};
    for (std::size_t i = 0; i < 3; ++i) {
      if (servers[i]) {
        for (const auto &line : servers[i]->log()) {
          out[i] += line == "KEY " + key_hex ? 1 : 0;
        }
      }
    }
    return out;
  }
  std::array<int, 3> batches() {
    std::array<int, 3> out{};
    for (std::size_t i = 0; i < 3; ++i) {
      for (const auto &line : servers[i]->log()) {
        out[i] += line.starts_with("BATCH") ? 1 : 0;
      }
    }
    return out;
  }
  Request request(const std::string &key_hex, int copies = 1) {
    Request r;
    for (int i = 0; i < copies; ++i) {
      Statement s;
      s.prepared = insert;
      s.values.add_blob(test::Fx{}.h(key_hex).v).add_int(i);
      r.statements.push_back(std::move(s));
    }
    return r;
  }
  std::pair<std::uint64_t, std::uint64_t> routed() const {
    std::pair<std::uint64_t, std::uint64_t> sum{};
    for (const auto &n : session->stats()) {
      sum.first += n.routed_to_replica;
      sum.second += n.routed_elsewhere;
    }
    return sum;
  }
};

// dump() writes "61 " for a byte: keys are compared in that form.
std::string dumped(std::string_view hex) {
  return test::dump(test::Fx{}.h(hex).v);
}

TEST(CqlRouting, EachKeyGoesToItsReplica) {
  Cluster c;
  ASSERT_NE(c.session, nullptr);
  c.set_ring(1);
  const std::array<std::pair<const char *, int>, 5> keys{{{"61", 0},
                                                          {"ff", 1},
                                                          {"8080808080808080", 1},
                                                          {"6578616d706c652e636f6d", 2},
                                                          {"68656c6c6f20776f726c64", 0}}};
  std::vector<Request> requests;
  for (int round = 0; round < 4; ++round) {
    for (const auto &[key, node] : keys) {
      requests.push_back(c.request(key));
    }
  }
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  for (const auto &[key, node] : keys) {
    std::array<int, 3> expected{};
    expected[static_cast<std::size_t>(node)] = 4;
    EXPECT_EQ(c.landed(dumped(key)), expected) << key;
  }
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{20, 0}));
  const auto stats = c.session->stats();
  EXPECT_EQ(stats[0].routed_to_replica, 8U);
  EXPECT_EQ(stats[1].routed_to_replica, 8U);
  EXPECT_EQ(stats[2].routed_to_replica, 4U);
}

TEST(CqlRouting, RoundRobinAmongReplicas) {
  Cluster c;
  ASSERT_NE(c.session, nullptr);
  c.set_ring(2); // 61: range ending at node 0's token, then node 1
  std::vector<Request> requests;
  requests.reserve(10);
  for (int i = 0; i < 10; ++i) {
    requests.push_back(c.request("61"));
  }
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  const auto got = c.landed(dumped("61"));
  EXPECT_EQ(got[0] + got[1], 10);
  EXPECT_GE(got[0], 1);
  EXPECT_GE(got[1], 1);
  EXPECT_EQ(got[2], 0);
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{10, 0}));
}

TEST(CqlRouting, ReplicaDownFallsBackToAnotherNodeAndCountsIt) {
  Cluster c;
  ASSERT_NE(c.session, nullptr);
  c.set_ring(1);
  c.servers[2].reset(); // node 2, the only replica of example.com, goes away
  std::vector<Request> requests{c.request("6578616d706c652e636f6d")};
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  const auto got = c.landed(dumped("6578616d706c652e636f6d"));
  EXPECT_EQ(got[0] + got[1], 1);
  const auto stats = c.session->stats();
  EXPECT_FALSE(stats[2].up);
  EXPECT_EQ(stats[0].routed_elsewhere + stats[1].routed_elsewhere, 1U);
  // Later requests for node 2's keys go elsewhere at once.
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  const auto again = c.session->stats();
  EXPECT_EQ(again[0].routed_elsewhere + again[1].routed_elsewhere, 2U);
}

TEST(CqlRouting, RoundRobinOptionSpreadsButStillCounts) {
  Cluster c(Routing::round_robin);
  ASSERT_NE(c.session, nullptr);
  c.set_ring(1);
  std::vector<Request> requests;
  requests.reserve(9);
  for (int i = 0; i < 9; ++i) {
    requests.push_back(c.request("6578616d706c652e636f6d"));
  }
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  const auto got = c.landed(dumped("6578616d706c652e636f6d"));
  EXPECT_EQ(got[0] + got[1] + got[2], 9);
  EXPECT_GE(got[0], 1);
  EXPECT_GE(got[1], 1);
  const auto stats = c.session->stats();
  EXPECT_EQ(stats[2].routed_to_replica, static_cast<std::uint64_t>(got[2]));
  EXPECT_EQ(stats[0].routed_elsewhere + stats[1].routed_elsewhere,
            static_cast<std::uint64_t>(got[0] + got[1]));
}

TEST(CqlRouting, BatchWithOneKeyIsRoutedMixedKeysAreNot) {
  Cluster c;
  ASSERT_NE(c.session, nullptr);
  c.set_ring(1);
  std::vector<Request> one{c.request("6578616d706c652e636f6d", 3)};
  ASSERT_TRUE(c.session->execute_all(one).ok());
  EXPECT_EQ(c.batches(), (std::array<int, 3>{0, 0, 1}));
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{1, 0}));

  Request mixed = c.request("61");
  mixed.statements.push_back(c.request("ff").statements[0]);
  std::vector<Request> two{mixed};
  ASSERT_TRUE(c.session->execute_all(two).ok());
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{1, 0})); // not counted
}

TEST(CqlRouting, NoRingOrNullKeyMeansNoRouting) {
  Cluster c;
  ASSERT_NE(c.session, nullptr);
  std::vector<Request> requests{c.request("61"), c.request("ff")};
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{0, 0}));

  c.set_ring(1);
  Request null_key;
  Statement s;
  s.prepared = c.insert;
  s.values.add_null().add_int(1);
  null_key.statements.push_back(std::move(s));
  std::vector<Request> nulls{null_key};
  ASSERT_TRUE(c.session->execute_all(nulls).ok());
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{0, 0}));
}

TEST(CqlRouting, StatementsOfAnotherKeyspaceAreNotRouted) {
  Cluster c;
  ASSERT_NE(c.session, nullptr);
  c.set_ring(1);
  // The same ring, said to be another keyspace's: the table in "ks" is not
  // placed by it.
  auto &im = SessionAccess::impl(*c.session);
  im.set_ring(im.ring, "other");
  std::vector<Request> requests{c.request("61"), c.request("ff")};
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{0, 0}));
  // No keyspace given with the ring: every statement is placed by it.
  im.set_ring(im.ring, "");
  ASSERT_TRUE(c.session->execute_all(requests).ok());
  EXPECT_EQ(c.routed(), (std::pair<std::uint64_t, std::uint64_t>{2, 0}));
}

TEST(CqlRouting, PagedReadGoesToTheReplica) {
  Cluster c;
  ASSERT_NE(c.session, nullptr);
  c.set_ring(1);
  Values v;
  v.add_blob(test::Fx{}.h("ff").v).add_int(0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.session->execute_paged(c.insert, v, 100, [](const Row &) {}).ok());
  }
  EXPECT_EQ(c.landed(dumped("ff")), (std::array<int, 3>{0, 3, 0}));
}

} // namespace
} // namespace ta::cql
