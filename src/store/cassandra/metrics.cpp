// store/cassandra/metrics: the backend's metric families (spool, client
// per node, the node's view of our tables), from caches only.
#include <algorithm>

#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A per-node family of the CQL client's statistics: name, help, type, and
// how one node's NodeStats becomes its sample(s).
struct NodeFamily {
  const char *name;
  const char *help;
  BackendFamily::Type type;
  void (*add)(BackendFamily &f, const Labels &node, const cql::NodeStats &n);
};

void add_value(BackendFamily &f, const Labels &node, double value) {
  f.samples.push_back({node, value, {}, {}, 0});
}

const NodeFamily kNodeFamilies[] = {
    {"traffic_cassandra_client_requests_total", "CQL requests sent, per node.",
     BackendFamily::Type::counter,
     [](BackendFamily &f, const Labels &node, const cql::NodeStats &n) {
       add_value(f, node, static_cast<double>(n.requests));
     }},
    {"traffic_cassandra_client_retries_total", "CQL requests retried, per node.",
     BackendFamily::Type::counter,
     [](BackendFamily &f, const Labels &node, const cql::NodeStats &n) {
       add_value(f, node, static_cast<double>(n.retries));
     }},
    {"traffic_cassandra_client_routed_total",
     "Requests with a known partition token, per node: sent to it as a replica "
     "(to=replica) or not (to=other); the routing share.",
     BackendFamily::Type::counter,
     [](BackendFamily &f, const Labels &node, const cql::NodeStats &n) {
       Labels replica = node;
       replica.emplace_back("to", "replica");
       add_value(f, replica, static_cast<double>(n.routed_to_replica));
       Labels other = node;
       other.emplace_back("to", "other");
       add_value(f, other, static_cast<double>(n.routed_elsewhere));
     }},
    {"traffic_cassandra_client_in_flight", "CQL requests awaiting a response, per node.",
     BackendFamily::Type::gauge,
     [](BackendFamily &f, const Labels &node, const cql::NodeStats &n) {
       add_value(f, node, static_cast<double>(n.in_flight));
     }},
    {"traffic_cassandra_client_node_up", "1 while the client holds a connection.",
     BackendFamily::Type::gauge,
     [](BackendFamily &f, const Labels &node, const cql::NodeStats &n) {
       add_value(f, node, n.up ? 1.0 : 0.0);
     }},
    {"traffic_cassandra_client_request_duration_seconds",
     "CQL request latency seen by the client, per node.", BackendFamily::Type::histogram,
     [](BackendFamily &f, const Labels &node, const cql::NodeStats &n) {
       const auto bounds = cql::latency_bounds();
       // NodeStats has a cumulative count per bound; +Inf is every request.
       std::vector<std::uint64_t> buckets = n.latency_buckets;
       buckets.resize(bounds.size(), buckets.empty() ? 0 : buckets.back());
       buckets.push_back(n.latency_count);
       f.samples.push_back(
           {node, 0, {bounds.begin(), bounds.end()}, std::move(buckets), n.latency_sum_seconds});
     }},
    {"traffic_cassandra_client_errors_total",
     "CQL errors per node, by CQL error code name or client-side kind.",
     BackendFamily::Type::counter,
     [](BackendFamily &f, const Labels &node, const cql::NodeStats &n) {
       for (const auto &[error, count] : n.errors) {
         Labels labels = node;
         labels.emplace_back("error", error);
         add_value(f, labels, static_cast<double>(count));
       }
     }},
};

} // namespace

std::vector<cql::NodeStats> merge_node_stats(std::vector<cql::NodeStats> writes,
                                             const std::vector<cql::NodeStats> &reads) {
  for (const cql::NodeStats &r : reads) {
    const auto it = std::find_if(writes.begin(), writes.end(),
                                 [&](const cql::NodeStats &w) { return w.host == r.host; });
    if (it == writes.end()) {
      writes.push_back(r);
      continue;
    }
    cql::NodeStats &w = *it;
    w.requests += r.requests;
    w.retries += r.retries;
    w.in_flight += r.in_flight;
    const std::size_t nb = std::max(w.latency_buckets.size(), r.latency_buckets.size());
    w.latency_buckets.resize(nb, w.latency_buckets.empty() ? 0 : w.latency_buckets.back());
    for (std::size_t i = 0; i < nb; ++i) {
      w.latency_buckets[i] += r.latency_buckets.empty()
                                  ? 0
                                  : r.latency_buckets[std::min(i, r.latency_buckets.size() - 1)];
    }
    w.latency_sum_seconds += r.latency_sum_seconds;
    w.latency_count += r.latency_count;
    for (const auto &error : r.errors) {
      const auto e = std::find_if(w.errors.begin(), w.errors.end(),
                                  [&](const auto &x) { return x.first == error.first; });
      if (e == w.errors.end()) {
        w.errors.push_back(error);
      } else {
        e->second += error.second;
      }
    }
  }
  return writes;
}

void append_node_families(const std::vector<cql::NodeStats> &nodes,
                          std::vector<BackendFamily> &out) {
  for (const NodeFamily &nf : kNodeFamilies) {
    BackendFamily f{nf.name, nf.help, nf.type, {}};
    for (const cql::NodeStats &n : nodes) {
      nf.add(f, {{"node", n.host}}, n);
    }
    out.push_back(std::move(f));
  }
}

void CassandraStore::refresh_views() {
  views_at_ = Clock::now();
  if (!drain_) {
    return;
  }
  std::vector<TableView> views;
  const ta::Status st =
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

// ---- metrics -------------------------------------------------------------------

void CassandraStore::backend_metrics(std::vector<BackendFamily> &out) {
  if (!spool_) {
    return;
  }
  const auto depth = spool_->depth();
  // The read session's statistics when no read holds it (never waits).
  std::vector<cql::NodeStats> reads;
  bool fresh_reads = false;
  {
    const std::unique_lock rl(read_mu_, std::try_to_lock);
    if (rl.owns_lock() && reader_) {
      reads = reader_->stats();
      fresh_reads = true;
    }
  }
  const std::lock_guard lock(mu_);
  if (fresh_reads) {
    read_stats_ = std::move(reads);
  }
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

  // The client's view (write and read sessions added up), one family per
  // row, one sample per node.
  append_node_families(merge_node_stats(node_stats_, read_stats_), out);

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

} // namespace ta::store::detail::cassandra
