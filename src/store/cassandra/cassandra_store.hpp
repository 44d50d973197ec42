// store/cassandra: the Cassandra backend's internals, shared by its files
// (see ta/store/cassandra.hpp for the hand-off contract): open.cpp (connect,
// options), schema.cpp (DDL, prepared statements), drain.cpp (spool in, spool
// out), send.cpp (one batch as CQL requests), reads.cpp (ledger lookups and
// queries), flows.cpp (query_flows), metrics.cpp (backend metric families),
// cql_errors.cpp (what a CQL failure means to the store).
//
// Schema (keyspace from the spec, default traffic_analyzer; every statement
// IF NOT EXISTS, all writes prepared):
//
//   packets        ((endpoint, hour), ts_us DESC, agent DESC, source DESC,
//                  frame DESC) -> address, port, protocol, bytes.
//                  One row per sent packet (received ones have none); the key
//                  is what the packet is, so a
//                  replay rewrites the same cells. hour = floor(ts_us / 1h):
//                  a partition holds one endpoint's hour, whatever the run
//                  length.
//   rollups        ((endpoint, hour), second, address, agent, source, batch_pos)
//                  -> packets, bytes (sent), first_us, last_us (either
//                  direction), received_packets, received_bytes, names_none ..
//                  names_dns (packets of both directions per name source).
//                  One row per batch and (second, address); `batch_pos` is
//                  the batch's ledger position, fixed when it was spooled, so
//                  replays rewrite the same rows and queries sum them. The
//                  flow-naming columns are added to an older keyspace's table
//                  (ALTER ... ADD IF NOT EXISTS); its old rows have them null
//                  and are read as sent packets named by DNS (or by none for
//                  the unresolved endpoint ""), as they were. Opened for
//                  queries only (no schema changes), an older keyspace is
//                  read without those columns and without flows.
//   flows          ((day), endpoint, agent, origin_source, first_frame,
//                  batch_source, batch_pos) -> protocol, client, client_port,
//                  endpoint_address, endpoint_port, name_source, sent/received
//                  packets/bytes, first_us, last_us: one batch's deltas of
//                  one flow; day = floor(first_us / 1 day) of those deltas,
//                  so replays write the same cells. Queries add a flow's rows
//                  up across every day (`days` lists them). pid int, program
//                  blob: the flow's program when its batch knew it (added to
//                  older keyspaces by ALTER TABLE; queries take the first
//                  row that has one).
//   endpoint_hours ((day), hour, endpoint): which partitions exist, so range
//                  queries find them without scanning the cluster.
//   days           ((shard = 0), day): which days exist (a row per day), of
//                  roll-ups and of flows.
//   addresses      ((agent), address) -> name, last_learnt. Written at the
//                  answer's time as write time: the latest answer wins
//                  whatever the order of arrival.
//   address_names  ((agent), address, name) -> first_learnt, written at
//                  kFar - time: the earliest answer naming it wins. With
//                  `addresses`, idempotent without a read-before-write.
//   local_hosts    ((agent), address) -> first_learnt (earliest wins, as above)
//   sources        ((agent), fingerprint) -> id, path, frames_done, complete;
//                  frames_done written at write time = frames_done, so it
//                  only grows. Written after the batch's data is acknowledged.
//
// Threads: the pipeline's writer thread calls write() (spool append); a
// drain thread owns the write session; queries and begin_source use a second
// session under read_mu_. backend_metrics() reads caches only. Notices
// (CassandraOptions::notice) come from the drain thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ta/cql/session.hpp"
#include "ta/store/cassandra.hpp"

#include "int_math.hpp"
#include "spool.hpp"

namespace ta::store::detail::cassandra {

using Clock = std::chrono::steady_clock;

inline constexpr std::int64_t kUsPerSecond = 1'000'000;
inline constexpr std::int64_t kSecondsPerHour = 3600;
inline constexpr std::int64_t kHoursPerDay = 24;

// Partition keys: hour = floor(ts_us / 1 h), day = floor(hour / 24).
inline std::int64_t hour_of_us(TimeUs ts) {
  return floor_div(ts, kUsPerSecond * kSecondsPerHour);
}
inline std::int64_t day_of_hour(std::int64_t hour) {
  return floor_div(hour, kHoursPerDay);
}

// Partition reads a query keeps in flight at once (Session::execute_paged_many):
// enough to hide round trips to a few nodes, small enough that a query does
// not crowd out the writers sharing the cluster; each holds one page of
// kReadPageSize rows at most.
inline constexpr std::size_t kReadsInFlight = 64;
inline constexpr std::int32_t kReadPageSize = 5000;

inline TimeUs now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A CQL client failure reworded by the store (cql_errors.cpp): its code and
// detail() (the CQL error code) kept, `message` in place of the client's.
[[nodiscard]] Status cql_failure(const ta::Status &s, std::string message);
// cql_failure with "cassandra: DOING: <the CQL message>".
[[nodiscard]] Status from_cql(const ta::Status &s, std::string_view doing);
// A failure of a read that begin_source needs (the source ledger): one the
// cluster may answer later (cql::is_transient: too few replicas, no host, a
// timeout, overload) becomes `unavailable`, the Store contract's "try again
// later", keeping its message and CQL code; any other is returned as is.
[[nodiscard]] Status ledger_failure(const Status &s);

struct WriteStatements {
  cql::Prepared packet, rollup, flow, endpoint_hour, day, addr_last, addr_first, local_host,
      src_reg, src_done, src_complete;
};
struct ReadStatements {
  cql::Prepared source, sources_of_agent, addresses_of_agent, names_of_agent, local_hosts_of_agent,
      hours_of_day, rollups, packets_range, packets_recent, flows_of_day, flows_of_day_endpoint;
};

// One table's line of system_views.local_write_latency.
struct TableView {
  std::string table;
  double count = 0;
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

// The client's statistics per node of the write and the read session added
// up (requests, retries, in flight, latency, errors by name); a node's `up`
// is the write session's when it knows the node (metrics.cpp).
[[nodiscard]] std::vector<cql::NodeStats>
merge_node_stats(std::vector<cql::NodeStats> writes, const std::vector<cql::NodeStats> &reads);
// The traffic_cassandra_client_* families, one sample per node (label node).
void append_node_families(const std::vector<cql::NodeStats> &nodes,
                          std::vector<BackendFamily> &out);

class CassandraStore final : public Store {
public:
  static Result<std::unique_ptr<Store>> open(const CassandraTarget &target,
                                             const CassandraOptions &options);
  ~CassandraStore() override;
  CassandraStore(const CassandraStore &) = delete;
  CassandraStore &operator=(const CassandraStore &) = delete;

  Status begin_source(const SourceInfo &info, SourceState &state) override;
  Status write(const Batch &batch) override;
  Status load_addresses(
      const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &fn) override;
  Status load_local_hosts(const std::function<void(const IpAddress &)> &fn) override;
  Status query_endpoints(const TimeRange &range, std::vector<EndpointSummary> &out) override;
  Status query_packets(std::string_view endpoint, std::size_t limit,
                       std::vector<PacketRow> &out) override;
  Status query_addresses(std::vector<AddressRow> &out) override;
  Status query_flows(const FlowQuery &query, std::vector<FlowRow> &out) override;
  Status settle(std::chrono::milliseconds timeout) override;
  void backend_metrics(std::vector<BackendFamily> &out) override;

private:
  CassandraStore() = default;
  std::string t(std::string_view table) const { return keyspace_ + "." + std::string(table); }
  ta::Status create_schema(cql::Session &s);
  ta::Status prepare_writes(cql::Session &s);
  ta::Status prepare_reads(cql::Session &s);
  ta::Status send(const Batch &batch, TimeUs spooled_us);
  void drain_loop();
  void refresh_views();
  void set_failed(const std::string &message);
  void note_down(const ta::Status &s);
  // One line to CassandraOptions::notice, if set.
  void notice(const std::string &line) const;
  // Calls fn per row of a prepared read; 5000-row pages.
  Status read(const cql::Prepared &p, const cql::Values &v, std::string_view doing,
              const std::function<void(const cql::Row &)> &fn);
  // Calls fn(i, row) per row of reads[i], kReadsInFlight partitions at once;
  // rows of one read in order, different reads interleaved.
  Status read_many(std::span<const cql::Statement> reads, std::string_view doing,
                   const std::function<void(std::size_t, const cql::Row &)> &fn);
  Status hours_in(std::int64_t day_lo, std::int64_t day_hi,
                  std::vector<std::pair<std::string, std::int64_t>> &out);

  CassandraOptions options_;
  cql::Options cql_options_;
  std::string keyspace_;
  std::string agent_;
  // `query --agent-id`: only this agent's rows are read ("" = every agent).
  // The agent is a clustering or partition column of every table read, so
  // the filter is applied to each row as it arrives.
  std::string read_agent_;
  [[nodiscard]] bool other_agent(const cql::Cell &agent) const {
    return !read_agent_.empty() && cql::as_text(agent).value_or("") != read_agent_;
  }
  std::unique_ptr<Spool> spool_;

  // Drain side (drain thread only, except where noted).
  std::unique_ptr<cql::Session> drain_;
  WriteStatements w_;
  std::vector<cql::Request> requests_;
  std::unordered_map<std::int64_t, std::pair<std::string, std::string>> source_names_;

  // Read side.
  std::mutex read_mu_;
  std::unique_ptr<cql::Session> reader_;
  ReadStatements r_;
  bool has_flows_ = false; // false: a keyspace from before flow naming, opened for queries

  // Shared state.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool failed_ = false;
  std::string failure_;
  bool down_ = false;
  std::string last_error_;
  std::uint64_t batches_sent_ = 0;
  std::uint64_t rows_sent_ = 0;
  std::uint64_t send_failures_ = 0;
  std::uint64_t damaged_ = 0;
  std::vector<cql::NodeStats> node_stats_; // the write session's
  std::vector<cql::NodeStats> read_stats_; // the read session's, when last free
  std::vector<TableView> views_;
  Clock::time_point views_at_{};
  std::thread thread_;
};

} // namespace ta::store::detail::cassandra
