// Bound value encoding (section 6) and the latency histogram bounds.
#include <array>
#include <bit>
#include <cstring>

#include "ta/cql/session.hpp"

namespace ta::cql {

namespace {

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

} // namespace

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

std::span<const double> latency_bounds() {
  static constexpr std::array<double, 15> kBounds{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0};
  return kBounds;
}

} // namespace ta::cql
