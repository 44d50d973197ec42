// metrics/listen: the HTTP listen address (Options::listen) and why a bind
// failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ta/common/status.hpp"

namespace ta::metrics {

struct ListenAddress {
  std::string host; // the literal, without brackets
  bool ipv6 = false;
  std::uint16_t port = 0;

  // "1.2.3.4:80" or "[::1]:80".
  [[nodiscard]] std::string with_port(std::uint16_t p) const;
};

// IPv4-literal:PORT or [IPv6-literal]:PORT, PORT 0..65535; nullopt otherwise.
[[nodiscard]] std::optional<ListenAddress> parse_listen(std::string_view text);

// After the HTTP server failed to listen on `address`: binds a socket there
// as it does (SO_REUSEADDR) to learn why, and says so in one line that
// starts with "metrics: ". The code: unavailable (address in use),
// permission_denied, not_found (not an address of this machine), io_error
// (anything else, including a probe bind that succeeded).
[[nodiscard]] Status diagnose_listen_failure(const ListenAddress &address);

} // namespace ta::metrics
