#include "listen.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ta::metrics {

std::string ListenAddress::with_port(std::uint16_t p) const {
  const std::string port_text = std::to_string(p);
  return ipv6 ? "[" + host + "]:" + port_text : host + ":" + port_text;
}

std::optional<ListenAddress> parse_listen(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  ListenAddress out;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    out.ipv6 = true;
  }
  out.host = std::string(host);
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(out.ipv6 ? AF_INET6 : AF_INET, out.host.c_str(), buf) != 1) {
    return std::nullopt;
  }
  unsigned value = 0;
  const auto *end = port_text.data() + port_text.size();
  const auto [ptr, ec] = std::from_chars(port_text.data(), end, value);
  if (port_text.empty() || port_text.size() > 5 || ec != std::errc{} || ptr != end ||
      value > 65535U) {
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

namespace {

// A socket bound to host:port by `op`; -1 and errno set when that fails.
template <class Op> int socket_to(bool ipv6, const std::string &host, std::uint16_t port, Op op) {
  const int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  int rc = 0;
  if (ipv6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    (void)inet_pton(AF_INET6, host.c_str(), &sa.sin6_addr);
    rc = op(fd, reinterpret_cast<const sockaddr *>(&sa), socklen_t{sizeof sa});
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    (void)inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
    rc = op(fd, reinterpret_cast<const sockaddr *>(&sa), socklen_t{sizeof sa});
  }
  if (rc != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

} // namespace

Status diagnose_listen_failure(const ListenAddress &address) {
  const std::string where = address.with_port(address.port);
  const int fd = socket_to(address.ipv6, address.host, address.port,
                           [](int s, const sockaddr *sa, socklen_t len) {
                             const int one = 1; // as the HTTP server does
                             (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                             return bind(s, sa, len);
                           });
  const int err = fd >= 0 ? 0 : errno;
  if (fd >= 0) {
    close(fd);
  }
  switch (err) {
  case 0:
    return Status::io_error("metrics: cannot listen on " + where);
  case EADDRINUSE:
    return Status::unavailable("metrics: " + where + " is already in use");
  case EACCES:
    return Status::permission_denied("metrics: no permission to listen on " + where +
                                     " (ports below 1024 need root or CAP_NET_BIND_SERVICE)");
  case EADDRNOTAVAIL:
    return Status::not_found("metrics: " + address.host + " is not an address of this machine");
  default:
    return Status::io_error("metrics: cannot listen on " + where + ": " + std::strerror(err));
  }
}

} // namespace ta::metrics
