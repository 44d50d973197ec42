// http/http: the host an HTTP/1.x client names in the first request of a TCP
// flow (RFC 9112 §3 request line, RFC 9110 §7.2 Host). ta_http links only
// ta_common.
//
// Zero-copy and exception-free: the result is a view into the caller's bytes.
// HTTP/2 and HTTP/3 carry :authority inside binary frames and are not read
// here (an HTTP/2 prior-knowledge preface "PRI * HTTP/2.0" is not_http).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ta/common/byte_cursor.hpp"

namespace ta::http {

// Only the first kMaxRequestHead bytes of a flow are read.
inline constexpr std::size_t kMaxRequestHead = std::size_t{16} * 1024;

// Stable snake_case names (host_status_name) are counted by callers: append only.
enum class HostStatus : std::uint8_t {
  ok = 0,    // host holds the first Host header's host, port stripped
  need_more, // the request line or the header block is not complete yet
  not_http,  // the first line is not an HTTP/1.x request line
  no_host,   // the header block ended with no Host header, or an empty one
  too_large, // no decision within the first kMaxRequestHead bytes
  malformed, // a header line that is not `name: value`, or a Host value whose
             // port part is not digits, or whose IPv6 literal is unclosed
  count_
};

[[nodiscard]] std::string_view host_status_name(HostStatus s) noexcept;

struct HostResult {
  HostStatus status = HostStatus::need_more;
  // The raw host bytes (not normalised: see ta/common/hostname.hpp); an IPv6
  // literal keeps its brackets; a value with two or more colons and no
  // brackets (an IPv6 address sent unbracketed) is taken whole. Empty unless
  // status is ok.
  Bytes host{};
};

// Reads the client's first payload bytes of a TCP flow, joined in sequence
// order. Decides as early as the bytes allow: not_http at the first byte that
// cannot belong to a request line, ok as soon as the first Host line and the
// byte after it (which tells whether the line continues, RFC 9112 §5.2) are
// there. Feeding a longer prefix of the same stream never changes a decision
// other than need_more.
//
// Tolerances, as deployed servers have them: a bare LF ends a line like CRLF
// (RFC 9112 §2.2 allows it); empty lines before the request line are skipped
// (RFC 9112 §2.2); any method token is accepted (CONNECT included). The
// request-target is not interpreted: an absolute-form target's authority does
// not replace the Host header.
[[nodiscard]] HostResult parse_request_host(Bytes first_bytes) noexcept;

} // namespace ta::http
