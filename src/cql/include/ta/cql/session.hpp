// cql/session: our client for Cassandra's native protocol (v4; the spec is
// doc/native_protocol_v4.spec in apache/cassandra). The only public seam of
// ta_cql the store uses.
//
// Threads: a Session is used by one thread at a time. It runs no thread of
// its own: every call drives the sockets (poll) until its work is done, so
// many requests are in flight at once over stream ids inside one call
// (execute_all) without locks.
//
// Errors never throw; every failure is a Status whose message names the host
// and, for server errors, the CQL error code (0x0100 bad_credentials, ...).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ta/common/address.hpp"

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

// Where a failure came from. `server` carries the CQL error code.
enum class ErrorKind : std::uint8_t {
  none,
  connect,     // resolve/connect/TLS handshake failed, or timed out
  closed,      // the peer closed the connection (possibly mid-frame)
  protocol,    // a frame or body we cannot decode (bounds, opcode, version)
  timeout,     // no response within the request timeout
  server,      // an ERROR response; see server_code
  auth,        // authentication failed (server_code = 0x0100 when known)
  no_host,     // every contact point is down
  bad_request, // the caller's mistake (too many values, unprepared id, ...)
};

struct Status {
  ErrorKind kind = ErrorKind::none;
  std::int32_t server_code = 0; // [int] error code of an ERROR response
  std::string host;             // "HOST:PORT" the failure came from, if any
  std::string message;          // one line, names host and code
  [[nodiscard]] bool ok() const noexcept { return kind == ErrorKind::none; }
  explicit operator bool() const noexcept { return ok(); }
};

// Stable snake_case names of server error codes (0x1100 -> "write_timeout").
[[nodiscard]] std::string_view server_error_name(std::int32_t code);
// Stable snake_case names of error kinds ("connect", "closed", ...), as used
// in NodeStats::errors for client-side failures.
[[nodiscard]] std::string_view error_kind_name(ErrorKind kind);

struct HostPort {
  std::string host; // name or address literal
  std::uint16_t port = 9042;
};

struct Options {
  std::vector<HostPort> contact_points; // at least one
  std::string username;                 // empty: no authentication expected
  std::string password;
  std::string keyspace; // USE'd on every connection when not empty
  bool lz4 = false;     // ask for LZ4 compression in STARTUP
  bool tls = false;
  std::string tls_ca_file; // empty: system default verify paths
  bool tls_verify = true;  // verify the certificate chain (not the name)
  Consistency consistency = Consistency::local_quorum;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{12000};
  std::size_t max_in_flight_per_connection = 512; // <= 32768 stream ids
  // Retries of write_timeout, overloaded, unavailable, read_timeout,
  // is_bootstrapping and of requests lost with a connection: exponential
  // backoff from retry_base_delay, doubling, capped at retry_max_delay.
  int max_retries = 5;
  std::chrono::milliseconds retry_base_delay{50};
  std::chrono::milliseconds retry_max_delay{2000};
};

// Bound values, serialized as the spec's [bytes] while they are added
// (no allocation once the buffer is warm). Types must match the CQL column.
class Values {
public:
  void clear() noexcept {
    buf_.clear();
    count_ = 0;
  }
  Values &add_null();
  Values &add_int(std::int32_t v);    // int
  Values &add_bigint(std::int64_t v); // bigint, timestamp, counter
  Values &add_smallint(std::int16_t v);
  Values &add_tinyint(std::int8_t v);
  Values &add_boolean(bool v);
  Values &add_text(std::string_view v); // text, varchar, ascii
  Values &add_blob(std::span<const std::byte> v);
  Values &add_inet(const IpAddress &v); // 4 or 16 bytes
  [[nodiscard]] std::uint16_t count() const noexcept { return count_; }
  [[nodiscard]] std::span<const std::byte> encoded() const noexcept { return buf_; }

private:
  std::vector<std::byte> buf_; // count_ x [bytes]
  std::uint16_t count_ = 0;
};

// One prepared statement; valid for the Session that prepared it.
struct Prepared {
  std::uint32_t index = 0; // the session's handle
  std::uint16_t bind_count = 0;
};

// A request for execute_all: one EXECUTE of `statements[0]`, or an UNLOGGED
// BATCH of all of them when there are several (callers group by partition).
struct Statement {
  Prepared prepared;
  Values values;
};
struct Request {
  std::vector<Statement> statements;
  void clear() noexcept { statements.clear(); }
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

// A row of a page: cells in column order; spans valid only during the
// callback.
struct Row {
  std::span<const Cell> cells;
};

// Client-side statistics per node, for metrics.
struct NodeStats {
  std::string host; // "HOST:PORT"
  bool up = false;
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  std::size_t in_flight = 0;
  // Request latency histogram: counts per bucket upper bound (seconds),
  // cumulative as Prometheus wants; bounds are latency_bounds().
  std::vector<std::uint64_t> latency_buckets;
  double latency_sum_seconds = 0;
  std::uint64_t latency_count = 0; // all observations (the +Inf bucket)
  // Errors by CQL code (server) or by kind name for client-side errors.
  std::vector<std::pair<std::string, std::uint64_t>> errors; // name -> count
};
[[nodiscard]] std::span<const double> latency_bounds();

class Session {
public:
  // Connects to the contact points (a connection per reachable node; the
  // first that answers is enough), negotiates v4 (STARTUP, optional LZ4),
  // authenticates with SASL PLAIN when the server asks (PasswordAuthenticator)
  // and USEs the keyspace if it exists. nullptr + status on failure.
  [[nodiscard]] static std::unique_ptr<Session> connect(const Options &options, Status &status);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  // A simple QUERY (schema statements, USE, one-off reads) with no values.
  // Rows, if any, go to on_row; all pages are fetched.
  [[nodiscard]] Status query(std::string_view cql,
                             const std::function<void(const Row &)> &on_row = {});
  // Prepares on every connected node (and again on nodes that connect later
  // or answer UNPREPARED).
  [[nodiscard]] Status prepare(std::string_view cql, Prepared &out);
  // Executes a prepared read with values, paging with page_size rows.
  [[nodiscard]] Status execute_paged(const Prepared &p, const Values &values,
                                     std::int32_t page_size,
                                     const std::function<void(const Row &)> &on_row);
  // Sends every request pipelined (round-robin over the nodes that are up,
  // up to max_in_flight per connection), retrying per Options. Returns when
  // all succeeded or one failed for good (the rest are still completed or
  // abandoned before return). Requests may be applied out of order.
  [[nodiscard]] Status execute_all(std::span<const Request> requests);

  // Tries nodes that are down again (rate-limited by backoff); true if at
  // least one is up afterwards.
  bool reconnect();
  [[nodiscard]] std::vector<NodeStats> stats() const;
  [[nodiscard]] const Options &options() const;

private:
  Session();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::cql
