// Hand-built frames for the attribute tests: Ethernet + IPv4 + TCP/UDP
// around a payload, and DNS responses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ta/common/address.hpp"

namespace ta::attribute::test {

using Frame = std::vector<std::byte>;

inline void put16(Frame &f, unsigned v) {
  f.push_back(static_cast<std::byte>(v >> 8U));
  f.push_back(static_cast<std::byte>(v & 0xFFU));
}
inline void put32(Frame &f, std::uint32_t v) {
  put16(f, v >> 16U);
  put16(f, v & 0xFFFFU);
}
inline void put_ip(Frame &f, const char *text) {
  auto a = IpAddress::parse(text);
  for (std::size_t i = 0; i < a->length(); ++i) {
    f.push_back(static_cast<std::byte>(a->bytes[i]));
  }
}

// Ethernet + IPv4 + UDP/TCP around `payload`.
// TCP flags default to PSH|ACK with sequence number 1000.
inline Frame ipv4(const char *src, const char *dst, std::uint8_t proto, unsigned sport,
                  unsigned dport, const Frame &payload, unsigned tcp_flags = 0x18,
                  std::uint32_t seq = 1000) {
  Frame f(12, std::byte{0x02});
  put16(f, 0x0800);
  const std::size_t l4 = proto == 6 ? 20 : 8;
  put16(f, 0x4500);
  put16(f, static_cast<unsigned>(20 + l4 + payload.size()));
  put32(f, 0);
  f.push_back(std::byte{64});
  f.push_back(static_cast<std::byte>(proto));
  put16(f, 0);
  put_ip(f, src);
  put_ip(f, dst);
  put16(f, sport);
  put16(f, dport);
  if (proto == 6) {
    put32(f, seq);
    put32(f, 0);                   // ack
    put16(f, 0x5000U | tcp_flags); // data offset 5
    put16(f, 0xFFFF);
    put32(f, 0);
  } else {
    put16(f, static_cast<unsigned>(8 + payload.size()));
    put16(f, 0);
  }
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

inline void put_name(Frame &f, const std::string &name) {
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto dot = name.find('.', start);
    const auto end = dot == std::string::npos ? name.size() : dot;
    f.push_back(static_cast<std::byte>(end - start));
    for (std::size_t i = start; i < end; ++i) {
      f.push_back(static_cast<std::byte>(name[i]));
    }
    if (dot == std::string::npos) {
      break;
    }
    start = dot + 1;
  }
  f.push_back(std::byte{0});
}

// A DNS response for `qname` with A answers `addrs` (owner: pointer to qname).
inline Frame dns_response(const std::string &qname, const std::vector<const char *> &addrs,
                          unsigned rcode = 0) {
  Frame m;
  put16(m, 0x1234);
  put16(m, 0x8180U | rcode);
  put16(m, 1);
  put16(m, static_cast<unsigned>(addrs.size()));
  put16(m, 0);
  put16(m, 0);
  put_name(m, qname);
  put16(m, 1);
  put16(m, 1);
  for (const char *a : addrs) {
    put16(m, 0xC00C);
    put16(m, 1);
    put16(m, 1);
    put32(m, 300);
    put16(m, 4);
    put_ip(m, a);
  }
  return m;
}

inline const Frame kNoPayload;

} // namespace ta::attribute::test
