// decode: one captured frame -> the outer IP/L4 facts the pipeline needs.
// ta_decode links only ta_common.
//
// Zero-copy: PacketView points into the frame it was decoded from. No
// allocation, no exceptions; failures are a closed enum whose names are stable
// (they become metric label values and log words).
//
// What is decoded (headers are the outer ones: README "What is counted"):
//   link:  Ethernet II (+ any stack of 802.1Q / 802.1ad / QinQ 0x9100 tags),
//          Linux cooked v1 (SLL) and v2 (SLL2), raw IP (DLT_RAW, and the
//          LINKTYPE_IPV4 / LINKTYPE_IPV6 variants), BSD null / loopback.
//   net:   IPv4 (options skipped via IHL), IPv6 (extension-header chain walked:
//          hop-by-hop, routing, fragment, destination options, AH).
//   l4:    TCP and UDP ports (and TCP seq/flags for DNS-over-TCP reassembly).
//          Only a first fragment carries ports; later fragments decode with
//          has_ports = false.
// Tunnels are not opened: GRE/IP-in-IP/VXLAN are just their outer protocol.
#pragma once

#include <cstdint>
#include <string_view>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"

namespace ta::decode {

// pcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).
enum class LinkType : std::uint32_t {
  null_loopback = 0, // DLT_NULL: 4-byte host-order AF_ value
  ethernet = 1,
  raw = 101,  // LINKTYPE_RAW: IPv4 or IPv6 by version nibble
  loop = 108, // DLT_LOOP (OpenBSD): 4-byte network-order AF_ value
  linux_sll = 113,
  ipv4 = 228,
  ipv6 = 229,
  linux_sll2 = 276,
};

// Whether the link layer itself says which way the frame went. Only Linux
// cooked captures (and live capture on Linux) carry this.
enum class LinkDirection : std::uint8_t { unknown, incoming, outgoing };

// Closed set of reasons a frame cannot be decoded. Names (to_string) are
// stable snake_case and used as metric labels: never rename, only append.
enum class DecodeError : std::uint8_t {
  ok = 0,
  unsupported_link_type,
  truncated_link_header, // frame shorter than its link header / VLAN tag
  not_ip,                // ARP, LLDP, IPX, ...: a well-formed non-IP frame
  truncated_ip_header,
  bad_ip_version,           // version nibble disagrees with the link's ethertype/AF
  bad_ip_header_length,     // IPv4 IHL < 5 (an IHL beyond the total length is
                            // reported as bad_ip_total_length)
  bad_ip_total_length,      // IPv4 total length < header length (IHL * 4)
  truncated_ipv6_extension, // extension chain runs past the captured bytes
  truncated_l4_header,      // TCP/UDP header cut (first fragment only)
  bad_tcp_header_length,    // TCP data offset < 5
  count_                    // number of values; keep last
};

[[nodiscard]] std::string_view to_string(DecodeError e) noexcept;

struct PacketView {
  LinkDirection direction = LinkDirection::unknown;
  std::uint8_t ip_version = 0; // 4 or 6
  IpAddress src;
  IpAddress dst;
  // The upper-layer protocol: IPv4 protocol field, or the IPv6 next header
  // after the extension chain (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
  std::uint8_t protocol = 0;
  // The counted bytes: IPv4 total length, or 40 + IPv6 payload length, as the
  // header says (not the captured length; a snapped capture still counts full
  // bytes). Exception: a header length of 0 (IPv4 total length 0, or IPv6
  // payload length 0 with a next header other than 59) is what TSO/GSO
  // super-packets captured on the sending host and jumbograms look like;
  // ip_length is then the captured IP bytes.
  std::uint32_t ip_length = 0;
  bool fragment = false;      // any fragment (MF set or offset != 0)
  bool first_fragment = true; // offset == 0 (a non-fragment is its own first)
  bool has_ports = false;     // TCP/UDP header present (non-first fragments: no)
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t tcp_seq = 0;
  std::uint8_t tcp_flags = 0; // FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10
  // L4 payload: after the TCP/UDP header, clipped to the IP length and to the
  // captured bytes (so it may be shorter than the header says). Empty for
  // non-first fragments and for other protocols.
  Bytes payload;
  // True when the captured bytes end before the IP length says they should.
  bool payload_truncated = false;
};

// Decodes one frame. On error, `out` may be partly filled and must be ignored.
// On success every field of `out` is set for this frame (nothing is carried
// over from a previous call), and `payload` points into `frame`.
[[nodiscard]] DecodeError decode_packet(LinkType link, Bytes frame, PacketView &out) noexcept;

// Whether `link` is one decode_packet understands.
[[nodiscard]] bool is_supported(LinkType link) noexcept;

} // namespace ta::decode
