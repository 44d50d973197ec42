// common/hostname: the one normalisation every name source goes through (DNS
// answers, TLS server_name, QUIC server_name, HTTP Host), so that the same
// site reached several ways counts under one name. Part of ta_common, which
// links nothing but the standard library.
//
// Contract: ASCII letters A-Z become a-z; ONE trailing dot is removed
// ("example.com." -> "example.com", "a.." -> "a."); every other byte is kept
// as it is, including bytes outside LDH and non-ASCII bytes (a name is data
// here, not a validated DNS name). Escaping for JSON, CSV and metric labels
// happens where names are written, not here.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ta {

// Replaces `out` with the normalised form of `raw`. Reuses `out`'s capacity,
// so a caller that keeps one string allocates only when a longer name comes.
void normalize_hostname(std::span<const std::byte> raw, std::string &out);

} // namespace ta
