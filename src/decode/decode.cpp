// decode_packet: link header -> IPv4/IPv6 (+ extension chain) -> TCP/UDP.
//
// Hot path (millions of frames per second): no allocation, no virtual calls,
// no exceptions. Every read goes through ta::ByteCursor. Where a header has a
// fixed size we `take` the whole fixed part once and read its fields from a
// sub-cursor over that span: the span's size is then a compile-time constant,
// so after inlining the per-field bounds checks fold away and one length check
// guards the whole header. The `if (!(...)) return ...` after such reads is
// therefore dead code kept only so nothing relies on that optimisation.
//
// Three lengths are in play for the IP packet and must not be confused:
//   captured  bytes present in the frame after the link header (snaplen-cut,
//             or longer than the packet because of Ethernet minimum padding);
//   length    what the IP header says (IPv4 total length, 40 + IPv6 payload
//             length) -> PacketView::ip_length, the number we account;
//   avail     min(length, captured): the only bytes we ever interpret as
//             extension headers, L4 header or payload. Padding past `length`
//             is never parsed and never becomes payload.
#include "ta/decode/decode.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"

namespace ta::decode {
namespace {

// Ethertypes (also the protocol field of Linux cooked captures).
constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86DD;
constexpr std::uint16_t kEtherVlan = 0x8100;       // 802.1Q C-tag
constexpr std::uint16_t kEtherQinQ = 0x88A8;       // 802.1ad S-tag
constexpr std::uint16_t kEtherQinQLegacy = 0x9100; // pre-802.1ad QinQ S-tag

// IP protocol / IPv6 next-header numbers.
constexpr std::uint8_t kProtoHopByHop = 0;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoRouting = 43;
constexpr std::uint8_t kProtoFragment = 44;
constexpr std::uint8_t kProtoAh = 51;
constexpr std::uint8_t kProtoNoNext = 59;
constexpr std::uint8_t kProtoDstOpts = 60;

constexpr std::size_t kEthernetHeader = 14; // dst MAC 6, src MAC 6, ethertype 2
constexpr std::size_t kVlanTag = 4;         // TCI 2, next ethertype 2
constexpr std::size_t kSllHeader = 16;
constexpr std::size_t kSll2Header = 20;
constexpr std::size_t kNullHeader = 4;
constexpr std::size_t kIpv4MinHeader = 20;
constexpr std::size_t kIpv6Header = 40;
constexpr std::size_t kIpv6FragmentHeader = 8;
constexpr std::size_t kTcpMinHeader = 20;
constexpr std::size_t kUdpHeader = 8;

// Linux sll_pkttype (include/uapi/linux/if_packet.h): 0 HOST, 1 BROADCAST,
// 2 MULTICAST, 3 OTHERHOST are all received; 4 OUTGOING was sent by this host.
// 5 LOOPBACK, 6 USER, 7 KERNEL and anything else say nothing useful.
constexpr LinkDirection direction_of(std::uint16_t pkttype) noexcept {
  constexpr std::array<LinkDirection, 5> table{LinkDirection::incoming, LinkDirection::incoming,
                                               LinkDirection::incoming, LinkDirection::incoming,
                                               LinkDirection::outgoing};
  return pkttype < table.size() ? table[pkttype] : LinkDirection::unknown;
}

// BSD AF_ values as written by DLT_NULL / DLT_LOOP: AF_INET is 2 everywhere;
// AF_INET6 differs by OS (24 NetBSD/OpenBSD/BSD/OS, 28 FreeBSD/DragonFly,
// 30 Darwin). Returns the IP version, or 0 for anything else.
constexpr std::uint8_t version_of_af(std::uint32_t af) noexcept {
  switch (af) {
  case 2:
    return 4;
  case 24:
  case 28:
  case 30:
    return 6;
  default:
    return 0;
  }
}

// Fill `a` in place, with the layout IpAddress::v4/v6 define (IPv4 in the
// first 4 bytes, rest zero). Not `a = IpAddress::v4(p)`: gcc builds that
// temporary with narrow stores and copies it with a 16-byte load, a
// store-forwarding stall that was the top of an IPv4 decode's profile.
inline void assign_v4(IpAddress &a, Bytes four) noexcept {
  a.bytes = {};
  std::memcpy(a.bytes.data(), four.data(), 4);
  a.family = 4;
}
inline void assign_v6(IpAddress &a, Bytes sixteen) noexcept {
  std::memcpy(a.bytes.data(), sixteen.data(), 16);
  a.family = 6;
}

constexpr bool is_vlan_tpid(std::uint16_t type) noexcept {
  return type == kEtherVlan || type == kEtherQinQ || type == kEtherQinQLegacy;
}

// Resolves an ethertype to the IP version it announces, first walking any
// stack of VLAN tags that follow it in `c`. Each tag is 2 bytes of TCI then
// the next ethertype; tags may be stacked to any depth (the loop terminates
// because every tag consumes 4 bytes). Ethertype values below 0x0600 are
// 802.3 length fields (LLC/SNAP frames) and, like every non-IP ethertype,
// are a well-formed not_ip.
inline DecodeError resolve_ethertype(ByteCursor &c, std::uint16_t type,
                                     std::uint8_t &version) noexcept {
  for (;;) {
    // IP first: untagged IPv4/IPv6 is nearly every frame.
    if (type == kEtherIpv4) {
      version = 4;
      return DecodeError::ok;
    }
    if (type == kEtherIpv6) {
      version = 6;
      return DecodeError::ok;
    }
    if (!is_vlan_tpid(type)) {
      return DecodeError::not_ip;
    }
    Bytes tag;
    if (!c.take(kVlanTag, tag)) {
      return DecodeError::truncated_link_header;
    }
    ByteCursor t(tag);
    if (!(t.skip(2) && t.read_u16(type))) {
      return DecodeError::truncated_link_header;
    }
  }
}

// Ethernet II: dst MAC (6), src MAC (6), ethertype (2) at offset 12.
inline DecodeError link_ethernet(ByteCursor &c, std::uint8_t &version) noexcept {
  Bytes hdr;
  if (!c.take(kEthernetHeader, hdr)) {
    return DecodeError::truncated_link_header;
  }
  ByteCursor h(hdr);
  std::uint16_t type = 0;
  if (!(h.skip(12) && h.read_u16(type))) {
    return DecodeError::truncated_link_header;
  }
  return resolve_ethertype(c, type, version);
}

// Linux cooked v1 (LINKTYPE_LINUX_SLL), 16 bytes, all big-endian:
//   0 packet type u16 | 2 ARPHRD u16 | 4 link addr len u16 | 6 link addr (8,
//   zero-padded) | 14 protocol u16 (an ethertype; may be 0x8100 with the VLAN
//   tag re-inserted after the header by libpcap).
inline DecodeError link_sll(ByteCursor &c, PacketView &out, std::uint8_t &version) noexcept {
  Bytes hdr;
  if (!c.take(kSllHeader, hdr)) {
    return DecodeError::truncated_link_header;
  }
  ByteCursor h(hdr);
  std::uint16_t pkttype = 0;
  std::uint16_t type = 0;
  if (!(h.read_u16(pkttype) && h.skip(12) && h.read_u16(type))) {
    return DecodeError::truncated_link_header;
  }
  out.direction = direction_of(pkttype);
  return resolve_ethertype(c, type, version);
}

// Linux cooked v2 (LINKTYPE_LINUX_SLL2), 20 bytes, big-endian:
//   0 protocol u16 | 2 reserved u16 | 4 interface index u32 | 8 ARPHRD u16 |
//   10 packet type u8 | 11 link addr len u8 | 12 link addr (8, zero-padded).
// The protocol is treated exactly like SLL's (VLAN tags included).
inline DecodeError link_sll2(ByteCursor &c, PacketView &out, std::uint8_t &version) noexcept {
  Bytes hdr;
  if (!c.take(kSll2Header, hdr)) {
    return DecodeError::truncated_link_header;
  }
  ByteCursor h(hdr);
  std::uint16_t type = 0;
  std::uint8_t pkttype = 0;
  if (!(h.read_u16(type) && h.skip(8) && h.read_u8(pkttype))) {
    return DecodeError::truncated_link_header;
  }
  out.direction = direction_of(pkttype);
  return resolve_ethertype(c, type, version);
}

// DLT_NULL: a 4-byte AF_ value in the byte order of the machine that wrote
// the capture, which the file does not record (a pcap written on a
// little-endian host and read on a big-endian one is still little-endian
// here). We accept both orders: the valid values are tiny, so at most one
// interpretation can match (2 read the wrong way round is 0x02000000).
inline DecodeError link_null(ByteCursor &c, std::uint8_t &version) noexcept {
  Bytes hdr;
  if (!c.take(kNullHeader, hdr)) {
    return DecodeError::truncated_link_header;
  }
  ByteCursor be(hdr);
  ByteCursor le(hdr);
  std::uint32_t af_be = 0;
  std::uint32_t af_le = 0;
  if (!(be.read_u32(af_be) && le.read_u32_le(af_le))) {
    return DecodeError::truncated_link_header;
  }
  version = static_cast<std::uint8_t>(version_of_af(af_be) | version_of_af(af_le));
  return version != 0 ? DecodeError::ok : DecodeError::not_ip;
}

// DLT_LOOP (OpenBSD): like DLT_NULL but the AF_ value is always big-endian.
inline DecodeError link_loop(ByteCursor &c, std::uint8_t &version) noexcept {
  std::uint32_t af = 0;
  if (!c.read_u32(af)) {
    return DecodeError::truncated_link_header;
  }
  version = version_of_af(af);
  return version != 0 ? DecodeError::ok : DecodeError::not_ip;
}

// IPv4 (RFC 791). Fixed 20 bytes:
//   0 version/IHL | 1 TOS | 2 total length | 4 id | 6 flags(3)+offset(13) |
//   8 TTL | 9 protocol | 10 checksum | 12 src | 16 dst | 20 options (IHL*4-20)
// On success `l4` is the bytes after the header, clipped to avail.
inline DecodeError decode_ipv4(Bytes ip, PacketView &out, Bytes &l4) noexcept {
  ByteCursor c(ip);
  Bytes fixed;
  if (!c.take(kIpv4MinHeader, fixed)) {
    return DecodeError::truncated_ip_header;
  }
  ByteCursor h(fixed);
  std::uint8_t vihl = 0;
  std::uint16_t total = 0;
  std::uint16_t frag = 0;
  std::uint8_t protocol = 0;
  Bytes src;
  Bytes dst;
  if (!(h.read_u8(vihl) && h.skip(1) && h.read_u16(total) && h.skip(2) && h.read_u16(frag) &&
        h.skip(1) && h.read_u8(protocol) && h.skip(2) && h.take(4, src) && h.take(4, dst))) {
    return DecodeError::truncated_ip_header;
  }
  const std::size_t header_len = static_cast<std::size_t>(vihl & 0x0FU) * 4U;
  if (header_len < kIpv4MinHeader) {
    return DecodeError::bad_ip_header_length;
  }
  if (!c.skip(header_len - kIpv4MinHeader)) { // options
    return DecodeError::truncated_ip_header;
  }
  const std::size_t captured = ip.size();
  // Total length 0 is what Linux shows for TSO/GSO super-packets captured on
  // the sending host before segmentation (the kernel fills the field in per
  // segment later; BIG TCP packets over 64 KiB cannot express it at all).
  // Such a packet is whatever was captured, so we count the captured bytes.
  // Deliberate consequence: a snaplen-cut TSO packet is under-counted (the
  // real size is unknowable) and is not flagged payload_truncated.
  const std::size_t length = total != 0 ? std::size_t{total} : captured;
  if (length < header_len) {
    return DecodeError::bad_ip_total_length;
  }
  const std::size_t avail = std::min(length, captured);

  // Flags: bit 0x4000 DF, 0x2000 MF; low 13 bits are the offset in 8-byte
  // units. A fragment is anything with MF set or a non-zero offset.
  const std::uint16_t offset = frag & 0x1FFFU;
  out.ip_version = 4;
  assign_v4(out.src, src);
  assign_v4(out.dst, dst);
  out.protocol = protocol;
  out.ip_length = static_cast<std::uint32_t>(length);
  out.payload_truncated = captured < length;
  out.fragment = (frag & 0x3FFFU) != 0;
  out.first_fragment = offset == 0;
  if (!c.take(avail - header_len, l4)) {
    return DecodeError::truncated_ip_header; // unreachable: avail <= captured
  }
  return DecodeError::ok;
}

// IPv6 (RFC 8200). Fixed 40 bytes:
//   0 version/traffic class/flow label (4) | 4 payload length u16 |
//   6 next header | 7 hop limit | 8 src (16) | 24 dst (16)
// then a chain of extension headers, each naming the next. We walk the ones
// that can precede an upper-layer header and stop at the first other value,
// which becomes `protocol` (TCP, UDP, ICMPv6, ESP, 59 "no next header", ...).
inline DecodeError decode_ipv6(Bytes ip, PacketView &out, Bytes &l4) noexcept {
  ByteCursor c(ip);
  Bytes fixed;
  if (!c.take(kIpv6Header, fixed)) {
    return DecodeError::truncated_ip_header;
  }
  ByteCursor h(fixed);
  std::uint16_t payload_len = 0;
  std::uint8_t next = 0;
  Bytes src;
  Bytes dst;
  if (!(h.skip(4) && h.read_u16(payload_len) && h.read_u8(next) && h.skip(1) && h.take(16, src) &&
        h.take(16, dst))) {
    return DecodeError::truncated_ip_header;
  }
  const std::size_t captured = ip.size();
  // Payload length 0 with something to follow is a jumbogram (RFC 2675, the
  // real length is in a hop-by-hop option) or, in practice, a Linux BIG TCP /
  // GSO super-packet captured before segmentation. As for IPv4 total length 0
  // we count the captured bytes. A true empty packet says next header 59.
  const std::size_t length = (payload_len != 0 || next == kProtoNoNext)
                                 ? kIpv6Header + payload_len
                                 : std::max(captured, kIpv6Header);
  const std::size_t avail = std::min(length, captured);

  out.ip_version = 6;
  assign_v6(out.src, src);
  assign_v6(out.dst, dst);
  out.ip_length = static_cast<std::uint32_t>(length);
  out.payload_truncated = captured < length;
  out.fragment = false; // until a fragment header says otherwise
  out.first_fragment = true;

  Bytes chain;
  if (!c.take(avail - kIpv6Header, chain)) {
    return DecodeError::truncated_ip_header; // unreachable: avail <= captured
  }
  ByteCursor e(chain);
  // Terminates: every extension header consumes at least 8 bytes.
  for (;;) {
    switch (next) {
    case kProtoHopByHop:
    case kProtoRouting:
    case kProtoDstOpts:
    case kProtoAh: {
      // Common prefix: next header u8, length u8. Hop-by-hop, routing and
      // destination options count 8-octet units beyond the first 8; AH
      // (RFC 4302) counts 4-octet units minus 2.
      const bool is_ah = next == kProtoAh;
      Bytes prefix;
      if (!e.take(2, prefix)) {
        return DecodeError::truncated_ipv6_extension;
      }
      ByteCursor p(prefix);
      std::uint8_t len = 0;
      if (!(p.read_u8(next) && p.read_u8(len))) {
        return DecodeError::truncated_ipv6_extension;
      }
      const std::size_t size = is_ah ? (std::size_t{len} + 2U) * 4U : (std::size_t{len} + 1U) * 8U;
      if (!e.skip(size - 2)) {
        return DecodeError::truncated_ipv6_extension;
      }
      continue;
    }
    case kProtoFragment: {
      // 8 bytes: next header u8 | reserved u8 | offset(13) res(2) M(1) u16 |
      // identification u32. A non-first fragment carries no upper-layer
      // header, so the walk ends there; its protocol is still the one named.
      Bytes fh;
      if (!e.take(kIpv6FragmentHeader, fh)) {
        return DecodeError::truncated_ipv6_extension;
      }
      ByteCursor f(fh);
      std::uint16_t offset_flags = 0;
      if (!(f.read_u8(next) && f.skip(1) && f.read_u16(offset_flags))) {
        return DecodeError::truncated_ipv6_extension;
      }
      const std::uint16_t offset = offset_flags >> 3U;
      // An "atomic fragment" (offset 0, M clear, RFC 6946) is a whole packet.
      out.fragment = out.fragment || offset != 0 || (offset_flags & 1U) != 0;
      if (offset != 0) {
        out.first_fragment = false;
        out.protocol = next;
        l4 = {};
        return DecodeError::ok;
      }
      continue;
    }
    default:
      break;
    }
    break;
  }
  out.protocol = next;
  l4 = e.rest();
  return DecodeError::ok;
}

// The IP layer: the version nibble picks the parser. `want` is the version
// the link layer announced (ethertype / AF_ / link type), 0 when the link
// leaves it to the nibble (LINKTYPE_RAW); a disagreement is bad_ip_version.
inline DecodeError decode_ip(Bytes ip, std::uint8_t want, PacketView &out, Bytes &l4) noexcept {
  ByteCursor c(ip);
  std::uint8_t first = 0;
  if (!c.peek_u8(first)) {
    return DecodeError::truncated_ip_header;
  }
  const auto version = static_cast<std::uint8_t>(first >> 4U);
  if (want != 0 && version != want) {
    return DecodeError::bad_ip_version;
  }
  if (version == 4) {
    return decode_ipv4(ip, out, l4);
  }
  if (version == 6) {
    return decode_ipv6(ip, out, l4);
  }
  return DecodeError::bad_ip_version;
}

// TCP (RFC 9293): 0 src port | 2 dst port | 4 seq | 8 ack | 12 data offset
// (high nibble, 32-bit words) | 13 flags | 14 window | 16 checksum | 18 urg,
// then options up to data offset * 4.
inline DecodeError decode_tcp(Bytes l4, PacketView &out) noexcept {
  ByteCursor c(l4);
  Bytes fixed;
  if (!c.take(kTcpMinHeader, fixed)) {
    return DecodeError::truncated_l4_header;
  }
  ByteCursor h(fixed);
  std::uint8_t data_offset = 0;
  if (!(h.read_u16(out.src_port) && h.read_u16(out.dst_port) && h.read_u32(out.tcp_seq) &&
        h.skip(4) && h.read_u8(data_offset) && h.read_u8(out.tcp_flags))) {
    return DecodeError::truncated_l4_header;
  }
  const std::size_t header_len = static_cast<std::size_t>(data_offset >> 4U) * 4U;
  if (header_len < kTcpMinHeader) {
    return DecodeError::bad_tcp_header_length;
  }
  // Options cut short (by the snaplen or by an IP length too small for the
  // header it carries) count as a cut header, like the fixed part.
  if (!c.skip(header_len - kTcpMinHeader)) {
    return DecodeError::truncated_l4_header;
  }
  out.has_ports = true;
  out.payload = c.rest();
  return DecodeError::ok;
}

// UDP (RFC 768): 0 src port | 2 dst port | 4 length (header included) |
// 6 checksum. The payload is clipped to the UDP length as well; a UDP length
// below 8 (0 is legal for IPv6 jumbograms, and some GSO captures show it)
// says nothing usable, so only the IP length and the capture bound it then.
inline DecodeError decode_udp(Bytes l4, PacketView &out) noexcept {
  ByteCursor c(l4);
  Bytes fixed;
  if (!c.take(kUdpHeader, fixed)) {
    return DecodeError::truncated_l4_header;
  }
  ByteCursor h(fixed);
  std::uint16_t udp_len = 0;
  if (!(h.read_u16(out.src_port) && h.read_u16(out.dst_port) && h.read_u16(udp_len))) {
    return DecodeError::truncated_l4_header;
  }
  std::size_t size = c.remaining();
  if (udp_len >= kUdpHeader) {
    size = std::min(size, std::size_t{udp_len} - kUdpHeader);
  }
  out.has_ports = true;
  if (!c.take(size, out.payload)) {
    return DecodeError::truncated_l4_header; // unreachable: size <= remaining
  }
  return DecodeError::ok;
}

} // namespace

// A switch rather than a table so that -Wswitch (-Werror) refuses a new
// DecodeError value appended without a name.
std::string_view to_string(DecodeError e) noexcept {
  switch (e) {
  case DecodeError::ok:
    return "ok";
  case DecodeError::unsupported_link_type:
    return "unsupported_link_type";
  case DecodeError::truncated_link_header:
    return "truncated_link_header";
  case DecodeError::not_ip:
    return "not_ip";
  case DecodeError::truncated_ip_header:
    return "truncated_ip_header";
  case DecodeError::bad_ip_version:
    return "bad_ip_version";
  case DecodeError::bad_ip_header_length:
    return "bad_ip_header_length";
  case DecodeError::bad_ip_total_length:
    return "bad_ip_total_length";
  case DecodeError::truncated_ipv6_extension:
    return "truncated_ipv6_extension";
  case DecodeError::truncated_l4_header:
    return "truncated_l4_header";
  case DecodeError::bad_tcp_header_length:
    return "bad_tcp_header_length";
  case DecodeError::count_:
    break;
  }
  return "unknown";
}

bool is_supported(LinkType link) noexcept {
  switch (link) {
  case LinkType::null_loopback:
  case LinkType::ethernet:
  case LinkType::raw:
  case LinkType::loop:
  case LinkType::linux_sll:
  case LinkType::ipv4:
  case LinkType::ipv6:
  case LinkType::linux_sll2:
    return true;
  }
  return false;
}

DecodeError decode_packet(LinkType link, Bytes frame, PacketView &out) noexcept {
  // Reset field by field rather than `out = PacketView{}`: gcc builds the
  // aggregate on the stack with `rep stos` and copies it with wide loads that
  // stall on those stores (it was the top of the profile). Fields every
  // successful path assigns (ip_version, src, dst, protocol, ip_length,
  // fragment, first_fragment, payload_truncated) are left to the IP parsers;
  // on error `out` is documented as not to be used.
  out.direction = LinkDirection::unknown;
  out.has_ports = false;
  out.src_port = 0;
  out.dst_port = 0;
  out.tcp_seq = 0;
  out.tcp_flags = 0;
  out.payload = {};
  ByteCursor c(frame);
  std::uint8_t want = 0; // IP version the link announced; 0 = read the nibble
  DecodeError err = DecodeError::ok;
  // The link type values are sparse, so the switch compiles to a compare
  // chain; Ethernet, by far the most common, skips it.
  if (link == LinkType::ethernet) [[likely]] {
    err = link_ethernet(c, want);
  } else {
    switch (link) {
    case LinkType::linux_sll:
      err = link_sll(c, out, want);
      break;
    case LinkType::linux_sll2:
      err = link_sll2(c, out, want);
      break;
    case LinkType::raw:
      break;
    case LinkType::ipv4:
      want = 4;
      break;
    case LinkType::ipv6:
      want = 6;
      break;
    case LinkType::null_loopback:
      err = link_null(c, want);
      break;
    case LinkType::loop:
      err = link_loop(c, want);
      break;
    default:
      return DecodeError::unsupported_link_type;
    }
  }
  if (err != DecodeError::ok) {
    return err;
  }

  Bytes l4;
  err = decode_ip(c.rest(), want, out, l4);
  if (err != DecodeError::ok || !out.first_fragment) {
    // Non-first fragments: no L4 header here, has_ports stays false.
    return err;
  }
  switch (out.protocol) {
  case kProtoTcp:
    return decode_tcp(l4, out);
  case kProtoUdp:
    return decode_udp(l4, out);
  default:
    // ICMP, ICMPv6, GRE, ESP, ...: no ports, no payload.
    return DecodeError::ok;
  }
}

} // namespace ta::decode
