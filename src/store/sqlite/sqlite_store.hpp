// store/sqlite: the embedded SQLite backend, internals shared by its files
// (schema.cpp: schema, migration, open; write.cpp: the ledger and writes;
// query.cpp: loads and queries).
//
// Schema (PRAGMA user_version = 3, PRAGMA application_id = kApplicationId):
//
//   sources    the ingest ledger: one row per capture, identified by its
//              content fingerprint. frames_done only grows (max), complete
//              only turns on (OR), so replaying an old batch never moves the
//              ledger backwards. first_us / updated_us are wall-clock times of
//              registration and of the last write that touched the source.
//   endpoints  hostname -> small integer id; "" is the unresolved endpoint.
//              Rows are never deleted, so a committed name -> id mapping is
//              stable and can be cached in memory.
//   packets    one row per SENT packet (source, frame): key = (source_id <<
//              40) | frame. The key is the rowid, so each source's rows are
//              appended in key order and INSERT OR IGNORE on the key *is* the
//              idempotency check. No secondary index: insert speed comes
//              first; the queries that need packets (query_packets, partial
//              seconds of a ranged query_endpoints) scan. Received packets
//              have no rows.
//   rollups    per (endpoint, second, endpoint address): sent packets and
//              bytes, received_packets and received_bytes (v3), packets of
//              both directions per name source names_none .. names_dns (v3),
//              first/last timestamp of either direction. Derived in the same
//              transaction from the packets that are new (below), so a
//              replayed batch adds nothing. WITHOUT ROWID: the primary key is
//              the only access path.
//   flows      (v3) per flow (origin_source, first_frame): protocol, client
//              and endpoint ends, name (endpoint id) and its source, sent and
//              received packets and bytes, first/last seen: the sum of every
//              batch's deltas; pid and program (v4) of the first batch
//              that knew them. WITHOUT ROWID, no other index.
//   addresses  the learnt DNS table, latest answer wins.
//   local_hosts (v2) hosts that received a DNS response: what makes traffic
//              outbound when no --local-net is given.
//
// Which packets of a batch are new. A sent packet is new iff its row was
// inserted (the key check above). A received packet has no row: it is new
// iff its frame is at or past the source's frames_done as it was before the
// batch (the ledger says every lower frame is accounted for; the batch moves
// it in the same transaction). A flow's deltas are taken as the batch gives
// them, less the packets of the flow that were not new (a replay adds
// nothing; first/last seen are a min/max, so a replay leaves them be).
//
// Address blobs are IpAddress::length() bytes: 4 for IPv4, 16 for IPv6.
// Timestamps are µs since the epoch (TimeUs); `second` is floor(ts_us / 1e6).
//
// Migrations are the table kMigrations: each entry moves the schema from
// version - 1 to version; all pending entries run, with their user_version
// bumps, in one transaction under the write lock (so two processes opening a
// fresh file cannot both create it). A database with a newer version than
// this build knows, or with tables but no version, is refused.
//
// Threading: the connection is opened SQLITE_OPEN_NOMUTEX and every public
// method holds mu_, so calls from several threads are serialised (the
// Writer keeps the store on its own thread anyway; the lock costs one
// uncontended acquire per call). Several processes may share a file: WAL,
// busy_timeout, and writes start with BEGIN IMMEDIATE.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sqlite3.h>

#include "ta/store/store.hpp"

#include "int_math.hpp"
#include "rollup_table.hpp"

namespace ta::store::detail::sqlite {

inline constexpr std::int32_t kApplicationId = 0x54415354; // "TAST"
inline constexpr int kFrameBits = 40;
inline constexpr std::uint64_t kFrameLimit = std::uint64_t{1} << kFrameBits;
// source_id << 40 must stay a positive int64.
inline constexpr std::int64_t kSourceLimit = std::int64_t{1} << (63 - kFrameBits);
inline constexpr std::int64_t kUsPerSecond = 1'000'000;
inline constexpr int kBusyTimeoutMs = 5000;
// Page cache of a store opened for writing, KiB (SqliteStore::tune).
inline constexpr int kWriteCacheKiB = 16384;
// Endpoint name -> id cache bound; cleared wholesale when exceeded.
inline constexpr std::size_t kEndpointCacheMax = 100'000;
// Packets go in two ways (see write_in_transaction): one row per statement
// when a row may already be stored (sqlite3_changes() tells whether it was
// new), or kRowsPerInsert rows per statement when none can be (per-statement
// overhead dominates single-row inserts: ~1.7x faster).
inline constexpr int kRowsPerInsert = 64;
inline constexpr int kPacketColumns = 7;

// ---- helpers ----------------------------------------------------------------

struct StmtDeleter {
  void operator()(sqlite3_stmt *s) const noexcept { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

struct DbDeleter {
  // close_v2: safe even if a statement were still alive.
  void operator()(sqlite3 *db) const noexcept { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbDeleter>;

// Resets a statement when a scope ends, so no early return leaves it busy
// (holding a read snapshot or pointing into freed bindings).
class ResetOnExit {
public:
  explicit ResetOnExit(sqlite3_stmt *s) noexcept : s_(s) {}
  ResetOnExit(const ResetOnExit &) = delete;
  ResetOnExit &operator=(const ResetOnExit &) = delete;
  ~ResetOnExit() { sqlite3_reset(s_); }

private:
  sqlite3_stmt *s_;
};

using detail::ceil_div;
using detail::floor_div;

inline std::int64_t seconds_to_us_saturating(std::int64_t s) noexcept {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max() / kUsPerSecond;
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min() / kUsPerSecond;
  if (s > kMax) {
    return std::numeric_limits<std::int64_t>::max();
  }
  if (s < kMin) {
    return std::numeric_limits<std::int64_t>::min();
  }
  return s * kUsPerSecond;
}

inline TimeUs now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline bool address_from_blob(const void *blob, int len, IpAddress &out) noexcept {
  if (blob == nullptr || (len != 4 && len != 16)) {
    return false;
  }
  out = len == 4 ? IpAddress::v4(static_cast<const std::byte *>(blob))
                 : IpAddress::v6(static_cast<const std::byte *>(blob));
  return true;
}

inline std::string_view column_text(sqlite3_stmt *s, int col) noexcept {
  const auto *p = reinterpret_cast<const char *>(sqlite3_column_text(s, col));
  return p == nullptr ? std::string_view{}
                      : std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
}

inline int bind_text(sqlite3_stmt *s, int i, std::string_view text) noexcept {
  // SQLITE_STATIC: the caller keeps `text` alive until the statement is reset.
  // A null data pointer would bind NULL, not "".
  const char *data = text.data() != nullptr ? text.data() : "";
  return sqlite3_bind_text64(s, i, data, text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

inline int bind_address(sqlite3_stmt *s, int i, const IpAddress &a) noexcept {
  return sqlite3_bind_blob(s, i, a.bytes.data(), static_cast<int>(a.length()), SQLITE_STATIC);
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// ---- the store --------------------------------------------------------------

class SqliteStore final : public Store {
public:
  static Result<std::unique_ptr<Store>> open(const std::string &path);
  // Reading only (query): see open_sqlite_store_read_only in sqlite.hpp.
  static Result<std::unique_ptr<Store>> open_read_only(const std::string &path);

  Status begin_source(const SourceInfo &info, SourceState &state) override;
  Status write(const Batch &batch) override;
  Status load_addresses(
      const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &fn) override;
  Status load_local_hosts(const std::function<void(const IpAddress &)> &fn) override;
  Status query_endpoints(const TimeRange &range, std::vector<EndpointSummary> &out) override;
  Status for_each_endpoint(const TimeRange &range, const EndpointSink &row) override;
  Status query_packets(std::string_view endpoint, std::size_t limit,
                       std::vector<PacketRow> &out) override;
  Status query_addresses(std::vector<AddressRow> &out) override;
  Status query_flows(const FlowQuery &query, std::vector<FlowRow> &out) override;
  Status for_each_packet(std::string_view endpoint, std::size_t limit,
                         const RowSink<PacketRow> &row) override;
  Status for_each_address(const RowSink<AddressRow> &row) override;
  Status for_each_flow(const FlowQuery &query, const RowSink<FlowRow> &row) override;

private:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}

  // One line: "sqlite store 'PATH': WHAT: <sqlite3_errmsg>".
  [[nodiscard]] std::string db_error(std::string_view what) const;
  [[nodiscard]] std::string plain_error(std::string_view what) const;
  [[nodiscard]] Status fail(std::string_view what) const {
    return Status::io_error(db_error(what));
  }

  // Open-time only: runs every statement of `sql` (DDL, pragmas).
  [[nodiscard]] bool run_script(const char *sql, std::string &error);
  [[nodiscard]] bool query_int(const char *sql, std::int64_t &out, std::string &error);
  [[nodiscard]] bool check_readable(std::string &error);
  // `refused`: the file is another application's or a newer schema.
  [[nodiscard]] bool check_intact(std::string &error);
  [[nodiscard]] bool migrate(std::string &error, bool &refused);
  [[nodiscard]] Status check_current_schema();
  [[nodiscard]] bool tune(std::string &error);
  [[nodiscard]] bool prepare_all(std::string &error);

  // Runs a cached no-result statement (BEGIN/COMMIT/...).
  [[nodiscard]] bool step_done(sqlite3_stmt *s) noexcept;
  void rollback() noexcept;

  Status write_in_transaction(const Batch &batch);
  // Checks indices and ranges; sets frames_ascending_.
  Status validate(const Batch &batch);
  // Over sent_[begin, end).
  Status insert_packets_one_by_one(const Batch &batch, std::size_t begin, std::size_t end);
  Status insert_packets_in_bulk(const Batch &batch, std::size_t begin, std::size_t end);
  Status count_received(const Batch &batch, std::uint64_t frames_done);
  Status upsert_flows(const Batch &batch);
  // A packet that was stored before: its flow's deltas lose it.
  void not_new(const PacketRecord &p);
  [[nodiscard]] int bind_packet(sqlite3_stmt *s, int first, const Batch &batch,
                                const PacketRecord &p, std::int64_t eid) noexcept;
  Status resolve(const Batch &batch, std::uint32_t index, std::int64_t &eid);
  Status upsert_rollups();
  Status upsert_learnt(const Batch &batch);
  Status endpoint_id(std::string_view name, std::int64_t &id);
  Status endpoints_in_transaction(const TimeRange &range, const EndpointSink &row);

  std::mutex mu_; // held by every public method
  Db db_;         // declared before the statements: destroyed after them
  std::string path_;
  bool read_only_ = false; // opened by open_read_only: nothing is created or changed

  Stmt begin_write_, begin_read_, commit_, rollback_;
  Stmt insert_source_, select_source_, advance_source_;
  Stmt select_endpoint_, insert_endpoint_;
  Stmt insert_packet_, insert_packets_, max_stored_key_, upsert_rollup_, upsert_address_;
  Stmt select_frames_done_, upsert_flow_, query_flows_;
  Stmt insert_local_host_, load_local_hosts_;
  Stmt load_addresses_, query_addresses_, query_packets_;

  // Committed endpoint name -> id. Cleared on rollback (ids handed out inside
  // a rolled-back transaction are not real) and when it grows too large.
  std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>> endpoint_cache_;
  // Per-batch state, reused across batches.
  std::vector<std::int64_t> batch_endpoint_ids_; // batch index -> id, 0 = not resolved yet
  bool frames_ascending_ = false;                // the sent packets' frames strictly increase
  std::vector<std::uint32_t> sent_;              // indices of the batch's sent packets
  struct FlowLoss {                              // deltas of packets that were not new
    std::uint64_t sent_packets = 0, sent_bytes = 0, received_packets = 0, received_bytes = 0;
  };
  std::vector<FlowLoss> flow_loss_; // by flow index; empty while every packet is new
  std::size_t flow_count_ = 0;      // the batch's flows
  detail::RollupTable rollups_;
};

} // namespace ta::store::detail::sqlite
