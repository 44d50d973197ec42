// store/sqlite_store: the embedded SQLite backend.
//
// Schema (PRAGMA user_version = 2, PRAGMA application_id = kApplicationId):
//
//   sources    the ingest ledger: one row per capture, identified by its
//              content fingerprint. frames_done only grows (max), complete
//              only turns on (OR), so replaying an old batch never moves the
//              ledger backwards. first_us / updated_us are wall-clock times of
//              registration and of the last write that touched the source.
//   endpoints  hostname -> small integer id; "" is the unresolved endpoint.
//              Rows are never deleted, so a committed name -> id mapping is
//              stable and can be cached in memory.
//   packets    one row per (source, frame): key = (source_id << 40) | frame.
//              The key is the rowid, so each source's rows are appended in
//              key order and INSERT OR IGNORE on the key *is* the idempotency
//              check. No secondary index: insert speed comes first; the
//              queries that need packets (query_packets, partial seconds of a
//              ranged query_endpoints) scan.
//   rollups    per (endpoint, second, destination address): packets, bytes,
//              first/last timestamp. Derived in the same transaction from the
//              packet rows that were actually inserted (sqlite3_changes() ==
//              1), so a replayed batch adds nothing. WITHOUT ROWID: the
//              primary key is the only access path.
//   addresses  the learnt DNS table, latest answer wins.
//   local_hosts (v2) hosts that received a DNS response: what makes traffic
//              outbound when no --local-net is given.
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
#include "ta/store/sqlite_store.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sqlite3.h>

#include "int_math.hpp"
#include "rollup_table.hpp"

namespace ta::store {
namespace {

constexpr std::int32_t kApplicationId = 0x54415354; // "TAST"
constexpr int kFrameBits = 40;
constexpr std::uint64_t kFrameLimit = std::uint64_t{1} << kFrameBits;
// source_id << 40 must stay a positive int64.
constexpr std::int64_t kSourceLimit = std::int64_t{1} << (63 - kFrameBits);
constexpr std::int64_t kUsPerSecond = 1'000'000;
constexpr int kBusyTimeoutMs = 5000;
// Endpoint name -> id cache bound; cleared wholesale when exceeded.
constexpr std::size_t kEndpointCacheMax = 100'000;

struct Migration {
  int version;
  const char *sql;
};

// Append only: never edit a shipped entry, add {2, "..."} etc.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE sources(
  id INTEGER PRIMARY KEY,
  fingerprint TEXT UNIQUE NOT NULL,
  path TEXT,
  frames_done INTEGER NOT NULL,
  complete INTEGER NOT NULL,
  first_us INTEGER,
  updated_us INTEGER);
CREATE TABLE endpoints(
  id INTEGER PRIMARY KEY,
  name TEXT UNIQUE NOT NULL);
CREATE TABLE packets(
  key INTEGER PRIMARY KEY,
  endpoint_id INTEGER NOT NULL,
  address BLOB NOT NULL,
  port INTEGER NOT NULL,
  protocol INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  ts_us INTEGER NOT NULL);
CREATE TABLE rollups(
  endpoint_id INTEGER,
  second INTEGER,
  address BLOB,
  packets INTEGER,
  bytes INTEGER,
  first_us INTEGER,
  last_us INTEGER,
  PRIMARY KEY(endpoint_id, second, address)) WITHOUT ROWID;
CREATE TABLE addresses(
  address BLOB PRIMARY KEY,
  name TEXT NOT NULL,
  first_learnt_us INTEGER,
  last_learnt_us INTEGER) WITHOUT ROWID;
)sql"},
    // v2: the local hosts learnt from DNS responses, so a restart keeps
    // knowing which traffic is outbound.
    {2, R"sql(
CREATE TABLE local_hosts(
  address BLOB PRIMARY KEY,
  first_us INTEGER NOT NULL) WITHOUT ROWID;
)sql"},
};
constexpr int kSchemaVersion = std::end(kMigrations)[-1].version;

// ---- SQL of the cached statements -----------------------------------------

constexpr const char *kBeginWrite = "BEGIN IMMEDIATE";
constexpr const char *kBeginRead = "BEGIN";
constexpr const char *kCommit = "COMMIT";
constexpr const char *kRollback = "ROLLBACK";

constexpr const char *kInsertSource =
    "INSERT OR IGNORE INTO sources(fingerprint, path, frames_done, complete, first_us, "
    "updated_us) VALUES(?1, ?2, 0, 0, ?3, ?3)";
constexpr const char *kSelectSource =
    "SELECT id, frames_done, complete FROM sources WHERE fingerprint = ?1";
constexpr const char *kAdvanceSource =
    "UPDATE sources SET frames_done = max(frames_done, ?2), complete = (complete OR ?3), "
    "updated_us = ?4 WHERE id = ?1";

constexpr const char *kSelectEndpoint = "SELECT id FROM endpoints WHERE name = ?1";
constexpr const char *kInsertEndpoint = "INSERT INTO endpoints(name) VALUES(?1)";
constexpr const char *kEndpointName = "SELECT name FROM endpoints WHERE id = ?1";

// Packets go in two ways (see write_in_transaction): one row per statement
// when a row may already be stored (sqlite3_changes() tells whether it was
// new), or kRowsPerInsert rows per statement when none can be (per-statement
// overhead dominates single-row inserts: ~1.7x faster).
constexpr int kRowsPerInsert = 64;
constexpr int kPacketColumns = 7;
constexpr const char *kInsertPacket =
    "INSERT OR IGNORE INTO packets(key, endpoint_id, address, port, protocol, bytes, ts_us) "
    "VALUES(?, ?, ?, ?, ?, ?, ?)";
std::string insert_packets_sql(int rows) {
  std::string sql = kInsertPacket;
  for (int i = 1; i < rows; ++i) {
    sql += ", (?, ?, ?, ?, ?, ?, ?)";
  }
  return sql;
}
// The highest stored key of a key range: one reverse seek on the rowid.
constexpr const char *kMaxStoredKey =
    "SELECT key FROM packets WHERE key BETWEEN ?1 AND ?2 ORDER BY key DESC LIMIT 1";

constexpr const char *kUpsertRollup =
    "INSERT INTO rollups(endpoint_id, second, address, packets, bytes, first_us, last_us) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT(endpoint_id, second, address) DO UPDATE SET "
    "packets = packets + excluded.packets, bytes = bytes + excluded.bytes, "
    "first_us = min(first_us, excluded.first_us), last_us = max(last_us, excluded.last_us)";

// Latest answer wins. The same name again widens [first, last] (so replays
// and out-of-order batches converge); a different name replaces the row only
// if it is at least as recent, and then first_learnt restarts with it. The
// SET expressions read the row's old values.
constexpr const char *kUpsertAddress =
    "INSERT INTO addresses(address, name, first_learnt_us, last_learnt_us) "
    "VALUES(?1, ?2, ?3, ?3) "
    "ON CONFLICT(address) DO UPDATE SET "
    "first_learnt_us = CASE WHEN excluded.name = name "
    "THEN min(first_learnt_us, excluded.first_learnt_us) ELSE excluded.first_learnt_us END, "
    "last_learnt_us = max(last_learnt_us, excluded.last_learnt_us), "
    "name = excluded.name "
    "WHERE excluded.name = name OR excluded.last_learnt_us >= last_learnt_us";

constexpr const char *kInsertLocalHost =
    "INSERT INTO local_hosts(address, first_us) VALUES(?1, ?2) ON CONFLICT DO NOTHING";
constexpr const char *kLoadLocalHosts =
    "SELECT address FROM local_hosts ORDER BY first_us, address";
constexpr const char *kLoadAddresses =
    "SELECT address, name, first_learnt_us, last_learnt_us FROM addresses "
    "ORDER BY last_learnt_us, address";
constexpr const char *kQueryAddresses =
    "SELECT address, name, first_learnt_us, last_learnt_us FROM addresses ORDER BY name, address";

constexpr const char *kRollupSummary =
    "SELECT endpoint_id, address, sum(packets), sum(bytes), min(first_us), max(last_us) "
    "FROM rollups WHERE second >= ?1 AND second < ?2 GROUP BY endpoint_id, address";
// Two half-open µs intervals (the partial boundary seconds of a range).
constexpr const char *kPacketSummary =
    "SELECT endpoint_id, address, count(*), sum(bytes), min(ts_us), max(ts_us) FROM packets "
    "WHERE (ts_us >= ?1 AND ts_us < ?2) OR (ts_us >= ?3 AND ts_us < ?4) "
    "GROUP BY endpoint_id, address";

constexpr const char *kQueryPackets =
    "SELECT p.ts_us, p.address, p.port, p.protocol, p.bytes FROM packets AS p "
    "WHERE p.endpoint_id = (SELECT id FROM endpoints WHERE name = ?1) "
    "ORDER BY p.ts_us DESC, p.key DESC LIMIT ?2";

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

std::int64_t seconds_to_us_saturating(std::int64_t s) noexcept {
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

TimeUs now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool address_from_blob(const void *blob, int len, IpAddress &out) noexcept {
  if (blob == nullptr || (len != 4 && len != 16)) {
    return false;
  }
  out = len == 4 ? IpAddress::v4(static_cast<const std::byte *>(blob))
                 : IpAddress::v6(static_cast<const std::byte *>(blob));
  return true;
}

std::string_view column_text(sqlite3_stmt *s, int col) noexcept {
  const auto *p = reinterpret_cast<const char *>(sqlite3_column_text(s, col));
  return p == nullptr ? std::string_view{}
                      : std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
}

int bind_text(sqlite3_stmt *s, int i, std::string_view text) noexcept {
  // SQLITE_STATIC: the caller keeps `text` alive until the statement is reset.
  // A null data pointer would bind NULL, not "".
  const char *data = text.data() != nullptr ? text.data() : "";
  return sqlite3_bind_text64(s, i, data, text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

int bind_address(sqlite3_stmt *s, int i, const IpAddress &a) noexcept {
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
  static std::unique_ptr<Store> open(const std::string &path, std::string &error);

  Status begin_source(const SourceInfo &info, SourceState &state) override;
  Status write(const Batch &batch) override;
  Status load_addresses(
      const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &fn) override;
  Status load_local_hosts(const std::function<void(const IpAddress &)> &fn) override;
  Status query_endpoints(const TimeRange &range, std::vector<EndpointSummary> &out) override;
  Status query_packets(std::string_view endpoint, std::size_t limit,
                       std::vector<PacketRow> &out) override;
  Status query_addresses(std::vector<AddressRow> &out) override;

private:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}

  // One line: "sqlite store 'PATH': WHAT: <sqlite3_errmsg>".
  [[nodiscard]] std::string db_error(std::string_view what) const;
  [[nodiscard]] std::string plain_error(std::string_view what) const;
  [[nodiscard]] Status fail(std::string_view what) const { return Status::failure(db_error(what)); }

  // Open-time only: runs every statement of `sql` (DDL, pragmas).
  [[nodiscard]] bool run_script(const char *sql, std::string &error);
  [[nodiscard]] bool query_int(const char *sql, std::int64_t &out, std::string &error);
  [[nodiscard]] bool check_readable(std::string &error);
  [[nodiscard]] bool migrate(std::string &error);
  [[nodiscard]] bool tune(std::string &error);
  [[nodiscard]] bool prepare_all(std::string &error);

  // Runs a cached no-result statement (BEGIN/COMMIT/...).
  [[nodiscard]] bool step_done(sqlite3_stmt *s) noexcept;
  void rollback() noexcept;

  Status write_in_transaction(const Batch &batch);
  // Checks indices and ranges; sets frames_ascending_.
  Status validate(const Batch &batch);
  Status insert_packets_one_by_one(const Batch &batch, std::size_t begin, std::size_t end);
  Status insert_packets_in_bulk(const Batch &batch, std::size_t begin, std::size_t end);
  [[nodiscard]] int bind_packet(sqlite3_stmt *s, int first, const Batch &batch,
                                const PacketRecord &p, std::int64_t eid) noexcept;
  Status resolve(const Batch &batch, std::uint32_t index, std::int64_t &eid);
  Status upsert_rollups();
  Status upsert_learnt(const Batch &batch);
  Status endpoint_id(std::string_view name, std::int64_t &id);
  Status query_endpoints_in_transaction(const TimeRange &range, std::vector<EndpointSummary> &out);

  std::mutex mu_; // held by every public method
  Db db_;         // declared before the statements: destroyed after them
  std::string path_;

  Stmt begin_write_, begin_read_, commit_, rollback_;
  Stmt insert_source_, select_source_, advance_source_;
  Stmt select_endpoint_, insert_endpoint_, endpoint_name_;
  Stmt insert_packet_, insert_packets_, max_stored_key_, upsert_rollup_, upsert_address_;
  Stmt insert_local_host_, load_local_hosts_;
  Stmt load_addresses_, query_addresses_, rollup_summary_, packet_summary_, query_packets_;

  // Committed endpoint name -> id. Cleared on rollback (ids handed out inside
  // a rolled-back transaction are not real) and when it grows too large.
  std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>> endpoint_cache_;
  // Per-batch state, reused across batches.
  std::vector<std::int64_t> batch_endpoint_ids_; // batch index -> id, 0 = not resolved yet
  bool frames_ascending_ = false;                // the batch's frames strictly increase
  detail::RollupTable rollups_;
};

std::string SqliteStore::plain_error(std::string_view what) const {
  std::string msg = "sqlite store '";
  msg += path_;
  msg += "': ";
  msg += what;
  return msg;
}

std::string SqliteStore::db_error(std::string_view what) const {
  std::string msg = plain_error(what);
  msg += ": ";
  msg += db_ ? sqlite3_errmsg(db_.get()) : "out of memory";
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  return msg;
}

bool SqliteStore::run_script(const char *sql, std::string &error) {
  const char *tail = sql;
  while (tail != nullptr && *tail != '\0') {
    sqlite3_stmt *raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), tail, -1, &raw, &tail) != SQLITE_OK) {
      error = db_error("preparing schema statement");
      return false;
    }
    if (raw == nullptr) { // whitespace or comment only
      continue;
    }
    Stmt s(raw);
    int rc = SQLITE_ROW;
    while (rc == SQLITE_ROW) {
      rc = sqlite3_step(s.get());
    }
    if (rc != SQLITE_DONE) {
      error = db_error(std::string("running '") + sqlite3_sql(s.get()) + "'");
      return false;
    }
  }
  return true;
}

bool SqliteStore::query_int(const char *sql, std::int64_t &out, std::string &error) {
  sqlite3_stmt *raw = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr) != SQLITE_OK) {
    error = db_error(std::string("preparing '") + sql + "'");
    return false;
  }
  Stmt s(raw);
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_ROW) {
    error = db_error(std::string("running '") + sql + "'");
    return false;
  }
  out = sqlite3_column_int64(s.get(), 0);
  return true;
}

bool SqliteStore::check_readable(std::string &error) {
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);
  // The first read of the file: a file that is not a database fails here.
  std::int64_t objects = 0;
  if (!query_int("SELECT count(*) FROM sqlite_schema", objects, error)) {
    const int code = sqlite3_errcode(db_.get());
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      error = db_error("not a usable SQLite database");
    }
    return false;
  }
  // 16 KiB pages for a new file (the size is fixed once the first table
  // exists): ~5% fewer instructions per appended packet row than 4 KiB, and
  // fewer, larger writes.
  if (objects == 0 && !run_script("PRAGMA page_size=16384", error)) {
    return false;
  }
  return true;
}

bool SqliteStore::tune(std::string &error) {
  // After migrate(), so a foreign database is refused before we change its
  // journal mode. WAL: readers never block the writer and a commit is one
  // sequential append. synchronous=NORMAL in WAL is durable against
  // application crashes (an OS crash may lose the last commits, never
  // corrupt). 64 MiB page cache. WAL may be unavailable (e.g. ":memory:");
  // whatever mode SQLite grants is accepted.
  return run_script("PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA cache_size=-65536;"
                    "PRAGMA temp_store=MEMORY;",
                    error);
}

bool SqliteStore::migrate(std::string &error) {
  // Under the write lock, so two processes opening a fresh file do not both
  // create the schema.
  if (!run_script("BEGIN IMMEDIATE", error)) {
    return false;
  }
  const auto abort = [this] {
    std::string ignored;
    (void)run_script("ROLLBACK", ignored);
    return false;
  };
  std::int64_t version = 0;
  std::int64_t app_id = 0;
  std::int64_t objects = 0;
  if (!query_int("PRAGMA user_version", version, error) ||
      !query_int("PRAGMA application_id", app_id, error) ||
      !query_int("SELECT count(*) FROM sqlite_schema", objects, error)) {
    return abort();
  }
  if (app_id != 0 && app_id != kApplicationId) {
    error = plain_error("not a traffic-analyzer database (application_id " +
                        std::to_string(app_id) + ")");
    return abort();
  }
  if (version == 0 && objects != 0) {
    error = plain_error("not a traffic-analyzer database (has tables but no schema version)");
    return abort();
  }
  if (version > kSchemaVersion) {
    error = plain_error("schema version " + std::to_string(version) +
                        " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                        "); upgrade traffic-analyzer");
    return abort();
  }
  for (const Migration &m : kMigrations) {
    if (m.version <= version) {
      continue;
    }
    if (!run_script(m.sql, error) ||
        !run_script(("PRAGMA user_version=" + std::to_string(m.version)).c_str(), error)) {
      return abort();
    }
  }
  if (version == 0 &&
      !run_script(("PRAGMA application_id=" + std::to_string(kApplicationId)).c_str(), error)) {
    return abort();
  }
  if (!run_script("COMMIT", error)) {
    return abort();
  }
  return true;
}

bool SqliteStore::prepare_all(std::string &error) {
  struct Entry {
    Stmt *stmt;
    const char *sql;
  };
  const Entry entries[] = {
      {&begin_write_, kBeginWrite},
      {&begin_read_, kBeginRead},
      {&commit_, kCommit},
      {&rollback_, kRollback},
      {&insert_source_, kInsertSource},
      {&select_source_, kSelectSource},
      {&advance_source_, kAdvanceSource},
      {&select_endpoint_, kSelectEndpoint},
      {&insert_endpoint_, kInsertEndpoint},
      {&endpoint_name_, kEndpointName},
      {&insert_packet_, kInsertPacket},
      {&upsert_rollup_, kUpsertRollup},
      {&upsert_address_, kUpsertAddress},
      {&load_addresses_, kLoadAddresses},
      {&insert_local_host_, kInsertLocalHost},
      {&load_local_hosts_, kLoadLocalHosts},
      {&query_addresses_, kQueryAddresses},
      {&rollup_summary_, kRollupSummary},
      {&packet_summary_, kPacketSummary},
      {&query_packets_, kQueryPackets},
      {&max_stored_key_, kMaxStoredKey},
  };
  for (const Entry &e : entries) {
    sqlite3_stmt *raw = nullptr;
    if (sqlite3_prepare_v3(db_.get(), e.sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
        SQLITE_OK) {
      error = db_error(std::string("preparing '") + e.sql + "'");
      return false;
    }
    e.stmt->reset(raw);
  }
  const std::string bulk = insert_packets_sql(kRowsPerInsert);
  sqlite3_stmt *raw = nullptr;
  if (sqlite3_prepare_v3(db_.get(), bulk.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
      SQLITE_OK) {
    error = db_error("preparing the bulk packet insert");
    return false;
  }
  insert_packets_.reset(raw);
  return true;
}

std::unique_ptr<Store> SqliteStore::open(const std::string &path, std::string &error) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  if (path.empty()) {
    error = store->plain_error("empty database path");
    return nullptr;
  }
  sqlite3 *raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  store->db_.reset(raw); // also on failure: the handle carries the message
  if (rc != SQLITE_OK) {
    error = store->db_error("cannot open");
    return nullptr;
  }
  if (!store->check_readable(error) || !store->migrate(error) || !store->tune(error) ||
      !store->prepare_all(error)) {
    return nullptr;
  }
  return store;
}

bool SqliteStore::step_done(sqlite3_stmt *s) noexcept {
  const int rc = sqlite3_step(s);
  // Reset on success only: on failure the caller still reads sqlite3_errmsg,
  // and rollback() resets every statement.
  if (rc == SQLITE_DONE) {
    sqlite3_reset(s);
    return true;
  }
  return false;
}

void SqliteStore::rollback() noexcept {
  // Reset everything that may be mid-step, then roll back if a transaction is
  // still open (SQLite may already have rolled back, e.g. on SQLITE_FULL).
  sqlite3_stmt *s = nullptr;
  while ((s = sqlite3_next_stmt(db_.get(), s)) != nullptr) {
    sqlite3_reset(s);
  }
  if (sqlite3_get_autocommit(db_.get()) == 0) {
    sqlite3_step(rollback_.get());
    sqlite3_reset(rollback_.get());
  }
  endpoint_cache_.clear();
}

// ---- sources ---------------------------------------------------------------

Status SqliteStore::begin_source(const SourceInfo &info, SourceState &state) {
  try {
    const std::lock_guard lock(mu_);
    if (info.fingerprint.empty()) {
      return Status::failure(plain_error("begin_source: empty fingerprint"));
    }
    {
      sqlite3_stmt *s = insert_source_.get();
      ResetOnExit reset(s);
      const TimeUs now = now_us();
      if ((bind_text(s, 1, info.fingerprint) | bind_text(s, 2, info.path) |
           sqlite3_bind_int64(s, 3, now)) != SQLITE_OK ||
          sqlite3_step(s) != SQLITE_DONE) {
        return fail("registering source " + info.fingerprint);
      }
    }
    sqlite3_stmt *s = select_source_.get();
    ResetOnExit reset(s);
    if (bind_text(s, 1, info.fingerprint) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
      return fail("reading source " + info.fingerprint);
    }
    const std::int64_t id = sqlite3_column_int64(s, 0);
    const std::int64_t done = sqlite3_column_int64(s, 1);
    if (id <= 0 || id >= kSourceLimit || done < 0) {
      return Status::failure(
          plain_error("source " + info.fingerprint + " has an out-of-range ledger row (id " +
                      std::to_string(id) + ", frames_done " + std::to_string(done) + ")"));
    }
    state.id = id;
    state.frames_done = static_cast<std::uint64_t>(done);
    state.complete = sqlite3_column_int64(s, 2) != 0;
    return Status::success();
  } catch (...) {
    return Status::failure(plain_error("begin_source: out of memory"));
  }
}

// ---- write -----------------------------------------------------------------

Status SqliteStore::validate(const Batch &batch) {
  if (batch.source_id <= 0 || batch.source_id >= kSourceLimit) {
    return Status::failure(
        plain_error("write: source id " + std::to_string(batch.source_id) + " out of range"));
  }
  if (batch.frames_through > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return Status::failure(plain_error("write: frames_through " +
                                       std::to_string(batch.frames_through) + " out of range"));
  }
  const std::size_t names = batch.endpoints.size();
  frames_ascending_ = true;
  std::uint64_t previous = 0;
  for (const PacketRecord &p : batch.packets) {
    if (&p != batch.packets.data() && p.frame <= previous) {
      frames_ascending_ = false;
    }
    previous = p.frame;
    if (p.frame >= kFrameLimit) {
      return Status::failure(plain_error("write: frame " + std::to_string(p.frame) +
                                         " exceeds the 2^40 frames a source may have"));
    }
    if (p.endpoint >= names) {
      return Status::failure(plain_error("write: frame " + std::to_string(p.frame) +
                                         " refers to endpoint #" + std::to_string(p.endpoint) +
                                         " of " + std::to_string(names)));
    }
    if (!p.dst.valid()) {
      return Status::failure(
          plain_error("write: frame " + std::to_string(p.frame) + " has no destination address"));
    }
  }
  for (const LearntAddress &l : batch.learnt) {
    if (l.name >= names) {
      return Status::failure(plain_error("write: learnt address refers to name #" +
                                         std::to_string(l.name) + " of " + std::to_string(names)));
    }
    if (!l.address.valid()) {
      return Status::failure(plain_error("write: learnt address without an address"));
    }
  }
  return Status::success();
}

Status SqliteStore::endpoint_id(std::string_view name, std::int64_t &id) {
  if (const auto it = endpoint_cache_.find(name); it != endpoint_cache_.end()) {
    id = it->second;
    return Status::success();
  }
  {
    sqlite3_stmt *s = select_endpoint_.get();
    ResetOnExit reset(s);
    if (bind_text(s, 1, name) != SQLITE_OK) {
      return fail("looking up endpoint");
    }
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      id = sqlite3_column_int64(s, 0);
    } else if (rc == SQLITE_DONE) {
      id = 0;
    } else {
      return fail("looking up endpoint");
    }
  }
  if (id == 0) {
    sqlite3_stmt *s = insert_endpoint_.get();
    ResetOnExit reset(s);
    if (bind_text(s, 1, name) != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE) {
      return fail("adding endpoint");
    }
    id = sqlite3_last_insert_rowid(db_.get());
  }
  if (endpoint_cache_.size() >= kEndpointCacheMax) {
    endpoint_cache_.clear();
  }
  endpoint_cache_.emplace(std::string(name), id);
  return Status::success();
}

Status SqliteStore::resolve(const Batch &batch, std::uint32_t index, std::int64_t &eid) {
  std::int64_t &cached = batch_endpoint_ids_[index];
  if (cached == 0) {
    if (Status st = endpoint_id(batch.endpoints[index], cached); !st) {
      return st;
    }
  }
  eid = cached;
  return Status::success();
}

int SqliteStore::bind_packet(sqlite3_stmt *s, int first, const Batch &batch, const PacketRecord &p,
                             std::int64_t eid) noexcept {
  const std::int64_t key = (batch.source_id << kFrameBits) | static_cast<std::int64_t>(p.frame);
  return sqlite3_bind_int64(s, first, key) | sqlite3_bind_int64(s, first + 1, eid) |
         bind_address(s, first + 2, p.dst) | sqlite3_bind_int(s, first + 3, p.dst_port) |
         sqlite3_bind_int(s, first + 4, p.protocol) | sqlite3_bind_int64(s, first + 5, p.bytes) |
         sqlite3_bind_int64(s, first + 6, p.ts_us);
}

// Each row on its own: sqlite3_changes() says whether it was new, and only new
// rows are rolled up.
Status SqliteStore::insert_packets_one_by_one(const Batch &batch, std::size_t begin,
                                              std::size_t end) {
  sqlite3_stmt *ins = insert_packet_.get();
  for (std::size_t i = begin; i < end; ++i) {
    const PacketRecord &p = batch.packets[i];
    std::int64_t eid = 0;
    if (Status st = resolve(batch, p.endpoint, eid); !st) {
      return st;
    }
    if (bind_packet(ins, 1, batch, p, eid) != SQLITE_OK || !step_done(ins)) {
      return fail("inserting frame " + std::to_string(p.frame));
    }
    if (sqlite3_changes(db_.get()) == 1) { // 0: stored by an earlier write
      rollups_.add(detail::RollupKey{eid, floor_div(p.ts_us, kUsPerSecond), p.dst}, p.bytes,
                   p.ts_us);
    }
  }
  return Status::success();
}

// Rows known to be new (see write_in_transaction), kRowsPerInsert per
// statement. Every row must be inserted; if one were not, our reasoning
// would be wrong and the roll-ups would count it, so that fails the batch.
Status SqliteStore::insert_packets_in_bulk(const Batch &batch, std::size_t begin, std::size_t end) {
  std::size_t i = begin;
  sqlite3_stmt *bulk = insert_packets_.get();
  while (i < end) {
    const bool full = end - i >= static_cast<std::size_t>(kRowsPerInsert);
    sqlite3_stmt *s = full ? bulk : insert_packet_.get();
    const std::size_t rows = full ? kRowsPerInsert : 1;
    int brc = SQLITE_OK;
    for (std::size_t r = 0; r < rows; ++r) {
      const PacketRecord &p = batch.packets[i + r];
      std::int64_t eid = 0;
      if (Status st = resolve(batch, p.endpoint, eid); !st) {
        return st;
      }
      brc |= bind_packet(s, static_cast<int>(r) * kPacketColumns + 1, batch, p, eid);
      rollups_.add(detail::RollupKey{eid, floor_div(p.ts_us, kUsPerSecond), p.dst}, p.bytes,
                   p.ts_us);
    }
    if (brc != SQLITE_OK || !step_done(s)) {
      return fail("inserting frames " + std::to_string(batch.packets[i].frame) + ".." +
                  std::to_string(batch.packets[i + rows - 1].frame));
    }
    if (sqlite3_changes(db_.get()) != static_cast<int>(rows)) {
      return Status::failure(plain_error("write: frames " + std::to_string(batch.packets[i].frame) +
                                         ".." + std::to_string(batch.packets[i + rows - 1].frame) +
                                         " were unexpectedly already stored"));
    }
    i += rows;
  }
  return Status::success();
}

// Adds the batch's roll-ups (new packets only) to the stored ones, in key order.
Status SqliteStore::upsert_rollups() {
  rollups_.sort_by_key();
  sqlite3_stmt *up = upsert_rollup_.get();
  for (const detail::Rollup &r : rollups_.entries()) {
    const int brc = sqlite3_bind_int64(up, 1, r.key.endpoint_id) |
                    sqlite3_bind_int64(up, 2, r.key.second) | bind_address(up, 3, r.key.address) |
                    sqlite3_bind_int64(up, 4, r.packets) | sqlite3_bind_int64(up, 5, r.bytes) |
                    sqlite3_bind_int64(up, 6, r.first_us) | sqlite3_bind_int64(up, 7, r.last_us);
    if (brc != SQLITE_OK || !step_done(up)) {
      return fail("updating roll-ups");
    }
  }
  return Status::success();
}

Status SqliteStore::upsert_learnt(const Batch &batch) {
  sqlite3_stmt *addr = upsert_address_.get();
  for (const LearntAddress &l : batch.learnt) {
    const int brc = bind_address(addr, 1, l.address) | bind_text(addr, 2, batch.endpoints[l.name]) |
                    sqlite3_bind_int64(addr, 3, l.when);
    if (brc != SQLITE_OK || !step_done(addr)) {
      return fail("recording learnt address " + l.address.to_string());
    }
  }
  return Status::success();
}

Status SqliteStore::write_in_transaction(const Batch &batch) {
  sqlite3 *db = db_.get();

  // The ledger first: an unknown source fails before any work.
  {
    sqlite3_stmt *s = advance_source_.get();
    ResetOnExit reset(s);
    if ((sqlite3_bind_int64(s, 1, batch.source_id) |
         sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(batch.frames_through)) |
         sqlite3_bind_int(s, 3, batch.source_complete ? 1 : 0) |
         sqlite3_bind_int64(s, 4, now_us())) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_DONE) {
      return fail("advancing the source ledger");
    }
    if (sqlite3_changes(db) != 1) {
      return Status::failure(
          plain_error("write: unknown source id " + std::to_string(batch.source_id)));
    }
  }

  batch_endpoint_ids_.assign(batch.endpoints.size(), 0);
  rollups_.clear();

  // Which packets may already be stored? With strictly ascending frames (the
  // normal case) and nothing stored in the batch's key range, none can be:
  // they all go in bulk. After a crash the batch being retried overlaps what
  // is stored: the packets up to the highest stored key go one by one (each
  // tells whether it was new), the rest in bulk. Anything else (unordered or
  // repeated frames) goes one by one.
  const std::size_t n = batch.packets.size();
  std::size_t bulk_from = n;
  if (frames_ascending_ && n != 0) {
    const std::int64_t key_base = batch.source_id << kFrameBits;
    sqlite3_stmt *s = max_stored_key_.get();
    ResetOnExit reset(s);
    if ((sqlite3_bind_int64(s, 1,
                            key_base | static_cast<std::int64_t>(batch.packets.front().frame)) |
         sqlite3_bind_int64(s, 2,
                            key_base | static_cast<std::int64_t>(batch.packets.back().frame))) !=
        SQLITE_OK) {
      return fail("checking for stored frames");
    }
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      bulk_from = 0;
    } else if (rc == SQLITE_ROW) {
      const auto stored = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0) - key_base);
      bulk_from = static_cast<std::size_t>(
          std::upper_bound(batch.packets.begin(), batch.packets.end(), stored,
                           [](std::uint64_t f, const PacketRecord &p) { return f < p.frame; }) -
          batch.packets.begin());
    } else {
      return fail("checking for stored frames");
    }
  }
  if (Status st = insert_packets_one_by_one(batch, 0, bulk_from); !st) {
    return st;
  }
  if (Status st = insert_packets_in_bulk(batch, bulk_from, n); !st) {
    return st;
  }

  if (Status st = upsert_rollups(); !st) {
    return st;
  }
  if (Status st = upsert_learnt(batch); !st) {
    return st;
  }
  {
    sqlite3_stmt *lh = insert_local_host_.get();
    const std::int64_t now = now_us();
    for (const IpAddress &a : batch.local_hosts) {
      if ((bind_address(lh, 1, a) | sqlite3_bind_int64(lh, 2, now)) != SQLITE_OK ||
          !step_done(lh)) {
        return fail("recording local host " + a.to_string());
      }
    }
  }
  if (!step_done(commit_.get())) {
    return fail("commit");
  }
  return Status::success();
}

Status SqliteStore::write(const Batch &batch) {
  try {
    const std::lock_guard lock(mu_);
    if (Status st = validate(batch); !st) {
      return st;
    }
    if (!step_done(begin_write_.get())) {
      Status st = fail("begin transaction");
      rollback();
      return st;
    }
    Status st = write_in_transaction(batch);
    if (!st) {
      rollback();
    }
    return st;
  } catch (...) {
    rollback();
    return Status::failure(plain_error("write: out of memory"));
  }
}

// ---- queries ---------------------------------------------------------------

// `fn` runs under mu_: it must not call back into the store.
Status SqliteStore::load_addresses(
    const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &fn) {
  try {
    const std::lock_guard lock(mu_);
    sqlite3_stmt *s = load_addresses_.get();
    ResetOnExit reset(s);
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress a;
      if (!address_from_blob(sqlite3_column_blob(s, 0), sqlite3_column_bytes(s, 0), a)) {
        return Status::failure(plain_error("addresses table holds a malformed address"));
      }
      fn(a, column_text(s, 1), sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3));
    }
    if (rc != SQLITE_DONE) {
      return fail("loading addresses");
    }
    return Status::success();
  } catch (...) {
    return Status::failure(plain_error("load_addresses: exception"));
  }
}

Status SqliteStore::load_local_hosts(const std::function<void(const IpAddress &)> &fn) {
  try {
    const std::lock_guard lock(mu_);
    sqlite3_stmt *s = load_local_hosts_.get();
    ResetOnExit reset(s);
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress a;
      if (!address_from_blob(sqlite3_column_blob(s, 0), sqlite3_column_bytes(s, 0), a)) {
        return Status::failure(plain_error("local_hosts table holds a malformed address"));
      }
      fn(a);
    }
    if (rc != SQLITE_DONE) {
      return fail("loading local hosts");
    }
    return Status::success();
  } catch (...) {
    return Status::failure(plain_error("load_local_hosts: exception"));
  }
}

Status SqliteStore::query_addresses(std::vector<AddressRow> &out) {
  try {
    const std::lock_guard lock(mu_);
    out.clear();
    sqlite3_stmt *s = query_addresses_.get();
    ResetOnExit reset(s);
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress a;
      if (!address_from_blob(sqlite3_column_blob(s, 0), sqlite3_column_bytes(s, 0), a)) {
        return Status::failure(plain_error("addresses table holds a malformed address"));
      }
      out.push_back(AddressRow{a.to_string(), std::string(column_text(s, 1)),
                               sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3)});
    }
    if (rc != SQLITE_DONE) {
      return fail("querying addresses");
    }
    return Status::success();
  } catch (...) {
    return Status::failure(plain_error("query_addresses: out of memory"));
  }
}

Status SqliteStore::query_packets(std::string_view endpoint, std::size_t limit,
                                  std::vector<PacketRow> &out) {
  try {
    const std::lock_guard lock(mu_);
    out.clear();
    sqlite3_stmt *s = query_packets_.get();
    ResetOnExit reset(s);
    const std::int64_t lim =
        limit == 0 || limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
            ? -1 // SQLite: a negative LIMIT means none
            : static_cast<std::int64_t>(limit);
    if ((bind_text(s, 1, endpoint) | sqlite3_bind_int64(s, 2, lim)) != SQLITE_OK) {
      return fail("querying packets");
    }
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress a;
      if (!address_from_blob(sqlite3_column_blob(s, 1), sqlite3_column_bytes(s, 1), a)) {
        return Status::failure(plain_error("packets table holds a malformed address"));
      }
      PacketRow row;
      row.endpoint = std::string(endpoint);
      row.ts_us = sqlite3_column_int64(s, 0);
      row.address = a.to_string();
      row.port = static_cast<std::uint16_t>(sqlite3_column_int64(s, 2));
      row.protocol = static_cast<std::uint8_t>(sqlite3_column_int64(s, 3));
      row.bytes = static_cast<std::uint32_t>(sqlite3_column_int64(s, 4));
      out.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) {
      return fail("querying packets");
    }
    return Status::success();
  } catch (...) {
    return Status::failure(plain_error("query_packets: out of memory"));
  }
}

// Exact range semantics: a packet counts iff since <= ts_us < until.
//
// Whole seconds inside the range come from rollups (cheap: the roll-up rows of
// those seconds). A boundary second only partly inside the range cannot be
// answered from its roll-up, so the packets of the partial pieces
// [since, first whole second) and [end of last whole second, until) are
// aggregated from the packets table (a full scan: it has no time index). A
// range whose bounds are whole seconds (the usual case: dates, plain seconds)
// never touches the packets table. Both sources are merged per endpoint.
Status SqliteStore::query_endpoints_in_transaction(const TimeRange &range,
                                                   std::vector<EndpointSummary> &out) {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t since = range.since.value_or(kMin);
  const std::int64_t until = range.until.value_or(kMax);
  // Whole seconds [lo, hi).
  const std::int64_t lo = range.since ? ceil_div(since, kUsPerSecond) : kMin;
  const std::int64_t hi = range.until ? floor_div(until, kUsPerSecond) : kMax;
  // Partial pieces in µs (empty when begin >= end).
  const std::int64_t piece1_begin = since;
  const std::int64_t piece1_end =
      range.since ? std::min(until, seconds_to_us_saturating(lo)) : kMin;
  const std::int64_t piece2_begin =
      range.until ? std::max(since, seconds_to_us_saturating(hi)) : kMax;
  const std::int64_t piece2_end = until;

  struct Agg {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    TimeUs first = std::numeric_limits<TimeUs>::max();
    TimeUs last = std::numeric_limits<TimeUs>::min();
    std::vector<IpAddress> addresses;
  };
  std::map<std::int64_t, Agg> by_id;

  const auto collect = [&](sqlite3_stmt *s, std::string_view what) -> Status {
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress a;
      if (!address_from_blob(sqlite3_column_blob(s, 1), sqlite3_column_bytes(s, 1), a)) {
        return Status::failure(plain_error(std::string(what) + " holds a malformed address"));
      }
      Agg &agg = by_id[sqlite3_column_int64(s, 0)];
      agg.packets += static_cast<std::uint64_t>(sqlite3_column_int64(s, 2));
      agg.bytes += static_cast<std::uint64_t>(sqlite3_column_int64(s, 3));
      agg.first = std::min<TimeUs>(agg.first, sqlite3_column_int64(s, 4));
      agg.last = std::max<TimeUs>(agg.last, sqlite3_column_int64(s, 5));
      agg.addresses.push_back(a);
    }
    if (rc != SQLITE_DONE) {
      return fail(std::string("summarising ") + std::string(what));
    }
    return Status::success();
  };

  if (lo < hi) {
    sqlite3_stmt *s = rollup_summary_.get();
    ResetOnExit reset(s);
    if ((sqlite3_bind_int64(s, 1, lo) | sqlite3_bind_int64(s, 2, hi)) != SQLITE_OK) {
      return fail("summarising rollups");
    }
    if (Status st = collect(s, "rollups"); !st) {
      return st;
    }
  }
  if (piece1_begin < piece1_end || piece2_begin < piece2_end) {
    sqlite3_stmt *s = packet_summary_.get();
    ResetOnExit reset(s);
    if ((sqlite3_bind_int64(s, 1, piece1_begin) | sqlite3_bind_int64(s, 2, piece1_end) |
         sqlite3_bind_int64(s, 3, piece2_begin) | sqlite3_bind_int64(s, 4, piece2_end)) !=
        SQLITE_OK) {
      return fail("summarising packets");
    }
    if (Status st = collect(s, "packets"); !st) {
      return st;
    }
  }

  out.reserve(by_id.size());
  sqlite3_stmt *name_stmt = endpoint_name_.get();
  for (auto &[id, agg] : by_id) {
    EndpointSummary e;
    {
      ResetOnExit reset(name_stmt);
      if (sqlite3_bind_int64(name_stmt, 1, id) != SQLITE_OK) {
        return fail("reading endpoint names");
      }
      const int rc = sqlite3_step(name_stmt);
      if (rc == SQLITE_ROW) {
        e.endpoint = std::string(column_text(name_stmt, 0));
      } else if (rc == SQLITE_DONE) {
        return Status::failure(
            plain_error("rollups refer to unknown endpoint id " + std::to_string(id)));
      } else {
        return fail("reading endpoint names");
      }
    }
    e.packets = agg.packets;
    e.bytes = agg.bytes;
    e.first_seen = agg.first;
    e.last_seen = agg.last;
    std::sort(agg.addresses.begin(), agg.addresses.end());
    agg.addresses.erase(std::unique(agg.addresses.begin(), agg.addresses.end()),
                        agg.addresses.end());
    e.addresses.reserve(agg.addresses.size());
    for (const IpAddress &a : agg.addresses) {
      e.addresses.push_back(a.to_string());
    }
    // "sorted, canonical text": plain string order of the text.
    std::sort(e.addresses.begin(), e.addresses.end());
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const EndpointSummary &a, const EndpointSummary &b) {
    return a.endpoint < b.endpoint;
  });
  return Status::success();
}

Status SqliteStore::query_endpoints(const TimeRange &range, std::vector<EndpointSummary> &out) {
  try {
    const std::lock_guard lock(mu_);
    out.clear();
    if (range.since && range.until && *range.since >= *range.until) {
      return Status::success();
    }
    // One read transaction: rollups and packets from the same snapshot.
    if (!step_done(begin_read_.get())) {
      Status st = fail("begin read transaction");
      rollback();
      return st;
    }
    Status st = query_endpoints_in_transaction(range, out);
    if (st && !step_done(commit_.get())) {
      st = fail("end read transaction");
    }
    if (!st) {
      out.clear();
      rollback();
    }
    return st;
  } catch (...) {
    out.clear();
    rollback();
    return Status::failure(plain_error("query_endpoints: out of memory"));
  }
}

} // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string &path, std::string &error) {
  try {
    return SqliteStore::open(path, error);
  } catch (...) {
    error = "sqlite store '" + path + "': out of memory";
    return nullptr;
  }
}

} // namespace ta::store
