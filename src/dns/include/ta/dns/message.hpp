// dns/message: parse one DNS message (RFC 1035 §4) into what attribution needs.
// ta_dns (this parser, tcp_reassembler.hpp and address_table.hpp) links only
// ta_common.
//
// Allocation-free: names are copied into fixed buffers inside DnsResponse.
// A message that fails anywhere (header, any question, any RR of any section,
// a compression pointer loop, a name over 255 octets) is rejected whole, so a
// damaged message never teaches anything (README "What is counted").
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"

namespace ta::dns {

// Stable snake_case names (to_string) become metric labels: only append.
enum class DnsError : std::uint8_t {
  ok = 0,
  truncated_header, // fewer than 12 bytes
  not_a_response,   // QR bit clear
  truncated_question,
  truncated_record, // an RR's fixed fields or RDATA run past the message
  bad_name,         // label type 0x40/0x80, or an empty/oversized name
  name_too_long,    // > 255 octets in wire form
  pointer_loop,     // compression pointer not strictly backwards / too many hops
  bad_rdata_length, // A with rdlength != 4, AAAA != 16, CNAME name not filling RDATA
  no_question,      // QDCOUNT 0: nothing to attribute answers to
  too_many_answers, // more A/AAAA answers than DnsResponse can hold
  count_
};

[[nodiscard]] std::string_view to_string(DnsError e) noexcept;

struct DnsResponse {
  static constexpr std::size_t kMaxName = 255; // presentation form, no trailing dot
  static constexpr std::size_t kMaxAddresses = 128;

  std::uint16_t id = 0;
  std::uint8_t rcode = 0;      // header RCODE (4 bits)
  bool truncated_flag = false; // TC bit
  // QNAME of the first question: lower-cased ASCII, labels joined with '.',
  // no trailing dot ("" for the root). Bytes outside printable ASCII are kept
  // as-is (lower-casing only touches A-Z).
  std::array<char, kMaxName + 1> qname_buf{};
  std::uint16_t qname_len = 0;
  // Every A (4 bytes) and AAAA (16 bytes) RR of the ANSWER section, in order,
  // class IN only. CNAMEs are validated but need no storing: attribution
  // maps every answer address to the QNAME the client asked for.
  std::array<IpAddress, kMaxAddresses> addresses{};
  std::uint16_t address_count = 0;
  std::uint16_t answer_count = 0; // ANCOUNT as parsed
  std::uint16_t cname_count = 0;

  [[nodiscard]] std::string_view qname() const noexcept { return {qname_buf.data(), qname_len}; }
};

// Parses a whole DNS message. Returns ok only if every section parsed.
// `out` is reset first.
[[nodiscard]] DnsError parse_response(Bytes message, DnsResponse &out) noexcept;

} // namespace ta::dns
