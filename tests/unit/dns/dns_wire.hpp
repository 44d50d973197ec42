// Test helpers of the dns unit tests: DNS wire bytes from hex text or from a
// tiny builder, and addresses from text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"
#include "ta/testing/bytes.hpp"

namespace ta::dns::test {

// "10.0.0.1" or "2001:db8::1"; the text must parse.
inline IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

// "12 34 ab" or "1234ab" -> bytes; whitespace ignored.
using ta::testing::hex;

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeNs = 2;
constexpr std::uint16_t kTypeCname = 5;
constexpr std::uint16_t kTypeSoa = 6;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kTypeOpt = 41;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint16_t kResponse = 0x8180; // QR, RD, RA, RCODE 0

// Appends wire fields; offsets are those of the message being built.
class Wire {
public:
  Wire &u8(unsigned v) {
    b_.push_back(static_cast<std::byte>(v & 0xFFU));
    return *this;
  }
  Wire &u16(unsigned v) { return u8(v >> 8U).u8(v); }
  Wire &u32(std::uint32_t v) { return u16(v >> 16U).u16(v & 0xFFFFU); }
  Wire &raw(std::string_view hex_text) {
    for (const std::byte x : hex(hex_text)) {
      b_.push_back(x);
    }
    return *this;
  }
  Wire &bytes(const std::vector<std::byte> &v) {
    b_.insert(b_.end(), v.begin(), v.end());
    return *this;
  }
  // Uncompressed labels of a dotted name, then the root octet ("" = root).
  Wire &name(std::string_view dotted) { return labels(dotted).u8(0); }
  // Labels only (to be followed by a pointer or the root octet).
  Wire &labels(std::string_view dotted) {
    while (!dotted.empty()) {
      const auto dot = dotted.find('.');
      const auto label = dotted.substr(0, dot);
      u8(static_cast<unsigned>(label.size()));
      for (const char ch : label) {
        u8(static_cast<unsigned char>(ch));
      }
      dotted = dot == std::string_view::npos ? std::string_view{} : dotted.substr(dot + 1);
    }
    return *this;
  }
  Wire &ptr(std::size_t offset) { return u16(0xC000U | static_cast<unsigned>(offset)); }

  Wire &header(unsigned qd, unsigned an, unsigned ns, unsigned ar, unsigned flags = kResponse,
               unsigned id = 0x1234) {
    return u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }
  Wire &question(std::string_view qname, unsigned type = kTypeA, unsigned klass = kClassIn) {
    return name(qname).u16(type).u16(klass);
  }
  // RR fixed fields after the owner name; rdata appended by the caller.
  Wire &rr(unsigned type, unsigned klass, unsigned rdlength, std::uint32_t ttl = 300) {
    return u16(type).u16(klass).u32(ttl).u16(rdlength);
  }
  Wire &a(std::string_view v4_hex) { return rr(kTypeA, kClassIn, 4).raw(v4_hex); }
  Wire &aaaa(std::string_view v6_hex) { return rr(kTypeAaaa, kClassIn, 16).raw(v6_hex); }

  [[nodiscard]] std::size_t offset() const { return b_.size(); }
  [[nodiscard]] const std::vector<std::byte> &vec() const { return b_; }
  [[nodiscard]] Bytes span() const { return b_; }
  // Overwrites a 16-bit field (e.g. an RDLENGTH known only later).
  void patch16(std::size_t at, unsigned v) {
    b_.at(at) = static_cast<std::byte>((v >> 8U) & 0xFFU);
    b_.at(at + 1) = static_cast<std::byte>(v & 0xFFU);
  }

private:
  std::vector<std::byte> b_;
};

} // namespace ta::dns::test
