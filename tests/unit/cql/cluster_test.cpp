// Discovery, events and schema agreement against fake nodes on 127.0.0.1,
// 127.0.0.2, ... (the whole 127/8 is loopback on Linux). The fake servers
// describe their cluster through system.local and system.peers_v2 rows
// set by each test and push EVENT frames on request. Waits are bounded
// loops over reconnect() (the session reads events when it polls); nothing
// here asserts timings.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ta/cql/session.hpp"

#include "fake_server.hpp"

namespace ta::cql {
namespace {

using test::ClusterSpec;
using test::event_body;
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

std::unique_ptr<Session> must_connect(const Options &o) {
  Status st;
  auto s = Session::connect(o, st);
  EXPECT_TRUE(st.ok()) << st.message();
  return s;
}

// A port on `host` with nothing listening: bound, read back, closed.
std::uint16_t closed_port(const char *host = "127.0.0.1") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, host, &a.sin_addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string label(const FakeServer &s) {
  return s.address().host + ":" + std::to_string(s.port());
}

const NodeStats *node(const std::vector<NodeStats> &stats, const std::string &host) {
  const auto it =
      std::find_if(stats.begin(), stats.end(), [&](const NodeStats &n) { return n.host == host; });
  return it == stats.end() ? nullptr : &*it;
}

// Polls the session (events are read then) until `done`, at most ~10 s.
template <class F> bool eventually(Session &s, F done) {
  for (int i = 0; i < 500; ++i) {
    (void)s.reconnect();
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool contains(const std::vector<std::string> &log, std::string_view line) {
  return std::find(log.begin(), log.end(), line) != log.end();
}

std::size_t count_of(const std::vector<std::string> &log, std::string_view needle) {
  return static_cast<std::size_t>(std::count_if(
      log.begin(), log.end(), [&](const auto &l) { return l.find(needle) != std::string::npos; }));
}

// Sends `n` single-statement writes (round robin over the nodes up).
void write_some(Session &s, int n) {
  Prepared p;
  ASSERT_TRUE(s.prepare("INSERT INTO t (k) VALUES (?)", p).ok());
  std::vector<Request> reqs(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    reqs[static_cast<std::size_t>(i)].statements.push_back({p, {}});
    reqs[static_cast<std::size_t>(i)].statements.back().values.add_int(i);
  }
  ASSERT_TRUE(s.execute_all(reqs).ok());
}

TEST(CqlCluster, DiscoveryAddsEveryPeerWithItsOwnConnection) {
  FakeServer a;
  FakeServer b({}, "127.0.0.2");
  FakeServer c({}, "127.0.0.3");
  auto pb = b.as_peer();
  pb.data_center = "dc2";
  pb.rack = "r7";
  pb.tokens = {"-9223372036854775808", "42"};
  ClusterSpec ca = a.cluster();
  ca.local.tokens = {"0"};
  ca.peers = {pb, c.as_peer()};
  a.set_cluster(ca);

  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  const auto stats = s->stats();
  ASSERT_EQ(stats.size(), 3U);
  for (const auto &n : stats) {
    EXPECT_TRUE(n.up) << n.host;
  }
  ASSERT_NE(node(stats, label(b)), nullptr);
  EXPECT_EQ(node(stats, label(b))->data_center, "dc2");
  EXPECT_EQ(node(stats, label(b))->rack, "r7");
  EXPECT_EQ(node(stats, label(a))->data_center, "dc1");
  EXPECT_EQ(b.connections, 1);
  EXPECT_EQ(c.connections, 1);
  EXPECT_TRUE(s->take_warnings().empty());

  const auto sys = a.system_log();
  EXPECT_TRUE(contains(sys, "REGISTER"));
  EXPECT_TRUE(contains(sys, "SELECT * FROM system.local"));
  EXPECT_TRUE(contains(sys, "SELECT * FROM system.peers_v2"));
  EXPECT_FALSE(contains(sys, "SELECT * FROM system.peers"));
  EXPECT_EQ(s->cluster_stats().control, label(a));
  EXPECT_EQ(s->cluster_stats().refreshes, 1U);

  // Every node takes writes (prepared on the new nodes too).
  write_some(*s, 9);
  EXPECT_EQ(count_of(b.log(), "EXECUTE"), 3U);
  EXPECT_EQ(count_of(c.log(), "EXECUTE"), 3U);
  EXPECT_EQ(count_of(b.log(), "PREPARE"), 1U);
}

TEST(CqlCluster, WithoutPeersV2FallsBackToPeersOnTheContactPort) {
  FakeServer a;
  FakeServer b({}, "127.0.0.2", a.port()); // system.peers has no port column
  if (!b.bound()) {
    GTEST_SKIP() << "127.0.0.2:" << a.port() << " is taken";
  }
  ClusterSpec ca = a.cluster();
  ca.peers_v2 = false;
  auto pb = b.as_peer();
  pb.port = 1; // not read from system.peers
  ca.peers = {pb};
  a.set_cluster(ca);

  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  const auto stats = s->stats();
  ASSERT_EQ(stats.size(), 2U);
  ASSERT_NE(node(stats, label(b)), nullptr);
  EXPECT_TRUE(node(stats, label(b))->up);
  const auto sys = a.system_log();
  EXPECT_TRUE(contains(sys, "SELECT * FROM system.peers_v2"));
  EXPECT_TRUE(contains(sys, "SELECT * FROM system.peers"));
  EXPECT_TRUE(s->take_warnings().empty());

  // Later refreshes go straight to system.peers.
  a.push_event(event_body("TOPOLOGY_CHANGE", "NEW_NODE", "127.0.0.2", a.port()));
  ASSERT_TRUE(eventually(*s, [&] { return s->cluster_stats().refreshes == 2; }));
  EXPECT_EQ(count_of(a.system_log(), "system.peers_v2"), 1U);
}

TEST(CqlCluster, MalformedPeerRowsAreSkippedWithOneWarningEach) {
  FakeServer a;
  FakeServer b({}, "127.0.0.2");
  ClusterSpec ca = a.cluster();
  auto no_address = b.as_peer();
  no_address.address = "";
  no_address.host_id = "";
  auto bad_address = b.as_peer();
  bad_address.address = "bad";
  bad_address.host_id = "";
  auto bad_token = b.as_peer();
  bad_token.tokens = {"12x"};
  auto good = b.as_peer();
  good.tokens = {"7", "-7"};
  ca.peers = {no_address, bad_address, bad_token, a.as_peer(), good, good};
  a.set_cluster(ca);

  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  const std::string at = label(a) + ": system.peers_v2 row ";
  const std::vector<std::string> expected = {
      at + "1 skipped: no native_address",
      at + "2 skipped: invalid native_address (3 bytes)",
      at + "3 (" + label(b) + ") skipped: token \"12x\" is not a 64-bit integer",
      at + "4 (" + label(a) + ") skipped: the node lists itself as its peer",
      at + "6 (" + label(b) + ") skipped: duplicate of " + label(b),
  };
  EXPECT_EQ(s->take_warnings(), expected);
  EXPECT_TRUE(s->take_warnings().empty()); // taken
  EXPECT_EQ(s->cluster_stats().skipped_peer_rows, 5U);
  const auto stats = s->stats();
  ASSERT_EQ(stats.size(), 2U); // a and the good row
  EXPECT_TRUE(node(stats, label(b))->up);
}

TEST(CqlCluster, UnreachablePeerStaysDownAndDoesNotBlockTheOthers) {
  FakeServer a;
  FakeServer b({}, "127.0.0.2");
  const std::uint16_t dead_port = closed_port("127.0.0.4");
  ClusterSpec ca = a.cluster();
  auto dead = b.as_peer();
  dead.address = "127.0.0.4";
  dead.port = dead_port;
  dead.host_id = "0000000000000000000000000000dead";
  ca.peers = {dead, b.as_peer()};
  a.set_cluster(ca);

  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  const std::string dead_label = "127.0.0.4:" + std::to_string(dead_port);
  const auto stats = s->stats();
  ASSERT_EQ(stats.size(), 3U);
  ASSERT_NE(node(stats, dead_label), nullptr);
  EXPECT_FALSE(node(stats, dead_label)->up);
  EXPECT_TRUE(node(stats, label(b))->up);
  const auto warnings = s->take_warnings();
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_TRUE(warnings[0].starts_with(dead_label + ": connect failed")) << warnings[0];
  EXPECT_NE(warnings[0].find("(discovered node: kept down, tried again with backoff)"),
            std::string::npos)
      << warnings[0];
  EXPECT_EQ(warnings[0].find('\n'), std::string::npos);

  write_some(*s, 4); // the live nodes take everything
  EXPECT_EQ(count_of(b.log(), "EXECUTE"), 2U);
  EXPECT_TRUE(s->reconnect());
}

TEST(CqlCluster, EventForAnUnknownNodeRefreshesWithOneWarning) {
  FakeServer a;
  FakeServer b({}, "127.0.0.2");
  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->stats().size(), 1U);

  ClusterSpec ca = a.cluster();
  ca.peers = {b.as_peer()};
  a.set_cluster(ca);
  a.push_event(event_body("STATUS_CHANGE", "UP", "127.0.0.2", b.port()));
  ASSERT_TRUE(eventually(*s, [&] { return s->stats().size() == 2; }));
  EXPECT_TRUE(node(s->stats(), label(b))->up);
  EXPECT_EQ(s->take_warnings(),
            std::vector<std::string>{label(a) + ": STATUS_CHANGE UP for unknown node " + label(b) +
                                     ": refreshing the node list"});
  EXPECT_EQ(s->cluster_stats().unknown_node_events, 1U);
  EXPECT_EQ(s->cluster_stats().events, 1U);
}

TEST(CqlCluster, DownIsAHintRemovedDropsNewNodeAdds) {
  FakeServer a;
  FakeServer b({}, "127.0.0.2");
  FakeServer c({}, "127.0.0.3");
  ClusterSpec ca = a.cluster();
  ca.peers = {b.as_peer()};
  a.set_cluster(ca);
  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->stats().size(), 2U);

  // DOWN while b answers: probed (OPTIONS), kept.
  a.push_event(event_body("STATUS_CHANGE", "DOWN", "127.0.0.2", b.port()));
  ASSERT_TRUE(eventually(*s, [&] { return s->cluster_stats().events == 1; }));
  EXPECT_TRUE(node(s->stats(), label(b))->up);
  EXPECT_TRUE(contains(b.log(), "OPTIONS"));
  EXPECT_EQ(b.connections, 1);

  // REMOVED_NODE: gone from the node set.
  ca.peers = {};
  a.set_cluster(ca);
  a.push_event(event_body("TOPOLOGY_CHANGE", "REMOVED_NODE", "127.0.0.2", b.port()));
  ASSERT_TRUE(eventually(*s, [&] { return s->stats().size() == 1; }));

  // NEW_NODE: a refresh finds it.
  ca.peers = {c.as_peer()};
  a.set_cluster(ca);
  a.push_event(event_body("TOPOLOGY_CHANGE", "NEW_NODE", "127.0.0.3", c.port()));
  ASSERT_TRUE(eventually(*s, [&] {
    const auto st = s->stats();
    return st.size() == 2 && node(st, label(c)) != nullptr && node(st, label(c))->up;
  }));
  EXPECT_TRUE(s->take_warnings().empty());
  write_some(*s, 2);
  EXPECT_EQ(count_of(c.log(), "EXECUTE"), 1U);
  EXPECT_EQ(count_of(b.log(), "EXECUTE"), 0U);
}

TEST(CqlCluster, UpEventReconnectsADownNodeAtOnce) {
  FakeServer a;
  const std::uint16_t port = closed_port("127.0.0.2");
  ClusterSpec ca = a.cluster();
  auto pb = a.as_peer();
  pb.address = "127.0.0.2";
  pb.port = port;
  pb.host_id = "000000000000000000000000000000b0";
  ca.peers = {pb};
  a.set_cluster(ca);
  auto o = fast_options({a.address()});
  o.retry_max_delay = std::chrono::milliseconds(60000); // backoff alone would wait
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  const std::string bl = "127.0.0.2:" + std::to_string(port);
  ASSERT_FALSE(node(s->stats(), bl)->up);
  (void)s->take_warnings();

  FakeServer b({}, "127.0.0.2", port);
  if (!b.bound()) {
    GTEST_SKIP() << bl << " was taken meanwhile";
  }
  a.push_event(event_body("STATUS_CHANGE", "UP", "127.0.0.2", port));
  ASSERT_TRUE(eventually(*s, [&] { return node(s->stats(), bl)->up; }));
  EXPECT_EQ(b.connections, 1);
}

TEST(CqlCluster, LostControlConnectionMovesToAnotherNode) {
  auto a = std::make_unique<FakeServer>();
  FakeServer b({}, "127.0.0.2");
  ClusterSpec ca = a->cluster();
  ca.peers = {b.as_peer()};
  a->set_cluster(ca);
  ClusterSpec cb = b.cluster();
  cb.peers = {a->as_peer()};
  b.set_cluster(cb);
  auto s = must_connect(fast_options({a->address()}));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->cluster_stats().control, label(*a));

  a.reset();
  ASSERT_TRUE(eventually(*s, [&] { return s->cluster_stats().control == label(b); }));
  EXPECT_TRUE(contains(b.system_log(), "REGISTER"));
  EXPECT_TRUE(s->query("SELECT 1").ok()); // b serves
}

TEST(CqlCluster, DiscoveryRefusedKeepsTheContactPointsWithOneWarning) {
  FakeServer a;
  ClusterSpec ca = a.cluster();
  ca.local_unauthorized = true;
  a.set_cluster(ca);
  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->take_warnings(),
            std::vector<std::string>{label(a) +
                                     ": server error 0x2100 (unauthorized): User x has no SELECT "
                                     "permission on <table system.local> (discovery: keeping "
                                     "the nodes known so far)"});
  ASSERT_EQ(s->stats().size(), 1U);
  EXPECT_TRUE(s->stats()[0].up);
  EXPECT_TRUE(s->query("SELECT 1").ok());
}

TEST(CqlCluster, AllNodesDownAtStartIsOneClearLine) {
  const std::uint16_t p1 = closed_port("127.0.0.1");
  const std::uint16_t p2 = closed_port("127.0.0.2");
  Status st;
  auto s = Session::connect(fast_options({{"127.0.0.1", p1}, {"127.0.0.2", p2}}), st);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(st.code(), StatusCode::unavailable);
  EXPECT_TRUE(is_transient(st)); // the store keeps spooling and tries again
  const std::string &m = st.message();
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_TRUE(
      m.starts_with("no host available: 127.0.0.1:" + std::to_string(p1) + ": connect failed"))
      << m;
  EXPECT_NE(m.find("; 127.0.0.2:" + std::to_string(p2) + ": connect failed"), std::string::npos)
      << m;
}

TEST(CqlCluster, SchemaDisagreementNamesVersionsAndNodes) {
  FakeServer a;
  FakeServer b({}, "127.0.0.2");
  const std::uint16_t dead_port = closed_port("127.0.0.3");
  ClusterSpec ca = a.cluster();
  ca.local.schema_version = "00000000000000000000000000000001";
  auto pb = b.as_peer();
  pb.schema_version = "00000000000000000000000000000002";
  auto dead = b.as_peer();
  dead.address = "127.0.0.3";
  dead.port = dead_port;
  dead.host_id = "0000000000000000000000000000dead";
  dead.schema_version = "00000000000000000000000000000003"; // down: not counted
  ca.peers = {pb, dead};
  a.set_cluster(ca);
  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);

  const std::size_t before = count_of(a.system_log(), "system.local");
  const Status st = s->wait_schema_agreement(std::chrono::milliseconds(500));
  EXPECT_EQ(st.code(), StatusCode::timeout);
  EXPECT_EQ(st.message(), "no schema agreement after 500 ms: "
                          "00000000-0000-0000-0000-000000000001 on " +
                              label(a) + "; 00000000-0000-0000-0000-000000000002 on " + label(b));
  EXPECT_GE(count_of(a.system_log(), "system.local"), before + 2); // asked again

  pb.schema_version = ca.local.schema_version;
  ca.peers = {pb, dead};
  a.set_cluster(ca);
  EXPECT_TRUE(s->wait_schema_agreement(std::chrono::milliseconds(5000)).ok());
}

// The ring needs the keyspace's replication: the session's keyspace, or
// the one its prepared statements name (the fake's PREPARE says "ks").
TEST(CqlCluster, RingReadsTheReplicationOfTheStatementsKeyspace) {
  FakeServer a;
  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  const std::string ask =
      "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'ks'";
  EXPECT_FALSE(contains(a.system_log(), ask)); // no keyspace yet
  write_some(*s, 1);
  EXPECT_EQ(count_of(a.system_log(), ask), 1U);
  EXPECT_TRUE(s->take_warnings().empty());

  // An unusable replication: one warning, however often the ring is rebuilt.
  ClusterSpec ca = a.cluster();
  ca.replication = {{"class", "com.example.OddStrategy"}};
  a.set_cluster(ca);
  ASSERT_TRUE(s->wait_schema_agreement(std::chrono::milliseconds(5000)).ok()); // marks it stale
  write_some(*s, 1);
  ASSERT_TRUE(s->wait_schema_agreement(std::chrono::milliseconds(5000)).ok());
  write_some(*s, 1);
  EXPECT_EQ(count_of(a.system_log(), ask), 3U);
  const auto warnings = s->take_warnings();
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_TRUE(warnings[0].starts_with(label(a) + ": keyspace ks replication: ")) << warnings[0];
  EXPECT_NE(warnings[0].find("(requests are not token-aware)"), std::string::npos) << warnings[0];
}

// Discovery feeds routing: only a is a contact point; the ring comes from
// the three nodes' system.local / peers_v2 tokens and ks's SimpleStrategy
// rf 1. Tokens of the keys (the Python driver's murmur3, ring_vectors.inc):
// 0x61 -> -8839064797231613815 (a, ends at -5e18), 0xff ->
// -4442228696663692417 (b, ends at 0), "example.com" -> 5263683394119058897
// (c, ends at 5.5e18), "hello world" -> 5998619086395760910 (wraps to a).
TEST(CqlCluster, DiscoveredTokensRouteEachKeyToItsReplica) {
  const auto handler = [](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode == Opcode::prepare) { // 1 bind: the partition key k blob
      std::vector<std::byte> b;
      BodyWriter w(b);
      w.put_int(4);
      w.put_short_bytes(test::to_bytes("id:k"));
      w.put_int(0x0001);
      w.put_int(1);
      w.put_int(1); // pk_count
      w.put_short(0);
      w.put_string("ks");
      w.put_string("t");
      w.put_string("k");
      w.put_short(0x0003);
      w.put_int(0x0004);
      w.put_int(0);
      ctx.reply(f.header.stream, Opcode::result, b);
      return true;
    }
    if (f.header.opcode == Opcode::execute) {
      BodyReader r(body);
      Bytes id;
      test::Params p;
      if (r.read_short_bytes(id) && test::parse_params(r, p) && !p.values.empty() && p.values[0]) {
        ctx.server.note("KEY " + test::dump(*p.values[0]));
      }
    }
    return false;
  };
  FakeServer a(handler);
  FakeServer b(handler, "127.0.0.2");
  FakeServer c(handler, "127.0.0.3");
  ClusterSpec ca = a.cluster();
  ca.local.tokens = {"-5000000000000000000"};
  auto pb = b.as_peer();
  pb.tokens = {"0"};
  auto pc = c.as_peer();
  pc.tokens = {"5500000000000000000"};
  ca.peers = {pb, pc};
  a.set_cluster(ca);
  auto s = must_connect(fast_options({a.address()}));
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("INSERT INTO ks.t (k) VALUES (?)", p).ok());

  // In an order round robin would spread differently.
  const std::vector<std::string> keys = {"hello world", "example.com", "\xff", "a"};
  std::vector<Request> reqs(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    reqs[i].statements.push_back({p, {}});
    const auto bytes = test::to_bytes(keys[i]);
    reqs[i].statements.back().values.add_blob(bytes);
  }
  ASSERT_TRUE(s->execute_all(reqs).ok());
  const auto keys_on = [](FakeServer &f) {
    std::vector<std::string> out;
    for (const auto &l : f.log()) {
      if (l.starts_with("KEY ")) {
        out.push_back(l.substr(4));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(keys_on(a), (std::vector<std::string>{"61 ", "68 65 6c 6c 6f 20 77 6f 72 6c 64 "}));
  EXPECT_EQ(keys_on(b), (std::vector<std::string>{"ff "}));
  EXPECT_EQ(keys_on(c), (std::vector<std::string>{"65 78 61 6d 70 6c 65 2e 63 6f 6d "}));
  std::uint64_t to_replica = 0;
  std::uint64_t elsewhere = 0;
  for (const auto &n : s->stats()) {
    to_replica += n.routed_to_replica;
    elsewhere += n.routed_elsewhere;
  }
  EXPECT_EQ(to_replica, 4U);
  EXPECT_EQ(elsewhere, 0U);
  EXPECT_TRUE(s->take_warnings().empty());
}

} // namespace
} // namespace ta::cql
