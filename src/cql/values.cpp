// Consistency and error names, bound value encoding (section 6) and the
// cell decoders.
#include <array>
#include <bit>
#include <cstring>

#include "ta/cql/session.hpp"

namespace ta::cql {

namespace {

struct ConsistencyName {
  Consistency c;
  std::string_view name;
};
constexpr std::array<ConsistencyName, 11> kConsistencies{{
    {Consistency::any, "any"},
    {Consistency::one, "one"},
    {Consistency::two, "two"},
    {Consistency::three, "three"},
    {Consistency::quorum, "quorum"},
    {Consistency::all, "all"},
    {Consistency::local_quorum, "local_quorum"},
    {Consistency::each_quorum, "each_quorum"},
    {Consistency::serial, "serial"},
    {Consistency::local_serial, "local_serial"},
    {Consistency::local_one, "local_one"},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x - 'A' + 'a');
    }
    if (x != b[i]) {
      return false;
    }
  }
  return true;
}

template <class T> void put_be(std::vector<std::byte> &buf, T v) {
  using U = std::make_unsigned_t<T>;
  auto u = static_cast<U>(v);
  std::array<std::byte, sizeof(T)> b{};
  for (std::size_t i = sizeof(T); i-- > 0;) {
    b[i] = static_cast<std::byte>(u & 0xFFU);
    u = static_cast<U>(u >> 8U);
  }
  buf.insert(buf.end(), b.begin(), b.end());
}

template <class T> std::optional<T> get_be(const Cell &c) {
  if (!c || c->size() != sizeof(T)) {
    return std::nullopt;
  }
  std::make_unsigned_t<T> u = 0;
  for (const std::byte b : *c) {
    u = static_cast<std::make_unsigned_t<T>>((u << 8U) | std::to_integer<std::uint8_t>(b));
  }
  return static_cast<T>(u);
}

} // namespace

std::optional<Consistency> parse_consistency(std::string_view text) {
  for (const auto &e : kConsistencies) {
    if (iequals(text, e.name)) {
      return e.c;
    }
  }
  return std::nullopt;
}

std::string_view consistency_name(Consistency c) {
  for (const auto &e : kConsistencies) {
    if (e.c == c) {
      return e.name;
    }
  }
  return "unknown";
}

std::string_view server_error_name(std::int32_t code) {
  switch (code) {
  case 0x0000:
    return "server_error";
  case 0x000A:
    return "protocol_error";
  case 0x0100:
    return "bad_credentials";
  case 0x1000:
    return "unavailable";
  case 0x1001:
    return "overloaded";
  case 0x1002:
    return "is_bootstrapping";
  case 0x1003:
    return "truncate_error";
  case 0x1100:
    return "write_timeout";
  case 0x1200:
    return "read_timeout";
  case 0x1300:
    return "read_failure";
  case 0x1400:
    return "function_failure";
  case 0x1500:
    return "write_failure";
  case 0x1600:
    return "cdc_write_failure";
  case 0x1700:
    return "cas_write_unknown";
  case 0x2000:
    return "syntax_error";
  case 0x2100:
    return "unauthorized";
  case 0x2200:
    return "invalid";
  case 0x2300:
    return "config_error";
  case 0x2400:
    return "already_exists";
  case 0x2500:
    return "unprepared";
  default:
    return "unknown";
  }
}

// Each add_* appends one [bytes]: <n: [int]><n bytes>; null is n = -1.
Values &Values::add_null() {
  put_be<std::int32_t>(buf_, -1);
  ++count_;
  return *this;
}

Values &Values::add_int(std::int32_t v) {
  put_be<std::int32_t>(buf_, 4);
  put_be(buf_, v);
  ++count_;
  return *this;
}

Values &Values::add_bigint(std::int64_t v) {
  put_be<std::int32_t>(buf_, 8);
  put_be(buf_, v);
  ++count_;
  return *this;
}

Values &Values::add_smallint(std::int16_t v) {
  put_be<std::int32_t>(buf_, 2);
  put_be(buf_, v);
  ++count_;
  return *this;
}

Values &Values::add_tinyint(std::int8_t v) {
  put_be<std::int32_t>(buf_, 1);
  buf_.push_back(static_cast<std::byte>(v));
  ++count_;
  return *this;
}

Values &Values::add_boolean(bool v) {
  put_be<std::int32_t>(buf_, 1);
  buf_.push_back(std::byte{v ? std::uint8_t{1} : std::uint8_t{0}});
  ++count_;
  return *this;
}

Values &Values::add_text(std::string_view v) {
  put_be<std::int32_t>(buf_, static_cast<std::int32_t>(v.size()));
  const auto *p = reinterpret_cast<const std::byte *>(v.data());
  buf_.insert(buf_.end(), p, p + v.size());
  ++count_;
  return *this;
}

Values &Values::add_blob(std::span<const std::byte> v) {
  put_be<std::int32_t>(buf_, static_cast<std::int32_t>(v.size()));
  buf_.insert(buf_.end(), v.begin(), v.end());
  ++count_;
  return *this;
}

Values &Values::add_inet(const IpAddress &v) {
  if (!v.valid()) {
    return add_null();
  }
  const auto n = v.length();
  put_be<std::int32_t>(buf_, static_cast<std::int32_t>(n));
  const auto *p = reinterpret_cast<const std::byte *>(v.bytes.data());
  buf_.insert(buf_.end(), p, p + n);
  ++count_;
  return *this;
}

std::optional<std::int32_t> as_int(const Cell &c) {
  return get_be<std::int32_t>(c);
}

std::optional<std::int64_t> as_bigint(const Cell &c) {
  return get_be<std::int64_t>(c);
}

std::optional<double> as_double(const Cell &c) {
  const auto bits = get_be<std::int64_t>(c);
  if (!bits) {
    return std::nullopt;
  }
  return std::bit_cast<double>(*bits);
}

std::optional<std::string> as_text(const Cell &c) {
  if (!c) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char *>(c->data()), c->size());
}

std::optional<IpAddress> as_inet(const Cell &c) {
  if (!c) {
    return std::nullopt;
  }
  if (c->size() == 4) {
    return IpAddress::v4(c->data());
  }
  if (c->size() == 16) {
    return IpAddress::v6(c->data());
  }
  return std::nullopt;
}

std::optional<bool> as_boolean(const Cell &c) {
  if (!c || c->size() != 1) {
    return std::nullopt;
  }
  return (*c)[0] != std::byte{0};
}

std::span<const double> latency_bounds() {
  static constexpr std::array<double, 15> kBounds{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0};
  return kBounds;
}

} // namespace ta::cql
