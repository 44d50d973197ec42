// The paths a plain Ethernet/UDP capture never takes: DNS over TCP with the
// response split across segments, an IPv4 DNS response in two fragments, and
// link layers other than Ethernet. Every frame is first written as Ethernet
// (frame.hpp) and then converted by to_link(), so the IP packets are the
// same bytes in every link type.
#include <algorithm>
#include <cstring>

#include "dns_writer.hpp"
#include "impl.hpp"

namespace ta::generate {
namespace {

constexpr detail::Mac kGatewayMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::size_t kEthernetHeader = 14;
constexpr std::size_t kVlanTag = 4;
constexpr std::size_t kFragmentCut = 48;    // UDP bytes in the first fragment (a multiple of 8)
constexpr std::uint32_t kDnsInterval = 500; // generate.cpp's mean frames between re-resolutions

std::uint16_t get16(const std::uint8_t *p) {
  return static_cast<std::uint16_t>((p[0] << 8U) | p[1]);
}

// Where the IP header starts in one of our Ethernet frames: after the MACs,
// the EtherType, and at most one 802.1Q tag.
std::size_t l3_offset(const std::uint8_t *eth) {
  return get16(eth + 12) == kEtherVlan ? kEthernetHeader + kVlanTag : kEthernetHeader;
}

// IPv4 total length, or 40 + IPv6 payload length.
std::size_t ip_length(const std::uint8_t *ip) {
  return (ip[0] >> 4U) == 6 ? 40U + get16(ip + 4) : get16(ip + 2);
}

} // namespace

bool is_generated_link(std::uint32_t link) noexcept {
  return link == detail::kLinkEthernet || link == detail::kLinkSll || link == detail::kLinkSll2 ||
         link == detail::kLinkRaw || link == detail::kLinkNull;
}

void Generator::Impl::to_link(Bytes ethernet) {
  const auto *eth = reinterpret_cast<const std::uint8_t *>(ethernet.data());
  std::uint8_t *o = linked.bytes.data();
  if (opt.link == detail::kLinkEthernet) {
    std::memcpy(o, eth, ethernet.size());
    linked.size = ethernet.size();
    return;
  }
  // From here on the Ethernet padding is gone: the frame ends with the IP
  // packet, as a cooked or raw capture delivers it.
  const std::size_t l3 = l3_offset(eth);
  const std::size_t n = ip_length(eth + l3);
  const bool six = (eth[l3] >> 4U) == 6;
  const bool outgoing = std::any_of(clients.begin(), clients.end(), [&](const detail::Client &c) {
    return std::equal(c.mac.begin(), c.mac.end(), eth + 6);
  });
  std::size_t head = 0;
  if (opt.link == detail::kLinkSll) {
    // Linux cooked v1, big-endian: packet type (4 outgoing, 0 to us), ARPHRD
    // (1 Ethernet), link address length, link address (8, zero-padded), then
    // the EtherType; an 802.1Q tag stays in front of the IP header.
    std::memset(o, 0, 16);
    detail::put16(o, outgoing ? 4 : 0);
    detail::put16(o + 2, 1);
    detail::put16(o + 4, 6);
    std::memcpy(o + 6, eth + 6, 6);
    std::memcpy(o + 14, eth + 12, l3 - 12);
    head = 16 + (l3 - 14);
  } else if (opt.link == detail::kLinkSll2) {
    // Linux cooked v2, big-endian: EtherType, reserved, interface index,
    // ARPHRD, packet type (u8), link address length (u8), link address (8).
    std::memset(o, 0, 20);
    std::memcpy(o, eth + 12, 2);
    detail::put32(o + 4, 2);
    detail::put16(o + 8, 1);
    o[10] = outgoing ? 4 : 0;
    o[11] = 6;
    std::memcpy(o + 12, eth + 6, 6);
    std::memcpy(o + 20, eth + 14, l3 - 14);
    head = 20 + (l3 - 14);
  } else if (opt.link == detail::kLinkNull) {
    // BSD loopback: the address family in the writer's byte order (little-
    // endian here): AF_INET 2, AF_INET6 24 (NetBSD/OpenBSD).
    o[0] = six ? 24 : 2;
    o[1] = o[2] = o[3] = 0;
    head = 4;
  }
  // LINKTYPE_RAW: the IP packet alone.
  std::memcpy(o + head, eth + l3, n);
  linked.size = head + n;
}

void Generator::Impl::split_fragments() {
  // The IPv4/UDP frame just written, as two fragments of one datagram (same
  // IP ID): the first with MF set and the UDP header plus kFragmentCut - 8
  // bytes of the message, the second at offset kFragmentCut / 8 with the rest.
  const Bytes whole = w.frame();
  const auto *eth = reinterpret_cast<const std::uint8_t *>(whole.data());
  const std::size_t l3 = l3_offset(eth);
  const std::size_t l4 = ip_length(eth + l3) - 20;
  std::array<std::uint8_t, detail::FrameWriter::kCapacity> buf{};
  const auto write = [&](std::size_t from, std::size_t count, std::uint16_t flags_offset) {
    std::memcpy(buf.data(), eth, l3 + 20);
    std::uint8_t *ip = buf.data() + l3;
    detail::put16(ip + 2, static_cast<std::uint16_t>(20 + count));
    detail::put16(ip + 6, flags_offset);
    detail::put16(ip + 10, 0);
    detail::put16(ip + 10, detail::checksum_fold(detail::checksum_add(0, ip, 20)));
    std::memcpy(ip + 20, eth + l3 + 20 + from, count);
    const std::size_t size = std::max(l3 + 20 + count, detail::FrameWriter::kMinFrame);
    std::fill(buf.begin() + static_cast<std::ptrdiff_t>(l3 + 20 + count),
              buf.begin() + static_cast<std::ptrdiff_t>(size), std::uint8_t{0});
    return Bytes(reinterpret_cast<const std::byte *>(buf.data()), size);
  };
  to_link(write(kFragmentCut, l4 - kFragmentCut, kFragmentCut / 8));
  fragment2 = linked;
  fragment_due = true;
  to_link(write(0, kFragmentCut, 0x2000)); // MF
}

void Generator::Impl::emit_fragment() {
  // The second fragment: from the resolver, no ports; inbound, so it counts
  // under neither naming (a frame of no flow, and not outbound).
  fragment_due = false;
  linked = fragment2;
}

void Generator::Impl::start_tcp_dns() {
  // One query over a fresh TCP connection (RFC 7766), client 0, no VLAN:
  // SYN, SYN-ACK, ACK, the query, the response in two segments (the first
  // cuts the message in the middle), the client's ACK, then FIN, FIN-ACK,
  // ACK. Every frame is DNS (port 53): none counts. The answer teaches when
  // the second segment completes the message.
  ++exchanges;
  dns_vlan = 0;
  dns_id = static_cast<std::uint16_t>(rng.next());
  dns_sport = detail::ephemeral_port(rng);
  tcp_dns_cseq = static_cast<std::uint32_t>(rng.next());
  tcp_dns_sseq = static_cast<std::uint32_t>(rng.next());
  next_periodic = produced + 8 + kDnsInterval / 2 + rng.below(kDnsInterval);
  tcp_dns_step = 1;
  emit_tcp_dns();
}

void Generator::Impl::emit_tcp_dns() {
  const bool six = current.qtype == detail::kDnsAaaa;
  const detail::Client &client = clients[current.client];
  const IpAddress &me = six ? client.v6 : client.v4;
  const IpAddress &resolver = addr[six ? resolver6 : resolver4].ip;
  const std::uint8_t step = tcp_dns_step;
  const bool from_client =
      step == 1 || step == 3 || step == 4 || step == 7 || step == 8 || step == 10;
  std::uint8_t *p =
      from_client ? w.start(client.mac, kGatewayMac, 0, me, resolver, 64, detail::kProtoTcp, 20)
                  : w.start(kGatewayMac, client.mac, 0, resolver, me, 64, detail::kProtoTcp, 20);
  detail::TcpFields out_fields{dns_sport, 53, tcp_dns_cseq, tcp_dns_sseq, detail::kTcpAck, 502, {}};
  detail::TcpFields in_fields{53, dns_sport, tcp_dns_sseq, tcp_dns_cseq, detail::kTcpAck, 501, {}};
  std::size_t n = 0;
  switch (step) {
  case 1: // SYN
    out_fields.ack = 0;
    out_fields.flags = detail::kTcpSyn;
    w.finish_tcp(out_fields, 0);
    ++tcp_dns_cseq;
    break;
  case 2: // SYN-ACK
    in_fields.flags = detail::kTcpSyn | detail::kTcpAck;
    w.finish_tcp(in_fields, 0);
    ++tcp_dns_sseq;
    break;
  case 4: { // the query: a 2-byte length, then the message
    detail::DnsWriter d(p + 2, w.payload_room() - 2);
    d.header(dns_id, 0x0100);
    d.question(eps[current.endpoint].name, current.qtype);
    const std::size_t len = d.finish();
    detail::put16(p, static_cast<std::uint16_t>(len));
    n = 2 + len;
    out_fields.flags = detail::kTcpPsh | detail::kTcpAck;
    w.finish_tcp(out_fields, n);
    tcp_dns_cseq += static_cast<std::uint32_t>(n);
    break;
  }
  case 5: { // the length and the first half of the response
    const std::vector<std::uint32_t> *answers = nullptr;
    tcp_dns_len = write_response(tcp_dns_msg.data() + 2, tcp_dns_msg.size() - 2, answers);
    detail::put16(tcp_dns_msg.data(), static_cast<std::uint16_t>(tcp_dns_len));
    tcp_dns_answers = answers != nullptr ? *answers : std::vector<std::uint32_t>{};
    n = 2 + tcp_dns_len / 2;
    std::memcpy(p, tcp_dns_msg.data(), n);
    w.finish_tcp(in_fields, n);
    tcp_dns_sseq += static_cast<std::uint32_t>(n);
    break;
  }
  case 6: { // the rest: the message is whole now
    const std::size_t from = 2 + tcp_dns_len / 2;
    n = 2 + tcp_dns_len - from;
    std::memcpy(p, tcp_dns_msg.data() + from, n);
    in_fields.flags = detail::kTcpPsh | detail::kTcpAck;
    w.finish_tcp(in_fields, n);
    tcp_dns_sseq += static_cast<std::uint32_t>(n);
    learn_response(&tcp_dns_answers, true);
    break;
  }
  case 8: // FIN
    out_fields.flags = detail::kTcpFin | detail::kTcpAck;
    w.finish_tcp(out_fields, 0);
    ++tcp_dns_cseq;
    break;
  case 9: // FIN-ACK
    in_fields.flags = detail::kTcpFin | detail::kTcpAck;
    w.finish_tcp(in_fields, 0);
    ++tcp_dns_sseq;
    break;
  default: // 3, 7, 10: ACK
    w.finish_tcp(out_fields, 0);
    break;
  }
  tcp_dns_step = step == 10 ? 0 : static_cast<std::uint8_t>(step + 1);
}

} // namespace ta::generate
