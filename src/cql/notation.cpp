// The section 3 notations: BodyWriter and BodyReader.
#include <cstring>

#include "ta/cql/messages.hpp"

namespace ta::cql {

namespace {

Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte *>(s.data()), s.size()};
}

std::string_view as_text(Bytes b) {
  return {reinterpret_cast<const char *>(b.data()), b.size()};
}

} // namespace

// ------------------------------------------------------------- BodyWriter

void BodyWriter::put_short(std::uint16_t v) {
  out_.push_back(static_cast<std::byte>(v >> 8U));
  out_.push_back(static_cast<std::byte>(v & 0xFFU));
}

void BodyWriter::put_int(std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  const std::array<std::byte, 4> b{
      static_cast<std::byte>(u >> 24U), static_cast<std::byte>((u >> 16U) & 0xFFU),
      static_cast<std::byte>((u >> 8U) & 0xFFU), static_cast<std::byte>(u & 0xFFU)};
  out_.insert(out_.end(), b.begin(), b.end());
}

void BodyWriter::put_long(std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  put_int(static_cast<std::int32_t>(static_cast<std::uint32_t>(u >> 32U)));
  put_int(static_cast<std::int32_t>(static_cast<std::uint32_t>(u & 0xFFFFFFFFU)));
}

void BodyWriter::put_string(std::string_view s) {
  put_short(static_cast<std::uint16_t>(s.size()));
  put_raw(as_bytes(s));
}

void BodyWriter::put_long_string(std::string_view s) {
  put_int(static_cast<std::int32_t>(s.size()));
  put_raw(as_bytes(s));
}

void BodyWriter::put_bytes(Bytes b) {
  put_int(static_cast<std::int32_t>(b.size()));
  put_raw(b);
}

void BodyWriter::put_short_bytes(Bytes b) {
  put_short(static_cast<std::uint16_t>(b.size()));
  put_raw(b);
}

void BodyWriter::put_string_list(std::span<const std::string_view> items) {
  put_short(static_cast<std::uint16_t>(items.size()));
  for (const auto item : items) {
    put_string(item);
  }
}

void BodyWriter::put_string_map(std::span<const std::pair<std::string_view, std::string_view>> kv) {
  put_short(static_cast<std::uint16_t>(kv.size()));
  for (const auto &[k, v] : kv) {
    put_string(k);
    put_string(v);
  }
}

// ------------------------------------------------------------- BodyReader

bool BodyReader::fail(CodecError e) {
  if (error_ == CodecError::ok) {
    error_ = e;
  }
  return false;
}

bool BodyReader::read_byte(std::uint8_t &v) {
  return error_ == CodecError::ok && (c_.read_u8(v) || fail(CodecError::truncated));
}

bool BodyReader::read_short(std::uint16_t &v) {
  return error_ == CodecError::ok && (c_.read_u16(v) || fail(CodecError::truncated));
}

bool BodyReader::read_int(std::int32_t &v) {
  std::uint32_t u = 0;
  if (error_ != CodecError::ok || !c_.read_u32(u)) {
    return fail(CodecError::truncated);
  }
  v = static_cast<std::int32_t>(u);
  return true;
}

bool BodyReader::read_long(std::int64_t &v) {
  std::uint32_t hi = 0;
  std::uint32_t lo = 0;
  ByteCursor save = c_;
  if (error_ != CodecError::ok || !c_.read_u32(hi) || !c_.read_u32(lo)) {
    c_ = save;
    return fail(CodecError::truncated);
  }
  v = static_cast<std::int64_t>((std::uint64_t{hi} << 32U) | lo);
  return true;
}

bool BodyReader::read_string(std::string_view &v) {
  std::uint16_t n = 0;
  Bytes b;
  ByteCursor save = c_;
  if (!read_short(n)) {
    return false;
  }
  if (!c_.take(n, b)) {
    c_ = save;
    return fail(CodecError::truncated);
  }
  v = as_text(b);
  return true;
}

bool BodyReader::read_string(std::string &v) {
  std::string_view s;
  if (!read_string(s)) {
    return false;
  }
  v.assign(s);
  return true;
}

bool BodyReader::read_long_string(std::string_view &v) {
  std::int32_t n = 0;
  Bytes b;
  ByteCursor save = c_;
  if (!read_int(n)) {
    return false;
  }
  if (n < 0) {
    c_ = save;
    return fail(CodecError::bad_length);
  }
  if (!c_.take(static_cast<std::size_t>(n), b)) {
    c_ = save;
    return fail(CodecError::truncated);
  }
  v = as_text(b);
  return true;
}

bool BodyReader::read_bytes(Cell &v) {
  std::int32_t n = 0;
  ByteCursor save = c_;
  if (!read_int(n)) {
    return false;
  }
  if (n < 0) {
    if (n < -2) {
      c_ = save;
      return fail(CodecError::bad_length);
    }
    v.reset();
    return true;
  }
  Bytes b;
  if (!c_.take(static_cast<std::size_t>(n), b)) {
    c_ = save;
    return fail(CodecError::truncated);
  }
  v = b;
  return true;
}

bool BodyReader::read_bytes(std::optional<std::vector<std::byte>> &v) {
  Cell c;
  if (!read_bytes(c)) {
    return false;
  }
  if (c) {
    v.emplace(c->begin(), c->end());
  } else {
    v.reset();
  }
  return true;
}

bool BodyReader::read_short_bytes(Bytes &v) {
  std::uint16_t n = 0;
  ByteCursor save = c_;
  if (!read_short(n)) {
    return false;
  }
  if (!c_.take(n, v)) {
    c_ = save;
    return fail(CodecError::truncated);
  }
  return true;
}

bool BodyReader::read_short_bytes(std::vector<std::byte> &v) {
  Bytes b;
  if (!read_short_bytes(b)) {
    return false;
  }
  v.assign(b.begin(), b.end());
  return true;
}

bool BodyReader::read_string_list(std::vector<std::string> &v) {
  std::uint16_t n = 0;
  if (!read_short(n)) {
    return false;
  }
  // Each [string] takes at least its 2-byte length: bound the reservation.
  if (std::size_t{n} * 2 > c_.remaining()) {
    return fail(CodecError::truncated);
  }
  v.clear();
  v.reserve(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    std::string_view s;
    if (!read_string(s)) {
      return false;
    }
    v.emplace_back(s);
  }
  return true;
}

bool BodyReader::read_uuid(std::array<std::byte, 16> &v) {
  Bytes b;
  if (error_ != CodecError::ok || !c_.take(16, b)) {
    return fail(CodecError::truncated);
  }
  std::memcpy(v.data(), b.data(), 16);
  return true;
}

bool BodyReader::read_inet(IpAddress &addr, std::int32_t &port) {
  // [inet]: <n: [byte]><n address bytes><port: [int]>
  std::uint8_t n = 0;
  ByteCursor save = c_;
  if (!read_byte(n)) {
    return false;
  }
  if (n != 4 && n != 16) {
    c_ = save;
    return fail(CodecError::bad_inet);
  }
  Bytes b;
  if (!c_.take(n, b)) {
    c_ = save;
    return fail(CodecError::truncated);
  }
  if (!read_int(port)) {
    c_ = save;
    return false;
  }
  addr = n == 4 ? IpAddress::v4(b.data()) : IpAddress::v6(b.data());
  return true;
}

bool BodyReader::skip_bytes_map() {
  std::uint16_t n = 0;
  if (!read_short(n)) {
    return false;
  }
  for (std::uint16_t i = 0; i < n; ++i) {
    std::string_view k;
    Cell v;
    if (!read_string(k) || !read_bytes(v)) {
      return false;
    }
  }
  return true;
}

} // namespace ta::cql
