// store/cassandra/flows: query_flows, the flows table read back (layout in
// cassandra_store.hpp): every batch's deltas of a flow added up.
#include <algorithm>
#include <map>
#include <string>
#include <tuple>

#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {

// Every day's flow rows (or the endpoint's), added up per flow (agent,
// origin source, first frame): the whole life of each flow, then the
// filter on its [first, last].
Status CassandraStore::query_flows(const FlowQuery &query, std::vector<FlowRow> &out) {
  out.clear();
  const TimeRange &range = query.range;
  if (range.since && range.until && *range.since >= *range.until) {
    return Status::success();
  }
  if (!has_flows_) {
    return Status::success(); // a keyspace from before flow naming has none
  }
  using Key = std::tuple<std::string, std::int64_t, std::int64_t>; // agent, origin, first frame
  std::map<Key, FlowRow> flows;
  {
    const std::lock_guard lock(read_mu_);
    std::vector<std::int64_t> days;
    ta::Status st = reader_->query("SELECT day FROM " + t("days") + " WHERE shard = 0",
                                   [&](const cql::Row &row) {
                                     if (const auto d = cql::as_bigint(row.cells[0])) {
                                       days.push_back(*d);
                                     }
                                   });
    if (!st) {
      return from_cql(st, "listing days");
    }
    for (const std::int64_t day : days) {
      cql::Values v;
      v.add_bigint(day);
      if (query.endpoint) {
        v.add_text(*query.endpoint);
      }
      Status s = read(
          query.endpoint ? r_.flows_of_day_endpoint : r_.flows_of_day, v, "querying flows",
          [&](const cql::Row &row) {
            if (row.cells.size() < 16) {
              return;
            }
            const auto agent = cql::as_text(row.cells[1]);
            const auto origin = cql::as_bigint(row.cells[2]);
            const auto frame = cql::as_bigint(row.cells[3]);
            if (!agent || !origin || !frame) {
              return;
            }
            const auto [it, fresh] = flows.try_emplace(Key{*agent, *origin, *frame});
            FlowRow &f = it->second;
            const auto u64 = [&row](std::size_t i) {
              return static_cast<std::uint64_t>(cql::as_bigint(row.cells[i]).value_or(0));
            };
            const TimeUs first = cql::as_bigint(row.cells[14]).value_or(0);
            const TimeUs last = cql::as_bigint(row.cells[15]).value_or(0);
            if (fresh) {
              f.endpoint = cql::as_text(row.cells[0]).value_or("");
              f.protocol = static_cast<std::uint8_t>(cql::as_int(row.cells[4]).value_or(0));
              f.client = cql::as_inet(row.cells[5]).value_or(IpAddress{}).to_string();
              f.client_port = static_cast<std::uint16_t>(cql::as_int(row.cells[6]).value_or(0));
              f.endpoint_address = cql::as_inet(row.cells[7]).value_or(IpAddress{}).to_string();
              f.endpoint_port = static_cast<std::uint16_t>(cql::as_int(row.cells[8]).value_or(0));
              const std::int32_t src = cql::as_int(row.cells[9]).value_or(0);
              f.source = src >= 0 && src < static_cast<std::int32_t>(NameSource::count_)
                             ? static_cast<NameSource>(src)
                             : NameSource::none;
              f.first_seen = first;
              f.last_seen = last;
            }
            f.sent_packets += u64(10);
            f.sent_bytes += u64(11);
            f.received_packets += u64(12);
            f.received_bytes += u64(13);
            f.first_seen = std::min(f.first_seen, first);
            f.last_seen = std::max(f.last_seen, last);
            // Per-batch rows: the first that knew the program gives it.
            if (f.program.empty() && row.cells.size() >= 18) {
              f.program = cql::as_text(row.cells[17]).value_or("");
              f.pid = f.program.empty() ? 0 : cql::as_int(row.cells[16]).value_or(0);
            }
          });
      if (!s) {
        return s;
      }
    }
  }
  std::vector<std::pair<Key, FlowRow>> rows;
  for (auto &[key, f] : flows) {
    if ((range.since && f.last_seen < *range.since) ||
        (range.until && f.first_seen >= *range.until)) {
      continue;
    }
    rows.emplace_back(key, std::move(f));
  }
  std::sort(rows.begin(), rows.end(), [](const auto &x, const auto &y) {
    return std::tie(x.second.first_seen, std::get<1>(x.first), std::get<2>(x.first),
                    std::get<0>(x.first)) < std::tie(y.second.first_seen, std::get<1>(y.first),
                                                     std::get<2>(y.first), std::get<0>(y.first));
  });
  out.reserve(rows.size());
  for (auto &[key, f] : rows) {
    out.push_back(std::move(f));
  }
  return Status::success();
}

} // namespace ta::store::detail::cassandra
