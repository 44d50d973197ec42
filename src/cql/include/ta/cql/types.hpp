// cql/types: the vocabulary every layer of ta_cql shares (the bottom layer;
// includes only ta_common): consistency levels, the CQL server error codes,
// the client-side failure kinds and how both become a ta::Status, contact
// points, and column values (Cell) with their decoders.
//
// Error codes are listed here and nowhere else in the tree (spec section 9
// of Cassandra's native_protocol_v4.spec).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ta/common/address.hpp"
#include "ta/common/status.hpp"

namespace ta::cql {

// <consistency> [short], spec section 3.
enum class Consistency : std::uint16_t {
  any = 0x0000,
  one = 0x0001,
  two = 0x0002,
  three = 0x0003,
  quorum = 0x0004,
  all = 0x0005,
  local_quorum = 0x0006,
  each_quorum = 0x0007,
  serial = 0x0008,
  local_serial = 0x0009,
  local_one = 0x000A,
};
// "one", "local_quorum", ... (case-insensitive); nullopt if unknown.
[[nodiscard]] std::optional<Consistency> parse_consistency(std::string_view text);
[[nodiscard]] std::string_view consistency_name(Consistency c);

// The <code> [int] of an ERROR response (section 9). 0x1600 and 0x1700 are
// sent by newer servers; they are named so that their metrics label is not
// "unknown".
enum class ServerError : std::int32_t {
  server_error = 0x0000,
  protocol_error = 0x000A,
  bad_credentials = 0x0100,
  unavailable = 0x1000,
  overloaded = 0x1001,
  is_bootstrapping = 0x1002,
  truncate_error = 0x1003,
  write_timeout = 0x1100,
  read_timeout = 0x1200,
  read_failure = 0x1300,
  function_failure = 0x1400,
  write_failure = 0x1500,
  cdc_write_failure = 0x1600,
  cas_write_unknown = 0x1700,
  syntax_error = 0x2000,
  unauthorized = 0x2100,
  invalid = 0x2200,
  config_error = 0x2300,
  already_exists = 0x2400,
  unprepared = 0x2500,
};
// Stable snake_case names (metrics label values): 0x1100 -> "write_timeout",
// "unknown" for a code not listed above.
[[nodiscard]] std::string_view server_error_name(std::int32_t code);
[[nodiscard]] inline std::string_view server_error_name(ServerError code) {
  return server_error_name(static_cast<std::int32_t>(code));
}
// The session sends the same request again after these (with backoff):
// unavailable, overloaded, is_bootstrapping, write_timeout, read_timeout.
[[nodiscard]] bool is_retryable(ServerError code);
// Failures worth waiting out (the cluster is down, slow or overloaded): the
// retryable codes plus server_error, read_failure and write_failure.
[[nodiscard]] bool is_transient(ServerError code);

// Where a client-side failure came from. `server` carries the CQL code.
enum class ErrorKind : std::uint8_t {
  none,
  connect,     // resolve/connect/TLS handshake failed, or timed out
  closed,      // the peer closed the connection (possibly mid-frame)
  protocol,    // a frame or body we cannot decode (bounds, opcode, version)
  timeout,     // no response within the request timeout
  server,      // an ERROR response; see the code
  auth,        // authentication failed (code 0x0100 when known)
  no_host,     // every contact point is down
  bad_request, // the caller's mistake (too many values, unprepared id, ...)
};
// Stable snake_case names ("connect", "closed", ...): the label values of
// NodeStats::errors for client-side failures.
[[nodiscard]] std::string_view error_kind_name(ErrorKind kind);
// connect, no_host -> unavailable; closed -> connection_closed; protocol ->
// protocol_error; timeout -> timeout; server -> server_error; auth ->
// unauthenticated; bad_request -> invalid_argument.
[[nodiscard]] StatusCode status_code(ErrorKind kind);
// A failure of `kind` as a ta::Status; detail() is the CQL code (0 if none).
[[nodiscard]] Status make_status(ErrorKind kind, std::string message, std::int32_t code = 0);

// True for a Status from this library worth waiting out and retrying later:
// unavailable, connection_closed, timeout, protocol_error, and server_error
// whose detail() is a transient code (is_transient above).
[[nodiscard]] bool is_transient(const Status &status);

struct HostPort {
  std::string host; // name or address literal
  std::uint16_t port = 9042;
};

// A column value as the server sent it: nullopt is NULL. Decoders are
// bounds-checked and return nullopt on a size that does not fit the type.
using Cell = std::optional<std::span<const std::byte>>;
[[nodiscard]] std::optional<std::int32_t> as_int(const Cell &c);
[[nodiscard]] std::optional<std::int64_t> as_bigint(const Cell &c); // bigint, timestamp, counter
[[nodiscard]] std::optional<double> as_double(const Cell &c);
[[nodiscard]] std::optional<std::string> as_text(const Cell &c);
[[nodiscard]] std::optional<IpAddress> as_inet(const Cell &c);
[[nodiscard]] std::optional<bool> as_boolean(const Cell &c);

} // namespace ta::cql
