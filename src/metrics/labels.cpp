#include "labels.hpp"

#include <cstdint>

#include "ta/common/escape.hpp"

namespace ta::metrics {

std::string utf8_label(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const std::size_t len = utf8_sequence_length(bytes, i);
    if (len == 0 || bytes[i] == '\0') {
      append_hex_escape(out, static_cast<unsigned char>(bytes[i]), HexCase::upper);
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
