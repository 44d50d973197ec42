// cql/session_impl (private): the state behind a Session, shared by
// session.cpp (public methods, statistics), session_nodes.cpp (node set-up
// and loss) and session_run.cpp (the poll loop).
//
// How a call works: the public method turns its work into Tasks, run()
// sends them round-robin over the nodes that are up (a stream id each, up
// to max_in_flight per connection), reads responses in big chunks, matches
// them by stream id and decides per Task: done, retry later (backoff, see
// retry_policy.hpp), send again (next page, re-prepared), or failed for
// good. The first permanent failure ends the call; what is still in flight
// is abandoned: its stream ids stay reserved (orphans) until the late
// response arrives.
//
// Connection setup (connect, STARTUP, auth, USE, re-PREPARE) is a blocking
// exchange on the new socket with connect_timeout as deadline: it happens at
// connect(), in reconnect(), and inside run() only when no node is up.
//
// Token-aware routing: with a ring set (set_ring), route() gives an EXECUTE
// or a single-partition BATCH its partition's token and pick() sends it to a
// replica first (ring.hpp, token.hpp).
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ta/cql/messages.hpp"
#include "ta/cql/session.hpp"

#include "connection.hpp"
#include "retry_policy.hpp"
#include "ring.hpp"
#include "transport.hpp"

namespace ta::cql {

inline constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
inline constexpr std::int32_t kQueryPageSize = 5000;

struct Session::Impl {
  using Clock = detail::Clock;
  using Error = detail::Error;

  struct Node {
    Node(const HostPort &h, std::string l) : hp(h), label(std::move(l)), conn(label) {}
    HostPort hp;
    std::string label; // "HOST:PORT"
    detail::Connection conn;
    bool up = false;
    Clock::time_point next_attempt{};
    std::chrono::milliseconds backoff{0};
    std::string last_error;
    // Statistics.
    std::uint64_t requests = 0;
    std::uint64_t retries = 0;
    std::uint64_t routed_to_replica = 0;
    std::uint64_t routed_elsewhere = 0;
    std::vector<std::uint64_t> buckets; // per bound, not cumulative; last = over
    double latency_sum = 0;
    std::uint64_t latency_count = 0;
    std::vector<std::pair<std::string, std::uint64_t>> errors;
    // The cluster's view (session_cluster.cpp).
    std::optional<IpAddress> ip; // to match peer rows and events
    std::string dc;
    std::string rack;
    std::string host_id;
    std::string schema_version;
    std::vector<std::int64_t> tokens;
    bool discovered = false; // from system.peers*, not a contact point
    bool removed = false;    // left the cluster: never used or tried again
    bool probe = false;      // a DOWN event named it: check the connection

    void count_error(std::string_view name);
    void record_latency(Clock::duration d);
  };

  enum class Kind : std::uint8_t { execute_all, query, prepare, execute_paged };

  struct Task {
    Kind kind = Kind::execute_all;
    const Request *request = nullptr;    // execute_all
    std::string_view cql;                // query, prepare
    std::uint32_t prepared = 0;          // prepare (entry to fill), execute_paged
    const Values *values = nullptr;      // execute_paged
    std::int32_t page_size = 0;          // query, execute_paged
    std::vector<std::byte> paging_state; // empty: first page
    const std::function<void(const Row &)> *on_row = nullptr;
    std::uint32_t pinned = kNone; // node index, or any node
    std::uint32_t then = kNone;   // task to resume when this one is done
    bool best_effort = false;     // failure does not fail the call
    bool done = false;
    int attempts = 0;           // retries used
    std::uint32_t node = kNone; // in flight on
    std::int16_t stream = 0;
    std::uint64_t seq = 0; // send generation (timeouts)
    Clock::time_point sent{};
    // Set by route(): the partition's token, when the ring and key are known.
    bool routable = false;
    std::int64_t token = 0;
  };

  struct PreparedEntry {
    std::string cql;
    std::vector<std::byte> id;
    std::uint16_t bind_count = 0;
    std::vector<std::uint16_t> pk_indices; // bind indexes of the partition key
    std::string table_keyspace;            // of the bound columns, from PREPARED
  };

  struct Deadline {
    Clock::time_point at;
    std::uint32_t task;
    std::uint64_t seq;
  };

  Options opts;
  std::size_t max_in_flight = 512;
  detail::RetryPolicy policy;
  std::unique_ptr<detail::TlsContext> tls;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<PreparedEntry> prepared;
  std::string keyspace;
  std::size_t rr = 0;
  // Token ring of the session's keyspace, node index = index in `nodes`;
  // null or empty: no token awareness. Replaced whole, never edited.
  std::shared_ptr<const detail::TokenRing> ring;
  std::string ring_keyspace; // statements on other keyspaces are not routed; "": any
  std::size_t replica_rr = 0;
  std::vector<std::byte> routing_key, other_key; // scratch for route()

  // Per run().
  std::vector<Task> tasks;
  std::vector<std::uint32_t> ready; // FIFO: ready[ready_head..]
  std::size_t ready_head = 0;
  std::vector<std::pair<Clock::time_point, std::uint32_t>> delayed;
  std::vector<Deadline> deadlines; // FIFO in send order
  std::size_t deadline_head = 0;
  std::size_t pending = 0;
  std::uint64_t seq = 0;
  Error failure;
  Error best_effort_failure;
  bool keyspace_changed = false;
  std::uint32_t keyspace_node = kNone;

  // execute_paged_many: a slot per read in flight, each a task reused for
  // the next read (its callback forwards the slot's current read index).
  struct ManyReads {
    bool active = false;
    std::span<const Statement> reads;
    std::size_t next = 0; // first read not started
    std::int32_t page_size = 0;
    const std::function<void(std::size_t, const Row &)> *on_row = nullptr;
    std::vector<std::uint32_t> task;                       // per slot: its task, or kNone
    std::vector<std::size_t> index;                        // per slot: the read it runs
    std::vector<std::function<void(const Row &)>> forward; // per slot
  };
  ManyReads many;

  // Scratch, reused.
  std::vector<BatchStatement> batch;
  ResultResponse result;
  ErrorResponse error;
  std::vector<pollfd> pfds;

  // session_nodes.cpp: node set-up and loss.
  bool setup(Node &n, Error &st);
  bool fail_setup(Node &n, const Error &st);
  void fail_conn(std::uint32_t ni, ErrorKind kind, const std::string &what);
  void no_node_up();
  void propagate_keyspace();
  [[nodiscard]] bool any_up() const;

  // session_cluster.cpp: discovery, events, schema agreement. Nodes are
  // never erased (task and stream owners hold indices): a node that leaves
  // is marked removed.
  std::uint32_t control = kNone; // node whose connection is REGISTERed
  bool need_refresh = false;
  bool peers_v2 = true; // false once system.peers_v2 proved missing
  std::vector<std::string> warnings;
  ClusterStats cluster;
  // The ring is for the session's keyspace or, without one, the keyspace
  // of the first prepared statement; rebuilt when that changes, after
  // schema agreement and on every refresh.
  std::string statement_keyspace;
  std::string ring_warned; // keyspace whose replication was reported unusable
  bool ring_stale = true;
  void remember_keyspace(const PreparedMetadata &m);
  struct Topology;
  std::uint32_t add_node(const HostPort &hp, bool discovered);
  bool select(std::uint32_t ni, std::string_view cql, ResultResponse &out, Error &st);
  bool read_topology(std::uint32_t ci, Topology &t, Error &st);
  void warn(std::string line);
  bool open_control();
  void refresh();
  void rebuild_ring();
  void take_events();
  void handle_event(Bytes body);
  void remove_node(std::uint32_t ni);
  [[nodiscard]] std::uint32_t find_node(const IpAddress &ip, std::int32_t port) const;
  // Between calls: takes events, replaces a lost control connection,
  // probes hinted nodes, refreshes when asked. Never inside run().
  void housekeeping();
  Error schema_agreement(std::chrono::milliseconds bound);

  // session_run.cpp: tasks and the poll loop.
  std::uint32_t add_task(Task t);
  // Empties the run's tasks, queues and deadlines (keeps their capacity).
  void clear_queues();
  void begin_run();
  Error run();
  void finish_task(std::uint32_t ti);
  void fail_task(std::uint32_t ti, const Error &st);
  void retry_task(std::uint32_t ti, std::uint32_t ni, const Error &st);
  void set_ring(std::shared_ptr<const detail::TokenRing> r, std::string ks) {
    ring = std::move(r);
    ring_keyspace = std::move(ks);
  }
  // Discovery's form: it sets ring_keyspace itself (rebuild_ring).
  void set_ring(std::shared_ptr<const detail::TokenRing> r) { ring = std::move(r); }
  // Sets t.routable/t.token from the bound partition key, if the ring is known.
  void route(Task &t);
  [[nodiscard]] bool is_replica(const Task &t, std::uint32_t ni) const;
  std::uint32_t pick(const Task &t);
  void encode_task(detail::Connection &c, const Task &t, std::int16_t stream);
  void send(std::uint32_t ti, std::uint32_t ni, Clock::time_point now);
  void dispatch(Clock::time_point now);
  void flush_writes(std::uint32_t ni);
  void read_conn(std::uint32_t ni);
  void on_frame(std::uint32_t ni, const Frame &f);
  void on_error(std::uint32_t ti, std::uint32_t ni);
  void on_result(std::uint32_t ti, std::uint32_t ni);
  void check_timeouts(Clock::time_point now);
  void promote_delayed(Clock::time_point now);
  void abandon();
  void poll_once();

  // session.cpp
  // Starts reads of `many` in free slots; called by run() every round.
  void feed_many();
  Error bad_request(const std::string &what) const;
  Error check_prepared(const Prepared &p, const Values &v) const;
};

// The Session's state, for this module's code and tests (e.g. set_ring).
struct SessionAccess {
  static Session::Impl &impl(Session &s) { return *s.impl_; }
};

} // namespace ta::cql
