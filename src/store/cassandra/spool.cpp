#include "spool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ta/store/cassandra.hpp"

#include "batch_codec.hpp"

namespace ta::store::detail {
namespace {

constexpr const char *kSchema = R"(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
  fingerprint TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE, path TEXT NOT NULL,
  frames_done INTEGER NOT NULL, complete INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, spooled_us INTEGER NOT NULL,
  records INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS damaged (
  seq INTEGER PRIMARY KEY, spooled_us INTEGER NOT NULL, why TEXT NOT NULL, payload BLOB);
)";

// RAII for one prepared statement.
class Stmt {
public:
  Stmt(sqlite3 *db, const char *sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt &) = delete;
  Stmt &operator=(const Stmt &) = delete;
  [[nodiscard]] bool ok() const { return rc_ == SQLITE_OK && s_ != nullptr; }
  [[nodiscard]] sqlite3_stmt *get() const { return s_; }

private:
  sqlite3_stmt *s_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

} // namespace

Spool::~Spool() {
  sqlite3_close_v2(db_);
}

Status Spool::fail(const std::string &what) const {
  return Status::io_error("spool " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status Spool::exec(const char *sql) {
  char *msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg != nullptr ? msg : "error";
    sqlite3_free(msg);
    return Status::io_error("spool " + path_ + ": " + m);
  }
  return Status::success();
}

Result<std::unique_ptr<Spool>> Spool::open(const std::string &path, const std::string &owner) {
  std::unique_ptr<Spool> s(new Spool());
  s->path_ = path;
  // Spooled batches are private traffic records: 0640 (less where the umask
  // says so); SQLite gives the -wal and -shm files the same mode.
  if (const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640); fd >= 0) {
    ::close(fd);
    s->created_ = true;
  }
  if (sqlite3_open_v2(path.c_str(), &s->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status::io_error(
        "spool " + path + ": " +
        (s->db_ != nullptr ? sqlite3_errmsg(s->db_) : std::string("cannot open")));
  }
  sqlite3_busy_timeout(s->db_, 5000);
  // FULL: a batch acknowledged to the pipeline survives power loss too.
  Status st = s->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  if (st) {
    st = s->exec(kSchema);
  }
  if (!st) {
    return st;
  }
  {
    Stmt ins(s->db_, "INSERT OR IGNORE INTO meta(key, value) VALUES('owner', ?1)");
    Stmt get(s->db_, "SELECT value FROM meta WHERE key = 'owner'");
    if (!ins.ok() || !get.ok() ||
        sqlite3_bind_text(ins.get(), 1, owner.data(), static_cast<int>(owner.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(ins.get()) != SQLITE_DONE || sqlite3_step(get.get()) != SQLITE_ROW) {
      return s->fail("reading its owner");
    }
    const auto *text = reinterpret_cast<const char *>(sqlite3_column_text(get.get(), 0));
    const std::string stored = text != nullptr ? text : "";
    if (stored != owner) {
      return Status(StatusCode::invalid_argument,
                    "spool " + path + " belongs to " + stored + ", not " + owner,
                    kSpoolOwnedElsewhere);
    }
  }
  {
    Stmt d(s->db_, "SELECT count(*), coalesce(sum(records), 0), coalesce(sum(length(payload)), 0) "
                   "FROM queue");
    if (!d.ok() || sqlite3_step(d.get()) != SQLITE_ROW) {
      return s->fail("reading its depth");
    }
    s->depth_.batches = static_cast<std::uint64_t>(sqlite3_column_int64(d.get(), 0));
    s->depth_.records = static_cast<std::uint64_t>(sqlite3_column_int64(d.get(), 1));
    s->depth_.bytes = static_cast<std::uint64_t>(sqlite3_column_int64(d.get(), 2));
  }
  return s;
}

void Spool::close_discarding_if_new(std::unique_ptr<Spool> spool) {
  if (!spool) {
    return;
  }
  bool discard = spool->created_;
  if (discard) {
    // Empty means nothing was ever queued or set aside, and no ledger entry.
    Stmt n(spool->db_, "SELECT (SELECT count(*) FROM queue) + (SELECT count(*) FROM damaged) + "
                       "(SELECT count(*) FROM ledger)");
    discard =
        n.ok() && sqlite3_step(n.get()) == SQLITE_ROW && sqlite3_column_int64(n.get(), 0) == 0;
  }
  const std::string path = spool->path_;
  spool.reset(); // closes the database before its files go
  if (discard) {
    for (const char *suffix : {"", "-wal", "-shm", "-journal"}) {
      (void)::unlink((path + suffix).c_str());
    }
  }
}

Status Spool::find_source(const std::string &fingerprint, std::optional<SourceState> &out) {
  const std::lock_guard lock(mu_);
  out.reset();
  Stmt s(db_, "SELECT id, frames_done, complete FROM ledger WHERE fingerprint = ?1");
  if (!s.ok() ||
      sqlite3_bind_text(s.get(), 1, fingerprint.data(), static_cast<int>(fingerprint.size()),
                        SQLITE_STATIC) != SQLITE_OK) {
    return fail("reading the ledger");
  }
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) {
    out = SourceState{sqlite3_column_int64(s.get(), 0),
                      static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 1)),
                      sqlite3_column_int64(s.get(), 2) != 0};
  } else if (rc != SQLITE_DONE) {
    return fail("reading the ledger");
  }
  return Status::success();
}

Status Spool::max_source_id(std::int64_t &out) {
  const std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT coalesce(max(id), 0) FROM ledger");
  if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) {
    return fail("reading the ledger");
  }
  out = sqlite3_column_int64(s.get(), 0);
  return Status::success();
}

Status Spool::put_source(const std::string &fingerprint, const std::string &path,
                         const SourceState &state) {
  const std::lock_guard lock(mu_);
  Stmt s(db_, "INSERT INTO ledger(fingerprint, id, path, frames_done, complete) "
              "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(fingerprint) DO UPDATE SET "
              "frames_done = max(frames_done, excluded.frames_done), "
              "complete = complete OR excluded.complete");
  if (!s.ok() ||
      (sqlite3_bind_text(s.get(), 1, fingerprint.data(), static_cast<int>(fingerprint.size()),
                         SQLITE_STATIC) |
       sqlite3_bind_int64(s.get(), 2, state.id) |
       sqlite3_bind_text(s.get(), 3, path.data(), static_cast<int>(path.size()), SQLITE_STATIC) |
       sqlite3_bind_int64(s.get(), 4, static_cast<std::int64_t>(state.frames_done)) |
       sqlite3_bind_int(s.get(), 5, state.complete ? 1 : 0)) != SQLITE_OK ||
      sqlite3_step(s.get()) != SQLITE_DONE) {
    return fail("registering source " + fingerprint);
  }
  return Status::success();
}

Status Spool::source_fingerprint(std::int64_t id, std::string &fingerprint, std::string &path) {
  const std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT fingerprint, path FROM ledger WHERE id = ?1");
  if (!s.ok() || sqlite3_bind_int64(s.get(), 1, id) != SQLITE_OK) {
    return fail("reading the ledger");
  }
  if (sqlite3_step(s.get()) != SQLITE_ROW) {
    return Status::failure("spool " + path_ + ": no source with id " + std::to_string(id));
  }
  fingerprint = reinterpret_cast<const char *>(sqlite3_column_text(s.get(), 0));
  path = reinterpret_cast<const char *>(sqlite3_column_text(s.get(), 1));
  return Status::success();
}

Status Spool::append(const Batch &batch, TimeUs now) {
  const std::lock_guard lock(mu_);
  try {
    encode_batch(batch, scratch_);
  } catch (...) {
    return Status::failure("spool " + path_ + ": out of memory encoding a batch");
  }
  if (Status st = exec("BEGIN IMMEDIATE"); !st) {
    return st;
  }
  Stmt ins(db_, "INSERT INTO queue(spooled_us, records, payload) VALUES(?1, ?2, ?3)");
  Stmt led(db_, "UPDATE ledger SET frames_done = max(frames_done, ?2), complete = complete OR ?3 "
                "WHERE id = ?1");
  const bool ok =
      ins.ok() && led.ok() &&
      (sqlite3_bind_int64(ins.get(), 1, now) |
       sqlite3_bind_int64(ins.get(), 2, static_cast<std::int64_t>(batch.packets.size())) |
       sqlite3_bind_blob(ins.get(), 3, scratch_.data(), static_cast<int>(scratch_.size()),
                         SQLITE_STATIC)) == SQLITE_OK &&
      sqlite3_step(ins.get()) == SQLITE_DONE &&
      (sqlite3_bind_int64(led.get(), 1, batch.source_id) |
       sqlite3_bind_int64(led.get(), 2, static_cast<std::int64_t>(batch.frames_through)) |
       sqlite3_bind_int(led.get(), 3, batch.source_complete ? 1 : 0)) == SQLITE_OK &&
      sqlite3_step(led.get()) == SQLITE_DONE;
  if (!ok) {
    Status st = fail("appending a batch");
    (void)exec("ROLLBACK");
    return st;
  }
  if (Status st = exec("COMMIT"); !st) {
    (void)exec("ROLLBACK");
    return st;
  }
  depth_.batches += 1;
  depth_.records += batch.packets.size();
  depth_.bytes += scratch_.size();
  return Status::success();
}

Status Spool::oldest(std::optional<SpoolEntry> &out) {
  const std::lock_guard lock(mu_);
  out.reset();
  Stmt s(db_, "SELECT seq, spooled_us, payload FROM queue ORDER BY seq LIMIT 1");
  if (!s.ok()) {
    return fail("reading the queue");
  }
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) {
    return Status::success();
  }
  if (rc != SQLITE_ROW) {
    return fail("reading the queue");
  }
  SpoolEntry e;
  e.seq = sqlite3_column_int64(s.get(), 0);
  e.spooled_us = sqlite3_column_int64(s.get(), 1);
  const auto *p = static_cast<const std::byte *>(sqlite3_column_blob(s.get(), 2));
  e.payload.assign(p, p + sqlite3_column_bytes(s.get(), 2));
  out = std::move(e);
  return Status::success();
}

Status Spool::remove(std::int64_t seq) {
  const std::lock_guard lock(mu_);
  Stmt sz(db_, "SELECT records, length(payload) FROM queue WHERE seq = ?1");
  Stmt del(db_, "DELETE FROM queue WHERE seq = ?1");
  if (!sz.ok() || !del.ok() || sqlite3_bind_int64(sz.get(), 1, seq) != SQLITE_OK ||
      sqlite3_bind_int64(del.get(), 1, seq) != SQLITE_OK) {
    return fail("removing a sent batch");
  }
  if (sqlite3_step(sz.get()) == SQLITE_ROW) {
    const auto records = static_cast<std::uint64_t>(sqlite3_column_int64(sz.get(), 0));
    const auto bytes = static_cast<std::uint64_t>(sqlite3_column_int64(sz.get(), 1));
    depth_.batches -= std::min<std::uint64_t>(depth_.batches, 1);
    depth_.records -= std::min(depth_.records, records);
    depth_.bytes -= std::min(depth_.bytes, bytes);
  }
  if (sqlite3_step(del.get()) != SQLITE_DONE) {
    return fail("removing a sent batch");
  }
  return Status::success();
}

Status Spool::quarantine(std::int64_t seq, const std::string &why) {
  {
    const std::lock_guard lock(mu_);
    Stmt s(db_, "INSERT OR REPLACE INTO damaged(seq, spooled_us, why, payload) "
                "SELECT seq, spooled_us, ?2, payload FROM queue WHERE seq = ?1");
    if (!s.ok() || sqlite3_bind_int64(s.get(), 1, seq) != SQLITE_OK ||
        sqlite3_bind_text(s.get(), 2, why.data(), static_cast<int>(why.size()), SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_step(s.get()) != SQLITE_DONE) {
      return fail("setting a damaged batch aside");
    }
  }
  return remove(seq);
}

SpoolDepth Spool::depth() const {
  const std::lock_guard lock(mu_);
  return depth_;
}

} // namespace ta::store::detail
