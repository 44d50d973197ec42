// store/sqlite/query: reloading learnt state and the three queries.
#include <algorithm>
#include <array>
#include <map>
#include <string>

#include "sqlite_store.hpp"

namespace ta::store::detail::sqlite {

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
//
// Received packets and bytes and the per-source name counts have no packet
// rows to split a second with: they come from the whole seconds' roll-ups
// only. Exact for whole-second bounds (the usual case); a bound inside a
// second leaves that second's received and name counts out, so they never
// count a packet outside the range (sent counts stay exact).
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
    std::uint64_t received_packets = 0;
    std::uint64_t received_bytes = 0;
    std::array<std::uint64_t, detail::kNameSources> names{};
    TimeUs first = std::numeric_limits<TimeUs>::max();
    TimeUs last = std::numeric_limits<TimeUs>::min();
    std::vector<IpAddress> addresses;
  };
  std::map<std::int64_t, Agg> by_id;
  const auto u64 = [](sqlite3_stmt *s, int col) {
    return static_cast<std::uint64_t>(sqlite3_column_int64(s, col));
  };

  // Rows of rollups, or of packets (sent packets of the partial seconds).
  const auto collect = [&](sqlite3_stmt *s, std::string_view what, bool rollups) -> Status {
    constexpr int base = 2;
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      IpAddress a;
      if (!address_from_blob(sqlite3_column_blob(s, 1), sqlite3_column_bytes(s, 1), a)) {
        return Status::failure(plain_error(std::string(what) + " holds a malformed address"));
      }
      Agg &agg = by_id[sqlite3_column_int64(s, 0)];
      agg.addresses.push_back(a);
      agg.packets += u64(s, base);
      agg.bytes += u64(s, base + 1);
      agg.first = std::min<TimeUs>(agg.first, sqlite3_column_int64(s, base + 2));
      agg.last = std::max<TimeUs>(agg.last, sqlite3_column_int64(s, base + 3));
      if (rollups) {
        agg.received_packets += u64(s, base + 4);
        agg.received_bytes += u64(s, base + 5);
        for (std::size_t i = 0; i < agg.names.size(); ++i) {
          agg.names[i] += u64(s, base + 6 + static_cast<int>(i));
        }
      }
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
    if (Status st = collect(s, "rollups", true); !st) {
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
    if (Status st = collect(s, "packets", false); !st) {
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
    e.received_packets = agg.received_packets;
    e.received_bytes = agg.received_bytes;
    e.names = agg.names;
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

} // namespace ta::store::detail::sqlite

namespace ta::store::detail::sqlite {

Status SqliteStore::query_flows(const FlowQuery &query, std::vector<FlowRow> &out) {
  try {
    const std::lock_guard lock(mu_);
    out.clear();
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
      FlowRow row;
      row.protocol = static_cast<std::uint8_t>(sqlite3_column_int64(s, 0));
      row.client = client.to_string();
      row.client_port = static_cast<std::uint16_t>(sqlite3_column_int64(s, 2));
      row.endpoint_address = endpoint.to_string();
      row.endpoint_port = static_cast<std::uint16_t>(sqlite3_column_int64(s, 4));
      row.endpoint = std::string(column_text(s, 5));
      row.source = source >= 0 && source < static_cast<std::int64_t>(NameSource::count_)
                       ? static_cast<NameSource>(source)
                       : NameSource::none;
      row.sent_packets = u64(7);
      row.sent_bytes = u64(8);
      row.received_packets = u64(9);
      row.received_bytes = u64(10);
      row.first_seen = sqlite3_column_int64(s, 11);
      row.last_seen = sqlite3_column_int64(s, 12);
      out.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) {
      out.clear();
      return fail("querying flows");
    }
    return Status::success();
  } catch (...) {
    out.clear();
    return Status::failure(plain_error("query_flows: out of memory"));
  }
}

} // namespace ta::store::detail::sqlite
