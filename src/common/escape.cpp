// Names as text; see escape.hpp.
#include "ta/common/escape.hpp"

namespace ta {
namespace {

int hex_value(char c) {
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
}

} // namespace

void append_hex_escape(std::string &out, unsigned char byte, HexCase hex_case) {
  const char *digits = hex_case == HexCase::lower ? "0123456789abcdef" : "0123456789ABCDEF";
  out += "\\x";
  out += digits[byte >> 4U];
  out += digits[byte & 0xFU];
}

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
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

std::string escape_name(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    const std::size_t len = utf8_sequence_length(bytes, i);
    // C1 controls are the two-byte sequences c2 80 .. c2 9f.
    const bool c1 = len == 2 && b == 0xC2U && static_cast<unsigned char>(bytes[i + 1]) < 0xA0U;
    if (len == 0 || b < 0x20U || b == 0x7FU || b == '\\' || c1) {
      const std::size_t n = c1 ? 2 : 1;
      for (std::size_t k = 0; k < n; ++k) {
        append_hex_escape(out, static_cast<unsigned char>(bytes[i + k]));
      }
      i += n;
    } else {
      out.append(bytes.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::optional<std::string> unescape_name(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (text.size() - i < 4 || text[i + 1] != 'x') {
      return std::nullopt;
    }
    const int hi = hex_value(text[i + 2]);
    const int lo = hex_value(text[i + 3]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out += static_cast<char>((hi << 4) | lo);
    i += 3;
  }
  return out;
}

} // namespace ta
