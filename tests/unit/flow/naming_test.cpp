// The table with the real parsers: real captures replayed through decode, and
// a real ClientHello cut into segments. Expected names come from tshark's
// dissection of the same captures (fields named in each test).
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace ta::flow {
namespace {

using store::NameSource;
using test::bytes;
using test::tcp;
using test::udp;

// client port -> (name, source) over every emitted packet; fails on a flow
// whose packets disagree.
std::map<std::uint16_t, std::pair<std::string, NameSource>>
names_by_client_port(const test::Harness &h) {
  std::map<std::uint16_t, std::pair<std::string, NameSource>> m;
  for (const auto &s : h.out) {
    const auto [it, fresh] = m.emplace(s.client_port, std::make_pair(s.name, s.source));
    EXPECT_TRUE(fresh || it->second == std::make_pair(s.name, s.source)) << s.client_port;
  }
  return m;
}

TEST(RealCaptures, ChromeTlsFlowsAreNamedBySni) {
  test::Harness h;
  test::replay(h, "ndpi_chrome.pcap");
  // tshark -z conv,tcp: 6 conversations 192.168.1.178:644xx <-> 146.48.58.18:443,
  // 127 TCP frames; tls.handshake.extensions_server_name: www.iit.cnr.it in each.
  EXPECT_EQ(h.out.size(), 127U);
  EXPECT_EQ(h.table->stats().flows_created, 6U);
  const auto names = names_by_client_port(h);
  ASSERT_EQ(names.size(), 6U);
  for (const auto &[port, name] : names) {
    EXPECT_EQ(name.first, "www.iit.cnr.it") << port;
    EXPECT_EQ(name.second, NameSource::sni) << port;
  }
  for (const auto &s : h.out) {
    EXPECT_EQ(s.endpoint, test::ip("146.48.58.18"));
    EXPECT_EQ(s.endpoint_port, 443);
  }
}

TEST(RealCaptures, HttpFlowsAreNamedByTheirFirstRequestsHost) {
  test::Harness h;
  test::replay(h, "chrissanders_http_espn.pcapng");
  // tshark -Y http.request -e tcp.stream -e tcp.srcport -e http.host, first
  // request of each of the 25 streams; -Y tcp: 928 frames.
  const std::map<std::uint16_t, std::string> expected = {
      {52166, "www.espn.com"},
      {44955, "espn.go.com"},
      {41834, "a.espncdn.com"},
      {41835, "a.espncdn.com"},
      {41161, "a1.espncdn.com"},
      {41162, "a1.espncdn.com"},
      {41838, "a2.espncdn.com"},
      {41839, "a2.espncdn.com"},
      {58485, "www.masters.com"},
      {33720, "adsatt.espn.go.com"},
      {41842, "a.espncdn.com"},
      {35993, "assets.espn.go.com"},
      {41844, "a.espncdn.com"},
      {35996, "assets.espn.go.com"},
      {33987, "log.go.com"},
      {41847, "a.espncdn.com"},
      {41848, "a.espncdn.com"},
      {33728, "adsatt.espn.go.com"},
      {36000, "assets.espn.go.com"},
      {33122, "content.dl-rms.com"},
      {53146, "broadband.espn.go.com"},
      {44975, "espn.go.com"},
      {35135, "w88.go.com"},
      {55880, "streak.espn.go.com"},
      {38433, "games-ak.espn.go.com"},
  };
  EXPECT_EQ(h.out.size(), 928U);
  const auto names = names_by_client_port(h);
  ASSERT_EQ(names.size(), expected.size());
  for (const auto &[port, host] : expected) {
    const auto it = names.find(port);
    ASSERT_NE(it, names.end()) << port;
    EXPECT_EQ(it->second.first, host) << port;
    EXPECT_EQ(it->second.second, NameSource::http) << port;
  }
}

TEST(RealCaptures, QuicInitialNamesTheUdpFlow) {
  test::Harness h;
  test::replay(h, "sv_quic-ietf.pcap");
  // tshark: 11 frames, one conversation 10.168.234.1:56785 <-> 138.91.188.147:443,
  // tls.handshake.extensions_server_name msquic.net.
  ASSERT_EQ(h.out.size(), 11U);
  for (const auto &s : h.out) {
    EXPECT_EQ(s.name, "msquic.net");
    EXPECT_EQ(s.source, NameSource::quic);
    EXPECT_EQ(s.client_port, 56785);
  }
}

TEST(RealCaptures, QuicCryptoOutOfOrderAcrossInitials) {
  test::Harness h;
  test::replay(h, "sv_quic-frag-unordered.pcap");
  // tshark: 7 frames, server_name mastodon.social.
  ASSERT_EQ(h.out.size(), 7U);
  EXPECT_EQ(h.out[0].name, "mastodon.social");
  EXPECT_EQ(h.out[0].source, NameSource::quic);
}

TEST(RealCaptures, QuicV2WithoutSniFallsThrough) {
  test::Harness h;
  test::replay(h, "sv_quic-v2.pcap");
  // tshark: 15 frames 127.0.0.1:64629 <-> 127.0.0.1:443, no server_name.
  ASSERT_EQ(h.out.size(), 15U);
  EXPECT_EQ(h.out[0].source, NameSource::none);
  EXPECT_EQ(h.out[0].endpoint_port, 443);
  EXPECT_EQ(h.table->stats().outcome(NamingOutcome::quic_no_sni), 1U);
}

TEST(RealCaptures, QuicDraftVersionsAreNotDecrypted) {
  test::Harness h;
  test::replay(h, "ndpi_quic-29.pcap");
  // tshark: 15 frames 10.9.0.1:36588 <-> 10.9.0.2:443, quic.version 0xff00001d.
  ASSERT_EQ(h.out.size(), 15U);
  EXPECT_EQ(h.out[0].source, NameSource::none);
  EXPECT_EQ(h.out[0].client_port, 36588);
  const auto &st = h.table->stats();
  EXPECT_EQ(st.outcome(NamingOutcome::quic_unsupported_version), 1U);
  std::size_t unsupported = kQuicPacketErrors;
  for (std::size_t i = 0; i < kQuicPacketErrors; ++i) {
    if (quic_packet_error_name(i) == "unsupported_version") {
      unsupported = i;
    }
  }
  ASSERT_LT(unsupported, kQuicPacketErrors);
  EXPECT_GE(st.quic_packet_errors[unsupported], 1U);
}

// The real ClientHello (frame 4 of ndpi_chrome.pcap) sent as two segments.
void hello_in_two(test::Harness &h, std::size_t cut, bool reversed, bool drop_first = false) {
  const auto ch = test::chrome_client_hello();
  const std::vector<std::byte> a(ch.begin(), ch.begin() + static_cast<long>(cut));
  const std::vector<std::byte> b(ch.begin() + static_cast<long>(cut), ch.end());
  const auto cut32 = static_cast<std::uint32_t>(cut);
  h.feed(tcp("192.168.1.178", 64393, "146.48.58.18", 8080, kSyn, 1000));
  if (reversed) {
    h.feed(tcp("192.168.1.178", 64393, "146.48.58.18", 8080, kAck, 1001 + cut32, b));
    if (!drop_first) {
      h.feed(tcp("192.168.1.178", 64393, "146.48.58.18", 8080, kAck, 1001, a));
    }
  } else {
    h.feed(tcp("192.168.1.178", 64393, "146.48.58.18", 8080, kAck, 1001, a));
    h.feed(tcp("192.168.1.178", 64393, "146.48.58.18", 8080, kAck, 1001 + cut32, b));
  }
}

TEST(ClientHello, SplitOverTwoSegmentsOnAnyPort) {
  for (const std::size_t cut : {1U, 5U, 6U, 100U, 516U}) {
    test::Harness h;
    hello_in_two(h, cut, false);
    ASSERT_EQ(h.out.size(), 3U) << cut;
    EXPECT_EQ(h.out[0].name, "www.iit.cnr.it") << cut;
    EXPECT_EQ(h.out[0].source, NameSource::sni) << cut;
  }
}

TEST(ClientHello, SplitAndOutOfOrder) {
  for (const std::size_t cut : {1U, 100U, 300U}) {
    test::Harness h;
    hello_in_two(h, cut, true);
    ASSERT_EQ(h.out.size(), 3U) << cut;
    EXPECT_EQ(h.out[0].name, "www.iit.cnr.it") << cut;
  }
}

TEST(ClientHello, AMissingSegmentMeansNoSni) {
  test::Harness h;
  h.dns_any["146.48.58.18"] = "dns.example";
  hello_in_two(h, 100, true, true);
  EXPECT_TRUE(h.out.empty());
  h.table->release_all();
  ASSERT_EQ(h.out.size(), 2U);
  EXPECT_EQ(h.out[0].name, "dns.example");
  EXPECT_EQ(h.out[0].source, NameSource::dns);
  EXPECT_EQ(h.table->stats().outcome(NamingOutcome::tcp_gap), 1U);
}

TEST(Http, HostIsNormalisedAndItsPortStripped) {
  test::Harness h;
  h.feed(tcp("10.0.0.1", 5000, "1.1.1.1", 8080, kSyn, 7));
  h.feed(tcp("10.0.0.1", 5000, "1.1.1.1", 8080, kAck, 8, bytes("GET / HTTP/1.1\r\nHo")));
  h.feed(
      tcp("10.0.0.1", 5000, "1.1.1.1", 8080, kAck, 26, bytes("st: WWW.Example.COM.:8080\r\n\r\n")));
  ASSERT_EQ(h.out.size(), 3U);
  EXPECT_EQ(h.out[0].name, "www.example.com");
  EXPECT_EQ(h.out[0].source, NameSource::http);
}

TEST(Http, AnIpLiteralHostIsTheName) {
  test::Harness h;
  h.feed(tcp("10.0.0.1", 5000, "1.1.1.1", 80, kAck, 8,
             bytes("CONNECT x HTTP/1.1\r\nHost: [2001:DB8::1]:443\r\n\r\n")));
  ASSERT_EQ(h.out.size(), 1U);
  EXPECT_EQ(h.out[0].name, "[2001:db8::1]");
}

TEST(Http, HttpNamesTcpFlowsOnly) {
  test::Harness h;
  h.feed(udp("10.0.0.1", 5000, "1.1.1.1", 80, bytes("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")));
  ASSERT_EQ(h.out.size(), 1U);
  EXPECT_EQ(h.out[0].source, NameSource::none);
  EXPECT_EQ(h.table->stats().outcome(NamingOutcome::quic_not_quic), 1U);
}

TEST(Http, OtherProtocolsFallThroughAtOnce) {
  test::Harness h;
  h.feed(tcp("10.0.0.1", 5000, "1.1.1.1", 22, kAck, 8, bytes("SSH-2.0-OpenSSH_9.6\r\n")));
  ASSERT_EQ(h.out.size(), 1U);
  EXPECT_EQ(h.out[0].source, NameSource::none);
  EXPECT_EQ(h.table->stats().outcome(NamingOutcome::http_not_http), 1U);
}

} // namespace
} // namespace ta::flow
