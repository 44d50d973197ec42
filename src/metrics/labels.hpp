// metrics/labels: turning hostnames (arbitrary bytes) into label values and
// into the legacy per-host metric names (`<host>_writes_total`, README
// "Metrics").
#pragma once

#include <string>
#include <string_view>

namespace ta::metrics {

// Valid UTF-8 for any input: each byte that is not part of a well-formed
// UTF-8 sequence (RFC 3629: no overlongs, surrogates or > U+10FFFF), and NUL,
// becomes the four characters "\xNN" (upper-case hex). Valid input other
// than NUL is returned unchanged.
[[nodiscard]] std::string utf8_label(std::string_view bytes);

// The legacy per-host names' rule: s/[^a-zA-Z_0-9]/_/g on bytes, "_" prefixed
// when the result starts with a digit. "" gives "".
[[nodiscard]] std::string legacy_host(std::string_view bytes);

} // namespace ta::metrics
