// store (library ta_store): where records go. The record model and the
// Store interface every backend implements (SQLite in ta_store_sqlite,
// Cassandra in ta_store_cassandra), the null backend, the writer thread
// (writer.hpp) and the store spec parser (spec.hpp). Pure data: links only
// ta_common and Threads, no database and no database client.
//
// The interface is shaped for every backend: writes arrive as self-contained
// batches, each applied atomically and idempotently, so a batch can be
// retried or replayed after a crash without double counting.
//
// Idempotency contract. Every packet record has a key (source id, frame
// index): the capture it came from, identified by content fingerprint, and
// its 0-based frame index in that capture. A backend stores at most one record
// per key. Each batch also advances the source's ledger entry
// (`frames_through`): after write() returns ok, every frame with a lower index
// is accounted for, and begin_source() of the same capture later reports it,
// so re-reading resumes past what is stored and never counts a frame twice.
// Roll-ups are derived by the backend from the packet records of the same
// batch, inside the same atomic write.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/status.hpp"
#include "ta/common/time.hpp"

namespace ta::store {

// Errors from a backend: one line, names what failed. Backends never throw.
using Status = ta::Status;

// Where an endpoint's name came from (flow naming, README "What is
// counted"). Values are stored: append only. Names: name_source_name().
enum class NameSource : std::uint8_t { none = 0, sni = 1, quic = 2, http = 3, dns = 4, count_ };
[[nodiscard]] constexpr std::string_view name_source_name(NameSource s) noexcept {
  switch (s) {
  case NameSource::none:
    return "none";
  case NameSource::sni:
    return "sni";
  case NameSource::quic:
    return "quic";
  case NameSource::http:
    return "http";
  case NameSource::dns:
    return "dns";
  case NameSource::count_:
    break;
  }
  return "none";
}

// Client -> endpoint is `sent` (the only direction DNS-only naming counts);
// endpoint -> client is `received`. Values are stored: append only.
enum class Direction : std::uint8_t { sent = 0, received = 1 };

inline constexpr std::uint32_t kNoFlow = 0xFFFFFFFFU;

struct PacketRecord {
  TimeUs ts_us = 0;
  std::uint64_t frame = 0; // 0-based frame index within the source
  // The endpoint's end of the packet: the destination of a sent packet, the
  // source of a received one.
  IpAddress dst;
  std::uint16_t dst_port = 0; // 0 when the packet has no ports (ICMP, later fragments)
  std::uint8_t protocol = 0;
  std::uint32_t bytes = 0;
  std::uint32_t endpoint = 0; // index into Batch::endpoints
  Direction direction = Direction::sent;
  NameSource source = NameSource::none;
  std::uint32_t flow = kNoFlow; // index into Batch::flows; kNoFlow for per-packet naming
};

// What a batch adds to one flow. A flow's identity is the source and frame
// index of its first packet (origin_source, first_frame): stable across
// re-reads, so a backend can key it. The same flow appears in every batch
// that carries packets of it; its counters here are for this batch only
// (backends add them up), its name and ends are the flow's for life.
struct FlowRecord {
  std::int64_t origin_source = 0;
  std::uint64_t first_frame = 0;
  std::uint8_t protocol = 0;
  IpAddress client;
  std::uint16_t client_port = 0;
  IpAddress endpoint_address;
  std::uint16_t endpoint_port = 0;
  std::uint32_t name = 0; // index into Batch::endpoints
  NameSource source = NameSource::none;
  std::uint64_t sent_packets = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
  TimeUs first_seen = 0; // of this batch's packets of the flow
  TimeUs last_seen = 0;
  // The program owning the flow's socket on this machine (live capture only,
  // README "Which program"): its pid and command name; 0 and "" unknown.
  std::int32_t pid = 0;
  std::string program;
};

// A flow's identity across batches: the capture (source id) and the frame
// that opened it, as FlowRecord carries them.
struct FlowId {
  std::int64_t source = 0;
  std::uint64_t first_frame = 0;
  friend bool operator==(const FlowId &, const FlowId &) = default;
};
struct FlowIdHash {
  std::size_t operator()(const FlowId &id) const noexcept {
    return std::hash<std::uint64_t>{}(id.first_frame * 0x9E3779B97F4A7C15ULL ^
                                      static_cast<std::uint64_t>(id.source));
  }
};

struct LearntAddress {
  IpAddress address;
  std::uint32_t name = 0; // index into Batch::endpoints
  TimeUs when = 0;
};

struct SourceInfo {
  std::string fingerprint; // content fingerprint (hex); the identity
  std::string path;        // for people; not part of the identity
};

struct SourceState {
  std::int64_t id = 0;           // backend's id for the source
  std::uint64_t frames_done = 0; // frames already accounted for
  bool complete = false;
};

struct Batch {
  std::int64_t source_id = 0;
  // Batch-local names: "" is the unresolved endpoint. Records and learnt
  // addresses refer to names by index.
  std::vector<std::string> endpoints;
  // Sent and received packets; backends keep rows of sent packets only and
  // roll both directions up per endpoint and second.
  std::vector<PacketRecord> packets;
  std::vector<FlowRecord> flows;
  std::vector<LearntAddress> learnt;
  // Hosts that became local in this batch (they received a DNS response):
  // persisted so a restart still knows which traffic is outbound.
  std::vector<IpAddress> local_hosts;
  std::uint64_t frames_through = 0; // ledger position after this batch
  bool source_complete = false;

  void clear() {
    endpoints.clear();
    packets.clear();
    flows.clear();
    learnt.clear();
    local_hosts.clear();
    frames_through = 0;
    source_complete = false;
  }
};

struct TimeRange {
  std::optional<TimeUs> since; // inclusive
  std::optional<TimeUs> until; // exclusive
};

struct EndpointSummary {
  std::string endpoint;
  std::uint64_t packets = 0; // sent
  std::uint64_t bytes = 0;   // sent
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
  // Packets (both directions) by the source that named them, by NameSource.
  std::array<std::uint64_t, static_cast<std::size_t>(NameSource::count_)> names{};
  TimeUs first_seen = 0;
  TimeUs last_seen = 0;
  std::vector<std::string> addresses; // sorted, canonical text
};

struct PacketRow {
  std::string endpoint;
  TimeUs ts_us = 0;
  std::string address;
  std::uint16_t port = 0;
  std::uint8_t protocol = 0;
  std::uint32_t bytes = 0;
};

// A metric family a backend exports beside the pipeline's own (the Cassandra
// backend: the node's view of our tables and the client's view per node).
// Neutral on purpose: the store does not link the metrics library.
struct BackendSample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;                   // counter or gauge
  std::vector<double> bucket_bounds;  // histogram: upper bounds (no +Inf)
  std::vector<std::uint64_t> buckets; // histogram: cumulative, bounds + 1 (+Inf)
  double sum = 0;                     // histogram
};
struct BackendFamily {
  enum class Type { counter, gauge, histogram };
  std::string name;
  std::string help;
  Type type = Type::gauge;
  std::vector<BackendSample> samples;
};

// One flow as stored: its ends, name and life-time totals (every batch's
// deltas added up).
struct FlowRow {
  std::uint8_t protocol = 0;
  std::string client; // canonical address text
  std::uint16_t client_port = 0;
  std::string endpoint_address;
  std::uint16_t endpoint_port = 0;
  std::string endpoint; // the flow's name; "" is the unresolved endpoint
  NameSource source = NameSource::none;
  std::uint64_t sent_packets = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
  TimeUs first_seen = 0;
  TimeUs last_seen = 0;
  // The program owning the flow's socket (README "Which program"): the
  // first batch of the flow that knew it; 0 and "" unknown.
  std::int32_t pid = 0;
  std::string program;
};

// Which flows query_flows returns: those named `endpoint` (when given) whose
// life [first_seen, last_seen] overlaps the range: last_seen >= since and
// first_seen < until.
struct FlowQuery {
  std::optional<std::string> endpoint;
  TimeRange range;
};

struct AddressRow {
  std::string address;
  std::string name;
  TimeUs first_learnt = 0;
  TimeUs last_learnt = 0;
};

class Store {
public:
  virtual ~Store() = default;

  // Registers (or finds) a source and says how far a previous ingest got.
  // `unavailable` means the store cannot answer now but may later (a
  // cluster with too few live nodes): nothing was registered, and the caller
  // may try again; any other failure is permanent.
  [[nodiscard]] virtual Status begin_source(const SourceInfo &info, SourceState &state) = 0;
  // All of the batch or none of it; idempotent under replay.
  [[nodiscard]] virtual Status write(const Batch &batch) = 0;

  // The persisted address table, least recently learnt first, for reloading.
  [[nodiscard]] virtual Status load_addresses(
      const std::function<void(const IpAddress &, std::string_view name, TimeUs first, TimeUs last)>
          &fn) = 0;

  // Queries replace the contents of `out`. query_endpoints: ordered by
  // endpoint name; a packet counts iff since <= ts_us < until.
  // Every persisted local host, in the order they were first learnt.
  [[nodiscard]] virtual Status
  load_local_hosts(const std::function<void(const IpAddress &)> &fn) = 0;

  [[nodiscard]] virtual Status query_endpoints(const TimeRange &range,
                                               std::vector<EndpointSummary> &out) = 0;
  // The rows of query_endpoints, in its order, handed to `row` one at a time
  // as the backend yields them: a backend that streams (SQLite) holds one
  // endpoint at a time, whatever the row count. `row` must not call back into
  // the store; a failure it returns stops the query and is returned. This
  // default collects query_endpoints first.
  using EndpointSink = std::function<Status(const EndpointSummary &)>;
  [[nodiscard]] virtual Status for_each_endpoint(const TimeRange &range, const EndpointSink &row) {
    std::vector<EndpointSummary> rows;
    if (Status st = query_endpoints(range, rows); !st) {
      return st;
    }
    for (const EndpointSummary &r : rows) {
      if (Status st = row(r); !st) {
        return st;
      }
    }
    return Status::success();
  }
  // Most recent first. limit 0 = no limit.
  [[nodiscard]] virtual Status query_packets(std::string_view endpoint, std::size_t limit,
                                             std::vector<PacketRow> &out) = 0;
  [[nodiscard]] virtual Status query_addresses(std::vector<AddressRow> &out) = 0;
  // The rows of query_packets, query_addresses and query_flows handed on one
  // at a time, as for_each_endpoint does (SQLite streams them; these defaults
  // collect first).
  template <class Row> using RowSink = std::function<Status(const Row &)>;
  [[nodiscard]] virtual Status for_each_packet(std::string_view endpoint, std::size_t limit,
                                               const RowSink<PacketRow> &row) {
    std::vector<PacketRow> rows;
    Status st = query_packets(endpoint, limit, rows);
    return st ? replay(rows, row) : st;
  }
  [[nodiscard]] virtual Status for_each_address(const RowSink<AddressRow> &row) {
    std::vector<AddressRow> rows;
    Status st = query_addresses(rows);
    return st ? replay(rows, row) : st;
  }
  [[nodiscard]] virtual Status for_each_flow(const FlowQuery &query, const RowSink<FlowRow> &row) {
    std::vector<FlowRow> rows;
    Status st = query_flows(query, rows);
    return st ? replay(rows, row) : st;
  }
  // Ordered by first seen (then client, then endpoint address). A backend
  // that keeps no flows answers unsupported.
  [[nodiscard]] virtual Status query_flows(const FlowQuery & /*query*/, std::vector<FlowRow> &out) {
    out.clear();
    return Status::unsupported("this store keeps no flows");
  }

  // Backends that hand batches on asynchronously (Cassandra, through its
  // durable spool) wait here until everything write() accepted has reached
  // its final place, or `timeout` passes (failure saying what is still
  // pending and why). Synchronous backends are settled as soon as write()
  // returns.
  [[nodiscard]] virtual Status settle(std::chrono::milliseconds /*timeout*/) {
    return Status::success();
  }
  // Metric families of the backend itself; thread-safe, never blocks on I/O.
  virtual void backend_metrics(std::vector<BackendFamily> & /*out*/) {}

protected:
  template <class Row> static Status replay(const std::vector<Row> &rows, const RowSink<Row> &row) {
    for (const Row &r : rows) {
      if (Status st = row(r); !st) {
        return st;
      }
    }
    return Status::success();
  }
};

// A backend that stores nothing and answers every query empty: the whole
// pipeline runs, nothing is kept (`--store none`, benchmarks).
[[nodiscard]] std::unique_ptr<Store> make_null_store();

} // namespace ta::store
