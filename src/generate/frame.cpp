#include "frame.hpp"

#include <cstring>

namespace ta::generate::detail {
namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86DD;
constexpr std::uint16_t kEtherVlan = 0x8100;

// Sum of the pseudo-header (RFC 768 / RFC 8200 §8.1): both addresses, the
// protocol and the L4 length; the layout differs but the sum does not.
std::uint32_t pseudo_sum(const IpAddress &src, const IpAddress &dst, std::uint8_t proto,
                         std::size_t l4_length) noexcept {
  std::uint32_t acc = checksum_add(0, src.bytes.data(), src.length());
  acc = checksum_add(acc, dst.bytes.data(), dst.length());
  return acc + proto + static_cast<std::uint32_t>(l4_length);
}

} // namespace

std::uint32_t checksum_add(std::uint32_t acc, const std::uint8_t *p, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 1 < n; i += 2) {
    acc += static_cast<std::uint32_t>((p[i] << 8U) | p[i + 1]);
  }
  if (i < n) {
    acc += static_cast<std::uint32_t>(p[i] << 8U);
  }
  return acc;
}

std::uint16_t checksum_fold(std::uint32_t acc) noexcept {
  while ((acc >> 16U) != 0) {
    acc = (acc & 0xFFFFU) + (acc >> 16U);
  }
  return static_cast<std::uint16_t>(~acc);
}

void put_ipv4_header(std::uint8_t *p, const IpAddress &src, const IpAddress &dst,
                     std::uint8_t proto, std::uint8_t ttl, std::uint16_t id,
                     std::size_t l4_length) noexcept {
  p[0] = 0x45; // version 4, IHL 5
  p[1] = 0;
  put16(p + 2, static_cast<std::uint16_t>(20 + l4_length));
  put16(p + 4, id);
  put16(p + 6, 0x4000); // DF, offset 0
  p[8] = ttl;
  p[9] = proto;
  put16(p + 10, 0);
  std::memcpy(p + 12, src.bytes.data(), 4);
  std::memcpy(p + 16, dst.bytes.data(), 4);
  put16(p + 10, checksum_fold(checksum_add(0, p, 20)));
}

void put_udp_header(std::uint8_t *udp, const IpAddress &src, const IpAddress &dst,
                    std::uint16_t sport, std::uint16_t dport, std::size_t payload_length) noexcept {
  const std::size_t l4 = 8 + payload_length;
  put16(udp, sport);
  put16(udp + 2, dport);
  put16(udp + 4, static_cast<std::uint16_t>(l4));
  put16(udp + 6, 0);
  std::uint16_t sum = checksum_fold(checksum_add(pseudo_sum(src, dst, kProtoUdp, l4), udp, l4));
  put16(udp + 6, sum == 0 ? std::uint16_t{0xFFFF} : sum); // 0 means "none" on the wire
}

std::uint8_t *FrameWriter::start(const Mac &src_mac, const Mac &dst_mac, std::uint16_t vlan,
                                 const IpAddress &src, const IpAddress &dst, std::uint8_t ttl,
                                 std::uint8_t proto, std::size_t l4_header_length) noexcept {
  // Ethernet II: dst MAC, src MAC, [0x8100, PCP/DEI/VID], EtherType.
  std::memcpy(buf_.data(), dst_mac.data(), 6);
  std::memcpy(buf_.data() + 6, src_mac.data(), 6);
  std::size_t pos = 12;
  if (vlan != 0) {
    put16(buf_.data() + pos, kEtherVlan);
    put16(buf_.data() + pos + 2, static_cast<std::uint16_t>(vlan & 0x0FFFU));
    pos += 4;
  }
  put16(buf_.data() + pos, src.family == 6 ? kEtherIpv6 : kEtherIpv4);
  l3_ = pos + 2;
  l4_ = l3_ + (src.family == 6 ? 40 : 20);
  payload_ = l4_ + l4_header_length;
  src_ = src;
  dst_ = dst;
  ttl_ = ttl;
  proto_ = proto;
  return buf_.data() + payload_;
}

std::uint32_t FrameWriter::finish_ip(std::size_t l4_length) noexcept {
  std::uint8_t *ip = buf_.data() + l3_;
  if (src_.family == 6) {
    // version 6, traffic class 0, flow label 0; payload length; next header; hop limit
    put32(ip, 0x60000000U);
    put16(ip + 4, static_cast<std::uint16_t>(l4_length));
    ip[6] = proto_;
    ip[7] = ttl_;
    std::memcpy(ip + 8, src_.bytes.data(), 16);
    std::memcpy(ip + 24, dst_.bytes.data(), 16);
    ip_length_ = static_cast<std::uint16_t>(40 + l4_length);
  } else {
    put_ipv4_header(ip, src_, dst_, proto_, ttl_, ip_id_++, l4_length);
    ip_length_ = static_cast<std::uint16_t>(20 + l4_length);
  }
  size_ = l4_ + l4_length;
  if (size_ < kMinFrame) {
    std::memset(buf_.data() + size_, 0, kMinFrame - size_);
    size_ = kMinFrame;
  }
  return pseudo_sum(src_, dst_, proto_, l4_length);
}

void FrameWriter::finish_udp(std::uint16_t sport, std::uint16_t dport,
                             std::size_t payload_length) noexcept {
  finish_ip(8 + payload_length);
  put_udp_header(buf_.data() + l4_, src_, dst_, sport, dport, payload_length);
}

void FrameWriter::finish_tcp(const TcpFields &f, std::size_t payload_length) noexcept {
  const std::size_t header = 20 + f.options.size();
  const std::size_t l4 = header + payload_length;
  const std::uint32_t pseudo = finish_ip(l4);
  std::uint8_t *t = buf_.data() + l4_;
  put16(t, f.sport);
  put16(t + 2, f.dport);
  put32(t + 4, f.seq);
  put32(t + 8, f.ack);
  t[12] = static_cast<std::uint8_t>((header / 4) << 4U); // data offset
  t[13] = f.flags;
  put16(t + 14, f.window);
  put16(t + 16, 0);
  put16(t + 18, 0); // urgent pointer
  if (!f.options.empty()) {
    std::memcpy(t + 20, f.options.data(), f.options.size());
  }
  put16(t + 16, checksum_fold(checksum_add(pseudo, t, l4)));
}

void FrameWriter::finish_icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest,
                              std::size_t payload_length) noexcept {
  const std::size_t l4 = 8 + payload_length;
  const std::uint32_t pseudo = finish_ip(l4);
  std::uint8_t *c = buf_.data() + l4_;
  c[0] = type;
  c[1] = code;
  put16(c + 2, 0);
  put32(c + 4, rest);
  // ICMPv4 sums the message alone; ICMPv6 includes the pseudo-header.
  const std::uint32_t start = src_.family == 6 ? pseudo : 0;
  put16(c + 2, checksum_fold(checksum_add(start, c, l4)));
}

} // namespace ta::generate::detail
