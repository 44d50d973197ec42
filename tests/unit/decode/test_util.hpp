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
#include "ta/testing/bytes.hpp"

namespace ta::decode::test {

using Frame = std::vector<std::byte>;

// "00 11 2233" -> bytes; whitespace ignored.
using ta::testing::hex;

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
