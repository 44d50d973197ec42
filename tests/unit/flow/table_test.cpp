// The table's rules over the fake naming seam (test_util.hpp): flows, the
// endpoint side, ends, idle, eviction, the wait and its bounds, record=false,
// name precedence and permanence.
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace ta::flow {
namespace {

using store::Direction;
using store::NameSource;
using test::bytes;
using test::fake;
using test::tcp;
using test::udp;

constexpr std::uint8_t kSynAck = kSyn | kAck;
constexpr std::uint8_t kFinAck = kFin | kAck;

// --- which end is the endpoint ---------------------------------------------

TEST(EndpointSide, ExactlyOneLocalEndMakesTheOtherTheEndpoint) {
  auto h = fake();
  // The local end has the lower port and sends a SYN, yet the remote end is
  // the endpoint: the local rule comes first.
  auto k = tcp("10.0.0.1", 80, "2.2.2.2", 40000, kSyn);
  k.p.src_local = true;
  h->feed(k);
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 1U);
  EXPECT_EQ(h->out[0].endpoint, test::ip("2.2.2.2"));
  EXPECT_EQ(h->out[0].endpoint_port, 40000);
  EXPECT_EQ(h->out[0].client, test::ip("10.0.0.1"));
  EXPECT_EQ(h->out[0].direction, Direction::sent);
}

TEST(EndpointSide, BothLocalFallsToTheSynRule) {
  auto h = fake();
  auto k = tcp("10.0.0.1", 80, "10.0.0.2", 40000, kSyn);
  k.p.src_local = true;
  k.p.dst_local = true;
  h->feed(k);
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 1U);
  EXPECT_EQ(h->out[0].endpoint, test::ip("10.0.0.2"));
  EXPECT_EQ(h->out[0].endpoint_port, 40000);
}

TEST(EndpointSide, FirstSynWithoutAckNamesItsReceiver) {
  auto h = fake();
  h->feed(tcp("1.1.1.1", 80, "2.2.2.2", 50000, kSyn));
  h->feed(tcp("2.2.2.2", 50000, "1.1.1.1", 80, kSynAck));
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 2U);
  EXPECT_EQ(h->out[0].endpoint, test::ip("2.2.2.2"));
  EXPECT_EQ(h->out[0].direction, Direction::sent);
  EXPECT_EQ(h->out[1].direction, Direction::received);
}

TEST(EndpointSide, SynDecidesOnlyAsTheFirstPacket) {
  auto h = fake();
  // Mid-stream join: the first packet is data from the high port; the SYN
  // seen later (from the high port to 443) changes nothing: lower port wins.
  h->feed(tcp("1.1.1.1", 443, "2.2.2.2", 50000, kAck));
  h->feed(tcp("2.2.2.2", 50000, "1.1.1.1", 443, kSyn));
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 2U);
  EXPECT_EQ(h->out[0].endpoint, test::ip("1.1.1.1"));
  EXPECT_EQ(h->out[0].endpoint_port, 443);
  EXPECT_EQ(h->out[0].direction, Direction::received);
  EXPECT_EQ(h->out[1].direction, Direction::sent);
}

TEST(EndpointSide, SynAckFirstUsesTheLowerPort) {
  auto h = fake();
  h->feed(tcp("2.2.2.2", 50000, "1.1.1.1", 8443, kSynAck));
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 1U);
  EXPECT_EQ(h->out[0].endpoint_port, 8443);
  EXPECT_EQ(h->out[0].direction, Direction::sent);
}

TEST(EndpointSide, UdpLowerPortEitherWay) {
  auto h = fake();
  h->feed(udp("10.0.0.1", 40000, "9.9.9.9", 123, bytes("x")));
  h->feed(udp("9.9.9.8", 123, "10.0.0.1", 40001, bytes("x")));
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 2U);
  EXPECT_EQ(h->out[0].endpoint, test::ip("9.9.9.9"));
  EXPECT_EQ(h->out[0].direction, Direction::sent);
  EXPECT_EQ(h->out[1].endpoint, test::ip("9.9.9.8"));
  EXPECT_EQ(h->out[1].direction, Direction::received);
}

TEST(EndpointSide, EqualPortsTheReceiverOfPacketOne) {
  auto h = fake();
  h->feed(udp("10.0.0.9", 500, "10.0.0.2", 500, bytes("x")));
  h->feed(udp("10.0.0.2", 500, "10.0.0.9", 500, bytes("x")));
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 2U);
  EXPECT_EQ(h->out[0].endpoint, test::ip("10.0.0.2"));
  EXPECT_EQ(h->out[0].direction, Direction::sent);
  EXPECT_EQ(h->out[1].direction, Direction::received);
  EXPECT_EQ(h->table->stats().flows_created, 1U);
}

// --- flow ends --------------------------------------------------------------

// A whole connection: SYN, SYN/ACK, ACK, FIN from both ends, last ACK.
void handshake_and_close(test::Harness &h) {
  h.feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kSyn, 100));
  h.feed(tcp("1.1.1.1", 443, "10.0.0.1", 50000, kSynAck, 900));
  h.feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kAck, 101));
  h.feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kFinAck, 101));
  h.feed(tcp("1.1.1.1", 443, "10.0.0.1", 50000, kFinAck, 901));
}

TEST(Ends, FinFromBothEndsThenLateAckAndFinStay) {
  auto h = fake();
  handshake_and_close(*h);
  h->feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kAck, 102));
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 50000, kFinAck, 901)); // retransmitted FIN
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 50000, kRst, 902));
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 8U);
  for (const auto &s : h->out) {
    EXPECT_EQ(s.first_frame, 0U);
  }
  EXPECT_EQ(h->table->stats().flows_created, 1U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::fin), 1U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::rst), 0U);
  EXPECT_EQ(h->table->stats().reason(DecideReason::flow_end), 1U);
}

TEST(Ends, SynWithoutAckOnAnEndedFlowStartsANewOne) {
  auto h = fake();
  handshake_and_close(*h);
  const auto f = h->feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kSyn, 5000));
  h->table->release_all();
  ASSERT_EQ(h->out.size(), 6U);
  EXPECT_EQ(h->out.back().first_frame, f);
  EXPECT_EQ(h->table->stats().flows_created, 2U);
}

TEST(Ends, SynOnARunningFlowStaysWithIt) {
  auto h = fake();
  h->feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kSyn, 100));
  h->feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kSyn, 100)); // retransmit
  h->table->release_all();
  EXPECT_EQ(h->table->stats().flows_created, 1U);
}

TEST(Ends, RstEndsAndOnlyASynStartsAgain) {
  auto h = fake();
  h->feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kSyn, 100));
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 50000, kRst | kAck, 0));
  h->feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kAck, 101));
  EXPECT_EQ(h->table->stats().flows_created, 1U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::rst), 1U);
  h->feed(tcp("10.0.0.1", 50000, "1.1.1.1", 443, kSyn, 7000));
  EXPECT_EQ(h->table->stats().flows_created, 2U);
}

TEST(Ends, UdpSynFlagMeansNothing) {
  auto h = fake();
  auto k = udp("10.0.0.1", 5000, "1.1.1.1", 4000, bytes("x"));
  h->feed(k);
  k.p.tcp_flags = kSyn;
  h->feed(k);
  EXPECT_EQ(h->table->stats().flows_created, 1U);
}

TEST(Idle, AGapStrictlyLongerThanTheTimeoutEndsTheFlow) {
  Options o;
  o.idle_timeout_us = 10'000'000;
  auto h = fake(o);
  auto k = udp("10.0.0.1", 5000, "1.1.1.1", 4000, bytes("x"));
  h->feed(k);
  h->feed(k, 10'000'000); // exactly the timeout: same flow
  EXPECT_EQ(h->table->stats().flows_created, 1U);
  h->feed(k, 10'000'001); // one microsecond more: a new flow
  EXPECT_EQ(h->table->stats().flows_created, 2U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::idle), 1U);
  EXPECT_EQ(h->table->active(), 1U);
}

TEST(Idle, OtherFlowsAreSweptByLaterPackets) {
  Options o;
  o.idle_timeout_us = 10;
  auto h = fake(o);
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn)); // held, waiting
  h->feed(tcp("10.0.0.2", 5000, "1.1.1.1", 443, kSyn), 5);
  EXPECT_EQ(h->table->active(), 2U);
  EXPECT_TRUE(h->out.empty());
  h->feed(tcp("10.0.0.3", 5000, "1.1.1.1", 443, kSyn), 6); // 11 after the first
  EXPECT_EQ(h->table->active(), 2U);
  ASSERT_EQ(h->out.size(), 1U); // the expired flow was decided and released
  EXPECT_EQ(h->out[0].frame, 0U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::idle), 1U);
}

TEST(Idle, AnEndedFlowLeavesWithoutCountingTwice) {
  Options o;
  o.idle_timeout_us = 10;
  auto h = fake(o);
  handshake_and_close(*h);
  h->feed(udp("10.0.0.5", 1, "10.0.0.6", 2), 100);
  EXPECT_EQ(h->table->active(), 1U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::fin), 1U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::idle), 0U);
}

// --- the bound --------------------------------------------------------------

TEST(Eviction, LeastRecentlyActiveGoesFirstAndIsCounted) {
  Options o;
  o.max_flows = 2;
  auto h = fake(o);
  const auto a = udp("10.0.0.1", 5000, "1.1.1.1", 4000, bytes("x"));
  const auto b = udp("10.0.0.2", 5000, "1.1.1.1", 4000, bytes("x"));
  const auto c = udp("10.0.0.3", 5000, "1.1.1.1", 4000, bytes("x"));
  h->feed(a);
  h->feed(b);
  h->feed(a); // a is now more recent than b
  h->feed(c); // evicts b
  EXPECT_EQ(h->table->stats().end(FlowEnd::evicted), 1U);
  h->feed(a); // still there
  EXPECT_EQ(h->table->stats().flows_created, 3U);
  h->feed(b); // comes back as a new flow, evicting c
  EXPECT_EQ(h->table->stats().flows_created, 4U);
  EXPECT_EQ(h->table->stats().end(FlowEnd::evicted), 2U);
  EXPECT_EQ(h->table->active(), 2U);
}

TEST(Eviction, AWaitingFlowIsDecidedAndReleasedFirst) {
  Options o;
  o.max_flows = 1;
  auto h = fake(o);
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn));
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 5000, kSynAck));
  EXPECT_TRUE(h->out.empty());
  h->feed(udp("10.0.0.2", 5000, "1.1.1.1", 4000, bytes("x")));
  EXPECT_EQ(h->frames(), (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(h->table->stats().reason(DecideReason::evicted), 1U);
}

// --- the wait ---------------------------------------------------------------

TEST(Wait, HandshakePacketsAreHeldAndGetTheName) {
  auto h = fake();
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn, 100));
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 5000, kSynAck, 900));
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 101));
  EXPECT_TRUE(h->out.empty());
  EXPECT_EQ(h->table->oldest_held_frame(), 0U);
  EXPECT_EQ(h->table->stats().held_packets, 3U);
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 101, bytes("sni:example.com\n")));
  ASSERT_EQ(h->out.size(), 4U);
  EXPECT_EQ(h->frames(), (std::vector<std::uint64_t>{0, 1, 2, 3}));
  for (const auto &s : h->out) {
    EXPECT_EQ(s.name, "example.com");
    EXPECT_EQ(s.source, NameSource::sni);
  }
  EXPECT_EQ(h->out[1].direction, Direction::received);
  EXPECT_FALSE(h->table->oldest_held_frame().has_value());
  EXPECT_EQ(h->table->stats().held_packets, 0U);
  EXPECT_EQ(h->table->stats().decided(NameSource::sni), 1U);
  EXPECT_EQ(h->table->stats().outcome(NamingOutcome::tls_sni), 1U);
  // Later packets go straight out.
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 5000, kAck, 901, bytes("data")));
  EXPECT_EQ(h->out.size(), 5U);
  EXPECT_EQ(h->out.back().name, "example.com");
}

TEST(Wait, EndpointPayloadIsNotTheClientsFirstBytes) {
  auto h = fake();
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 25, kSyn, 100));
  h->feed(tcp("1.1.1.1", 25, "10.0.0.1", 5000, kAck, 900, bytes("http:banner.example\n")));
  EXPECT_TRUE(h->out.empty());
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 25, kAck, 101, bytes("EHLO x\n")));
  ASSERT_EQ(h->out.size(), 3U);
  EXPECT_EQ(h->out[0].source, NameSource::none);
  EXPECT_EQ(h->out[0].name, "");
}

TEST(Wait, TheWaitBoundDecidesWithWhatIsThere) {
  Options o;
  o.max_wait_packets = 3;
  auto h = fake(o);
  h->dns_any["1.1.1.1"] = "one.example";
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn, 100));
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 5000, kSynAck, 900));
  EXPECT_TRUE(h->out.empty());
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 101, bytes("sni:late")));
  ASSERT_EQ(h->out.size(), 3U);
  EXPECT_EQ(h->out[2].name, "one.example");
  EXPECT_EQ(h->out[2].source, NameSource::dns);
  EXPECT_EQ(h->table->stats().reason(DecideReason::wait_bound), 1U);
  // The rest of the ClientHello comes too late: the name is final.
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 109, bytes(".example\n")));
  EXPECT_EQ(h->out.back().name, "one.example");
}

TEST(Wait, TheGlobalHeldBoundDecidesTheOldestWaitingFlow) {
  Options o;
  o.max_held_total = 2;
  auto h = fake(o);
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn));
  h->feed(tcp("10.0.0.2", 5000, "1.1.1.1", 443, kSyn));
  EXPECT_TRUE(h->out.empty());
  EXPECT_EQ(h->table->oldest_held_frame(), 0U);
  h->feed(tcp("10.0.0.3", 5000, "1.1.1.1", 443, kSyn));
  EXPECT_EQ(h->frames(), (std::vector<std::uint64_t>{0}));
  EXPECT_EQ(h->table->oldest_held_frame(), 1U);
  EXPECT_EQ(h->table->stats().reason(DecideReason::held_bound), 1U);
  EXPECT_EQ(h->table->stats().held_packets, 2U);
}

TEST(Wait, ReleaseAllEndsEveryWaitInHeldOrder) {
  auto h = fake();
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn));
  h->feed(tcp("10.0.0.2", 5000, "1.1.1.1", 443, kSyn));
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck));
  h->table->release_all();
  EXPECT_EQ(h->frames(), (std::vector<std::uint64_t>{0, 2, 1}));
  EXPECT_EQ(h->table->stats().reason(DecideReason::end_of_input), 2U);
  EXPECT_EQ(h->table->stats().waiting, 0U);
  EXPECT_FALSE(h->table->oldest_held_frame().has_value());
  // The flows stay, decided.
  EXPECT_EQ(h->table->active(), 2U);
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 0, bytes("sni:x\n")));
  EXPECT_EQ(h->out.back().source, NameSource::none);
}

TEST(Wait, RecordFalsePacketsTeachButAreNotEmitted) {
  auto h = fake();
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn, 100), 1, false);
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 5000, kSynAck, 900), 1, false);
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 101, bytes("sni:a.ex")), 1, false);
  EXPECT_FALSE(h->table->oldest_held_frame().has_value());
  h->feed(tcp("1.1.1.1", 443, "10.0.0.1", 5000, kAck, 901));
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 109, bytes("ample\n")));
  EXPECT_EQ(h->frames(), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(h->out[0].name, "a.example");
  EXPECT_EQ(h->out[0].first_frame, 0U);
}

TEST(Wait, BeginSourceDecidesWaitingFlowsAndTagsNewOnes) {
  auto h = fake();
  h->table->begin_source(7);
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn));
  h->table->begin_source(8);
  ASSERT_EQ(h->out.size(), 1U);
  EXPECT_EQ(h->out[0].origin_source, 7);
  h->feed(tcp("10.0.0.2", 5000, "1.1.1.1", 443, kSyn));
  h->table->release_all();
  EXPECT_EQ(h->out.back().origin_source, 8);
}

// --- names ------------------------------------------------------------------

TEST(Names, DnsFallbackIsReadOnceAtTheFirstPacketAndFixedForLife) {
  auto h = fake();
  h->dns_any["1.1.1.1"] = "old.example";
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kSyn, 100));
  h->dns_any["1.1.1.1"] = "new.example"; // a later answer
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 101, bytes("not a hello\n")));
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 113, bytes("more")));
  ASSERT_EQ(h->out.size(), 3U);
  for (const auto &s : h->out) {
    EXPECT_EQ(s.name, "old.example");
    EXPECT_EQ(s.source, NameSource::dns);
  }
  EXPECT_EQ(h->dns_calls, 1);
  EXPECT_EQ(h->table->stats().outcome(NamingOutcome::http_not_http), 1U);
}

TEST(Names, TheLookupIsAskedForThisClientAndEndpoint) {
  auto h = fake();
  h->dns[{"10.0.0.1", "1.1.1.1"}] = "mine.example";
  h->dns_any["1.1.1.1"] = "anyone.example";
  h->feed(udp("1.1.1.1", 443, "10.0.0.1", 5000, bytes("x"))); // endpoint sends first
  h->feed(udp("10.0.0.2", 5000, "1.1.1.1", 443, bytes("x")));
  h->table->release_all();
  // The second flow is decided at once (its client spoke, not QUIC); the
  // first waits for its client until release_all.
  ASSERT_EQ(h->out.size(), 2U);
  EXPECT_EQ(h->out[0].client, test::ip("10.0.0.2"));
  EXPECT_EQ(h->out[0].name, "anyone.example");
  EXPECT_EQ(h->out[1].client, test::ip("10.0.0.1"));
  EXPECT_EQ(h->out[1].name, "mine.example");
}

TEST(Names, HandshakeNameBeatsDns) {
  auto h = fake();
  h->dns_any["1.1.1.1"] = "dns.example";
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 80, kAck, 1, bytes("http:web.example\n")));
  ASSERT_EQ(h->out.size(), 1U);
  EXPECT_EQ(h->out[0].name, "web.example");
  EXPECT_EQ(h->out[0].source, NameSource::http);
}

TEST(Names, NoNameAtAllIsTheUnresolvedEndpoint) {
  auto h = fake();
  h->feed(udp("10.0.0.1", 5000, "1.1.1.1", 4000, bytes("rtp")));
  ASSERT_EQ(h->out.size(), 1U);
  EXPECT_EQ(h->out[0].name, "");
  EXPECT_EQ(h->out[0].source, NameSource::none);
  EXPECT_EQ(h->table->stats().decided(NameSource::none), 1U);
}

TEST(Names, UdpDatagramsGoToQuicUntilItDecides) {
  auto h = fake();
  h->feed(udp("10.0.0.1", 5000, "1.1.1.1", 443, bytes("wait")));
  h->feed(udp("1.1.1.1", 443, "10.0.0.1", 5000, bytes("quic:server.example")));
  EXPECT_TRUE(h->out.empty()); // the endpoint's datagrams are not the client's Initials
  h->feed(udp("10.0.0.1", 5000, "1.1.1.1", 443, bytes("quic:client.example")));
  ASSERT_EQ(h->out.size(), 3U);
  EXPECT_EQ(h->out[0].name, "client.example");
  EXPECT_EQ(h->out[0].source, NameSource::quic);
}

TEST(Names, AFlowNamedOnceKeepsItsNameAcrossLaterPayload) {
  auto h = fake();
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 1, bytes("sni:first\n")));
  h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, kAck, 12, bytes("sni:second\n")));
  ASSERT_EQ(h->out.size(), 2U);
  EXPECT_EQ(h->out[1].name, "first");
  EXPECT_EQ(h->table->stats().outcome(NamingOutcome::tls_sni), 1U);
}

} // namespace
} // namespace ta::flow
