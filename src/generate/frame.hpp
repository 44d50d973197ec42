// Builds one Ethernet frame at a time in a reused buffer: Ethernet II
// [+ 802.1Q tag] + IPv4 (20 bytes, no options) or IPv6 (40 bytes, no
// extension headers) + UDP, TCP or ICMP/ICMPv6. Every checksum is filled in
// (IPv4 header, UDP, TCP, ICMP, ICMPv6 with its pseudo-header) so no
// dissector has a reason to flag a frame. Frames shorter than the Ethernet
// minimum (60 bytes without FCS) are zero-padded; the padding is not part of
// the IP length.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"

namespace ta::generate::detail {

using Mac = std::array<std::uint8_t, 6>;

inline void put16(std::uint8_t *p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8U);
  p[1] = static_cast<std::uint8_t>(v);
}

inline void put32(std::uint8_t *p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24U);
  p[1] = static_cast<std::uint8_t>(v >> 16U);
  p[2] = static_cast<std::uint8_t>(v >> 8U);
  p[3] = static_cast<std::uint8_t>(v);
}

// RFC 1071 one's-complement sum, accumulated 16 bits at a time (big-endian).
[[nodiscard]] std::uint32_t checksum_add(std::uint32_t acc, const std::uint8_t *p,
                                         std::size_t n) noexcept;
[[nodiscard]] std::uint16_t checksum_fold(std::uint32_t acc) noexcept;

// A 20-byte IPv4 header (DF set, no options) with its checksum at `p`.
void put_ipv4_header(std::uint8_t *p, const IpAddress &src, const IpAddress &dst,
                     std::uint8_t proto, std::uint8_t ttl, std::uint16_t id,
                     std::size_t l4_length) noexcept;

// UDP header + checksum at `udp` over `payload_length` bytes that follow it
// (IPv4 or IPv6 pseudo-header chosen by the address family).
void put_udp_header(std::uint8_t *udp, const IpAddress &src, const IpAddress &dst,
                    std::uint16_t sport, std::uint16_t dport, std::size_t payload_length) noexcept;

inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoIcmp6 = 58;

inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpPsh = 0x08;
inline constexpr std::uint8_t kTcpAck = 0x10;

struct TcpFields {
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::span<const std::uint8_t> options; // a multiple of 4 bytes
};

class FrameWriter {
public:
  static constexpr std::size_t kCapacity = 1536;
  static constexpr std::size_t kMinFrame = 60;

  // Lays out the headers and returns where the L4 payload goes (after an L4
  // header of `l4_header_length` bytes). Fill the payload, then call one
  // finish_*. IPv4 frames take the next IP ID.
  [[nodiscard]] std::uint8_t *start(const Mac &src_mac, const Mac &dst_mac, std::uint16_t vlan,
                                    const IpAddress &src, const IpAddress &dst, std::uint8_t ttl,
                                    std::uint8_t proto, std::size_t l4_header_length) noexcept;
  // Bytes available for the payload after start().
  [[nodiscard]] std::size_t payload_room() const noexcept { return kCapacity - payload_; }

  void finish_udp(std::uint16_t sport, std::uint16_t dport, std::size_t payload_length) noexcept;
  void finish_tcp(const TcpFields &fields, std::size_t payload_length) noexcept;
  // ICMP (IPv4) or ICMPv6 by the address family; `rest` is the second header
  // word (identifier/sequence for echo, unused for errors).
  void finish_icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest,
                   std::size_t payload_length) noexcept;

  [[nodiscard]] Bytes frame() const noexcept {
    return std::as_bytes(std::span<const std::uint8_t>(buf_.data(), size_));
  }
  // IPv4 total length, or 40 + IPv6 payload length (the contract's `bytes`).
  [[nodiscard]] std::uint16_t ip_length() const noexcept { return ip_length_; }

private:
  // Writes the IP header for an L4 segment of `l4_length` bytes, pads the
  // frame, and returns the L4 pseudo-header sum.
  std::uint32_t finish_ip(std::size_t l4_length) noexcept;

  std::array<std::uint8_t, kCapacity> buf_{};
  std::size_t l3_ = 0;
  std::size_t l4_ = 0;
  std::size_t payload_ = 0;
  std::size_t size_ = 0;
  IpAddress src_;
  IpAddress dst_;
  std::uint8_t ttl_ = 64;
  std::uint8_t proto_ = 0;
  std::uint16_t ip_id_ = 0x1000;
  std::uint16_t ip_length_ = 0;
};

} // namespace ta::generate::detail
