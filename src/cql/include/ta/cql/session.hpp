// cql/session: our client for Cassandra's native protocol v4 (the spec is
// doc/native_protocol_v4.spec in apache/cassandra), library ta_cql. The
// public seam the store uses; links ta_common, OpenSSL (TLS) and liblz4
// (compression), nothing else.
//
// Layers, each using only those below it: types.hpp (consistency, error
// codes, cells) -> frame.hpp (frame header, codec, LZ4) -> messages.hpp
// (one class per message) -> connection, handshake, stream ids, retry
// policy (private) -> this Session.
//
// Threads: a Session is used by one thread at a time. It runs no thread of
// its own: every call drives the sockets (poll) until its work is done, so
// many requests are in flight at once over stream ids inside one call
// (execute_all) without locks.
//
// Errors never throw; every failure is a ta::Status whose message names the
// host and, for server errors, the CQL error code (0x0100 bad_credentials,
// ...), with detail() = that code. Codes: see status_code(ErrorKind) in
// types.hpp; is_transient(const Status &) says whether waiting may help.
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
#include "ta/common/status.hpp"
#include "ta/cql/types.hpp"

namespace ta::cql {

// Where a request goes. token_aware: an EXECUTE (or a BATCH whose statements
// share one partition key) goes to a node that holds a replica of its
// partition when the Session knows the ring, round robin among the replicas
// that can take it, else to any node up; everything else, round robin.
enum class Routing : std::uint8_t { token_aware, round_robin };

struct Options {
  std::vector<HostPort> contact_points; // at least one
  std::string username;                 // empty: no authentication expected
  std::string password;
  std::string keyspace; // USE'd on every connection when not empty
  bool lz4 = false;     // ask for LZ4 compression in STARTUP
  bool tls = false;
  std::string tls_ca_file; // empty: system default verify paths
  bool tls_verify = true;  // verify the chain and that it names the contact point
  Consistency consistency = Consistency::local_quorum;
  Routing routing = Routing::token_aware;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{12000};
  std::size_t max_in_flight_per_connection = 512; // clamped to 1..32768 stream ids
  // Retries of write_timeout, overloaded, unavailable, read_timeout,
  // is_bootstrapping, of timed-out requests and of requests lost with a
  // connection (UNPREPARED: re-PREPARE and resend, counted too): exponential
  // backoff from retry_base_delay, doubling, capped at retry_max_delay.
  int max_retries = 5;
  std::chrono::milliseconds retry_base_delay{50};
  std::chrono::milliseconds retry_max_delay{2000};
  // Learn the other nodes from system.local and system.peers_v2 (or
  // system.peers) and follow TOPOLOGY_CHANGE / STATUS_CHANGE events on a
  // control connection (README "The CQL client"). Off: the contact points
  // only.
  bool discover = true;
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
  // Requests with a known partition token (EXECUTE, single-key BATCH, with
  // the ring known) sent to this node as one of its replicas, or not (no
  // replica could take it, or round-robin routing): the routing share.
  std::uint64_t routed_to_replica = 0;
  std::uint64_t routed_elsewhere = 0;
  // Request latency histogram: counts per bucket upper bound (seconds),
  // cumulative as Prometheus wants; bounds are latency_bounds().
  std::vector<std::uint64_t> latency_buckets;
  double latency_sum_seconds = 0;
  std::uint64_t latency_count = 0; // all observations (the +Inf bucket)
  // Errors by CQL code (server) or by kind name for client-side errors.
  std::vector<std::pair<std::string, std::uint64_t>> errors; // name -> count
  // From system.local / system.peers (empty until discovered).
  std::string data_center;
  std::string rack;
};

// What discovery and events did, for metrics and tests.
struct ClusterStats {
  std::string control;                   // "HOST:PORT" of the control connection; empty: none
  std::uint64_t refreshes = 0;           // discovery rounds that read system.local and peers
  std::uint64_t skipped_peer_rows = 0;   // malformed system.peers(_v2) rows (one warning each)
  std::uint64_t events = 0;              // EVENT frames taken
  std::uint64_t unknown_node_events = 0; // events naming a node we did not know
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
  // Executes many prepared reads (one partition each, typically), paging
  // each with page_size rows, at most max_in_flight of them outstanding at
  // once (clamped to 1..4096); a read's next page is asked as soon as its
  // previous one arrived, and a finished read's place goes to the next one
  // in `reads` order. on_row(i, row) gets the rows of reads[i]: the rows of
  // one read arrive in order, those of different reads interleaved. Retries
  // per Options (a retried page resumes at its paging state: no row twice).
  // The first read that fails for good ends the call with its status.
  // Memory: max_in_flight tasks, whatever the number of reads.
  [[nodiscard]] Status
  execute_paged_many(std::span<const Statement> reads, std::int32_t page_size,
                     std::size_t max_in_flight,
                     const std::function<void(std::size_t, const Row &)> &on_row);
  // Sends every request pipelined (round-robin over the nodes that are up,
  // up to max_in_flight per connection), retrying per Options. Returns when
  // all succeeded or one failed for good (the rest are still completed or
  // abandoned before return). Requests may be applied out of order.
  [[nodiscard]] Status execute_all(std::span<const Request> requests);

  // Tries nodes that are down again (rate-limited by backoff); true if at
  // least one is up afterwards.
  // Also takes the events the control connection received (see Options::
  // discover) and acts on them.
  bool reconnect();
  // After DDL: waits until system.local and every peer whose node is up
  // report one schema_version, asking every 200 ms up to `bound`. The
  // failure (timeout) names each node and its version.
  [[nodiscard]] Status
  wait_schema_agreement(std::chrono::milliseconds bound = std::chrono::milliseconds{10000});
  // One-line warnings (skipped peer rows, unreachable nodes, events for
  // unknown nodes) since the last call, oldest first; at most 100 are kept.
  [[nodiscard]] std::vector<std::string> take_warnings();
  [[nodiscard]] ClusterStats cluster_stats() const;
  [[nodiscard]] std::vector<NodeStats> stats() const;
  [[nodiscard]] const Options &options() const;

private:
  Session();
  struct Impl;
  friend struct SessionAccess; // session_impl.hpp: the module's own code and tests
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::cql
