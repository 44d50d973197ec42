// store/cassandra_store: the Cassandra backend (see cassandra_store.hpp for
// the hand-off contract).
//
// Schema (keyspace from the spec, default traffic_analyzer; every statement
// IF NOT EXISTS, all writes prepared):
//
//   packets        ((endpoint, hour), ts_us DESC, agent DESC, source DESC,
//                  frame DESC) -> address, port, protocol, bytes.
//                  One row per packet; the key is what the packet is, so a
//                  replay rewrites the same cells. hour = floor(ts_us / 1h):
//                  a partition holds one endpoint's hour, whatever the run
//                  length (the seed's partitions grew without bound).
//   rollups        ((endpoint, hour), second, address, agent, source, batch_pos)
//                  -> packets, bytes, first_us, last_us. One row per batch
//                  and (second, address); `batch_pos` is the batch's ledger
//                  position, fixed when it was spooled, so replays rewrite
//                  the same rows and queries sum them.
//   endpoint_hours ((day), hour, endpoint): which partitions exist, so range
//                  queries find them without scanning the cluster.
//   days           ((shard = 0), day): which days exist (a row per day).
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
// session under read_mu_. backend_metrics() reads caches only.
#include "ta/store/cassandra_store.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "ta/cql/session.hpp"

#include "batch_codec.hpp"
#include "int_math.hpp"
#include "spool.hpp"

namespace ta::store {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kUsPerSecond = 1'000'000;
constexpr std::int64_t kSecondsPerHour = 3600;
constexpr std::int64_t kHoursPerDay = 24;
// Write times for "earliest wins" columns: kFar - t is larger for earlier t.
constexpr std::int64_t kFar = std::numeric_limits<std::int64_t>::max() / 2;
// Statements per UNLOGGED batch: well under Cassandra's default
// batch_size_fail_threshold (50 KiB) for these rows.
constexpr std::size_t kStatementsPerRequest = 100;
constexpr const char *kPasswordEnv = "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD";

using detail::ceil_div;
using detail::floor_div;
std::int64_t hour_of_us(TimeUs ts) {
  return floor_div(ts, kUsPerSecond * kSecondsPerHour);
}
std::int64_t day_of_hour(std::int64_t hour) {
  return floor_div(hour, kHoursPerDay);
}

TimeUs now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
    return "agent";
  }
  return buf;
}

bool valid_keyspace(std::string_view ks) {
  if (ks.empty() || ks.size() > 48 || std::isalpha(static_cast<unsigned char>(ks[0])) == 0) {
    return false;
  }
  return std::all_of(ks.begin(), ks.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

Status from_cql(const cql::Status &s, std::string_view doing) {
  return Status::failure("cassandra: " + std::string(doing) + ": " + s.message);
}

// Failures worth waiting out: the cluster is down, slow or overloaded.
bool transient(const cql::Status &s) {
  switch (s.kind) {
  case cql::ErrorKind::connect:
  case cql::ErrorKind::closed:
  case cql::ErrorKind::timeout:
  case cql::ErrorKind::no_host:
  case cql::ErrorKind::protocol:
    return true;
  case cql::ErrorKind::server:
    switch (s.server_code) {
    case 0x0000: // server_error
    case 0x1000: // unavailable
    case 0x1001: // overloaded
    case 0x1002: // is_bootstrapping
    case 0x1100: // write_timeout
    case 0x1200: // read_timeout
    case 0x1300: // read_failure
    case 0x1500: // write_failure
      return true;
    default:
      return false;
    }
  default:
    return false;
  }
}

struct WriteStatements {
  cql::Prepared packet, rollup, endpoint_hour, day, addr_last, addr_first, local_host, src_reg,
      src_done, src_complete;
};
struct ReadStatements {
  cql::Prepared source, sources_of_agent, addresses_of_agent, names_of_agent, local_hosts_of_agent,
      hours_of_day, rollups, packets_range, packets_recent;
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

class CassandraStore final : public Store {
public:
  static std::unique_ptr<Store> open(std::string_view spec, const CassandraOptions &options,
                                     std::string &error);
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
  Status settle(std::chrono::milliseconds timeout) override;
  void backend_metrics(std::vector<BackendFamily> &out) override;

private:
  CassandraStore() = default;
  std::string t(std::string_view table) const { return keyspace_ + "." + std::string(table); }
  cql::Status create_schema(cql::Session &s);
  cql::Status prepare_writes(cql::Session &s);
  cql::Status prepare_reads(cql::Session &s);
  cql::Status send(const Batch &batch, TimeUs spooled_us);
  void drain_loop();
  void refresh_views();
  void set_failed(const std::string &message);
  void note_down(const cql::Status &s);
  // Calls fn per row of a prepared read; 5000-row pages.
  Status read(const cql::Prepared &p, const cql::Values &v, std::string_view doing,
              const std::function<void(const cql::Row &)> &fn);
  Status hours_in(std::int64_t day_lo, std::int64_t day_hi,
                  std::vector<std::pair<std::string, std::int64_t>> &out);

  CassandraOptions options_;
  cql::Options cql_options_;
  std::string keyspace_;
  std::string agent_;
  std::unique_ptr<detail::Spool> spool_;

  // Drain side (drain thread only, except where noted).
  std::unique_ptr<cql::Session> drain_;
  WriteStatements w_;
  std::vector<cql::Request> requests_;
  std::unordered_map<std::int64_t, std::pair<std::string, std::string>> source_names_;

  // Read side.
  std::mutex read_mu_;
  std::unique_ptr<cql::Session> reader_;
  ReadStatements r_;

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
  std::vector<cql::NodeStats> node_stats_;
  std::vector<TableView> views_;
  Clock::time_point views_at_{};
  std::thread thread_;
};

// ---- open --------------------------------------------------------------------

std::unique_ptr<Store> CassandraStore::open(std::string_view spec, const CassandraOptions &options,
                                            std::string &error) {
  CassandraTarget target;
  if (!parse_cassandra_spec(spec, target, error)) {
    return nullptr;
  }
  std::unique_ptr<CassandraStore> s(new CassandraStore());
  s->options_ = options;
  s->keyspace_ = target.keyspace;
  s->agent_ = options.agent_id.empty() ? host_name() : options.agent_id;

  cql::Options &o = s->cql_options_;
  for (const auto &[host, port] : target.hosts) {
    o.contact_points.push_back({host, port});
  }
  o.username = target.user;
  o.password = options.password;
  o.lz4 = options.lz4;
  o.tls = options.tls;
  o.tls_ca_file = options.tls_ca_file;
  o.connect_timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::max(0.1, options.connect_timeout_seconds) * 1000));
  const auto cl = cql::parse_consistency(options.consistency);
  if (!cl) {
    error = "--consistency '" + options.consistency +
            "' is not a CQL consistency level (one, quorum, local_quorum, all, ...)";
    return nullptr;
  }
  o.consistency = *cl;
  if (!target.user.empty() && options.password.empty()) {
    error = "cassandra: user '" + target.user + "' needs a password: set " + kPasswordEnv +
            " or --cassandra-password-file";
    return nullptr;
  }

  cql::Status st;
  if (options.read_only) {
    s->reader_ = cql::Session::connect(o, st);
    if (!s->reader_) {
      error = "cassandra: " + st.message;
      return nullptr;
    }
    if (st = s->prepare_reads(*s->reader_); !st) {
      error = "cassandra: keyspace " + s->keyspace_ + ": " + st.message;
      return nullptr;
    }
    return s;
  }
  // The spool first: it holds what earlier runs could not send, whatever
  // happens next.
  s->spool_ = detail::Spool::open(options.spool_path,
                                  "keyspace " + s->keyspace_ + " agent " + s->agent_, error);
  if (!s->spool_) {
    return nullptr;
  }

  s->drain_ = cql::Session::connect(o, st);
  if (!s->drain_) {
    error = "cassandra: " + st.message;
    const auto depth = s->spool_->depth();
    if (depth.batches > 0) {
      error += " (" + std::to_string(depth.records) + " records stay spooled in " +
               options.spool_path + ")";
    }
    return nullptr;
  }
  if (st = s->create_schema(*s->drain_); !st) {
    error = "cassandra: creating keyspace " + s->keyspace_ + ": " + st.message;
    return nullptr;
  }
  if (st = s->prepare_writes(*s->drain_); !st) {
    error = "cassandra: preparing statements: " + st.message;
    return nullptr;
  }
  cql::Options ro = o;
  ro.keyspace = s->keyspace_;
  s->reader_ = cql::Session::connect(ro, st);
  if (!s->reader_) {
    error = "cassandra: " + st.message;
    return nullptr;
  }
  if (st = s->prepare_reads(*s->reader_); !st) {
    error = "cassandra: preparing queries: " + st.message;
    return nullptr;
  }
  s->node_stats_ = s->drain_->stats();
  s->thread_ = std::thread([p = s.get()] { p->drain_loop(); });
  return s;
}

CassandraStore::~CassandraStore() {
  {
    const std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

cql::Status CassandraStore::create_schema(cql::Session &s) {
  std::string table_options;
  if (options_.twcs) {
    table_options += " AND compaction = {'class': 'TimeWindowCompactionStrategy', "
                     "'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}";
  }
  if (options_.ttl_seconds > 0) {
    table_options += " AND default_time_to_live = " + std::to_string(options_.ttl_seconds);
  }
  const std::string ttl_only = options_.ttl_seconds > 0 ? " WITH default_time_to_live = " +
                                                              std::to_string(options_.ttl_seconds)
                                                        : "";
  const std::vector<std::string> ddl = {
      "CREATE KEYSPACE IF NOT EXISTS " + keyspace_ + " WITH replication = " + options_.replication,
      "CREATE TABLE IF NOT EXISTS " + t("packets") +
          " (endpoint text, hour bigint, ts_us bigint, agent text, source bigint, frame bigint, "
          "address inet, port int, protocol int, bytes int, "
          "PRIMARY KEY ((endpoint, hour), ts_us, agent, source, frame)) "
          "WITH CLUSTERING ORDER BY (ts_us DESC, agent DESC, source DESC, frame DESC)" +
          table_options,
      "CREATE TABLE IF NOT EXISTS " + t("rollups") +
          " (endpoint text, hour bigint, second bigint, address inet, agent text, source bigint, "
          "batch_pos bigint, packets bigint, bytes bigint, first_us bigint, last_us bigint, "
          "PRIMARY KEY ((endpoint, hour), second, address, agent, source, batch_pos))" +
          (table_options.empty() ? "" : " WITH" + table_options.substr(4)),
      "CREATE TABLE IF NOT EXISTS " + t("endpoint_hours") +
          " (day bigint, hour bigint, endpoint text, PRIMARY KEY ((day), hour, endpoint))" +
          ttl_only,
      "CREATE TABLE IF NOT EXISTS " + t("days") +
          " (shard int, day bigint, PRIMARY KEY ((shard), day))",
      "CREATE TABLE IF NOT EXISTS " + t("addresses") +
          " (agent text, address inet, name text, last_learnt bigint, "
          "PRIMARY KEY ((agent), address))",
      "CREATE TABLE IF NOT EXISTS " + t("address_names") +
          " (agent text, address inet, name text, first_learnt bigint, "
          "PRIMARY KEY ((agent), address, name))",
      "CREATE TABLE IF NOT EXISTS " + t("local_hosts") +
          " (agent text, address inet, first_learnt bigint, PRIMARY KEY ((agent), address))",
      "CREATE TABLE IF NOT EXISTS " + t("sources") +
          " (agent text, fingerprint text, id bigint, path text, frames_done bigint, "
          "complete boolean, PRIMARY KEY ((agent), fingerprint))",
  };
  for (const std::string &stmt : ddl) {
    if (cql::Status st = s.query(stmt); !st) {
      return st;
    }
  }
  return {};
}

cql::Status CassandraStore::prepare_writes(cql::Session &s) {
  const std::pair<cql::Prepared *, std::string> list[] = {
      {&w_.packet, "INSERT INTO " + t("packets") +
                       " (endpoint, hour, ts_us, agent, source, frame, address, port, protocol, "
                       "bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&w_.rollup,
       "INSERT INTO " + t("rollups") +
           " (endpoint, hour, second, address, agent, source, batch_pos, packets, bytes, "
           "first_us, last_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&w_.endpoint_hour,
       "INSERT INTO " + t("endpoint_hours") + " (day, hour, endpoint) VALUES (?, ?, ?)"},
      {&w_.day, "INSERT INTO " + t("days") + " (shard, day) VALUES (0, ?)"},
      {&w_.addr_last, "UPDATE " + t("addresses") +
                          " USING TIMESTAMP ? SET name = ?, last_learnt = ? "
                          "WHERE agent = ? AND address = ?"},
      {&w_.addr_first, "UPDATE " + t("address_names") +
                           " USING TIMESTAMP ? SET first_learnt = ? "
                           "WHERE agent = ? AND address = ? AND name = ?"},
      {&w_.local_host,
       "UPDATE " + t("local_hosts") +
           " USING TIMESTAMP ? SET first_learnt = ? WHERE agent = ? AND address = ?"},
      {&w_.src_reg,
       "UPDATE " + t("sources") +
           " USING TIMESTAMP 0 SET id = ?, path = ? WHERE agent = ? AND fingerprint = ?"},
      {&w_.src_done,
       "UPDATE " + t("sources") +
           " USING TIMESTAMP ? SET frames_done = ? WHERE agent = ? AND fingerprint = ?"},
      {&w_.src_complete,
       "UPDATE " + t("sources") + " SET complete = true WHERE agent = ? AND fingerprint = ?"},
  };
  for (const auto &[out, text] : list) {
    if (cql::Status st = s.prepare(text, *out); !st) {
      return st;
    }
  }
  return {};
}

cql::Status CassandraStore::prepare_reads(cql::Session &s) {
  const std::pair<cql::Prepared *, std::string> list[] = {
      {&r_.source, "SELECT id, frames_done, complete FROM " + t("sources") +
                       " WHERE agent = ? AND fingerprint = ?"},
      {&r_.sources_of_agent, "SELECT id FROM " + t("sources") + " WHERE agent = ?"},
      {&r_.addresses_of_agent,
       "SELECT address, name, last_learnt FROM " + t("addresses") + " WHERE agent = ?"},
      {&r_.names_of_agent,
       "SELECT address, name, first_learnt FROM " + t("address_names") + " WHERE agent = ?"},
      {&r_.local_hosts_of_agent,
       "SELECT address, first_learnt FROM " + t("local_hosts") + " WHERE agent = ?"},
      {&r_.hours_of_day, "SELECT hour, endpoint FROM " + t("endpoint_hours") + " WHERE day = ?"},
      {&r_.rollups, "SELECT address, packets, bytes, first_us, last_us FROM " + t("rollups") +
                        " WHERE endpoint = ? AND hour = ? AND second >= ? AND second < ?"},
      {&r_.packets_range, "SELECT address, bytes, ts_us FROM " + t("packets") +
                              " WHERE endpoint = ? AND hour = ? AND ts_us >= ? AND ts_us < ?"},
      {&r_.packets_recent, "SELECT ts_us, address, port, protocol, bytes FROM " + t("packets") +
                               " WHERE endpoint = ? AND hour = ? LIMIT ?"},
  };
  for (const auto &[out, text] : list) {
    if (cql::Status st = s.prepare(text, *out); !st) {
      return st;
    }
  }
  return {};
}

// ---- sources -------------------------------------------------------------------

Status CassandraStore::begin_source(const SourceInfo &info, SourceState &state) {
  if (!spool_) {
    return Status::failure("cassandra: opened for queries only");
  }
  if (info.fingerprint.empty()) {
    return Status::failure("begin_source: empty fingerprint");
  }
  std::optional<SourceState> local;
  if (Status st = spool_->find_source(info.fingerprint, local); !st) {
    return st;
  }
  if (local) {
    state = *local;
    return Status::success();
  }
  // Unknown here: the cluster may know it (a spool that was moved or lost).
  std::optional<SourceState> remote;
  std::int64_t max_id = 0;
  {
    const std::lock_guard lock(read_mu_);
    cql::Values v;
    v.add_text(agent_).add_text(info.fingerprint);
    Status st = read(r_.source, v, "reading the source ledger", [&](const cql::Row &row) {
      if (row.cells.size() >= 3) {
        remote = SourceState{cql::as_bigint(row.cells[0]).value_or(0),
                             static_cast<std::uint64_t>(cql::as_bigint(row.cells[1]).value_or(0)),
                             cql::as_boolean(row.cells[2]).value_or(false)};
      }
    });
    if (!st) {
      return st;
    }
    if (!remote || remote->id <= 0) {
      remote.reset();
      v.clear();
      v.add_text(agent_);
      st = read(r_.sources_of_agent, v, "reading the source ledger", [&](const cql::Row &row) {
        if (!row.cells.empty()) {
          max_id = std::max(max_id, cql::as_bigint(row.cells[0]).value_or(0));
        }
      });
      if (!st) {
        return st;
      }
    }
  }
  if (!remote) {
    std::int64_t local_max = 0;
    if (Status st = spool_->max_source_id(local_max); !st) {
      return st;
    }
    remote = SourceState{std::max(max_id, local_max) + 1, 0, false};
  }
  if (Status st = spool_->put_source(info.fingerprint, info.path, *remote); !st) {
    return st;
  }
  state = *remote;
  return Status::success();
}

// ---- write: into the spool -----------------------------------------------------

Status CassandraStore::write(const Batch &batch) {
  if (!spool_) {
    return Status::failure("cassandra: opened for queries only");
  }
  for (const PacketRecord &p : batch.packets) {
    if (p.endpoint >= batch.endpoints.size() || !p.dst.valid()) {
      return Status::failure("write: frame " + std::to_string(p.frame) +
                             " has no valid endpoint or address");
    }
  }
  for (const LearntAddress &l : batch.learnt) {
    if (l.name >= batch.endpoints.size() || !l.address.valid()) {
      return Status::failure("write: a learnt address has no valid name or address");
    }
  }
  {
    // Backpressure: a full spool holds the pipeline until the drain makes room.
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      return failed_ || stop_ || spool_->depth().bytes < (options_.spool_max_mb << 20U);
    });
    if (failed_) {
      return Status::failure(failure_);
    }
  }
  Status st = spool_->append(batch, now_us());
  cv_.notify_all();
  return st;
}

// ---- drain: from the spool to Cassandra -----------------------------------------

void CassandraStore::set_failed(const std::string &message) {
  {
    const std::lock_guard lock(mu_);
    failed_ = true;
    failure_ = message;
  }
  cv_.notify_all();
}

void CassandraStore::note_down(const cql::Status &s) {
  bool report = false;
  {
    const std::lock_guard lock(mu_);
    report = !down_;
    down_ = true;
    last_error_ = s.message;
    send_failures_ += 1;
  }
  if (report) {
    const auto depth = spool_->depth();
    std::fprintf(stderr,
                 "traffic-analyzer: cassandra: %s; %llu records wait in the spool %s and are "
                 "sent when a node answers\n",
                 s.message.c_str(), static_cast<unsigned long long>(depth.records),
                 spool_->path().c_str());
  }
}

void CassandraStore::drain_loop() {
  Batch batch;
  std::string error;
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    {
      const std::lock_guard lock(mu_);
      if (stop_) {
        return;
      }
    }
    if (Clock::now() - views_at_ > std::chrono::seconds(5)) {
      refresh_views();
    }
    std::optional<detail::SpoolEntry> entry;
    if (Status st = spool_->oldest(entry); !st) {
      set_failed(st.message);
      return;
    }
    if (!entry) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1),
                   [&] { return stop_ || spool_->depth().batches > 0; });
      continue;
    }
    if (!detail::decode_batch(entry->payload, batch, error)) {
      std::fprintf(stderr, "traffic-analyzer: %s: %s (set aside in its damaged table)\n",
                   spool_->path().c_str(), error.c_str());
      {
        const std::lock_guard lock(mu_);
        damaged_ += 1;
      }
      if (Status st = spool_->quarantine(entry->seq, error); !st) {
        set_failed(st.message);
        return;
      }
      continue;
    }
    cql::Status st = drain_ ? send(batch, entry->spooled_us)
                            : cql::Status{cql::ErrorKind::no_host, 0, "", "not connected"};
    if (drain_) {
      const auto stats = drain_->stats();
      const std::lock_guard lock(mu_);
      node_stats_ = stats;
    }
    if (st) {
      if (Status rs = spool_->remove(entry->seq); !rs) {
        set_failed(rs.message);
        return;
      }
      bool was_down = false;
      {
        const std::lock_guard lock(mu_);
        was_down = down_;
        down_ = false;
        batches_sent_ += 1;
        rows_sent_ += batch.packets.size();
      }
      if (was_down) {
        std::fprintf(stderr,
                     "traffic-analyzer: cassandra: reachable again; sending %llu spooled "
                     "records\n",
                     static_cast<unsigned long long>(spool_->depth().records));
      }
      backoff = std::chrono::milliseconds(100);
      cv_.notify_all();
      continue;
    }
    if (!transient(st)) {
      set_failed("cassandra: " + st.message + " (" + std::to_string(spool_->depth().records) +
                 " records stay spooled in " + spool_->path() + ")");
      return;
    }
    note_down(st);
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, backoff, [&] { return stop_; });
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
    if (!drain_) {
      cql::Status cs;
      drain_ = cql::Session::connect(cql_options_, cs);
      if (drain_) {
        if (cs = prepare_writes(*drain_); !cs) {
          drain_.reset();
        }
      }
    } else {
      drain_->reconnect();
    }
  }
}

cql::Status CassandraStore::send(const Batch &batch, TimeUs spooled_us) {
  // The source's ledger entry, for the `sources` rows written last.
  auto names = source_names_.find(batch.source_id);
  if (names == source_names_.end()) {
    std::pair<std::string, std::string> fp_path;
    if (Status st = spool_->source_fingerprint(batch.source_id, fp_path.first, fp_path.second);
        !st) {
      return {cql::ErrorKind::bad_request, 0, "", st.message};
    }
    names = source_names_.emplace(batch.source_id, std::move(fp_path)).first;
  }
  const auto &[fingerprint, path] = names->second;

  requests_.clear();
  // Starts a new request when the current one is full or for another partition.
  std::size_t open = 0;
  const auto next = [&](bool new_partition) -> cql::Request & {
    if (new_partition || requests_.empty() ||
        requests_[open].statements.size() >= kStatementsPerRequest) {
      requests_.emplace_back();
      open = requests_.size() - 1;
    }
    return requests_[open];
  };

  // Packets, grouped by partition (endpoint, hour).
  std::vector<std::uint32_t> order(batch.packets.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  const auto pkey = [&](std::uint32_t i) {
    const PacketRecord &p = batch.packets[i];
    return std::make_pair(p.endpoint, hour_of_us(p.ts_us));
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return pkey(a) < pkey(b); });
  std::pair<std::uint32_t, std::int64_t> last{std::numeric_limits<std::uint32_t>::max(), 0};
  std::set<std::tuple<std::int64_t, std::int64_t, std::uint32_t>> hours; // day, hour, endpoint
  for (const std::uint32_t i : order) {
    const PacketRecord &p = batch.packets[i];
    const auto key = pkey(i);
    cql::Request &r = next(key != last);
    last = key;
    hours.emplace(day_of_hour(key.second), key.second, p.endpoint);
    cql::Statement &s = r.statements.emplace_back();
    s.prepared = w_.packet;
    s.values.add_text(batch.endpoints[p.endpoint])
        .add_bigint(key.second)
        .add_bigint(p.ts_us)
        .add_text(agent_)
        .add_bigint(batch.source_id)
        .add_bigint(static_cast<std::int64_t>(p.frame))
        .add_inet(p.dst)
        .add_int(p.dst_port)
        .add_int(p.protocol)
        .add_int(static_cast<std::int32_t>(p.bytes));
  }

  // Roll-ups of this batch per (endpoint, second, address).
  struct Agg {
    std::int64_t packets = 0, bytes = 0;
    TimeUs first = 0, last = 0;
  };
  std::map<std::tuple<std::uint32_t, std::int64_t, IpAddress>, Agg> rollups;
  for (const PacketRecord &p : batch.packets) {
    Agg &a = rollups[{p.endpoint, floor_div(p.ts_us, kUsPerSecond), p.dst}];
    if (a.packets == 0) {
      a.first = a.last = p.ts_us;
    }
    a.packets += 1;
    a.bytes += p.bytes;
    a.first = std::min(a.first, p.ts_us);
    a.last = std::max(a.last, p.ts_us);
  }
  last = {std::numeric_limits<std::uint32_t>::max(), 0};
  for (const auto &[key, a] : rollups) {
    const auto &[endpoint, second, address] = key;
    const std::pair<std::uint32_t, std::int64_t> part{endpoint, floor_div(second, kSecondsPerHour)};
    cql::Request &r = next(part != last);
    last = part;
    cql::Statement &s = r.statements.emplace_back();
    s.prepared = w_.rollup;
    s.values.add_text(batch.endpoints[endpoint])
        .add_bigint(part.second)
        .add_bigint(second)
        .add_inet(address)
        .add_text(agent_)
        .add_bigint(batch.source_id)
        .add_bigint(static_cast<std::int64_t>(batch.frames_through))
        .add_bigint(a.packets)
        .add_bigint(a.bytes)
        .add_bigint(a.first)
        .add_bigint(a.last);
  }

  // The catalog of partitions: endpoint_hours per day, days.
  std::int64_t last_day = std::numeric_limits<std::int64_t>::min();
  std::set<std::int64_t> days;
  for (const auto &[day, hour, endpoint] : hours) {
    cql::Request &r = next(day != last_day);
    last_day = day;
    days.insert(day);
    cql::Statement &s = r.statements.emplace_back();
    s.prepared = w_.endpoint_hour;
    s.values.add_bigint(day).add_bigint(hour).add_text(batch.endpoints[endpoint]);
  }
  bool first = true;
  for (const std::int64_t day : days) {
    cql::Statement &s = next(first).statements.emplace_back();
    first = false;
    s.prepared = w_.day;
    s.values.add_bigint(day);
  }

  // What DNS taught and who is local: the agent's partitions.
  first = true;
  for (const LearntAddress &l : batch.learnt) {
    cql::Request &r = next(first);
    first = false;
    cql::Statement &a = r.statements.emplace_back();
    a.prepared = w_.addr_last;
    a.values.add_bigint(l.when)
        .add_text(batch.endpoints[l.name])
        .add_bigint(l.when)
        .add_text(agent_)
        .add_inet(l.address);
    cql::Statement &b = r.statements.emplace_back();
    b.prepared = w_.addr_first;
    b.values.add_bigint(kFar - l.when)
        .add_bigint(l.when)
        .add_text(agent_)
        .add_inet(l.address)
        .add_text(batch.endpoints[l.name]);
  }
  for (const IpAddress &h : batch.local_hosts) {
    cql::Statement &s = next(first).statements.emplace_back();
    first = false;
    s.prepared = w_.local_host;
    s.values.add_bigint(kFar - spooled_us).add_bigint(spooled_us).add_text(agent_).add_inet(h);
  }

  if (!requests_.empty()) {
    if (cql::Status st = drain_->execute_all(requests_); !st) {
      return st;
    }
  }

  // The ledger last: it never claims frames whose rows are not acknowledged.
  requests_.clear();
  cql::Request &r = requests_.emplace_back();
  cql::Statement &reg = r.statements.emplace_back();
  reg.prepared = w_.src_reg;
  reg.values.add_bigint(batch.source_id).add_text(path).add_text(agent_).add_text(fingerprint);
  cql::Statement &done = r.statements.emplace_back();
  done.prepared = w_.src_done;
  done.values.add_bigint(static_cast<std::int64_t>(batch.frames_through))
      .add_bigint(static_cast<std::int64_t>(batch.frames_through))
      .add_text(agent_)
      .add_text(fingerprint);
  if (batch.source_complete) {
    cql::Statement &c = r.statements.emplace_back();
    c.prepared = w_.src_complete;
    c.values.add_text(agent_).add_text(fingerprint);
  }
  return drain_->execute_all(requests_);
}

void CassandraStore::refresh_views() {
  views_at_ = Clock::now();
  if (!drain_) {
    return;
  }
  std::vector<TableView> views;
  const cql::Status st =
      drain_->query("SELECT table_name, count, per_second, p50th_ms, p99th_ms, max_ms FROM "
                    "system_views.local_write_latency WHERE keyspace_name = '" +
                        keyspace_ + "'",
                    [&](const cql::Row &row) {
                      if (row.cells.size() < 6) {
                        return;
                      }
                      TableView v;
                      v.table = cql::as_text(row.cells[0]).value_or("");
                      v.count = static_cast<double>(cql::as_bigint(row.cells[1]).value_or(0));
                      v.per_second = cql::as_double(row.cells[2]).value_or(0);
                      v.p50_ms = cql::as_double(row.cells[3]).value_or(0);
                      v.p99_ms = cql::as_double(row.cells[4]).value_or(0);
                      v.max_ms = cql::as_double(row.cells[5]).value_or(0);
                      views.push_back(std::move(v));
                    });
  if (st) {
    const std::lock_guard lock(mu_);
    views_ = std::move(views);
  }
}

Status CassandraStore::settle(std::chrono::milliseconds timeout) {
  if (!spool_) {
    return Status::success();
  }
  std::unique_lock lock(mu_);
  const bool done =
      cv_.wait_for(lock, timeout, [&] { return failed_ || spool_->depth().batches == 0; });
  if (failed_) {
    return Status::failure(failure_);
  }
  if (!done) {
    const auto depth = spool_->depth();
    return Status::failure(
        "cassandra: " + std::to_string(depth.records) + " records in " +
        std::to_string(depth.batches) + " batches are still spooled in " + spool_->path() +
        " (last error: " + (last_error_.empty() ? std::string("none") : last_error_) +
        "); they are sent on the next start");
  }
  return Status::success();
}

// ---- metrics -------------------------------------------------------------------

void CassandraStore::backend_metrics(std::vector<BackendFamily> &out) {
  if (!spool_) {
    return;
  }
  const auto depth = spool_->depth();
  const std::lock_guard lock(mu_);
  const auto gauge = [&](std::string name, std::string help, double value) {
    BackendFamily f{std::move(name), std::move(help), BackendFamily::Type::gauge, {}};
    f.samples.push_back({{}, value, {}, {}, 0});
    out.push_back(std::move(f));
  };
  const auto counter = [&](std::string name, std::string help, double value) {
    BackendFamily f{std::move(name), std::move(help), BackendFamily::Type::counter, {}};
    f.samples.push_back({{}, value, {}, {}, 0});
    out.push_back(std::move(f));
  };
  gauge("traffic_cassandra_spool_batches", "Batches waiting in the durable spool.",
        static_cast<double>(depth.batches));
  gauge("traffic_cassandra_spool_records", "Packet records waiting in the durable spool.",
        static_cast<double>(depth.records));
  gauge("traffic_cassandra_spool_bytes", "Bytes of batches waiting in the durable spool.",
        static_cast<double>(depth.bytes));
  counter("traffic_cassandra_spool_damaged_total",
          "Spooled batches that did not decode and were set aside.", static_cast<double>(damaged_));
  counter("traffic_cassandra_batches_sent_total", "Spooled batches acknowledged by Cassandra.",
          static_cast<double>(batches_sent_));
  counter("traffic_cassandra_records_sent_total", "Packet records acknowledged by Cassandra.",
          static_cast<double>(rows_sent_));
  counter("traffic_cassandra_send_failures_total",
          "Attempts to send a spooled batch that failed and will be retried.",
          static_cast<double>(send_failures_));
  gauge("traffic_cassandra_up", "1 while the last send to Cassandra succeeded.", down_ ? 0 : 1);

  BackendFamily requests{"traffic_cassandra_client_requests_total",
                         "CQL requests sent, per node.",
                         BackendFamily::Type::counter,
                         {}};
  BackendFamily retries{"traffic_cassandra_client_retries_total",
                        "CQL requests retried, per node.",
                        BackendFamily::Type::counter,
                        {}};
  BackendFamily in_flight{"traffic_cassandra_client_in_flight",
                          "CQL requests awaiting a response, per node.",
                          BackendFamily::Type::gauge,
                          {}};
  BackendFamily up{"traffic_cassandra_client_node_up",
                   "1 while the client holds a connection.",
                   BackendFamily::Type::gauge,
                   {}};
  BackendFamily latency{"traffic_cassandra_client_request_duration_seconds",
                        "CQL request latency seen by the client, per node.",
                        BackendFamily::Type::histogram,
                        {}};
  BackendFamily errors{"traffic_cassandra_client_errors_total",
                       "CQL errors per node, by CQL error code name or client-side kind.",
                       BackendFamily::Type::counter,
                       {}};
  const auto bounds = cql::latency_bounds();
  for (const cql::NodeStats &n : node_stats_) {
    const std::vector<std::pair<std::string, std::string>> node{{"node", n.host}};
    requests.samples.push_back({node, static_cast<double>(n.requests), {}, {}, 0});
    retries.samples.push_back({node, static_cast<double>(n.retries), {}, {}, 0});
    in_flight.samples.push_back({node, static_cast<double>(n.in_flight), {}, {}, 0});
    up.samples.push_back({node, n.up ? 1.0 : 0.0, {}, {}, 0});
    BackendSample h{
        node, 0, {bounds.begin(), bounds.end()}, n.latency_buckets, n.latency_sum_seconds};
    latency.samples.push_back(std::move(h));
    for (const auto &[name, count] : n.errors) {
      errors.samples.push_back(
          {{{"node", n.host}, {"error", name}}, static_cast<double>(count), {}, {}, 0});
    }
  }
  out.push_back(std::move(requests));
  out.push_back(std::move(retries));
  out.push_back(std::move(in_flight));
  out.push_back(std::move(up));
  out.push_back(std::move(latency));
  out.push_back(std::move(errors));

  // The node's own view of our tables (system_views.local_write_latency).
  BackendFamily writes{"traffic_cassandra_table_writes_total",
                       "Local writes to each of our tables, as the node counts them.",
                       BackendFamily::Type::counter,
                       {}};
  BackendFamily rate{"traffic_cassandra_table_write_rate",
                     "Local writes per second to each table (the node's five-minute rate).",
                     BackendFamily::Type::gauge,
                     {}};
  BackendFamily lat{"traffic_cassandra_table_write_latency_seconds",
                    "Local write latency of each table by quantile, as the node reports it.",
                    BackendFamily::Type::gauge,
                    {}};
  for (const TableView &v : views_) {
    const std::vector<std::pair<std::string, std::string>> tl{{"keyspace", keyspace_},
                                                              {"table", v.table}};
    writes.samples.push_back({tl, v.count, {}, {}, 0});
    rate.samples.push_back({tl, v.per_second, {}, {}, 0});
    for (const auto &[q, ms] :
         {std::pair<const char *, double>{"0.5", v.p50_ms}, {"0.99", v.p99_ms}, {"1", v.max_ms}}) {
      auto labels = tl;
      labels.emplace_back("quantile", q);
      lat.samples.push_back({labels, ms / 1000.0, {}, {}, 0});
    }
  }
  out.push_back(std::move(writes));
  out.push_back(std::move(rate));
  out.push_back(std::move(lat));
}

// ---- reads ---------------------------------------------------------------------

Status CassandraStore::read(const cql::Prepared &p, const cql::Values &v, std::string_view doing,
                            const std::function<void(const cql::Row &)> &fn) {
  if (cql::Status st = reader_->execute_paged(p, v, 5000, fn); !st) {
    return from_cql(st, doing);
  }
  return Status::success();
}

Status CassandraStore::load_addresses(
    const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &fn) {
  struct Row {
    IpAddress a;
    std::string name;
    TimeUs first, last;
  };
  std::vector<Row> rows;
  {
    const std::lock_guard lock(read_mu_);
    cql::Values v;
    v.add_text(agent_);
    std::map<std::pair<IpAddress, std::string>, TimeUs> firsts;
    Status st = read(r_.names_of_agent, v, "loading addresses", [&](const cql::Row &row) {
      const auto a = cql::as_inet(row.cells[0]);
      const auto name = cql::as_text(row.cells[1]);
      if (a && name) {
        firsts[{*a, *name}] = cql::as_bigint(row.cells[2]).value_or(0);
      }
    });
    if (!st) {
      return st;
    }
    st = read(r_.addresses_of_agent, v, "loading addresses", [&](const cql::Row &row) {
      const auto a = cql::as_inet(row.cells[0]);
      const auto name = cql::as_text(row.cells[1]);
      if (a && name) {
        const TimeUs last = cql::as_bigint(row.cells[2]).value_or(0);
        const auto f = firsts.find({*a, *name});
        rows.push_back({*a, *name, f != firsts.end() ? f->second : last, last});
      }
    });
    if (!st) {
      return st;
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row &x, const Row &y) {
    return std::tie(x.last, x.a) < std::tie(y.last, y.a);
  });
  for (const Row &r : rows) {
    fn(r.a, r.name, r.first, r.last);
  }
  return Status::success();
}

Status CassandraStore::load_local_hosts(const std::function<void(const IpAddress &)> &fn) {
  std::vector<std::pair<TimeUs, IpAddress>> rows;
  {
    const std::lock_guard lock(read_mu_);
    cql::Values v;
    v.add_text(agent_);
    Status st = read(r_.local_hosts_of_agent, v, "loading local hosts", [&](const cql::Row &row) {
      if (const auto a = cql::as_inet(row.cells[0])) {
        rows.emplace_back(cql::as_bigint(row.cells[1]).value_or(0), *a);
      }
    });
    if (!st) {
      return st;
    }
  }
  std::sort(rows.begin(), rows.end());
  for (const auto &[when, a] : rows) {
    fn(a);
  }
  return Status::success();
}

Status CassandraStore::query_addresses(std::vector<AddressRow> &out) {
  out.clear();
  struct Merged {
    std::string name;
    TimeUs first = std::numeric_limits<TimeUs>::max();
    TimeUs last = std::numeric_limits<TimeUs>::min();
  };
  std::map<IpAddress, Merged> merged;
  std::map<std::pair<IpAddress, std::string>, TimeUs> firsts;
  {
    const std::lock_guard lock(read_mu_);
    cql::Status st = reader_->query(
        "SELECT address, name, first_learnt FROM " + t("address_names"), [&](const cql::Row &row) {
          const auto a = cql::as_inet(row.cells[0]);
          const auto name = cql::as_text(row.cells[1]);
          if (a && name) {
            const TimeUs first = cql::as_bigint(row.cells[2]).value_or(0);
            const auto [it, fresh] = firsts.try_emplace({*a, *name}, first);
            if (!fresh) { // several agents: the earliest
              it->second = std::min(it->second, first);
            }
          }
        });
    if (!st) {
      return from_cql(st, "querying addresses");
    }
    st = reader_->query("SELECT address, name, last_learnt FROM " + t("addresses"),
                        [&](const cql::Row &row) {
                          const auto a = cql::as_inet(row.cells[0]);
                          const auto name = cql::as_text(row.cells[1]);
                          if (!a || !name) {
                            return;
                          }
                          Merged &m = merged[*a];
                          const TimeUs last = cql::as_bigint(row.cells[2]).value_or(0);
                          if (last >= m.last) { // several agents: the latest answer wins
                            m.name = *name;
                            m.last = last;
                          }
                        });
    if (!st) {
      return from_cql(st, "querying addresses");
    }
  }
  for (auto &[a, m] : merged) {
    const auto f = firsts.find({a, m.name});
    m.first = f != firsts.end() ? f->second : m.last;
  }
  // The SQLite order: name, then address bytes (shorter first on a tie).
  std::vector<std::pair<IpAddress, Merged>> rows(merged.begin(), merged.end());
  std::sort(rows.begin(), rows.end(), [](const auto &x, const auto &y) {
    if (x.second.name != y.second.name) {
      return x.second.name < y.second.name;
    }
    const std::size_t lx = x.first.length();
    const std::size_t ly = y.first.length();
    const int c = std::memcmp(x.first.bytes.data(), y.first.bytes.data(), std::min(lx, ly));
    return c != 0 ? c < 0 : lx < ly;
  });
  for (const auto &[a, m] : rows) {
    out.push_back(AddressRow{a.to_string(), m.name, m.first, m.last});
  }
  return Status::success();
}

// (endpoint, hour) partitions of the days [day_lo, day_hi].
Status CassandraStore::hours_in(std::int64_t day_lo, std::int64_t day_hi,
                                std::vector<std::pair<std::string, std::int64_t>> &out) {
  std::vector<std::int64_t> days;
  cql::Status st =
      reader_->query("SELECT day FROM " + t("days") + " WHERE shard = 0", [&](const cql::Row &row) {
        const auto d = cql::as_bigint(row.cells[0]);
        if (d && *d >= day_lo && *d <= day_hi) {
          days.push_back(*d);
        }
      });
  if (!st) {
    return from_cql(st, "listing days");
  }
  for (const std::int64_t day : days) {
    cql::Values v;
    v.add_bigint(day);
    Status s = read(r_.hours_of_day, v, "listing partitions", [&](const cql::Row &row) {
      const auto hour = cql::as_bigint(row.cells[0]);
      const auto endpoint = cql::as_text(row.cells[1]);
      if (hour && endpoint) {
        out.emplace_back(*endpoint, *hour);
      }
    });
    if (!s) {
      return s;
    }
  }
  return Status::success();
}

// Exact range semantics as in SQLite: whole seconds from roll-ups, the
// partial seconds at each end from the packet rows of those partitions.
Status CassandraStore::query_endpoints(const TimeRange &range, std::vector<EndpointSummary> &out) {
  out.clear();
  if (range.since && range.until && *range.since >= *range.until) {
    return Status::success();
  }
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min() / 4;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max() / 4;
  const std::int64_t since = range.since.value_or(kMin);
  const std::int64_t until = range.until.value_or(kMax);
  const std::int64_t lo = range.since ? ceil_div(since, kUsPerSecond) : kMin;  // whole seconds
  const std::int64_t hi = range.until ? floor_div(until, kUsPerSecond) : kMax; // [lo, hi)
  std::vector<std::pair<std::int64_t, std::int64_t>> pieces;                   // partial µs pieces
  if (range.since && since < std::min(until, lo * kUsPerSecond)) {
    pieces.emplace_back(since, std::min(until, lo * kUsPerSecond));
  }
  if (range.until && std::max(since, hi * kUsPerSecond) < until && hi >= lo) {
    pieces.emplace_back(std::max(since, hi * kUsPerSecond), until);
  }

  struct Agg {
    std::uint64_t packets = 0, bytes = 0;
    TimeUs first = std::numeric_limits<TimeUs>::max();
    TimeUs last = std::numeric_limits<TimeUs>::min();
    std::set<IpAddress> addresses;
  };
  std::map<std::string, Agg> by_name;
  const std::lock_guard lock(read_mu_);
  std::vector<std::pair<std::string, std::int64_t>> parts;
  const std::int64_t day_lo = range.since ? day_of_hour(hour_of_us(since)) : kMin;
  const std::int64_t day_hi = range.until ? day_of_hour(hour_of_us(until)) : kMax;
  if (Status st = hours_in(day_lo, day_hi, parts); !st) {
    return st;
  }
  for (const auto &part : parts) {
    // Named copies: lambdas below may not capture structured bindings (C++20).
    const std::string &endpoint = part.first;
    const std::int64_t hour = part.second;
    const std::int64_t h0 = hour * kSecondsPerHour;
    const std::int64_t s0 = std::max(lo, h0);
    const std::int64_t s1 = std::min(hi, h0 + kSecondsPerHour);
    if (s0 < s1) {
      cql::Values v;
      v.add_text(endpoint).add_bigint(hour).add_bigint(s0).add_bigint(s1);
      Status st = read(r_.rollups, v, "summarising roll-ups", [&](const cql::Row &row) {
        Agg &a = by_name[endpoint];
        if (const auto addr = cql::as_inet(row.cells[0])) {
          a.addresses.insert(*addr);
        }
        a.packets += static_cast<std::uint64_t>(cql::as_bigint(row.cells[1]).value_or(0));
        a.bytes += static_cast<std::uint64_t>(cql::as_bigint(row.cells[2]).value_or(0));
        a.first = std::min(a.first, cql::as_bigint(row.cells[3]).value_or(a.first));
        a.last = std::max(a.last, cql::as_bigint(row.cells[4]).value_or(a.last));
      });
      if (!st) {
        return st;
      }
    }
    for (const auto &[b, e] : pieces) {
      const std::int64_t pb = std::max(b, h0 * kUsPerSecond);
      const std::int64_t pe = std::min(e, (h0 + kSecondsPerHour) * kUsPerSecond);
      if (pb >= pe) {
        continue;
      }
      cql::Values v;
      v.add_text(endpoint).add_bigint(hour).add_bigint(pb).add_bigint(pe);
      Status st = read(r_.packets_range, v, "summarising packets", [&](const cql::Row &row) {
        Agg &a = by_name[endpoint];
        if (const auto addr = cql::as_inet(row.cells[0])) {
          a.addresses.insert(*addr);
        }
        a.packets += 1;
        a.bytes += static_cast<std::uint64_t>(cql::as_int(row.cells[1]).value_or(0));
        const TimeUs ts = cql::as_bigint(row.cells[2]).value_or(0);
        a.first = std::min(a.first, ts);
        a.last = std::max(a.last, ts);
      });
      if (!st) {
        return st;
      }
    }
  }
  for (auto &[name, a] : by_name) {
    if (a.packets == 0) {
      continue;
    }
    EndpointSummary e;
    e.endpoint = name;
    e.packets = a.packets;
    e.bytes = a.bytes;
    e.first_seen = a.first;
    e.last_seen = a.last;
    for (const IpAddress &addr : a.addresses) {
      e.addresses.push_back(addr.to_string());
    }
    std::sort(e.addresses.begin(), e.addresses.end());
    out.push_back(std::move(e));
  }
  return Status::success();
}

Status CassandraStore::query_packets(std::string_view endpoint, std::size_t limit,
                                     std::vector<PacketRow> &out) {
  out.clear();
  const std::lock_guard lock(read_mu_);
  std::vector<std::pair<std::string, std::int64_t>> parts;
  if (Status st = hours_in(std::numeric_limits<std::int64_t>::min(),
                           std::numeric_limits<std::int64_t>::max(), parts);
      !st) {
    return st;
  }
  std::vector<std::int64_t> hours;
  for (const auto &[name, hour] : parts) {
    if (name == endpoint) {
      hours.push_back(hour);
    }
  }
  std::sort(hours.rbegin(), hours.rend());
  for (const std::int64_t hour : hours) {
    if (limit != 0 && out.size() >= limit) {
      break;
    }
    const std::size_t want =
        limit == 0
            ? std::numeric_limits<std::int32_t>::max()
            : std::min<std::size_t>(limit - out.size(), std::numeric_limits<std::int32_t>::max());
    cql::Values v;
    v.add_text(endpoint).add_bigint(hour).add_int(static_cast<std::int32_t>(want));
    Status st = read(r_.packets_recent, v, "querying packets", [&](const cql::Row &row) {
      PacketRow p;
      p.endpoint = std::string(endpoint);
      p.ts_us = cql::as_bigint(row.cells[0]).value_or(0);
      p.address = cql::as_inet(row.cells[1]).value_or(IpAddress{}).to_string();
      p.port = static_cast<std::uint16_t>(cql::as_int(row.cells[2]).value_or(0));
      p.protocol = static_cast<std::uint8_t>(cql::as_int(row.cells[3]).value_or(0));
      p.bytes = static_cast<std::uint32_t>(cql::as_int(row.cells[4]).value_or(0));
      out.push_back(std::move(p));
    });
    if (!st) {
      return st;
    }
  }
  if (limit != 0 && out.size() > limit) {
    out.resize(limit);
  }
  return Status::success();
}

} // namespace

// ---- spec ----------------------------------------------------------------------

bool is_cassandra_spec(std::string_view spec) {
  return spec.starts_with("cassandra://");
}

bool parse_cassandra_spec(std::string_view spec, CassandraTarget &target, std::string &error) {
  const std::string whole(spec);
  const auto bad = [&](const std::string &why) {
    error = "--store '" + whole + "': " + why +
            " (expected cassandra://[USER@]HOST[:PORT][,HOST[:PORT]]...[/KEYSPACE])";
    return false;
  };
  if (!is_cassandra_spec(spec)) {
    return bad("not a cassandra:// spec");
  }
  spec.remove_prefix(std::string_view("cassandra://").size());
  target = CassandraTarget{};
  // The keyspace follows the first '/' (none appears in a host list).
  if (const auto slash = spec.find('/'); slash != std::string_view::npos) {
    target.keyspace = std::string(spec.substr(slash + 1));
    spec = spec.substr(0, slash);
    if (!valid_keyspace(target.keyspace)) {
      return bad("keyspace '" + target.keyspace +
                 "' must be 1-48 letters, digits or _, starting with a letter");
    }
    std::transform(target.keyspace.begin(), target.keyspace.end(), target.keyspace.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  if (const auto at = spec.rfind('@'); at != std::string_view::npos) {
    target.user = std::string(spec.substr(0, at));
    spec = spec.substr(at + 1);
    if (target.user.find(':') != std::string::npos) {
      error = "--store: a password does not belong on the command line; set "
              "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD or use --cassandra-password-file";
      return false;
    }
    if (target.user.empty()) {
      return bad("empty user name before '@'");
    }
  }
  while (true) {
    const auto comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    std::string host;
    std::string_view port_text;
    if (item.starts_with('[')) {
      const auto close = item.find(']');
      if (close == std::string_view::npos) {
        return bad("unclosed '[' in host");
      }
      host = std::string(item.substr(1, close - 1));
      const std::string_view rest = item.substr(close + 1);
      if (!rest.empty()) {
        if (!rest.starts_with(':')) {
          return bad("junk after ']'");
        }
        port_text = rest.substr(1);
        if (port_text.empty()) {
          return bad("empty port");
        }
      }
    } else {
      const auto colon = item.find(':');
      host = std::string(item.substr(0, colon));
      if (colon != std::string_view::npos) {
        port_text = item.substr(colon + 1);
        if (port_text.empty()) {
          return bad("empty port");
        }
      }
    }
    if (host.empty()) {
      return bad("empty host");
    }
    std::uint32_t port = 9042;
    if (!port_text.empty()) {
      port = 0;
      for (const char c : port_text) {
        if (c < '0' || c > '9' || port > 65535) {
          return bad("bad port '" + std::string(port_text) + "'");
        }
        port = port * 10 + static_cast<std::uint32_t>(c - '0');
      }
      if (port == 0 || port > 65535) {
        return bad("bad port '" + std::string(port_text) + "'");
      }
    }
    target.hosts.emplace_back(host, static_cast<std::uint16_t>(port));
    if (comma == std::string_view::npos) {
      break;
    }
    spec = spec.substr(comma + 1);
  }
  return true;
}

std::unique_ptr<Store> open_cassandra_store(std::string_view spec,
                                            const CassandraOptions &options_in,
                                            std::string &error) {
  try {
    CassandraOptions options = options_in;
    if (options.password.empty() && !options.password_file.empty()) {
      std::ifstream in(options.password_file);
      if (!in || !std::getline(in, options.password)) {
        error = "--cassandra-password-file " + options.password_file + ": cannot read a line";
        return nullptr;
      }
      if (!options.password.empty() && options.password.back() == '\r') {
        options.password.pop_back();
      }
    } else if (options.password.empty()) {
      if (const char *env = std::getenv(kPasswordEnv); env != nullptr) {
        options.password = env;
      }
    }
    return CassandraStore::open(spec, options, error);
  } catch (const std::exception &e) {
    error = std::string("cassandra store: ") + e.what();
    return nullptr;
  }
}

} // namespace ta::store
