// Writes one DNS message (RFC 1035 §4.1) into a caller's buffer:
//   header: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT (6 x u16)
//   question: QNAME, QTYPE, QCLASS
//   resource records: NAME, TYPE, CLASS, TTL (u32), RDLENGTH, RDATA
// Names are compressed (§4.1.4): any suffix already written is replaced by a
// pointer 0xC000 | offset, so an answer owned by the question name is the two
// bytes C0 0C. Suffixes match case-sensitively (a mixed-case QNAME is not
// folded into later lower-case names; both are legal). Sections must be
// written in order; the counts are patched by finish().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ta/common/address.hpp"

namespace ta::generate::detail {

inline constexpr std::uint16_t kDnsA = 1;
inline constexpr std::uint16_t kDnsNs = 2;
inline constexpr std::uint16_t kDnsCname = 5;
inline constexpr std::uint16_t kDnsSoa = 6;
inline constexpr std::uint16_t kDnsAaaa = 28;
inline constexpr std::uint16_t kDnsOpt = 41;

enum class DnsSection : std::uint8_t { answer = 1, authority = 2, additional = 3 };

class DnsWriter {
public:
  // The string_views handed to the writer must outlive it (the compression
  // table keeps views of them).
  DnsWriter(std::uint8_t *out, std::size_t capacity) noexcept;

  void header(std::uint16_t id, std::uint16_t flags) noexcept;
  void question(std::string_view name, std::uint16_t type) noexcept;
  void address_record(DnsSection section, std::string_view owner, const IpAddress &address,
                      std::uint32_t ttl) noexcept;
  // CNAME or NS: RDATA is a (compressible) name.
  void name_record(DnsSection section, std::string_view owner, std::uint16_t type,
                   std::uint32_t ttl, std::string_view target) noexcept;
  void soa_record(DnsSection section, std::string_view owner, std::string_view mname,
                  std::string_view rname, std::uint32_t serial, std::uint32_t ttl) noexcept;
  // EDNS(0) OPT pseudo-record (RFC 6891): root owner, CLASS = UDP payload size.
  void opt_record(std::uint16_t udp_size) noexcept;

  // Patches the section counts; the message length, or 0 if it did not fit.
  [[nodiscard]] std::size_t finish() noexcept;

private:
  void name(std::string_view n) noexcept;
  void record_head(DnsSection section, std::string_view owner, std::uint16_t type,
                   std::uint16_t klass, std::uint32_t ttl) noexcept;
  void u8(std::uint8_t v) noexcept;
  void u16(std::uint16_t v) noexcept;
  void u32(std::uint32_t v) noexcept;
  void raw(const std::uint8_t *p, std::size_t n) noexcept;

  struct Suffix {
    std::uint16_t offset = 0;
    std::string_view text;
  };

  std::uint8_t *out_;
  std::size_t capacity_;
  std::size_t length_ = 0;
  bool ok_ = true;
  std::array<std::uint16_t, 4> counts_{}; // question, answer, authority, additional
  std::array<Suffix, 64> suffixes_{};
  std::size_t suffix_count_ = 0;
};

} // namespace ta::generate::detail
