// Byte helpers shared by the unit tests: hex fixtures ("16 03 01" or
// "160301") to bytes, text to bytes and bytes back to text.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ta::testing {

// Hex digits (either case) to bytes. Spaces, tabs and newlines are skipped;
// any other character, or an odd number of digits, throws
// std::invalid_argument.
inline std::vector<std::byte> hex(std::string_view h) {
  std::vector<std::byte> out;
  out.reserve(h.size() / 2);
  int high = -1;
  for (const char c : h) {
    int v = -1;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      continue;
    } else {
      throw std::invalid_argument("hex: bad character '" + std::string(1, c) + "'");
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::byte>((high << 4) | v));
      high = -1;
    }
  }
  if (high >= 0) {
    throw std::invalid_argument("hex: odd number of digits");
  }
  return out;
}

// The characters of `text`, one byte each.
inline std::vector<std::byte> bytes(std::string_view text) {
  std::vector<std::byte> out;
  out.reserve(text.size());
  for (const char c : text) {
    out.push_back(static_cast<std::byte>(c));
  }
  return out;
}

// The bytes of `b` as characters.
inline std::string text(std::span<const std::byte> b) {
  std::string out;
  out.reserve(b.size());
  for (const std::byte x : b) {
    out.push_back(static_cast<char>(x));
  }
  return out;
}

} // namespace ta::testing
