// store/cassandra/reads: the source ledger lookup, reloading what DNS
// taught, and the three queries (the same answers as the SQLite backend).
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {

// ---- sources -------------------------------------------------------------------

Status CassandraStore::begin_source(const SourceInfo &info, SourceState &state) {
  if (!spool_) {
    return Status::unsupported("cassandra: opened for queries only");
  }
  if (info.fingerprint.empty()) {
    return Status::invalid_argument("begin_source: empty fingerprint");
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
      return ledger_failure(st);
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
        return ledger_failure(st);
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

// ---- reads ---------------------------------------------------------------------

Status CassandraStore::read(const cql::Prepared &p, const cql::Values &v, std::string_view doing,
                            const std::function<void(const cql::Row &)> &fn) {
  if (ta::Status st = reader_->execute_paged(p, v, kReadPageSize, fn); !st) {
    return from_cql(st, doing);
  }
  return Status::success();
}

Status CassandraStore::read_many(std::span<const cql::Statement> reads, std::string_view doing,
                                 const std::function<void(std::size_t, const cql::Row &)> &fn) {
  if (ta::Status st = reader_->execute_paged_many(reads, kReadPageSize, kReadsInFlight, fn); !st) {
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
    ta::Status st =
        reader_->query("SELECT address, name, first_learnt, agent FROM " + t("address_names"),
                       [&](const cql::Row &row) {
                         if (row.cells.size() < 4 || other_agent(row.cells[3])) {
                           return;
                         }
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
    st = reader_->query("SELECT address, name, last_learnt, agent FROM " + t("addresses"),
                        [&](const cql::Row &row) {
                          if (row.cells.size() < 4 || other_agent(row.cells[3])) {
                            return;
                          }
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
  ta::Status st =
      reader_->query("SELECT day FROM " + t("days") + " WHERE shard = 0", [&](const cql::Row &row) {
        const auto d = cql::as_bigint(row.cells[0]);
        if (d && *d >= day_lo && *d <= day_hi) {
          days.push_back(*d);
        }
      });
  if (!st) {
    return from_cql(st, "listing days");
  }
  std::vector<cql::Statement> reads(days.size());
  for (std::size_t i = 0; i < days.size(); ++i) {
    reads[i].prepared = r_.hours_of_day;
    reads[i].values.add_bigint(days[i]);
  }
  return read_many(reads, "listing partitions", [&](std::size_t, const cql::Row &row) {
    const auto hour = cql::as_bigint(row.cells[0]);
    const auto endpoint = cql::as_text(row.cells[1]);
    if (hour && endpoint) {
      out.emplace_back(*endpoint, *hour);
    }
  });
}

// Exact range semantics as in SQLite: whole seconds from roll-ups, the
// partial seconds at each end from the packet rows of those partitions.
// Received and per-source name counts as in SQLite: from the whole seconds'
// roll-ups only.
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
    std::uint64_t packets = 0, bytes = 0, received_packets = 0, received_bytes = 0;
    std::array<std::uint64_t, static_cast<std::size_t>(NameSource::count_)> names{};
    TimeUs first = std::numeric_limits<TimeUs>::max();
    TimeUs last = std::numeric_limits<TimeUs>::min();
    std::set<IpAddress> addresses;
  };
  const auto u64 = [](const cql::Row &row, std::size_t i) {
    return static_cast<std::uint64_t>(cql::as_bigint(row.cells[i]).value_or(0));
  };
  std::map<std::string, Agg> by_name;
  const std::lock_guard lock(read_mu_);
  std::vector<std::pair<std::string, std::int64_t>> parts;
  const std::int64_t day_lo = range.since ? day_of_hour(hour_of_us(since)) : kMin;
  const std::int64_t day_hi = range.until ? day_of_hour(hour_of_us(until)) : kMax;
  if (Status st = hours_in(day_lo, day_hi, parts); !st) {
    return st;
  }
  // Every partition's roll-ups (whole seconds) and packets (partial
  // seconds at the ends), read kReadsInFlight at a time; rows only update
  // the per-endpoint sums, so their interleaving does not matter.
  enum class ReadKind : std::uint8_t { rollups, packets };
  std::vector<cql::Statement> reads;
  std::vector<std::pair<std::size_t, ReadKind>> read_of; // part, kind per read
  for (std::size_t pi = 0; pi < parts.size(); ++pi) {
    const auto &[endpoint, hour] = parts[pi];
    const std::int64_t h0 = hour * kSecondsPerHour;
    const std::int64_t s0 = std::max(lo, h0);
    const std::int64_t s1 = std::min(hi, h0 + kSecondsPerHour);
    if (s0 < s1) {
      cql::Statement &r = reads.emplace_back();
      r.prepared = r_.rollups;
      r.values.add_text(endpoint).add_bigint(hour).add_bigint(s0).add_bigint(s1);
      read_of.emplace_back(pi, ReadKind::rollups);
    }
    for (const auto &[b, e] : pieces) {
      const std::int64_t pb = std::max(b, h0 * kUsPerSecond);
      const std::int64_t pe = std::min(e, (h0 + kSecondsPerHour) * kUsPerSecond);
      if (pb >= pe) {
        continue;
      }
      cql::Statement &r = reads.emplace_back();
      r.prepared = r_.packets_range;
      r.values.add_text(endpoint).add_bigint(hour).add_bigint(pb).add_bigint(pe);
      read_of.emplace_back(pi, ReadKind::packets);
    }
  }
  const auto on_rollup = [&](const std::string &endpoint, const cql::Row &row) {
    if (row.cells.size() < 7 || other_agent(row.cells.back())) {
      return;
    }
    Agg &a = by_name[endpoint];
    if (const auto addr = cql::as_inet(row.cells[0])) {
      a.addresses.insert(*addr);
    }
    const std::uint64_t sent = u64(row, 1);
    a.packets += sent;
    a.bytes += u64(row, 2);
    a.first = std::min(a.first, cql::as_bigint(row.cells[3]).value_or(a.first));
    a.last = std::max(a.last, cql::as_bigint(row.cells[4]).value_or(a.last));
    // 7 columns: a keyspace from before flow naming (opened for queries).
    const bool old_row = row.cells.size() < 14 || !cql::as_bigint(row.cells[8]);
    if (row.cells.size() >= 14) {
      a.received_packets += u64(row, 6);
      a.received_bytes += u64(row, 7);
    }
    if (old_row) {
      // Written before flow naming: sent packets, named by DNS or unresolved.
      a.names[static_cast<std::size_t>(endpoint.empty() ? NameSource::none : NameSource::dns)] +=
          sent;
      return;
    }
    for (std::size_t i = 0; i < a.names.size(); ++i) {
      a.names[i] += u64(row, 8 + i);
    }
  };
  const auto on_packet = [&](const std::string &endpoint, const cql::Row &row) {
    if (row.cells.size() < 4 || other_agent(row.cells[3])) {
      return;
    }
    Agg &a = by_name[endpoint];
    if (const auto addr = cql::as_inet(row.cells[0])) {
      a.addresses.insert(*addr);
    }
    a.packets += 1;
    a.bytes += static_cast<std::uint64_t>(cql::as_int(row.cells[1]).value_or(0));
    const TimeUs ts = cql::as_bigint(row.cells[2]).value_or(0);
    a.first = std::min(a.first, ts);
    a.last = std::max(a.last, ts);
  };
  if (Status st = read_many(reads, "summarising partitions",
                            [&](std::size_t i, const cql::Row &row) {
                              const auto &[pi, kind] = read_of[i];
                              if (kind == ReadKind::rollups) {
                                on_rollup(parts[pi].first, row);
                              } else {
                                on_packet(parts[pi].first, row);
                              }
                            });
      !st) {
    return st;
  }
  for (auto &[name, a] : by_name) {
    std::uint64_t named = 0;
    for (const std::uint64_t n : a.names) {
      named += n;
    }
    if (a.packets == 0 && a.received_packets == 0 && named == 0) {
      continue;
    }
    EndpointSummary e;
    e.endpoint = name;
    e.packets = a.packets;
    e.bytes = a.bytes;
    e.received_packets = a.received_packets;
    e.received_bytes = a.received_bytes;
    e.names = a.names;
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
        limit == 0 || !read_agent_.empty() // the agent is filtered here, after LIMIT
            ? std::numeric_limits<std::int32_t>::max()
            : std::min<std::size_t>(limit - out.size(), std::numeric_limits<std::int32_t>::max());
    cql::Values v;
    v.add_text(endpoint).add_bigint(hour).add_int(static_cast<std::int32_t>(want));
    Status st = read(r_.packets_recent, v, "querying packets", [&](const cql::Row &row) {
      if (row.cells.size() < 6 || other_agent(row.cells[5]) ||
          (limit != 0 && out.size() >= limit)) {
        return;
      }
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

} // namespace ta::store::detail::cassandra
