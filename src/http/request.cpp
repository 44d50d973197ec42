// The Host of the first HTTP/1.x request; see http.hpp.
//
// RFC 9112 §2.1 message head, as read here:
//   HTTP-message  = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]
//   request-line  = method SP request-target SP HTTP-version     (§3)
//   method        = token                                        (RFC 9110 §9.1)
//   HTTP-version  = "HTTP/" DIGIT "." DIGIT, case-sensitive      (§2.3); 1.x only
//   field-line    = field-name ":" OWS field-value OWS           (§5)
//   Host          = uri-host [ ":" port ]                        (RFC 9110 §7.2)
//   port          = *DIGIT                                       (RFC 3986 §3.2.3)
// tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA.
//
// Strictness follows what a server must reject, since a peer that accepts a
// message a server rejects is how request smuggling starts:
// - whitespace between a field name and its colon is malformed (RFC 9112 §5.1);
// - a line starting with whitespace right after the request line is
//   malformed (§2.2); elsewhere it continues the previous field (obs-fold,
//   §5.2), which is skipped, except that a folded Host is malformed;
// - a bare CR inside the Host value is malformed (§2.2).
#include <algorithm>
#include <array>
#include <cstdint>

#include "ta/http/http.hpp"

namespace ta::http {
namespace {

using S = HostStatus;

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) {
    t[static_cast<std::size_t>(c)] = true;
  }
  for (std::size_t c = 'a'; c <= 'z'; ++c) {
    t[c] = true;
    t[c - 'a' + 'A'] = true;
  }
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) {
    t[static_cast<unsigned char>(c)] = true;
  }
  return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

constexpr std::uint8_t u8(std::byte b) {
  return std::to_integer<std::uint8_t>(b);
}
constexpr bool is_tchar(std::byte b) {
  return kTchar[u8(b)];
}
constexpr bool is_ws(std::byte b) {
  return b == std::byte{' '} || b == std::byte{'\t'};
}
constexpr bool is_digit(std::byte b) {
  return u8(b) >= '0' && u8(b) <= '9';
}

bool all_digits(Bytes s) {
  return std::all_of(s.begin(), s.end(), is_digit);
}

bool is_host_name(Bytes name) {
  static constexpr std::string_view kHost = "host";
  if (name.size() != kHost.size()) {
    return false;
  }
  for (std::size_t i = 0; i < kHost.size(); ++i) {
    if ((u8(name[i]) | 0x20U) != static_cast<std::uint8_t>(kHost[i])) {
      return false;
    }
  }
  return true;
}

// uri-host [ ":" port ] -> uri-host; IP-literal keeps its brackets.
HostResult strip_port(Bytes value) {
  if (value.empty()) {
    return {S::no_host, {}};
  }
  std::size_t host_end = 0;
  if (value[0] == std::byte{'['}) {
    const auto rb = std::find(value.begin(), value.end(), std::byte{']'});
    if (rb == value.end()) {
      return {S::malformed, {}};
    }
    host_end = static_cast<std::size_t>(rb - value.begin()) + 1;
  } else if (std::count(value.begin(), value.end(), std::byte{':'}) > 1) {
    // An IPv6 address without its brackets (RFC 3986 §3.2.2 requires them;
    // some clients omit them): no port can be told apart, the whole value is
    // the host.
    return {S::ok, value};
  } else {
    const auto colon = std::find(value.begin(), value.end(), std::byte{':'});
    host_end = static_cast<std::size_t>(colon - value.begin());
    if (host_end == 0) {
      return {S::malformed, {}};
    }
  }
  const Bytes rest = value.subspan(host_end);
  if (!rest.empty() && (rest[0] != std::byte{':'} || !all_digits(rest.subspan(1)))) {
    return {S::malformed, {}};
  }
  return {S::ok, value.first(host_end)};
}

// Reads the request line from `p`; on success `p` is at the first header line.
// Returns ok to go on, or the decision.
S read_request_line(Bytes in, std::size_t &p, S incomplete) {
  const std::size_t n = in.size();
  // Empty lines before the request line (RFC 9112 §2.2).
  while (p < n && (in[p] == std::byte{'\r'} || in[p] == std::byte{'\n'})) {
    if (in[p] == std::byte{'\r'}) {
      if (p + 1 == n) {
        return incomplete;
      }
      if (in[p + 1] != std::byte{'\n'}) {
        return S::not_http;
      }
      ++p;
    }
    ++p;
  }
  // method SP
  const std::size_t method_start = p;
  while (p < n && is_tchar(in[p])) {
    ++p;
  }
  if (p == n) {
    return incomplete;
  }
  if (p == method_start || in[p] != std::byte{' '}) {
    return S::not_http;
  }
  ++p;
  // request-target SP: visible bytes; bytes >= 0x80 tolerated.
  const std::size_t target_start = p;
  while (p < n && u8(in[p]) > 0x20 && u8(in[p]) != 0x7f) {
    ++p;
  }
  if (p == n) {
    return incomplete;
  }
  if (p == target_start || in[p] != std::byte{' '}) {
    return S::not_http;
  }
  ++p;
  // "HTTP/1." DIGIT, then CRLF or LF.
  static constexpr std::string_view kVersion = "HTTP/1.";
  for (const char ch : kVersion) {
    if (p == n) {
      return incomplete;
    }
    if (in[p] != static_cast<std::byte>(ch)) {
      return S::not_http;
    }
    ++p;
  }
  if (p == n) {
    return incomplete;
  }
  if (!is_digit(in[p])) {
    return S::not_http;
  }
  ++p;
  if (p < n && in[p] == std::byte{'\r'}) {
    ++p;
  }
  if (p == n) {
    return incomplete;
  }
  if (in[p] != std::byte{'\n'}) {
    return S::not_http;
  }
  ++p;
  return S::ok;
}

} // namespace

std::string_view host_status_name(HostStatus s) noexcept {
  switch (s) {
  case S::ok:
    return "ok";
  case S::need_more:
    return "need_more";
  case S::not_http:
    return "not_http";
  case S::no_host:
    return "no_host";
  case S::too_large:
    return "too_large";
  case S::malformed:
    return "malformed";
  case S::count_:
    break;
  }
  return "unknown";
}

HostResult parse_request_host(Bytes first_bytes) noexcept {
  const Bytes in = first_bytes.first(std::min(first_bytes.size(), kMaxRequestHead));
  // Running out of bytes is need_more, unless the bound is what ran out.
  const S incomplete = first_bytes.size() >= kMaxRequestHead ? S::too_large : S::need_more;
  const std::size_t n = in.size();
  std::size_t p = 0;
  if (const S s = read_request_line(in, p, incomplete); s != S::ok) {
    return {s, {}};
  }
  bool first_field = true;
  while (true) {
    if (p == n) {
      return {incomplete, {}};
    }
    // The empty line ends the header block.
    if (in[p] == std::byte{'\n'}) {
      return {S::no_host, {}};
    }
    if (in[p] == std::byte{'\r'}) {
      if (p + 1 == n) {
        return {incomplete, {}};
      }
      if (in[p + 1] == std::byte{'\n'}) {
        return {S::no_host, {}};
      }
      return {S::malformed, {}};
    }
    const auto lf =
        std::find(in.begin() + static_cast<std::ptrdiff_t>(p), in.end(), std::byte{'\n'});
    if (lf == in.end()) {
      return {incomplete, {}};
    }
    const auto line_end = static_cast<std::size_t>(lf - in.begin());
    Bytes line = in.subspan(p, line_end - p);
    if (!line.empty() && line.back() == std::byte{'\r'}) {
      line = line.first(line.size() - 1);
    }
    p = line_end + 1;
    if (is_ws(line[0])) {
      if (first_field) {
        return {S::malformed, {}};
      }
      continue; // obs-fold: the previous (non-Host) field goes on
    }
    first_field = false;
    std::size_t colon = 0;
    while (colon < line.size() && is_tchar(line[colon])) {
      ++colon;
    }
    if (colon == 0 || colon == line.size() || line[colon] != std::byte{':'}) {
      return {S::malformed, {}};
    }
    if (!is_host_name(line.first(colon))) {
      continue;
    }
    // The first Host header: trim OWS, refuse a bare CR or a folded value.
    Bytes value = line.subspan(colon + 1);
    while (!value.empty() && is_ws(value.front())) {
      value = value.subspan(1);
    }
    while (!value.empty() && is_ws(value.back())) {
      value = value.first(value.size() - 1);
    }
    if (std::find(value.begin(), value.end(), std::byte{'\r'}) != value.end()) {
      return {S::malformed, {}};
    }
    if (p == n) {
      return {incomplete, {}};
    }
    if (is_ws(in[p])) {
      return {S::malformed, {}};
    }
    return strip_port(value);
  }
}

} // namespace ta::http
