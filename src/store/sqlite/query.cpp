// store/sqlite/query: reloading learnt state and the three queries.
#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <string>

#include "sqlite_store.hpp"

namespace ta::store::detail::sqlite {

// ---- queries ---------------------------------------------------------------

namespace {

// The big sorted reads (the address table at start, the endpoint summary)
// run with temporary data on disk and a 16 MiB cache, so a sort spills to a
// temporary file instead of growing in memory with the rows sorted; the
// connection's own cache size (tune(), or the read-only one) and in-memory
// temporary data come back at the end of the scope. Best effort: a pragma
// that fails leaves the setting.
class BoundedSorts {
public:
  explicit BoundedSorts(sqlite3 *db) noexcept : db_(db) {
    sqlite3_stmt *st = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA cache_size", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      cache_size_ = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_exec(db_, "PRAGMA temp_store=FILE; PRAGMA cache_size=-16384", nullptr, nullptr,
                 nullptr);
  }
  ~BoundedSorts() {
    std::array<char, 64> restore{};
    std::snprintf(restore.data(), restore.size(),
                  "PRAGMA temp_store=MEMORY; PRAGMA cache_size=%lld",
                  static_cast<long long>(cache_size_));
    sqlite3_exec(db_, restore.data(), nullptr, nullptr, nullptr);
  }
  BoundedSorts(const BoundedSorts &) = delete;
  BoundedSorts &operator=(const BoundedSorts &) = delete;

private:
  sqlite3 *db_;
  std::int64_t cache_size_ = -kWriteCacheKiB;
};

} // namespace

// `fn` runs under mu_: it must not call back into the store.
Status SqliteStore::load_addresses(
    const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &fn) {
  try {
    const std::lock_guard lock(mu_);
    const BoundedSorts bounded(db_.get());
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

// Collects what for_each_* hands on (the vector form of a query).
template <class Row> Store::RowSink<Row> collect_into(std::vector<Row> &out) {
  out.clear();
  return [&out](const Row &r) {
    out.push_back(r);
    return Status::success();
  };
}

Status SqliteStore::query_addresses(std::vector<AddressRow> &out) {
  Status st = for_each_address(collect_into(out));
  if (!st) {
    out.clear();
  }
  return st;
}

Status SqliteStore::for_each_address(const RowSink<AddressRow> &row) {
  try {
    const std::lock_guard lock(mu_);
    const BoundedSorts bounded(db_.get());
    sqlite3_stmt *s = query_addresses_.get();
    ResetOnExit reset(s);
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress a;
      if (!address_from_blob(sqlite3_column_blob(s, 0), sqlite3_column_bytes(s, 0), a)) {
        return Status::failure(plain_error("addresses table holds a malformed address"));
      }
      if (Status st = row(AddressRow{a.to_string(), std::string(column_text(s, 1)),
                                     sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3)});
          !st) {
        return st;
      }
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
  Status st = for_each_packet(endpoint, limit, collect_into(out));
  if (!st) {
    out.clear();
  }
  return st;
}

Status SqliteStore::for_each_packet(std::string_view endpoint, std::size_t limit,
                                    const RowSink<PacketRow> &row) {
  try {
    const std::lock_guard lock(mu_);
    const BoundedSorts bounded(db_.get());
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
      PacketRow r;
      r.endpoint = std::string(endpoint);
      r.ts_us = sqlite3_column_int64(s, 0);
      r.address = a.to_string();
      r.port = static_cast<std::uint16_t>(sqlite3_column_int64(s, 2));
      r.protocol = static_cast<std::uint8_t>(sqlite3_column_int64(s, 3));
      r.bytes = static_cast<std::uint32_t>(sqlite3_column_int64(s, 4));
      if (Status st = row(r); !st) {
        return st;
      }
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
//
// Received packets and bytes and the per-source name counts have no packet
// rows to split a second with: they come from the whole seconds' roll-ups
// only. Exact for whole-second bounds (the usual case); a bound inside a
// second leaves that second's received and name counts out, so they never
// count a packet outside the range (sent counts stay exact).
//
// Streamed: SQL sums per (endpoint, address) and sorts by endpoint name (its
// sorter spills to temporary files, so memory does not grow with the row
// count); the rows of one endpoint arrive together and are handed on as one
// EndpointSummary before the next endpoint is read.
namespace {

// The inputs of the union below, with the same columns: endpoint_id,
// address, sent packets and bytes, first/last µs, received packets and bytes,
// names by NameSource.
constexpr const char *kRollupPart =
    "SELECT endpoint_id, address, packets AS p, bytes AS b, first_us AS f, last_us AS l, "
    "received_packets AS rp, received_bytes AS rb, names_none AS n0, names_sni AS n1, "
    "names_quic AS n2, names_http AS n3, names_dns AS n4 FROM rollups "
    "WHERE second >= ?1 AND second < ?2";
// Two half-open µs intervals (the partial boundary seconds of a range).
constexpr const char *kPacketPart =
    "SELECT endpoint_id, address, 1 AS p, bytes AS b, ts_us AS f, ts_us AS l, 0 AS rp, 0 AS rb, "
    "0 AS n0, 0 AS n1, 0 AS n2, 0 AS n3, 0 AS n4 FROM packets "
    "WHERE (ts_us >= ?3 AND ts_us < ?4) OR (ts_us >= ?5 AND ts_us < ?6)";

// At least one of the two inputs.
std::string endpoints_sql(bool rollups, bool packets) {
  std::string sql =
      "SELECT u.endpoint_id, e.name, u.address, sum(u.p), sum(u.b), min(u.f), max(u.l), "
      "sum(u.rp), sum(u.rb), sum(u.n0), sum(u.n1), sum(u.n2), sum(u.n3), sum(u.n4) FROM (";
  sql += rollups ? kRollupPart : "";
  sql += rollups && packets ? " UNION ALL " : "";
  sql += packets ? kPacketPart : "";
  sql += ") AS u LEFT JOIN endpoints AS e ON e.id = u.endpoint_id "
         "GROUP BY u.endpoint_id, u.address ORDER BY e.name, u.endpoint_id";
  return sql;
}

} // namespace

Status SqliteStore::endpoints_in_transaction(const TimeRange &range, const EndpointSink &row) {
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
  const bool rollups = lo < hi;
  const bool packets = piece1_begin < piece1_end || piece2_begin < piece2_end;
  if (!rollups && !packets) {
    return Status::success();
  }

  sqlite3_stmt *raw = nullptr;
  const std::string sql = endpoints_sql(rollups, packets);
  if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return fail("summarising endpoints");
  }
  const Stmt stmt(raw);
  sqlite3_stmt *s = stmt.get();
  int brc = SQLITE_OK;
  if (rollups) {
    brc |= sqlite3_bind_int64(s, 1, lo) | sqlite3_bind_int64(s, 2, hi);
  }
  if (packets) {
    brc |= sqlite3_bind_int64(s, 3, piece1_begin) | sqlite3_bind_int64(s, 4, piece1_end) |
           sqlite3_bind_int64(s, 5, piece2_begin) | sqlite3_bind_int64(s, 6, piece2_end);
  }
  if (brc != SQLITE_OK) {
    return fail("summarising endpoints");
  }
  const auto u64 = [s](int col) {
    return static_cast<std::uint64_t>(sqlite3_column_int64(s, col));
  };

  // The endpoint being gathered: its rows are adjacent (ordered by name, id).
  EndpointSummary e;
  std::vector<IpAddress> addresses;
  std::int64_t current = 0;
  bool open = false;
  const auto hand_on = [&]() -> Status {
    e.addresses.clear();
    e.addresses.reserve(addresses.size());
    for (const IpAddress &a : addresses) {
      e.addresses.push_back(a.to_string());
    }
    // "sorted, canonical text": plain string order of the text.
    std::sort(e.addresses.begin(), e.addresses.end());
    e.addresses.erase(std::unique(e.addresses.begin(), e.addresses.end()), e.addresses.end());
    return row(e);
  };
  int rc = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const std::int64_t id = sqlite3_column_int64(s, 0);
    if (sqlite3_column_type(s, 1) == SQLITE_NULL) {
      return Status::failure(
          plain_error("rollups refer to unknown endpoint id " + std::to_string(id)));
    }
    IpAddress a;
    if (!address_from_blob(sqlite3_column_blob(s, 2), sqlite3_column_bytes(s, 2), a)) {
      return Status::failure(plain_error("rollups or packets hold a malformed address"));
    }
    if (!open || id != current) {
      if (open) {
        if (Status st = hand_on(); !st) {
          return st;
        }
      }
      open = true;
      current = id;
      e = EndpointSummary{};
      e.endpoint = std::string(column_text(s, 1));
      e.first_seen = std::numeric_limits<TimeUs>::max();
      e.last_seen = std::numeric_limits<TimeUs>::min();
      addresses.clear();
    }
    addresses.push_back(a);
    e.packets += u64(3);
    e.bytes += u64(4);
    e.first_seen = std::min<TimeUs>(e.first_seen, sqlite3_column_int64(s, 5));
    e.last_seen = std::max<TimeUs>(e.last_seen, sqlite3_column_int64(s, 6));
    e.received_packets += u64(7);
    e.received_bytes += u64(8);
    for (std::size_t i = 0; i < e.names.size(); ++i) {
      e.names[i] += u64(9 + static_cast<int>(i));
    }
  }
  if (rc != SQLITE_DONE) {
    return fail("summarising endpoints");
  }
  return open ? hand_on() : Status::success();
}

Status SqliteStore::for_each_endpoint(const TimeRange &range, const EndpointSink &row) {
  try {
    const std::lock_guard lock(mu_);
    if (range.since && range.until && *range.since >= *range.until) {
      return Status::success();
    }
    const BoundedSorts bounded(db_.get());
    // One read transaction: rollups and packets from the same snapshot.
    if (!step_done(begin_read_.get())) {
      Status st = fail("begin read transaction");
      rollback();
      return st;
    }
    Status st = endpoints_in_transaction(range, row);
    if (st && !step_done(commit_.get())) {
      st = fail("end read transaction");
    }
    if (!st) {
      rollback();
    }
    return st;
  } catch (...) {
    rollback();
    return Status::failure(plain_error("query_endpoints: out of memory"));
  }
}

Status SqliteStore::query_endpoints(const TimeRange &range, std::vector<EndpointSummary> &out) {
  out.clear();
  Status st = for_each_endpoint(range, [&out](const EndpointSummary &e) {
    out.push_back(e);
    return Status::success();
  });
  if (!st) {
    out.clear();
  }
  return st;
}

} // namespace ta::store::detail::sqlite

namespace ta::store::detail::sqlite {

Status SqliteStore::query_flows(const FlowQuery &query, std::vector<FlowRow> &out) {
  Status st = for_each_flow(query, collect_into(out));
  if (!st) {
    out.clear();
  }
  return st;
}

Status SqliteStore::for_each_flow(const FlowQuery &query, const RowSink<FlowRow> &row) {
  try {
    const std::lock_guard lock(mu_);
    const TimeRange &range = query.range;
    if (range.since && range.until && *range.since >= *range.until) {
      return Status::success();
    }
    sqlite3_stmt *s = query_flows_.get();
    ResetOnExit reset(s);
    int brc = query.endpoint ? bind_text(s, 1, *query.endpoint) : sqlite3_bind_null(s, 1);
    brc |= sqlite3_bind_int64(s, 2, range.since.value_or(std::numeric_limits<std::int64_t>::min()));
    brc |= sqlite3_bind_int64(s, 3, range.until.value_or(std::numeric_limits<std::int64_t>::max()));
    if (brc != SQLITE_OK) {
      return fail("querying flows");
    }
    const BoundedSorts bounded(db_.get());
    const auto u64 = [s](int col) {
      return static_cast<std::uint64_t>(sqlite3_column_int64(s, col));
    };
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress client;
      IpAddress endpoint;
      if (!address_from_blob(sqlite3_column_blob(s, 1), sqlite3_column_bytes(s, 1), client) ||
          !address_from_blob(sqlite3_column_blob(s, 3), sqlite3_column_bytes(s, 3), endpoint)) {
        return Status::failure(plain_error("flows table holds a malformed address"));
      }
      const std::int64_t source = sqlite3_column_int64(s, 6);
      FlowRow r;
      r.protocol = static_cast<std::uint8_t>(sqlite3_column_int64(s, 0));
      r.client = client.to_string();
      r.client_port = static_cast<std::uint16_t>(sqlite3_column_int64(s, 2));
      r.endpoint_address = endpoint.to_string();
      r.endpoint_port = static_cast<std::uint16_t>(sqlite3_column_int64(s, 4));
      r.endpoint = std::string(column_text(s, 5));
      r.source = source >= 0 && source < static_cast<std::int64_t>(NameSource::count_)
                     ? static_cast<NameSource>(source)
                     : NameSource::none;
      r.sent_packets = u64(7);
      r.sent_bytes = u64(8);
      r.received_packets = u64(9);
      r.received_bytes = u64(10);
      r.first_seen = sqlite3_column_int64(s, 11);
      r.last_seen = sqlite3_column_int64(s, 12);
      r.pid = static_cast<std::int32_t>(sqlite3_column_int64(s, 13));
      r.program = std::string(column_text(s, 14));
      if (Status st = row(r); !st) {
        return st;
      }
    }
    if (rc != SQLITE_DONE) {
      return fail("querying flows");
    }
    return Status::success();
  } catch (...) {
    return Status::failure(plain_error("query_flows: out of memory"));
  }
}

} // namespace ta::store::detail::sqlite
