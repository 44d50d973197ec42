#include "labels.hpp"

#include <cstdint>

namespace ta::metrics {
namespace {

void append_hex(std::string &out, unsigned char byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out += "\\x";
  out += kHex[byte >> 4U];
  out += kHex[byte & 0xFU];
}

// Length of the well-formed UTF-8 sequence starting at s[i], 0 if none.
std::size_t sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80U) {
    return 1;
  }
  std::size_t len = 0;
  unsigned char lo = 0x80U; // allowed range of the second byte (RFC 3629 table)
  unsigned char hi = 0xBFU;
  if (b0 >= 0xC2U && b0 <= 0xDFU) {
    len = 2;
  } else if (b0 >= 0xE0U && b0 <= 0xEFU) {
    len = 3;
    if (b0 == 0xE0U) {
      lo = 0xA0U; // no overlongs
    } else if (b0 == 0xEDU) {
      hi = 0x9FU; // no surrogates
    }
  } else if (b0 >= 0xF0U && b0 <= 0xF4U) {
    len = 4;
    if (b0 == 0xF0U) {
      lo = 0x90U;
    } else if (b0 == 0xF4U) {
      hi = 0x8FU; // <= U+10FFFF
    }
  } else {
    return 0;
  }
  if (s.size() - i < len) {
    return 0;
  }
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) {
    return 0;
  }
  for (std::size_t k = 2; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80U || b > 0xBFU) {
      return 0;
    }
  }
  return len;
}

} // namespace

std::string utf8_label(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const std::size_t len = sequence_length(bytes, i);
    if (len == 0 || bytes[i] == '\0') {
      append_hex(out, static_cast<unsigned char>(bytes[i]));
      ++i;
    } else {
      out.append(bytes.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string legacy_host(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 1);
  for (const char c : bytes) {
    const bool keep =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += keep ? c : '_';
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') {
    out.insert(out.begin(), '_');
  }
  return out;
}

} // namespace ta::metrics
