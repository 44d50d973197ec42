// libFuzzer target for the hostname-to-label path: a name of any bytes (as a
// DNS answer, SNI or Host delivers it) through normalize_hostname, then into
// a Prometheus label value (utf8_label) and a legacy per-host metric name
// (legacy_host), as README "Metrics" describes.
//
// Input: the raw name bytes.
//
// Checked (abort on violation), each against an independent statement of the
// contract in the headers: the normalised name is the input with A-Z lowered
// and at most one trailing dot removed; the label is valid UTF-8 (decoded
// here code point by code point: no overlongs, surrogates, values past
// U+10FFFF or NUL), equals the name when the name already was valid UTF-8
// without NUL, and labelling it again changes nothing; the legacy name is
// only [a-zA-Z0-9_], does not start with a digit, and is as long as the name
// (plus one for the "_" prefix).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "ta/common/hostname.hpp"

#include "labels.hpp"

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

// Whether `s` is well-formed UTF-8 with no NUL: decodes each sequence to its
// code point and rejects overlong forms by the minimum value per length.
bool valid_utf8_no_nul(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if (b0 == 0) {
      return false;
    }
    if (b0 < 0x80U) {
      ++i;
      continue;
    }
    if ((b0 & 0xE0U) == 0xC0U) {
      len = 2;
      cp = b0 & 0x1FU;
      min = 0x80;
    } else if ((b0 & 0xF0U) == 0xE0U) {
      len = 3;
      cp = b0 & 0x0FU;
      min = 0x800;
    } else if ((b0 & 0xF8U) == 0xF0U) {
      len = 4;
      cp = b0 & 0x07U;
      min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0U) != 0x80U) {
        return false;
      }
      cp = (cp << 6U) | (b & 0x3FU);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const auto raw = std::span(reinterpret_cast<const std::byte *>(data), size);
  std::string name = "previous contents are replaced";
  ta::normalize_hostname(raw, name);
  const bool dot = size > 0 && data[size - 1] == '.';
  check(name.size() == size - (dot ? 1 : 0));
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto in = static_cast<char>(data[i]);
    const char want = in >= 'A' && in <= 'Z' ? static_cast<char>(in - 'A' + 'a') : in;
    check(name[i] == want);
  }

  const std::string label = ta::metrics::utf8_label(name);
  check(valid_utf8_no_nul(label));
  if (valid_utf8_no_nul(name)) {
    check(label == name);
  }
  check(ta::metrics::utf8_label(label) == label);

  const std::string legacy = ta::metrics::legacy_host(name);
  for (const char c : legacy) {
    check((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (name.empty()) {
    check(legacy.empty());
  } else {
    check(legacy.front() < '0' || legacy.front() > '9');
    const bool prefixed = name.front() >= '0' && name.front() <= '9';
    check(legacy.size() == name.size() + (prefixed ? 1 : 0));
  }
  return 0;
}
