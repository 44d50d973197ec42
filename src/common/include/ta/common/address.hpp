// common/address: IPv4/IPv6 addresses and CIDR prefixes as plain values.
// Part of ta_common, which links nothing but the standard library.
//
// An address is 16 bytes plus a family, no allocation, hashable, ordered. IPv4
// lives in the first 4 bytes (not v4-mapped), so an IPv4 and an IPv6 address
// never compare equal.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace ta {

struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  std::uint8_t family = 0; // 0 = none, 4 or 6

  [[nodiscard]] static IpAddress v4(const std::byte *p) noexcept {
    IpAddress a;
    std::memcpy(a.bytes.data(), p, 4);
    a.family = 4;
    return a;
  }
  [[nodiscard]] static IpAddress v6(const std::byte *p) noexcept {
    IpAddress a;
    std::memcpy(a.bytes.data(), p, 16);
    a.family = 6;
    return a;
  }
  [[nodiscard]] std::size_t length() const noexcept {
    return family == 4 ? 4 : (family == 6 ? 16 : 0);
  }
  [[nodiscard]] bool valid() const noexcept { return family == 4 || family == 6; }

  friend bool operator==(const IpAddress &, const IpAddress &) = default;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads defaulted <=>
  friend auto operator<=>(const IpAddress &, const IpAddress &) = default;

  // Canonical text: dotted quad, or RFC 5952 IPv6 (inet_ntop).
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text);
};

struct IpAddressHash {
  [[nodiscard]] std::size_t operator()(const IpAddress &a) const noexcept {
    // Two 64-bit halves folded with a multiplicative mix; addresses are not
    // attacker-chosen keys into a table we cannot bound, the tables are
    // size-bounded independently.
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    std::memcpy(&lo, a.bytes.data(), 8);
    std::memcpy(&hi, a.bytes.data() + 8, 8);
    std::uint64_t h = (lo ^ (hi * 0x9E3779B97F4A7C15ULL) ^ a.family) * 0xBF58476D1CE4E5B9ULL;
    return static_cast<std::size_t>(h ^ (h >> 31U));
  }
};

// A CIDR prefix: 10.0.0.0/8, fd00::/8.
struct IpPrefix {
  IpAddress base;
  std::uint8_t length = 0;

  [[nodiscard]] bool contains(const IpAddress &a) const noexcept;
  [[nodiscard]] static std::optional<IpPrefix> parse(std::string_view text);
};

} // namespace ta
