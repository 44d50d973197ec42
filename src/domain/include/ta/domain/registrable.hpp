// domain/registrable: groups hostnames by registrable domain (eTLD+1), the
// part of a name a single party registered: "rr3---sn-abc.googlevideo.com"
// and "www.googlevideo.com" are both "googlevideo.com", "a.b.example.co.uk"
// is "example.co.uk". The Public Suffix List is the one built into libpsl
// (both its ICANN and its private sections, as the list intends), so
// "foo.github.io" is its own registrable domain: github.io is a private
// suffix under which anyone may register.
//
// Contract of group(): the key a name is grouped under, never empty for a
// non-empty input, and the input itself whenever the name has no registrable
// domain. Every case is a Kind, stable snake_case through kind_name():
//   - "" (unresolved traffic) stays "": unresolved.
//   - IPv4 and IPv6 literals ("192.0.2.1", "2001:db8::1", "[2001:db8::1]")
//     stay as they are: ip_literal.
//   - Names are first normalised like every name in this tree (ASCII upper
//     case to lower case, one trailing dot removed; see ta/common/hostname.hpp).
//   - A name that is itself a public suffix ("co.uk", "github.io", "com")
//     stays as it is: public_suffix.
//   - A single label ("localhost", "printer") stays as it is: single_label.
//   - A name with a byte outside letters, digits, '-', '_' and '.', an empty
//     label ("a..b", ".a", "a.." which keeps one dot), or longer than 253
//     bytes is not a DNS name to the list: it stays as it is (normalised;
//     "." stays "."): not_a_name. Names in this tree can hold any bytes; such names are never
//     handed to libpsl.
//   - Otherwise the registrable domain: registrable. A name under a top-level
//     label the list does not know ("nas.home.internal") follows the list's
//     default rule "*": its registrable domain is "home.internal".
//
// Cost and bounds: a lookup is one hash probe when cached; a miss costs one
// libpsl query (microseconds). The cache holds at most `max_cached` names in
// two generations (the newest half, and the half before it): when the newest
// fills, the older is dropped. So a flood of distinct names costs at most
// max_cached entries of at most 253 + 253 bytes each, and names in steady use
// stay cached. Not thread-safe: one Grouper per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ta/common/status.hpp"

namespace ta::domain {

enum class Kind : std::uint8_t {
  registrable,
  unresolved,
  ip_literal,
  public_suffix,
  single_label,
  not_a_name,
};

[[nodiscard]] std::string_view kind_name(Kind kind) noexcept;

struct Grouped {
  std::string key; // what to group under
  Kind kind = Kind::unresolved;
};

struct CacheCounters {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t generations_dropped = 0; // times the older half was dropped
  std::size_t entries = 0;               // cached names now
};

class Grouper {
public:
  static constexpr std::size_t default_max_cached = 65536;

  // Fails (unavailable) only when this libpsl has no built-in list.
  [[nodiscard]] static Result<Grouper> create(std::size_t max_cached = default_max_cached);

  Grouper(Grouper &&) noexcept;
  Grouper &operator=(Grouper &&) noexcept;
  Grouper(const Grouper &) = delete;
  Grouper &operator=(const Grouper &) = delete;
  ~Grouper();

  // The group key of `host` (any bytes) and why; see the contract above.
  [[nodiscard]] Grouped group(std::string_view host);

  [[nodiscard]] CacheCounters counters() const noexcept;

private:
  struct Impl;
  explicit Grouper(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::domain
