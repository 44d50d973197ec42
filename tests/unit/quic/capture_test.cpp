// InitialParser on real captures (tests/data/README.md). Expected names are
// tshark's dissection of the same files (it decrypts Initials):
//   tshark -r F -Y 'quic' -T fields -e frame.number -e udp.srcport
//          -e tls.handshake.extensions_server_name
#include <algorithm>

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace ta::quic {
namespace {

struct FlowRun {
  FeedResult last;
  std::uint64_t decided_at = 0; // frame number of the datagram that decided, 0: none
  std::string sni;
  bool saw_unsupported = false; // some datagram was unsupported_version
  InitialStats stats;
};

// Feeds the client's datagrams (optionally only some frames) until final.
FlowRun run_flow(const std::string &file, std::uint16_t client_port,
                 const std::vector<std::uint64_t> &only_frames = {}) {
  FlowRun out;
  InitialParser p;
  const auto datagrams = test::client_datagrams(file, client_port);
  EXPECT_FALSE(datagrams.empty()) << file;
  for (const auto &d : datagrams) {
    if (!only_frames.empty() &&
        std::find(only_frames.begin(), only_frames.end(), d.frame) == only_frames.end()) {
      continue;
    }
    out.last = p.feed(test::view(d.payload));
    out.saw_unsupported = out.saw_unsupported || out.last.outcome == Outcome::unsupported_version;
    if (p.done()) {
      out.decided_at = d.frame;
      out.sni = std::string(out.last.sni);
      break;
    }
  }
  out.stats = p.stats();
  return out;
}

TEST(QuicCapture, IetfV1) {
  // frame 1, udp.srcport 56785: tls.handshake.extensions_server_name msquic.net
  const FlowRun r = run_flow("sv_quic-ietf.pcap", 56785);
  EXPECT_EQ(r.last.outcome, Outcome::sni);
  EXPECT_EQ(r.sni, "msquic.net");
  EXPECT_EQ(r.decided_at, 1U);
}

TEST(QuicCapture, CryptoOverSeveralInitials) {
  // frames 1-2 (quic.crypto.offset 0 and 1209): token.services.mozilla.com at frame 2
  const FlowRun r = run_flow("sv_quic-frag.pcap", 42586);
  EXPECT_EQ(r.sni, "token.services.mozilla.com");
  EXPECT_EQ(r.decided_at, 2U);
  EXPECT_EQ(r.stats.key_derivations, 1U);
}

TEST(QuicCapture, CryptoOutOfOrder) {
  // raw-IP link type; frames 1-2 carry ten and four CRYPTO frames out of
  // order (quic.crypto.offset 15,1717,1683,13,0,...): mastodon.social at frame 2
  const FlowRun r = run_flow("sv_quic-frag-unordered.pcap", 52755);
  EXPECT_EQ(r.sni, "mastodon.social");
  EXPECT_EQ(r.decided_at, 2U);
}

TEST(QuicCapture, Retry) {
  // frames 1-2 (quic.dcid 69cd818b6dd3fbd7): www.gravatar.com at frame 2.
  const FlowRun r = run_flow("sv_quic-retry.pcap", 60027);
  EXPECT_EQ(r.sni, "www.gravatar.com");
  EXPECT_EQ(r.decided_at, 2U);
}

TEST(QuicCapture, RetryWithTheFirstClientHelloCut) {
  // Frame 2 missing: frames 5-6 resend the ClientHello under the DCID the
  // Retry gave (quic.dcid 434016c5110840091980a574c77f57b34fa08672, offsets
  // 0 and 1131). tshark does not show a server_name for frames 5-6 (it takes
  // them for a retransmission of the stream it already joined); the name is
  // that of frame 2's ClientHello.
  const FlowRun r = run_flow("sv_quic-retry.pcap", 60027, {1, 5, 6});
  EXPECT_EQ(r.sni, "www.gravatar.com");
  EXPECT_EQ(r.decided_at, 6U);
  EXPECT_EQ(r.stats.key_derivations, 2U);
}

TEST(QuicCapture, ZeroRtt) {
  // frame 5, udp.srcport 51972 (v1, Initial coalesced with 0-RTT): ssl.gstatic.com
  const FlowRun r = run_flow("ndpi_quic_0RTT.pcap", 51972);
  EXPECT_EQ(r.sni, "ssl.gstatic.com");
  EXPECT_EQ(r.decided_at, 5U);
  // frame 1, udp.srcport 60459: quic.version 0xff00001c (draft-28)
  const FlowRun draft = run_flow("ndpi_quic_0RTT.pcap", 60459);
  EXPECT_TRUE(draft.saw_unsupported);
  EXPECT_FALSE(draft.last.outcome == Outcome::need_more || draft.decided_at != 0);
  EXPECT_EQ(draft.stats.packets_decrypted, 0U);
}

TEST(QuicCapture, Ja4TlsAndQuicOverIpv6) {
  // frame 47, udp.srcport 50280: cloudflare-quic.com
  const FlowRun r = run_flow("sv_ja4-tls-quic.pcap", 50280);
  EXPECT_EQ(r.sni, "cloudflare-quic.com");
  EXPECT_EQ(r.decided_at, 47U);
}

TEST(QuicCapture, V2WithoutServerName) {
  // frame 1, udp.srcport 64629, quic.version 0x6b3343cf, tls.handshake.type 1
  // and no tls.handshake.extensions_server_name: no_sni
  const FlowRun r = run_flow("sv_quic-v2.pcap", 64629);
  EXPECT_EQ(r.last.outcome, Outcome::no_sni);
  EXPECT_EQ(r.decided_at, 1U);
}

TEST(QuicCapture, Draft29IsNeverDecrypted) {
  // udp.srcport 36588, quic.version 0xff00001d (tshark shows "localhost")
  const FlowRun r = run_flow("ndpi_quic-29.pcap", 36588);
  // Its long headers are unsupported_version, its short headers not_quic.
  EXPECT_TRUE(r.saw_unsupported);
  EXPECT_NE(r.last.outcome, Outcome::need_more);
  EXPECT_EQ(r.decided_at, 0U);
  EXPECT_EQ(r.stats.packets_decrypted, 0U);
  EXPECT_EQ(r.stats.key_derivations, 0U);
  EXPECT_GT(r.stats.count(PacketError::unsupported_version), 0U);
}

TEST(QuicCapture, InitialNotFirst) {
  // frame 1, udp.srcport 57917: scontent-ams4-1.xx.fbcdn.net
  const FlowRun r = run_flow("sv_quic-initial-not-first.pcap", 57917);
  EXPECT_EQ(r.sni, "scontent-ams4-1.xx.fbcdn.net");
  EXPECT_EQ(r.decided_at, 1U);
}

} // namespace
} // namespace ta::quic
