// common/escape: how a name (arbitrary bytes off the wire) is written as
// text, the same way in every output that shows names (the query table, CSV
// and JSON, README "Names in output"). Part of ta_common.
//
// The escaped form is valid UTF-8, printable, and lossless: every byte that
// is not part of a well-formed UTF-8 sequence (RFC 3629: no overlongs,
// surrogates or code points past U+10FFFF), every C0 or C1 control character
// (U+0000-U+001F, U+007F, U+0080-U+009F) and the backslash itself become
// "\xNN" (two lower-case hex digits, one escape per byte). Everything else
// is kept as it is. So "a\xfeb" (bytes 61 fe 62) and "a\xffb" stay
// distinct, and because a literal backslash is always escaped ("\x5c"), any
// "\x" in the output starts an escape: unescape_name() gives the bytes back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ta {

// Length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), 0 if
// the bytes there start none. Requires i < s.size().
[[nodiscard]] std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

// Appends "\xNN" for `byte`: lower-case hex digits here, upper-case for the
// metric labels' older form (README "Metrics").
enum class HexCase : std::uint8_t { lower, upper };
void append_hex_escape(std::string &out, unsigned char byte, HexCase hex_case = HexCase::lower);

// The escaped form of `bytes` (see above). Names without anything to escape
// come back unchanged.
[[nodiscard]] std::string escape_name(std::string_view bytes);

// The inverse of escape_name: "\xNN" (either hex case) becomes byte NN. No
// value when `text` holds a backslash not followed by 'x' and two hex
// digits, so nothing is guessed.
[[nodiscard]] std::optional<std::string> unescape_name(std::string_view text);

} // namespace ta
