// store/cassandra/send: one spooled batch as CQL requests (UNLOGGED
// batches grouped by partition), the source ledger last.
#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <tuple>

#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {
namespace {

// Write times for "earliest wins" columns: kFar - t is larger for earlier t.
constexpr std::int64_t kFar = std::numeric_limits<std::int64_t>::max() / 2;
// Statements per UNLOGGED batch: well under Cassandra's default
// batch_size_fail_threshold (50 KiB) for these rows.
constexpr std::size_t kStatementsPerRequest = 100;

} // namespace

ta::Status CassandraStore::send(const Batch &batch, TimeUs spooled_us) {
  // The source's ledger entry, for the `sources` rows written last.
  auto names = source_names_.find(batch.source_id);
  if (names == source_names_.end()) {
    std::pair<std::string, std::string> fp_path;
    if (Status st = spool_->source_fingerprint(batch.source_id, fp_path.first, fp_path.second);
        !st) {
      return ta::Status::invalid_argument(st.message());
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

  // Sent packets, grouped by partition (endpoint, hour); received packets
  // have no rows.
  std::vector<std::uint32_t> order;
  order.reserve(batch.packets.size());
  for (std::uint32_t i = 0; i < batch.packets.size(); ++i) {
    if (batch.packets[i].direction == Direction::sent) {
      order.push_back(i);
    }
  }
  const auto pkey = [&](std::uint32_t i) {
    const PacketRecord &p = batch.packets[i];
    return std::make_pair(p.endpoint, hour_of_us(p.ts_us));
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return pkey(a) < pkey(b); });
  std::pair<std::uint32_t, std::int64_t> last{std::numeric_limits<std::uint32_t>::max(), 0};
  for (const std::uint32_t i : order) {
    const PacketRecord &p = batch.packets[i];
    const auto key = pkey(i);
    cql::Request &r = next(key != last);
    last = key;
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

  // Roll-ups of this batch per (endpoint, second, address), both directions.
  struct Agg {
    std::int64_t packets = 0, bytes = 0, received_packets = 0, received_bytes = 0;
    std::array<std::int64_t, static_cast<std::size_t>(NameSource::count_)> names{};
    TimeUs first = std::numeric_limits<TimeUs>::max();
    TimeUs last = std::numeric_limits<TimeUs>::min();
  };
  std::map<std::tuple<std::uint32_t, std::int64_t, IpAddress>, Agg> rollups;
  for (const PacketRecord &p : batch.packets) {
    Agg &a = rollups[{p.endpoint, floor_div(p.ts_us, kUsPerSecond), p.dst}];
    if (p.direction == Direction::received) {
      a.received_packets += 1;
      a.received_bytes += p.bytes;
    } else {
      a.packets += 1;
      a.bytes += p.bytes;
    }
    const auto src = static_cast<std::size_t>(p.source);
    a.names[src < a.names.size() ? src : 0] += 1;
    a.first = std::min(a.first, p.ts_us);
    a.last = std::max(a.last, p.ts_us);
  }
  std::set<std::tuple<std::int64_t, std::int64_t, std::uint32_t>> hours; // day, hour, endpoint
  last = {std::numeric_limits<std::uint32_t>::max(), 0};
  for (const auto &[key, a] : rollups) {
    const auto &[endpoint, second, address] = key;
    const std::pair<std::uint32_t, std::int64_t> part{endpoint, floor_div(second, kSecondsPerHour)};
    hours.emplace(day_of_hour(part.second), part.second, endpoint);
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
        .add_bigint(a.last)
        .add_bigint(a.received_packets)
        .add_bigint(a.received_bytes);
    for (const std::int64_t n : a.names) {
      s.values.add_bigint(n);
    }
  }

  // This batch's deltas of each flow, in the day of their first packet.
  std::set<std::int64_t> days;
  {
    std::vector<std::uint32_t> flows(batch.flows.size());
    for (std::uint32_t i = 0; i < flows.size(); ++i) {
      flows[i] = i;
    }
    const auto fday = [&](std::uint32_t i) {
      return day_of_hour(hour_of_us(batch.flows[i].first_seen));
    };
    std::stable_sort(flows.begin(), flows.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return fday(a) < fday(b); });
    std::int64_t open_day = std::numeric_limits<std::int64_t>::min();
    for (const std::uint32_t i : flows) {
      const FlowRecord &f = batch.flows[i];
      const std::int64_t day = fday(i);
      cql::Request &r = next(day != open_day);
      open_day = day;
      days.insert(day);
      cql::Statement &s = r.statements.emplace_back();
      s.prepared = w_.flow;
      s.values.add_bigint(day)
          .add_text(batch.endpoints[f.name])
          .add_text(agent_)
          .add_bigint(f.origin_source)
          .add_bigint(static_cast<std::int64_t>(f.first_frame))
          .add_bigint(batch.source_id)
          .add_bigint(static_cast<std::int64_t>(batch.frames_through))
          .add_int(f.protocol)
          .add_inet(f.client)
          .add_int(f.client_port)
          .add_inet(f.endpoint_address)
          .add_int(f.endpoint_port)
          .add_int(static_cast<std::int32_t>(f.source))
          .add_bigint(static_cast<std::int64_t>(f.sent_packets))
          .add_bigint(static_cast<std::int64_t>(f.sent_bytes))
          .add_bigint(static_cast<std::int64_t>(f.received_packets))
          .add_bigint(static_cast<std::int64_t>(f.received_bytes))
          .add_bigint(f.first_seen)
          .add_bigint(f.last_seen)
          .add_int(f.program.empty() ? 0 : f.pid)
          .add_blob(std::as_bytes(std::span(f.program.data(), f.program.size())));
    }
  }

  // The catalog of partitions: endpoint_hours per day, days.
  std::int64_t last_day = std::numeric_limits<std::int64_t>::min();
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
    if (ta::Status st = drain_->execute_all(requests_); !st) {
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

} // namespace ta::store::detail::cassandra
