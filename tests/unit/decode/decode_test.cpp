// Unit tests for ta::decode::decode_packet.
//
// Fixtures are hand-assembled frames written as hex, one header per line.
// Checksums are left zero: decode never verifies them. Each fixture was also
// cross-checked by writing it to a pcap with the matching link type and
// dissecting it with tshark.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"
#include "ta/decode/decode.hpp"

#include "test_util.hpp"

namespace ta::decode {
namespace {

using test::bytes_of;
using test::Frame;
using test::hex;
using test::v4;
using test::v6;

// Owns the frame the view points into.
struct Decoded {
  Frame frame;
  PacketView view;
  DecodeError err = DecodeError::ok;
};

Decoded run(LinkType link, Frame frame) {
  Decoded d;
  d.frame = std::move(frame);
  d.err = decode_packet(link, Bytes(d.frame), d.view);
  return d;
}

Decoded run(LinkType link, std::string_view text) {
  return run(link, hex(text));
}

// --- link headers ---------------------------------------------------------

constexpr std::string_view kEthToIpv4 = "00 11 22 33 44 55  66 77 88 99 aa bb  08 00";
constexpr std::string_view kEthToIpv6 = "00 11 22 33 44 55  66 77 88 99 aa bb  86 dd";

// --- IP packets (no link header) ------------------------------------------

// IPv4 10.0.0.1:51000 -> 93.184.216.34:443 TCP PSH|ACK seq 0x01020304, "hello".
constexpr std::string_view kIpv4Tcp = "45 00 00 2d  12 34 40 00  40 06 00 00"
                                      "  0a 00 00 01  5d b8 d8 22"            // total 45, DF
                                      "c7 38 01 bb  01 02 03 04  00 00 00 00" // TCP
                                      "  50 18 ff ff  00 00 00 00"            // doff 5, PSH|ACK
                                      "68 65 6c 6c 6f";                       // "hello"

// IPv4 127.0.0.1 -> 127.0.0.1 ICMP echo request, 8 bytes.
constexpr std::string_view kIpv4Icmp = "45 00 00 1c  00 00 00 00  40 01 00 00"
                                       "  7f 00 00 01  7f 00 00 01"
                                       "08 00 f7 ff  00 00 00 00";

// IPv6 ::1 -> ::1 ICMPv6 echo request, 8 bytes.
constexpr std::string_view kIpv6Icmp = "60 00 00 00  00 08 3a 40"
                                       "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 01"
                                       "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 01"
                                       "80 00 00 00  00 00 00 00";

constexpr std::string_view kLoopback6 = "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 01";
constexpr std::string_view kDoc1 = "20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 01";
constexpr std::string_view kDoc2 = "20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 02";

// ==========================================================================
// Well-formed frames
// ==========================================================================

TEST(DecodeEthernet, Ipv4Tcp) {
  const auto d = run(LinkType::ethernet, hex(std::string(kEthToIpv4) + std::string(kIpv4Tcp)));
  ASSERT_EQ(d.err, DecodeError::ok);
  const PacketView &v = d.view;
  EXPECT_EQ(v.direction, LinkDirection::unknown);
  EXPECT_EQ(v.ip_version, 4);
  EXPECT_EQ(v.src, v4(10, 0, 0, 1));
  EXPECT_EQ(v.dst, v4(93, 184, 216, 34));
  EXPECT_EQ(v.protocol, 6);
  EXPECT_EQ(v.ip_length, 45U);
  EXPECT_FALSE(v.fragment);
  EXPECT_TRUE(v.first_fragment);
  EXPECT_TRUE(v.has_ports);
  EXPECT_EQ(v.src_port, 51000);
  EXPECT_EQ(v.dst_port, 443);
  EXPECT_EQ(v.tcp_seq, 0x01020304U);
  EXPECT_EQ(v.tcp_flags, 0x18);
  EXPECT_EQ(bytes_of(v.payload), hex("68 65 6c 6c 6f"));
  EXPECT_FALSE(v.payload_truncated);
  // Zero-copy: the payload is the tail of the frame itself.
  EXPECT_EQ(v.payload.data(), d.frame.data() + 14 + 40);
}

TEST(DecodeEthernet, UdpPaddingIsNotPayload) {
  // 8.8.8.8:53 -> 192.168.1.10:40000, 4 bytes of UDP payload; the frame is
  // padded to the 60-byte Ethernet minimum with 0xee.
  const auto d = run(LinkType::ethernet, "66 77 88 99 aa bb  00 11 22 33 44 55  08 00"
                                         "45 00 00 20  00 01 00 00  40 11 00 00"
                                         "  08 08 08 08  c0 a8 01 0a"
                                         "00 35 9c 40  00 0c 00 00" // UDP len 12
                                         "de ad be ef"
                                         "ee ee ee ee ee ee ee ee ee ee ee ee ee ee");
  ASSERT_EQ(d.frame.size(), 60U);
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.protocol, 17);
  EXPECT_EQ(d.view.ip_length, 32U);
  EXPECT_EQ(d.view.src, v4(8, 8, 8, 8));
  EXPECT_EQ(d.view.dst, v4(192, 168, 1, 10));
  EXPECT_EQ(d.view.src_port, 53);
  EXPECT_EQ(d.view.dst_port, 40000);
  EXPECT_EQ(bytes_of(d.view.payload), hex("de ad be ef"));
  EXPECT_FALSE(d.view.payload_truncated);
}

TEST(DecodeEthernet, TcpAckPaddingIsNotPayload) {
  // A bare ACK (IPv4 40 bytes) padded to 60: no payload at all.
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv4) + "45 00 00 28  00 00 40 00  40 06 00 00"
                                                        "  0a 00 00 01  0a 00 00 02"
                                                        "c7 38 01 bb  00 00 00 10  00 00 00 20"
                                                        "  50 10 ff ff  00 00 00 00"
                                                        "00 00 00 00 00 00");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_length, 40U);
  EXPECT_TRUE(d.view.has_ports);
  EXPECT_EQ(d.view.tcp_flags, 0x10);
  EXPECT_TRUE(d.view.payload.empty());
}

TEST(DecodeEthernet, UdpLengthShorterThanIpClipsPayload) {
  // IP carries 12 bytes after the UDP header but UDP length says 9 (1 byte).
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv4) + "45 00 00 28  00 00 00 00  40 11 00 00"
                                                        "  0a 00 00 01  0a 00 00 02"
                                                        "30 39 00 35  00 09 00 00"
                                                        "aa bb cc dd ee ff 00 11 22 33 44 55");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(bytes_of(d.view.payload), hex("aa"));
}

TEST(DecodeEthernet, DoubleVlanTagIpv6Udp) {
  // 802.1ad S-tag VID 100, then 802.1Q C-tag VID 200, then IPv6.
  // 2001:db8::1:5000 -> 2001:db8::2:53, 3 bytes of payload.
  const auto d = run(LinkType::ethernet, std::string("00 11 22 33 44 55  66 77 88 99 aa bb") +
                                             "88 a8  00 64  81 00  00 c8  86 dd"
                                             "60 00 00 00  00 0b 11 40" +
                                             std::string(kDoc1) + std::string(kDoc2) +
                                             "13 88 00 35  00 0b 00 00"
                                             "61 62 63");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_version, 6);
  EXPECT_EQ(d.view.src, v6(kDoc1));
  EXPECT_EQ(d.view.dst, v6(kDoc2));
  EXPECT_EQ(d.view.protocol, 17);
  EXPECT_EQ(d.view.ip_length, 51U);
  EXPECT_EQ(d.view.src_port, 5000);
  EXPECT_EQ(d.view.dst_port, 53);
  EXPECT_EQ(bytes_of(d.view.payload), hex("61 62 63"));
}

TEST(DecodeEthernet, LegacyQinQTag) {
  const auto d = run(LinkType::ethernet, std::string("00 11 22 33 44 55  66 77 88 99 aa bb") +
                                             "91 00  00 01  81 00  00 02  81 00  00 03  08 00" +
                                             std::string(kIpv4Icmp));
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.protocol, 1);
}

TEST(DecodeEthernet, Ipv4Options) {
  // IHL 6: a 4-byte Router Alert option; UDP mDNS 10.0.0.1 -> 224.0.0.251.
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv4) + "46 00 00 24  00 00 00 00  01 11 00 00"
                                                        "  0a 00 00 01  e0 00 00 fb"
                                                        "  94 04 00 00" // Router Alert
                                                        "14 e9 14 e9  00 0c 00 00"
                                                        "aa bb cc dd");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_length, 36U);
  EXPECT_EQ(d.view.dst, v4(224, 0, 0, 251));
  EXPECT_EQ(d.view.src_port, 5353);
  EXPECT_EQ(d.view.dst_port, 5353);
  EXPECT_EQ(bytes_of(d.view.payload), hex("aa bb cc dd"));
}

TEST(DecodeEthernet, Ipv4FirstFragmentHasPorts) {
  // MF set, offset 0. UDP length (1480) covers the whole datagram; this
  // fragment holds 8 bytes of it, and the payload is clipped to those.
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv4) + "45 00 00 24  ab cd 20 00  40 11 00 00"
                                                        "  0a 00 00 02  0a 00 00 01"
                                                        "00 35 c0 00  05 c8 00 00"
                                                        "01 02 03 04 05 06 07 08");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_TRUE(d.view.fragment);
  EXPECT_TRUE(d.view.first_fragment);
  EXPECT_TRUE(d.view.has_ports);
  EXPECT_EQ(d.view.src_port, 53);
  EXPECT_EQ(bytes_of(d.view.payload), hex("01 02 03 04 05 06 07 08"));
  EXPECT_FALSE(d.view.payload_truncated);
}

TEST(DecodeEthernet, Ipv4NonFirstFragmentHasNoPorts) {
  // Offset 185 (1480 bytes), MF clear: the last fragment. Its first 8 bytes
  // look like a UDP header but are datagram payload and must not be parsed.
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv4) + "45 00 00 1c  ab cd 00 b9  40 11 00 00"
                                                        "  0a 00 00 02  0a 00 00 01"
                                                        "00 35 00 35  00 08 00 00");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.protocol, 17);
  EXPECT_EQ(d.view.ip_length, 28U);
  EXPECT_TRUE(d.view.fragment);
  EXPECT_FALSE(d.view.first_fragment);
  EXPECT_FALSE(d.view.has_ports);
  EXPECT_EQ(d.view.src_port, 0);
  EXPECT_TRUE(d.view.payload.empty());
}

TEST(DecodeEthernet, IcmpHasNoPorts) {
  const auto d = run(LinkType::ethernet, std::string(kEthToIpv4) + std::string(kIpv4Icmp));
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.protocol, 1);
  EXPECT_EQ(d.view.ip_length, 28U);
  EXPECT_FALSE(d.view.has_ports);
  EXPECT_TRUE(d.view.payload.empty());
}

TEST(DecodeEthernet, SnappedCaptureKeepsHeaderLength) {
  // Total length 1500 but the capture stops 6 bytes into the TCP payload.
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv4) + "45 00 05 dc  00 00 40 00  40 06 00 00"
                                                        "  0a 00 00 01  0a 00 00 02"
                                                        "c7 38 01 bb  00 00 00 01  00 00 00 00"
                                                        "  50 10 ff ff  00 00 00 00"
                                                        "01 02 03 04 05 06");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_length, 1500U);
  EXPECT_TRUE(d.view.payload_truncated);
  EXPECT_EQ(bytes_of(d.view.payload), hex("01 02 03 04 05 06"));
}

TEST(DecodeEthernet, TsoTotalLengthZeroCountsCapturedBytes) {
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv4) + "45 00 00 00  00 00 40 00  40 06 00 00"
                                                        "  0a 00 00 01  0a 00 00 02"
                                                        "c7 38 01 bb  00 00 00 01  00 00 00 00"
                                                        "  50 10 ff ff  00 00 00 00"
                                                        "01 02 03 04 05 06 07 08 09 0a");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_length, 50U);
  EXPECT_FALSE(d.view.payload_truncated);
  EXPECT_EQ(d.view.payload.size(), 10U);
}

TEST(DecodeSll, OutgoingIpv4TcpSyn) {
  // Packet type 4 (PACKET_OUTGOING), ARPHRD_ETHER, 6-byte address.
  // 192.168.1.10:54321 -> 1.1.1.1:80 SYN with an MSS option (data offset 6).
  const auto d = run(LinkType::linux_sll, "00 04  00 01  00 06  00 11 22 33 44 55 00 00  08 00"
                                          "45 00 00 2c  00 00 40 00  40 06 00 00"
                                          "  c0 a8 01 0a  01 01 01 01"
                                          "d4 31 00 50  de ad be ef  00 00 00 00"
                                          "  60 02 fa f0  00 00 00 00"
                                          "02 04 05 b4"); // MSS 1460
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.direction, LinkDirection::outgoing);
  EXPECT_EQ(d.view.src, v4(192, 168, 1, 10));
  EXPECT_EQ(d.view.dst, v4(1, 1, 1, 1));
  EXPECT_EQ(d.view.src_port, 54321);
  EXPECT_EQ(d.view.dst_port, 80);
  EXPECT_EQ(d.view.tcp_seq, 0xdeadbeefU);
  EXPECT_EQ(d.view.tcp_flags, 0x02);
  EXPECT_TRUE(d.view.payload.empty());
}

TEST(DecodeSll, IncomingVlanIpv4Udp) {
  // Packet type 0 (PACKET_HOST); protocol 0x8100 with the tag after the header.
  const auto d = run(LinkType::linux_sll, "00 00  00 01  00 06  00 11 22 33 44 55 00 00  81 00"
                                          "00 0a  08 00"
                                          "45 00 00 1d  00 00 00 00  40 11 00 00"
                                          "  0a 00 00 02  0a 00 00 01"
                                          "00 35 c0 00  00 09 00 00"
                                          "7a");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.direction, LinkDirection::incoming);
  EXPECT_EQ(d.view.src_port, 53);
  EXPECT_EQ(bytes_of(d.view.payload), hex("7a"));
}

TEST(DecodeSll, PacketTypesMapToDirection) {
  const std::string ip(kIpv4Icmp);
  const std::pair<std::string_view, LinkDirection> cases[] = {
      {"00 00", LinkDirection::incoming}, // HOST
      {"00 01", LinkDirection::incoming}, // BROADCAST
      {"00 02", LinkDirection::incoming}, // MULTICAST
      {"00 03", LinkDirection::incoming}, // OTHERHOST
      {"00 04", LinkDirection::outgoing}, // OUTGOING
      {"00 05", LinkDirection::unknown},  // LOOPBACK
      {"ff ff", LinkDirection::unknown},
  };
  for (const auto &[type, dir] : cases) {
    const auto d = run(LinkType::linux_sll,
                       std::string(type) + "03 04  00 00  00 00 00 00 00 00 00 00  08 00" + ip);
    ASSERT_EQ(d.err, DecodeError::ok) << type;
    EXPECT_EQ(d.view.direction, dir) << type;
  }
}

TEST(DecodeSll2, IncomingIpv6Tcp) {
  // protocol 0x86dd, reserved, ifindex 2, ARPHRD_ETHER, packet type 0 (HOST),
  // address length 6. 2001:db8::2:443 -> 2001:db8::1:51000 FIN|ACK, 4 bytes.
  const auto d =
      run(LinkType::linux_sll2,
          std::string("86 dd  00 00  00 00 00 02  00 01  00  06  00 11 22 33 44 55 00 00") +
              "60 00 00 00  00 18 06 40" + std::string(kDoc2) + std::string(kDoc1) +
              "01 bb c7 38  00 00 00 01  00 00 00 02"
              "  50 11 01 00  00 00 00 00"
              "01 02 03 04");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.direction, LinkDirection::incoming);
  EXPECT_EQ(d.view.ip_version, 6);
  EXPECT_EQ(d.view.src, v6(kDoc2));
  EXPECT_EQ(d.view.dst, v6(kDoc1));
  EXPECT_EQ(d.view.ip_length, 64U);
  EXPECT_EQ(d.view.src_port, 443);
  EXPECT_EQ(d.view.dst_port, 51000);
  EXPECT_EQ(d.view.tcp_seq, 1U);
  EXPECT_EQ(d.view.tcp_flags, 0x11);
  EXPECT_EQ(bytes_of(d.view.payload), hex("01 02 03 04"));
}

TEST(DecodeSll2, Outgoing) {
  const auto d =
      run(LinkType::linux_sll2,
          std::string("08 00  00 00  00 00 00 02  00 01  04  06  00 11 22 33 44 55 00 00") +
              std::string(kIpv4Icmp));
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.direction, LinkDirection::outgoing);
}

// IPv6 2001:db8::1 -> ::2, hop-by-hop (PadN), fragment (offset 0, M set),
// UDP 5353 -> 5353 whose length (1480) covers the whole datagram.
constexpr std::string_view kIpv6HbhFragFirst = "60 00 00 00  00 1c 00 40"
                                               "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01"
                                               "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02"
                                               "2c 00  01 04 00 00 00 00"  // HBH -> 44, PadN
                                               "11 00  00 01  00 00 ab cd" // frag -> UDP, M
                                               "14 e9 14 e9  05 c8 00 00"
                                               "11 22 33 44";

TEST(DecodeRaw, Ipv6HopByHopAndFirstFragment) {
  const auto d = run(LinkType::raw, kIpv6HbhFragFirst);
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_version, 6);
  EXPECT_EQ(d.view.protocol, 17);
  EXPECT_EQ(d.view.ip_length, 68U);
  EXPECT_TRUE(d.view.fragment);
  EXPECT_TRUE(d.view.first_fragment);
  EXPECT_TRUE(d.view.has_ports);
  EXPECT_EQ(d.view.src_port, 5353);
  EXPECT_EQ(bytes_of(d.view.payload), hex("11 22 33 44"));
}

TEST(DecodeRaw, Ipv6NonFirstFragment) {
  // Fragment offset 185 (0x05c8 = 185 << 3, M clear), next header UDP.
  const auto d = run(LinkType::raw, std::string("60 00 00 00  00 10 2c 40") + std::string(kDoc1) +
                                        std::string(kDoc2) +
                                        "11 00  05 c8  00 00 ab cd"
                                        "00 35 00 35  00 08 00 00");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.protocol, 17);
  EXPECT_EQ(d.view.ip_length, 56U);
  EXPECT_TRUE(d.view.fragment);
  EXPECT_FALSE(d.view.first_fragment);
  EXPECT_FALSE(d.view.has_ports);
  EXPECT_TRUE(d.view.payload.empty());
}

TEST(DecodeRaw, Ipv6RoutingDstOptsAndAh) {
  // routing (len 0 -> 8 bytes) -> dst opts (len 1 -> 16) -> AH (len 4 -> 24)
  // -> TCP. Payload length 8 + 16 + 24 + 20 = 68.
  const auto d =
      run(LinkType::raw, std::string("60 00 00 00  00 44 2b 40") + std::string(kDoc1) +
                             std::string(kDoc2) +
                             "3c 00  00 00 00 00 00 00"                         // routing
                             "33 01  01 0c 00 00 00 00 00 00 00 00 00 00 00 00" // dst opts
                             "06 04 00 00  00 00 01 00  00 00 00 01"
                             "  00 00 00 00 00 00 00 00 00 00 00 00" // AH, 12-byte ICV
                             "c7 38 01 bb  00 00 00 07  00 00 00 00"
                             "  50 02 ff ff  00 00 00 00");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.protocol, 6);
  EXPECT_EQ(d.view.tcp_seq, 7U);
  EXPECT_EQ(d.view.dst_port, 443);
  EXPECT_FALSE(d.view.fragment);
}

TEST(DecodeRaw, Ipv6NoNextHeader) {
  const auto d = run(LinkType::raw, std::string("60 00 00 00  00 00 3b 40") + std::string(kDoc1) +
                                        std::string(kDoc2));
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.protocol, 59);
  EXPECT_EQ(d.view.ip_length, 40U);
  EXPECT_FALSE(d.view.has_ports);
}

TEST(DecodeRaw, Ipv6PayloadLengthZeroCountsCapturedBytes) {
  // BIG TCP / GSO (or a jumbogram): payload length 0 yet a TCP header follows.
  const auto d = run(LinkType::raw, std::string("60 00 00 00  00 00 06 40") + std::string(kDoc1) +
                                        std::string(kDoc2) +
                                        "c7 38 01 bb  00 00 00 01  00 00 00 00"
                                        "  50 10 ff ff  00 00 00 00"
                                        "01 02 03");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_length, 63U);
  EXPECT_FALSE(d.view.payload_truncated);
  EXPECT_EQ(bytes_of(d.view.payload), hex("01 02 03"));
}

TEST(DecodeEthernet, Ipv6EmptyPacketPaddingIgnored) {
  // Payload length 0, next header 59: a genuinely empty packet, padded.
  const auto d =
      run(LinkType::ethernet, std::string(kEthToIpv6) + "60 00 00 00  00 00 3b 40" +
                                  std::string(kDoc1) + std::string(kDoc2) + "00 00 00 00 00 00");
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_length, 40U);
  EXPECT_EQ(d.view.protocol, 59);
}

TEST(DecodeRaw, Ipv4ByNibble) {
  const auto d = run(LinkType::raw, kIpv4Tcp);
  ASSERT_EQ(d.err, DecodeError::ok);
  EXPECT_EQ(d.view.ip_version, 4);
  EXPECT_EQ(d.view.dst_port, 443);
}

TEST(DecodeRaw, Ipv4AndIpv6LinkTypes) {
  EXPECT_EQ(run(LinkType::ipv4, kIpv4Icmp).err, DecodeError::ok);
  EXPECT_EQ(run(LinkType::ipv6, kIpv6Icmp).err, DecodeError::ok);
  EXPECT_EQ(run(LinkType::ipv6, kIpv6Icmp).view.protocol, 58);
}

TEST(DecodeNull, BothByteOrders) {
  const std::string v4ip(kIpv4Icmp);
  const std::string v6ip(kIpv6Icmp);
  // AF_INET = 2 written little-endian (x86 capture) and big-endian.
  for (std::string_view af : {"02 00 00 00", "00 00 00 02"}) {
    const auto d = run(LinkType::null_loopback, std::string(af) + v4ip);
    ASSERT_EQ(d.err, DecodeError::ok) << af;
    EXPECT_EQ(d.view.ip_version, 4);
    EXPECT_EQ(d.view.src, v4(127, 0, 0, 1));
    EXPECT_EQ(d.view.protocol, 1);
  }
  // AF_INET6: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (Darwin), both orders.
  for (std::string_view af :
       {"18 00 00 00", "00 00 00 18", "1c 00 00 00", "00 00 00 1c", "1e 00 00 00", "00 00 00 1e"}) {
    const auto d = run(LinkType::null_loopback, std::string(af) + v6ip);
    ASSERT_EQ(d.err, DecodeError::ok) << af;
    EXPECT_EQ(d.view.ip_version, 6);
    EXPECT_EQ(d.view.src, v6(kLoopback6));
    EXPECT_EQ(d.view.protocol, 58);
  }
}

TEST(DecodeLoop, NetworkOrderOnly) {
  EXPECT_EQ(run(LinkType::loop, "00 00 00 02" + std::string(kIpv4Icmp)).err, DecodeError::ok);
  EXPECT_EQ(run(LinkType::loop, "00 00 00 18" + std::string(kIpv6Icmp)).err, DecodeError::ok);
  EXPECT_EQ(run(LinkType::loop, "02 00 00 00" + std::string(kIpv4Icmp)).err, DecodeError::not_ip);
}

TEST(Decode, ResetsViewBetweenFrames) {
  PacketView v;
  Frame tcp = hex(std::string(kEthToIpv4) + std::string(kIpv4Tcp));
  ASSERT_EQ(decode_packet(LinkType::ethernet, tcp, v), DecodeError::ok);
  ASSERT_TRUE(v.has_ports);
  Frame icmp = hex(std::string(kIpv4Icmp));
  ASSERT_EQ(decode_packet(LinkType::raw, icmp, v), DecodeError::ok);
  EXPECT_FALSE(v.has_ports);
  EXPECT_EQ(v.src_port, 0);
  EXPECT_EQ(v.tcp_flags, 0);
  EXPECT_TRUE(v.payload.empty());
  EXPECT_EQ(v.direction, LinkDirection::unknown);
}

// ==========================================================================
// Malformed frames: every DecodeError value
// ==========================================================================

TEST(DecodeErrors, UnsupportedLinkType) {
  EXPECT_EQ(run(static_cast<LinkType>(147), kIpv4Tcp).err, DecodeError::unsupported_link_type);
  EXPECT_EQ(run(static_cast<LinkType>(2), kIpv4Tcp).err, DecodeError::unsupported_link_type);
}

TEST(DecodeErrors, TruncatedLinkHeader) {
  EXPECT_EQ(run(LinkType::ethernet, "00 11 22 33 44 55  66 77 88 99 aa bb  08").err,
            DecodeError::truncated_link_header);
  EXPECT_EQ(run(LinkType::ethernet, "").err, DecodeError::truncated_link_header);
  // A VLAN tag announced but cut after its TCI.
  EXPECT_EQ(run(LinkType::ethernet, "00 11 22 33 44 55  66 77 88 99 aa bb  81 00  00 64").err,
            DecodeError::truncated_link_header);
  EXPECT_EQ(run(LinkType::linux_sll, "00 04  00 01  00 06  00 11 22 33 44 55 00 00  08").err,
            DecodeError::truncated_link_header);
  EXPECT_EQ(run(LinkType::linux_sll, "00 04  00 01  00 06  00 11 22 33 44 55 00 00  81 00  00").err,
            DecodeError::truncated_link_header);
  EXPECT_EQ(
      run(LinkType::linux_sll2, "08 00  00 00  00 00 00 02  00 01  04  06  00 11 22 33 44 55 00")
          .err,
      DecodeError::truncated_link_header);
  EXPECT_EQ(run(LinkType::null_loopback, "02 00 00").err, DecodeError::truncated_link_header);
  EXPECT_EQ(run(LinkType::loop, "00 00").err, DecodeError::truncated_link_header);
}

TEST(DecodeErrors, NotIp) {
  // ARP request.
  EXPECT_EQ(run(LinkType::ethernet, "ff ff ff ff ff ff  66 77 88 99 aa bb  08 06"
                                    "00 01 08 00 06 04 00 01  66 77 88 99 aa bb  0a 00 00 01"
                                    "00 00 00 00 00 00  0a 00 00 02")
                .err,
            DecodeError::not_ip);
  // 802.3 frame: the type field is a length (0x26 = 38 bytes of LLC data).
  EXPECT_EQ(run(LinkType::ethernet, "01 80 c2 00 00 00  66 77 88 99 aa bb  00 26"
                                    "42 42 03 00 00 00 00 00")
                .err,
            DecodeError::not_ip);
  // VLAN-tagged ARP.
  EXPECT_EQ(run(LinkType::ethernet, "ff ff ff ff ff ff  66 77 88 99 aa bb  81 00 00 05 08 06").err,
            DecodeError::not_ip);
  // SLL carrying 802.2 (protocol 0x0004).
  EXPECT_EQ(
      run(LinkType::linux_sll, "00 00  00 01  00 06  00 11 22 33 44 55 00 00  00 04  42 42").err,
      DecodeError::not_ip);
  // Null loopback with an address family that is not IP.
  EXPECT_EQ(run(LinkType::null_loopback, "07 00 00 00" + std::string(kIpv4Icmp)).err,
            DecodeError::not_ip);
  EXPECT_EQ(run(LinkType::null_loopback, "00 00 00 0a" + std::string(kIpv6Icmp)).err,
            DecodeError::not_ip);
}

TEST(DecodeErrors, TruncatedIpHeader) {
  // 19 bytes of an IPv4 header.
  EXPECT_EQ(
      run(LinkType::ethernet,
          std::string(kEthToIpv4) + "45 00 00 2d  12 34 40 00  40 06 00 00  0a 00 00 01  5d b8 d8")
          .err,
      DecodeError::truncated_ip_header);
  // Ethertype IPv4 and nothing after it.
  EXPECT_EQ(run(LinkType::ethernet, kEthToIpv4).err, DecodeError::truncated_ip_header);
  EXPECT_EQ(run(LinkType::raw, "").err, DecodeError::truncated_ip_header);
  // 39 bytes of an IPv6 header.
  EXPECT_EQ(run(LinkType::ethernet, std::string(kEthToIpv6) + "60 00 00 00  00 00 3b 40" +
                                        std::string(kDoc1) +
                                        "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00")
                .err,
            DecodeError::truncated_ip_header);
  // IHL 6 but the options are not captured.
  EXPECT_EQ(
      run(LinkType::raw, "46 00 00 18  00 00 00 00  40 11 00 00  0a 00 00 01  0a 00 00 02").err,
      DecodeError::truncated_ip_header);
}

TEST(DecodeErrors, BadIpVersion) {
  // Ethertype IPv4, version nibble 6.
  EXPECT_EQ(run(LinkType::ethernet, std::string(kEthToIpv4) + std::string(kIpv6Icmp)).err,
            DecodeError::bad_ip_version);
  // Ethertype IPv6, version nibble 4.
  EXPECT_EQ(run(LinkType::ethernet, std::string(kEthToIpv6) + std::string(kIpv4Icmp)).err,
            DecodeError::bad_ip_version);
  EXPECT_EQ(
      run(LinkType::raw, "55 00 00 14  00 00 00 00  40 11 00 00  0a 00 00 01  0a 00 00 02").err,
      DecodeError::bad_ip_version);
  EXPECT_EQ(run(LinkType::raw, "00").err, DecodeError::bad_ip_version);
  EXPECT_EQ(run(LinkType::ipv6, kIpv4Icmp).err, DecodeError::bad_ip_version);
  EXPECT_EQ(run(LinkType::ipv4, kIpv6Icmp).err, DecodeError::bad_ip_version);
  EXPECT_EQ(run(LinkType::null_loopback, "1e 00 00 00" + std::string(kIpv4Icmp)).err,
            DecodeError::bad_ip_version);
}

TEST(DecodeErrors, BadIpHeaderLength) {
  EXPECT_EQ(run(LinkType::raw, "44 00 00 1c  00 00 00 00  40 01 00 00  7f 00 00 01  7f 00 00 01"
                               "08 00 f7 ff  00 00 00 00")
                .err,
            DecodeError::bad_ip_header_length);
  EXPECT_EQ(run(LinkType::raw, "40 00 00 1c  00 00 00 00  40 01 00 00  7f 00 00 01  7f 00 00 01"
                               "08 00 f7 ff  00 00 00 00")
                .err,
            DecodeError::bad_ip_header_length);
}

TEST(DecodeErrors, BadIpTotalLength) {
  // Total length 16 < 20-byte header.
  EXPECT_EQ(run(LinkType::raw, "45 00 00 10  00 00 00 00  40 01 00 00  7f 00 00 01  7f 00 00 01"
                               "08 00 f7 ff  00 00 00 00")
                .err,
            DecodeError::bad_ip_total_length);
  // IHL 6 (24 bytes), total length 20.
  EXPECT_EQ(run(LinkType::raw, "46 00 00 14  00 00 00 00  40 01 00 00  7f 00 00 01  7f 00 00 01"
                               "94 04 00 00")
                .err,
            DecodeError::bad_ip_total_length);
}

TEST(DecodeErrors, TruncatedIpv6Extension) {
  const std::string addrs = std::string(kDoc1) + std::string(kDoc2);
  // Hop-by-hop says 16 bytes (len 1) but only 8 are captured.
  EXPECT_EQ(run(LinkType::raw, "60 00 00 00  00 10 00 40" + addrs + "3b 01 01 04 00 00 00 00").err,
            DecodeError::truncated_ipv6_extension);
  // Only one byte of an extension header.
  EXPECT_EQ(run(LinkType::raw, "60 00 00 00  00 08 00 40" + addrs + "3b").err,
            DecodeError::truncated_ipv6_extension);
  // Fragment header cut at 4 of its 8 bytes.
  EXPECT_EQ(run(LinkType::raw, "60 00 00 00  00 08 2c 40" + addrs + "11 00 00 01").err,
            DecodeError::truncated_ipv6_extension);
  // The chain runs past the payload length into Ethernet padding: the
  // padding must not be read as the rest of the header.
  EXPECT_EQ(run(LinkType::ethernet, std::string(kEthToIpv6) + "60 00 00 00  00 08 00 40" + addrs +
                                        "3b 01 01 04 00 00 00 00  00 00 00 00 00 00 00 00")
                .err,
            DecodeError::truncated_ipv6_extension);
}

TEST(DecodeErrors, TruncatedL4Header) {
  // TCP header cut at 10 bytes (total length agrees with the capture).
  EXPECT_EQ(run(LinkType::raw, "45 00 00 1e  00 00 00 00  40 06 00 00  0a 00 00 01  0a 00 00 02"
                               "c7 38 01 bb  00 00 00 01  00 00")
                .err,
            DecodeError::truncated_l4_header);
  // TCP header cut by the snaplen (total length says 40).
  EXPECT_EQ(run(LinkType::raw, "45 00 00 28  00 00 00 00  40 06 00 00  0a 00 00 01  0a 00 00 02"
                               "c7 38 01 bb  00 00 00 01  00 00")
                .err,
            DecodeError::truncated_l4_header);
  // Data offset 15 (60 bytes) but only the fixed 20 are there.
  EXPECT_EQ(run(LinkType::raw, "45 00 00 28  00 00 00 00  40 06 00 00  0a 00 00 01  0a 00 00 02"
                               "c7 38 01 bb  00 00 00 01  00 00 00 00  f0 10 ff ff  00 00 00 00")
                .err,
            DecodeError::truncated_l4_header);
  // UDP header cut at 4 bytes.
  EXPECT_EQ(run(LinkType::raw, "45 00 00 18  00 00 00 00  40 11 00 00  0a 00 00 01  0a 00 00 02"
                               "00 35 00 35")
                .err,
            DecodeError::truncated_l4_header);
  // IPv6 first fragment too short to hold the UDP header.
  EXPECT_EQ(run(LinkType::raw, std::string("60 00 00 00  00 0c 2c 40") + std::string(kDoc1) +
                                   std::string(kDoc2) + "11 00 00 01 00 00 ab cd  00 35 00 35")
                .err,
            DecodeError::truncated_l4_header);
  // The TCP header is captured but the IP total length ends inside it.
  EXPECT_EQ(
      run(LinkType::ethernet, std::string(kEthToIpv4) +
                                  "45 00 00 1e  00 00 00 00  40 06 00 00  0a 00 00 01  0a 00 00 02"
                                  "c7 38 01 bb  00 00 00 01  00 00 00 00  50 10 ff ff  00 00 00 00")
          .err,
      DecodeError::truncated_l4_header);
}

TEST(DecodeErrors, BadTcpHeaderLength) {
  EXPECT_EQ(run(LinkType::raw, "45 00 00 28  00 00 00 00  40 06 00 00  0a 00 00 01  0a 00 00 02"
                               "c7 38 01 bb  00 00 00 01  00 00 00 00  40 10 ff ff  00 00 00 00")
                .err,
            DecodeError::bad_tcp_header_length);
}

TEST(DecodeErrors, NonFirstFragmentSkipsL4Checks) {
  // A later fragment of 4 bytes is fine: it has no L4 header to cut.
  EXPECT_EQ(run(LinkType::raw, "45 00 00 18  00 00 00 b9  40 06 00 00  0a 00 00 01  0a 00 00 02"
                               "00 00 00 00")
                .err,
            DecodeError::ok);
}

// Every prefix of every well-formed frame must decode without reading past
// it, and a successful decode must keep the payload inside the frame. Each
// prefix is its own heap allocation so sanitizer builds catch over-reads.
TEST(DecodeRobustness, EveryPrefix) {
  const std::pair<LinkType, Frame> frames[] = {
      {LinkType::ethernet, hex(std::string(kEthToIpv4) + std::string(kIpv4Tcp))},
      {LinkType::raw, hex(kIpv6HbhFragFirst)},
      {LinkType::linux_sll,
       hex("00 00 00 01 00 06 00 11 22 33 44 55 00 00 81 00 00 0a 08 00" + std::string(kIpv4Icmp))},
      {LinkType::linux_sll2,
       hex("86 dd 00 00 00 00 00 02 00 01 00 06 00 11 22 33 44 55 00 00" + std::string(kIpv6Icmp))},
      {LinkType::null_loopback, hex("02 00 00 00" + std::string(kIpv4Tcp))},
  };
  for (const auto &[link, frame] : frames) {
    for (std::size_t n = 0; n <= frame.size(); ++n) {
      const Frame prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
      PacketView v;
      const DecodeError err = decode_packet(link, prefix, v);
      EXPECT_LT(static_cast<int>(err), static_cast<int>(DecodeError::count_));
      if (err == DecodeError::ok && !v.payload.empty()) {
        EXPECT_GE(v.payload.data(), prefix.data());
        EXPECT_LE(v.payload.data() + v.payload.size(), prefix.data() + prefix.size());
      }
    }
  }
}

// ==========================================================================
// Names and support
// ==========================================================================

TEST(DecodeNames, StableSnakeCase) {
  EXPECT_EQ(to_string(DecodeError::ok), "ok");
  EXPECT_EQ(to_string(DecodeError::unsupported_link_type), "unsupported_link_type");
  EXPECT_EQ(to_string(DecodeError::truncated_link_header), "truncated_link_header");
  EXPECT_EQ(to_string(DecodeError::not_ip), "not_ip");
  EXPECT_EQ(to_string(DecodeError::truncated_ip_header), "truncated_ip_header");
  EXPECT_EQ(to_string(DecodeError::bad_ip_version), "bad_ip_version");
  EXPECT_EQ(to_string(DecodeError::bad_ip_header_length), "bad_ip_header_length");
  EXPECT_EQ(to_string(DecodeError::bad_ip_total_length), "bad_ip_total_length");
  EXPECT_EQ(to_string(DecodeError::truncated_ipv6_extension), "truncated_ipv6_extension");
  EXPECT_EQ(to_string(DecodeError::truncated_l4_header), "truncated_l4_header");
  EXPECT_EQ(to_string(DecodeError::bad_tcp_header_length), "bad_tcp_header_length");
  EXPECT_EQ(to_string(DecodeError::count_), "unknown");
  EXPECT_EQ(to_string(static_cast<DecodeError>(200)), "unknown");
}

TEST(DecodeNames, SupportedLinkTypes) {
  for (auto link : {LinkType::null_loopback, LinkType::ethernet, LinkType::raw, LinkType::loop,
                    LinkType::linux_sll, LinkType::ipv4, LinkType::ipv6, LinkType::linux_sll2}) {
    EXPECT_TRUE(is_supported(link)) << static_cast<std::uint32_t>(link);
  }
  for (std::uint32_t other : {2U, 9U, 105U, 127U, 147U, 0xFFFFFFFFU}) {
    EXPECT_FALSE(is_supported(static_cast<LinkType>(other))) << other;
  }
}

} // namespace
} // namespace ta::decode
