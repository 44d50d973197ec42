// common/time: timestamps, their RFC 3339 text and what a user may type for
// one. Part of ta_common, which links nothing but the standard library.
//
// Timestamps are microseconds since the Unix epoch, UTC, as std::int64_t
// everywhere (pcap gives µs or ns; ns is truncated, as tshark's µs columns do).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ta {

using TimeUs = std::int64_t;

// RFC 3339 in UTC with exactly six fractional digits: 2024-05-01T12:00:00.000001Z
[[nodiscard]] std::string format_rfc3339_us(TimeUs t);

// Accepts RFC 3339 (with Z or a numeric offset, 0-9 fractional digits), a plain
// date (YYYY-MM-DD, midnight UTC), or a number of seconds since the epoch
// (fractions allowed). Returns nullopt when the text is none of these.
[[nodiscard]] std::optional<TimeUs> parse_time(std::string_view text);

} // namespace ta
