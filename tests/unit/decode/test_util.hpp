// Test helpers of the decode unit tests: frames from hex text, and the
// addresses fixtures expect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"

namespace ta::decode::test {

using Frame = std::vector<std::byte>;

// "00 11 2233" -> bytes. Whitespace anywhere is ignored; anything else that is
// not a hex digit, or an odd digit count, fails the test that built it.
inline Frame hex(std::string_view text) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  Frame out;
  int high = -1;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t') {
      continue;
    }
    const int v = nibble(c);
    EXPECT_GE(v, 0) << "bad hex digit '" << c << "'";
    if (v < 0) {
      return {};
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::byte>((high << 4) | v));
      high = -1;
    }
  }
  EXPECT_LT(high, 0) << "odd number of hex digits";
  return out;
}

inline Frame bytes_of(Bytes b) {
  return Frame(b.begin(), b.end());
}

inline IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  const std::byte raw[4] = {std::byte{a}, std::byte{b}, std::byte{c}, std::byte{d}};
  return IpAddress::v4(raw);
}

inline IpAddress v6(std::string_view hex16) {
  const Frame raw = hex(hex16);
  EXPECT_EQ(raw.size(), 16U);
  return raw.size() == 16 ? IpAddress::v6(raw.data()) : IpAddress{};
}

} // namespace ta::decode::test
