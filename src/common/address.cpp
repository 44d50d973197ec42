#include "ta/common/address.hpp"

#include <charconv>

#include <arpa/inet.h>

namespace ta {

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 4) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return std::string(buf);
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  text.copy(buf, text.size());
  IpAddress a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.family = 4;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    a.family = 6;
    return a;
  }
  return std::nullopt;
}

bool IpPrefix::contains(const IpAddress &a) const noexcept {
  if (a.family != base.family) {
    return false;
  }
  const unsigned full = length / 8U;
  for (unsigned i = 0; i < full; ++i) {
    if (a.bytes[i] != base.bytes[i]) {
      return false;
    }
  }
  const unsigned bits = length % 8U;
  if (bits == 0) {
    return true;
  }
  const auto mask = static_cast<std::uint8_t>(0xFFU << (8U - bits));
  return (a.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) {
    return std::nullopt;
  }
  IpPrefix p;
  p.base = *addr;
  const unsigned max_len = addr->family == 4 ? 32U : 128U;
  if (slash == std::string_view::npos) {
    p.length = static_cast<std::uint8_t>(max_len);
    return p;
  }
  const auto len_text = text.substr(slash + 1);
  unsigned len = 0;
  const auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc{} || ptr != len_text.data() + len_text.size() || len > max_len ||
      len_text.empty()) {
    return std::nullopt;
  }
  p.length = static_cast<std::uint8_t>(len);
  return p;
}

} // namespace ta
