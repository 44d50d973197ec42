// store/sqlite/schema: the schema and its migrations, opening a file
// (refusing foreign or newer databases), tuning and the cached statements.
#include <fcntl.h>
#include <unistd.h>

#include <iterator>
#include <new>
#include <string>

#include "ta/store/sqlite.hpp"

#include "sqlite_store.hpp"

namespace ta::store {
namespace detail::sqlite {
namespace {

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
    // v3: flow naming. Roll-ups gain received traffic and packets per name
    // source (NameSource order). Rows written before v3 counted sent packets
    // only, each named by a DNS answer or unresolved (""): their name counts
    // are filled in that way, so the per-source counts add up to the
    // packets on old rows too. Flows: one row per flow (origin source, first
    // frame), every batch's deltas added up.
    {3, R"sql(
ALTER TABLE rollups ADD COLUMN received_packets INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN received_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN names_none INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN names_sni INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN names_quic INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN names_http INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN names_dns INTEGER NOT NULL DEFAULT 0;
UPDATE rollups SET names_none = packets
  WHERE endpoint_id IN (SELECT id FROM endpoints WHERE name = '');
UPDATE rollups SET names_dns = packets
  WHERE endpoint_id NOT IN (SELECT id FROM endpoints WHERE name = '');
CREATE TABLE flows(
  origin_source INTEGER NOT NULL,
  first_frame INTEGER NOT NULL,
  protocol INTEGER NOT NULL,
  client BLOB NOT NULL,
  client_port INTEGER NOT NULL,
  endpoint_address BLOB NOT NULL,
  endpoint_port INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  source INTEGER NOT NULL,
  sent_packets INTEGER NOT NULL,
  sent_bytes INTEGER NOT NULL,
  received_packets INTEGER NOT NULL,
  received_bytes INTEGER NOT NULL,
  first_us INTEGER NOT NULL,
  last_us INTEGER NOT NULL,
  PRIMARY KEY(origin_source, first_frame)) WITHOUT ROWID;
)sql"},
    // v4: the program owning a flow of this machine (live capture): pid 0
    // and program '' when unknown, as on every flow written before v4.
    {4, R"sql(
ALTER TABLE flows ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flows ADD COLUMN program TEXT NOT NULL DEFAULT '';
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

// Packets: one row per statement, or kRowsPerInsert rows (sqlite_store.hpp).
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

constexpr const char *kSelectFramesDone = "SELECT frames_done FROM sources WHERE id = ?1";

constexpr const char *kUpsertRollup =
    "INSERT INTO rollups(endpoint_id, second, address, packets, bytes, first_us, last_us, "
    "received_packets, received_bytes, names_none, names_sni, names_quic, names_http, names_dns) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
    "ON CONFLICT(endpoint_id, second, address) DO UPDATE SET "
    "packets = packets + excluded.packets, bytes = bytes + excluded.bytes, "
    "first_us = min(first_us, excluded.first_us), last_us = max(last_us, excluded.last_us), "
    "received_packets = received_packets + excluded.received_packets, "
    "received_bytes = received_bytes + excluded.received_bytes, "
    "names_none = names_none + excluded.names_none, names_sni = names_sni + excluded.names_sni, "
    "names_quic = names_quic + excluded.names_quic, names_http = names_http + excluded.names_http, "
    "names_dns = names_dns + excluded.names_dns";

// A flow's ends, name and source are those of its first write (a flow keeps
// its name for life); counters add up, [first, last] widens. Its program is
// the first one a batch knew (earlier batches may not have known it yet).
constexpr const char *kUpsertFlow =
    "INSERT INTO flows(origin_source, first_frame, protocol, client, client_port, "
    "endpoint_address, endpoint_port, endpoint_id, source, sent_packets, sent_bytes, "
    "received_packets, received_bytes, first_us, last_us, pid, program) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) "
    "ON CONFLICT(origin_source, first_frame) DO UPDATE SET "
    "pid = CASE WHEN program = '' THEN excluded.pid ELSE pid END, "
    "program = CASE WHEN program = '' THEN excluded.program ELSE program END, "
    "sent_packets = sent_packets + excluded.sent_packets, "
    "sent_bytes = sent_bytes + excluded.sent_bytes, "
    "received_packets = received_packets + excluded.received_packets, "
    "received_bytes = received_bytes + excluded.received_bytes, "
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

// ?1 NULL: every endpoint. Overlap: last_us >= since and first_us < until.
constexpr const char *kQueryFlows =
    "SELECT f.protocol, f.client, f.client_port, f.endpoint_address, f.endpoint_port, e.name, "
    "f.source, f.sent_packets, f.sent_bytes, f.received_packets, f.received_bytes, f.first_us, "
    "f.last_us, f.pid, f.program FROM flows AS f JOIN endpoints AS e ON e.id = f.endpoint_id "
    "WHERE (?1 IS NULL OR e.name = ?1) AND f.last_us >= ?2 AND f.first_us < ?3 "
    "ORDER BY f.first_us, f.origin_source, f.first_frame";

constexpr const char *kQueryPackets =
    "SELECT p.ts_us, p.address, p.port, p.protocol, p.bytes FROM packets AS p "
    "WHERE p.endpoint_id = (SELECT id FROM endpoints WHERE name = ?1) "
    "ORDER BY p.ts_us DESC, p.key DESC LIMIT ?2";

} // namespace

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
  if (objects == 0 && !read_only_ && !run_script("PRAGMA page_size=16384", error)) {
    return false;
  }
  return true;
}

bool SqliteStore::check_intact(std::string &error) {
  // A write path only reads the pages it appends to, so damage elsewhere
  // would go unnoticed while new records go on being added to a store that
  // can no longer be read whole. quick_check reads every page once (about
  // what reading the file costs) and checks the b-trees, not the indexes'
  // agreement with their tables.
  sqlite3_stmt *raw = nullptr;
  if (sqlite3_prepare_v2(db_.get(), "PRAGMA quick_check(1)", -1, &raw, nullptr) != SQLITE_OK) {
    error = db_error("checking the file");
    return false;
  }
  Stmt s(raw);
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_ROW) {
    error = db_error("damaged (checking the file)");
    return false;
  }
  const auto *text = reinterpret_cast<const char *>(sqlite3_column_text(s.get(), 0));
  const std::string result = text != nullptr ? text : "";
  if (result != "ok") {
    std::string first = result.substr(0, result.find('\n'));
    error = plain_error("damaged (" + first +
                        "); nothing was written: move it aside, or recover it with sqlite3's "
                        ".recover");
    return false;
  }
  return true;
}

bool SqliteStore::tune(std::string &error) {
  // After migrate(), so a foreign database is refused before we change its
  // journal mode. WAL: readers never block the writer and a commit is one
  // sequential append. synchronous=NORMAL in WAL is durable against
  // application crashes (an OS crash may lose the last commits, never
  // corrupt). A 16 MiB page cache (kWriteCacheKiB): writes append packets and
  // per-second rows, so the pages a batch touches are few and recent; a
  // larger cache only fills with pages of names seen once (a name flood's
  // endpoint index) and costs RSS. WAL may be unavailable (e.g. ":memory:");
  // whatever mode SQLite grants is accepted.
  const std::string script = "PRAGMA journal_mode=WAL;"
                             "PRAGMA synchronous=NORMAL;"
                             "PRAGMA cache_size=-" +
                             std::to_string(kWriteCacheKiB) +
                             ";"
                             "PRAGMA temp_store=MEMORY;";
  return run_script(script.c_str(), error);
}

bool SqliteStore::migrate(std::string &error, bool &refused) {
  refused = false;
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
    refused = true;
    return abort();
  }
  if (version == 0 && objects != 0) {
    error = plain_error("not a traffic-analyzer database (has tables but no schema version)");
    refused = true;
    return abort();
  }
  if (version > kSchemaVersion) {
    error = plain_error("schema version " + std::to_string(version) +
                        " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                        "); upgrade traffic-analyzer");
    refused = true;
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
      {&insert_packet_, kInsertPacket},
      {&upsert_rollup_, kUpsertRollup},
      {&select_frames_done_, kSelectFramesDone},
      {&upsert_flow_, kUpsertFlow},
      {&query_flows_, kQueryFlows},
      {&upsert_address_, kUpsertAddress},
      {&load_addresses_, kLoadAddresses},
      {&insert_local_host_, kInsertLocalHost},
      {&load_local_hosts_, kLoadLocalHosts},
      {&query_addresses_, kQueryAddresses},
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

Result<std::unique_ptr<Store>> SqliteStore::open(const std::string &path) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  if (path.empty()) {
    return Status::invalid_argument(store->plain_error("empty database path"));
  }
  // Records show who talked to whom: a new store is created 0640 (less
  // where the umask says so), and SQLite gives its -wal and -shm files the
  // same mode. An existing file keeps its mode.
  if (path != ":memory:" && path.rfind("file:", 0) != 0) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd >= 0) {
      ::close(fd);
    }
  }
  sqlite3 *raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  store->db_.reset(raw); // also on failure: the handle carries the message
  if (rc != SQLITE_OK) {
    return Status::io_error(store->db_error("cannot open"));
  }
  std::string error;
  if (!store->check_readable(error)) {
    const int code = sqlite3_errcode(store->db_.get());
    return Status(code == SQLITE_NOTADB || code == SQLITE_CORRUPT ? StatusCode::corrupt
                                                                  : StatusCode::io_error,
                  error);
  }
  if (!store->check_intact(error)) {
    return Status::corrupt(error);
  }
  bool refused = false;
  if (!store->migrate(error, refused)) {
    return Status(refused ? StatusCode::unsupported : StatusCode::io_error, error);
  }
  if (!store->tune(error) || !store->prepare_all(error)) {
    return Status::io_error(error);
  }
  return std::unique_ptr<Store>(std::move(store));
}

Status SqliteStore::check_current_schema() {
  std::string error;
  std::int64_t version = 0;
  std::int64_t app_id = 0;
  std::int64_t objects = 0;
  if (!query_int("PRAGMA user_version", version, error) ||
      !query_int("PRAGMA application_id", app_id, error) ||
      !query_int("SELECT count(*) FROM sqlite_schema", objects, error)) {
    return Status::io_error(error);
  }
  if (version == 0 && objects == 0) {
    return Status::unsupported(plain_error("empty file, not a traffic-analyzer store"));
  }
  if ((app_id != 0 && app_id != kApplicationId) || version == 0) {
    return Status::unsupported(plain_error("not a traffic-analyzer database"));
  }
  if (version > kSchemaVersion) {
    return Status::unsupported(plain_error(
        "schema version " + std::to_string(version) + " is newer than this build supports (" +
        std::to_string(kSchemaVersion) + "); upgrade traffic-analyzer"));
  }
  if (version < kSchemaVersion) {
    return Status::unsupported(plain_error(
        "schema version " + std::to_string(version) + " was written by an earlier release (this " +
        "build reads " + std::to_string(kSchemaVersion) +
        "); reading never changes a store: analyze, watch or run migrate it in place"));
  }
  return {};
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

} // namespace detail::sqlite

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string &path) {
  try {
    return detail::sqlite::SqliteStore::open(path);
  } catch (...) {
    return Status::failure("sqlite store '" + path + "': out of memory");
  }
}

} // namespace ta::store