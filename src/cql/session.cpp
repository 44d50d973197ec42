// Session: the public methods (each turns its work into tasks for run()),
// the prepared-statement cache and the per-node statistics.
#include "ta/cql/session.hpp"

#include <algorithm>

#include "session_impl.hpp"

namespace ta::cql {

using detail::make_error;

// ------------------------------------------------------------------ Impl

void Session::Impl::Node::count_error(std::string_view name) {
  for (auto &[n, c] : errors) {
    if (n == name) {
      ++c;
      return;
    }
  }
  errors.emplace_back(std::string(name), 1);
}

void Session::Impl::Node::record_latency(Clock::duration d) {
  const double s = std::chrono::duration<double>(d).count();
  const auto bounds = latency_bounds();
  if (buckets.size() != bounds.size() + 1) {
    buckets.assign(bounds.size() + 1, 0);
  }
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), s);
  ++buckets[static_cast<std::size_t>(it - bounds.begin())];
  latency_sum += s;
  ++latency_count;
}

detail::Error Session::Impl::bad_request(const std::string &what) const {
  return make_error(ErrorKind::bad_request, "", what);
}

detail::Error Session::Impl::check_prepared(const Prepared &p, const Values &v) const {
  if (p.index >= prepared.size() || prepared[p.index].cql.empty()) {
    return bad_request("unknown prepared statement #" + std::to_string(p.index));
  }
  const auto &e = prepared[p.index];
  if (v.count() != e.bind_count) {
    return bad_request("statement #" + std::to_string(p.index) + " takes " +
                       std::to_string(e.bind_count) + " values, got " + std::to_string(v.count()) +
                       ": " + e.cql);
  }
  return {};
}

void Session::Impl::feed_many() {
  if (!many.active || !failure.ok()) {
    return;
  }
  for (std::size_t k = 0; k < many.task.size() && many.next < many.reads.size(); ++k) {
    std::uint32_t ti = many.task[k];
    if (ti != kNone && !tasks[ti].done) {
      continue;
    }
    const Statement &r = many.reads[many.next];
    many.index[k] = many.next++;
    Task t;
    t.kind = Kind::execute_paged;
    t.prepared = r.prepared.index;
    t.values = &r.values;
    t.page_size = many.page_size;
    t.on_row = &many.forward[k];
    if (ti == kNone) {
      ti = add_task(std::move(t));
      many.task[k] = ti;
    } else {
      // Done tasks are in no queue and own no stream (a late answer to a
      // timed-out send is an orphan): the slot's task is reused as is.
      tasks[ti] = std::move(t);
      ++pending;
    }
    ready.push_back(ti);
  }
}

// ------------------------------------------------------------------ Session

Session::Session() : impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

const Options &Session::options() const {
  return impl_->opts;
}

std::unique_ptr<Session> Session::connect(const Options &options, Status &status) {
  status = {};
  if (options.contact_points.empty()) {
    status = make_status(ErrorKind::bad_request, "no contact points");
    return nullptr;
  }
  std::unique_ptr<Session> s(new Session());
  Impl &im = *s->impl_;
  im.opts = options;
  im.max_in_flight = std::clamp<std::size_t>(options.max_in_flight_per_connection, 1,
                                             detail::StreamManager::kMaxStreams);
  im.policy =
      detail::RetryPolicy(options.max_retries, options.retry_base_delay, options.retry_max_delay);
  im.keyspace = options.keyspace;
  if (options.tls) {
    std::string err;
    im.tls = detail::TlsContext::create(options.tls_ca_file, options.tls_verify, err);
    if (!im.tls) {
      status = make_status(ErrorKind::connect, "TLS: " + err);
      return nullptr;
    }
  }
  for (const auto &cp : options.contact_points) {
    (void)im.add_node(cp, false);
  }
  detail::Error first_auth;
  std::string msg = "no host available:";
  for (auto &n : im.nodes) {
    detail::Error st;
    if (!im.setup(*n, st)) {
      if (st.kind == ErrorKind::auth && first_auth.ok()) {
        first_auth = st;
      }
      msg += " " + st.message + ";";
    }
  }
  if (!im.any_up()) {
    msg.pop_back();
    status = first_auth.ok() ? make_status(ErrorKind::no_host, msg) : first_auth.status();
    return nullptr;
  }
  im.housekeeping(); // discovery
  return s;
}

Status Session::query(std::string_view cql, const std::function<void(const Row &)> &on_row) {
  Impl &im = *impl_;
  im.begin_run();
  Impl::Task t;
  t.kind = Impl::Kind::query;
  t.cql = cql;
  t.page_size = kQueryPageSize;
  t.on_row = &on_row;
  im.ready.push_back(im.add_task(std::move(t)));
  const detail::Error st = im.run();
  if (st.ok() && im.keyspace_changed) {
    im.propagate_keyspace();
  }
  return st.status();
}

Status Session::prepare(std::string_view cql, Prepared &out) {
  Impl &im = *impl_;
  std::uint32_t entry = kNone;
  for (std::size_t i = 0; i < im.prepared.size(); ++i) {
    if (im.prepared[i].cql == cql) {
      entry = static_cast<std::uint32_t>(i);
    }
  }
  if (entry == kNone) {
    entry = static_cast<std::uint32_t>(im.prepared.size());
    im.prepared.push_back({std::string(cql), {}, 0, {}, {}});
  }
  im.begin_run();
  // One task that must succeed (any node, retried), one per other node up
  // that may fail (that node re-prepares on UNPREPARED or reconnect).
  Impl::Task t;
  t.kind = Impl::Kind::prepare;
  t.cql = im.prepared[entry].cql;
  t.prepared = entry;
  im.ready.push_back(im.add_task(t));
  const std::size_t first = im.rr % std::max<std::size_t>(im.nodes.size(), 1);
  for (std::size_t i = 0; i < im.nodes.size(); ++i) {
    if (i == first || !im.nodes[i]->up) {
      continue;
    }
    Impl::Task extra = t;
    extra.pinned = static_cast<std::uint32_t>(i);
    extra.best_effort = true;
    im.ready.push_back(im.add_task(std::move(extra)));
  }
  const detail::Error st = im.run();
  if (!st.ok()) {
    if (im.prepared[entry].id.empty()) {
      im.prepared[entry].cql.clear(); // never usable; keep indices stable
    }
    return st.status();
  }
  out.index = entry;
  out.bind_count = im.prepared[entry].bind_count;
  return {};
}

Status Session::execute_paged(const Prepared &p, const Values &values, std::int32_t page_size,
                              const std::function<void(const Row &)> &on_row) {
  Impl &im = *impl_;
  if (const detail::Error st = im.check_prepared(p, values); !st.ok()) {
    return st.status();
  }
  im.begin_run();
  Impl::Task t;
  t.kind = Impl::Kind::execute_paged;
  t.prepared = p.index;
  t.values = &values;
  t.page_size = page_size;
  t.on_row = &on_row;
  im.route(t);
  im.ready.push_back(im.add_task(std::move(t)));
  return im.run().status();
}

Status Session::execute_paged_many(std::span<const Statement> reads, std::int32_t page_size,
                                   std::size_t max_in_flight,
                                   const std::function<void(std::size_t, const Row &)> &on_row) {
  Impl &im = *impl_;
  for (const auto &r : reads) {
    if (const detail::Error st = im.check_prepared(r.prepared, r.values); !st.ok()) {
      return st.status();
    }
  }
  if (reads.empty()) {
    return {};
  }
  im.begin_run();
  constexpr std::size_t kMaxSlots = 4096;
  const std::size_t slots = std::clamp<std::size_t>(max_in_flight, 1, kMaxSlots);
  auto &m = im.many;
  m.reads = reads;
  m.next = 0;
  m.page_size = page_size;
  m.on_row = &on_row;
  m.task.assign(std::min(slots, reads.size()), kNone);
  m.index.assign(m.task.size(), 0);
  m.forward.clear();
  m.forward.reserve(m.task.size());
  for (std::size_t k = 0; k < m.task.size(); ++k) {
    m.forward.emplace_back([&m, k](const Row &row) { (*m.on_row)(m.index[k], row); });
  }
  m.active = true;
  im.feed_many();
  const detail::Error st = im.run();
  m.active = false;
  m.reads = {};
  m.on_row = nullptr;
  return st.status();
}

Status Session::execute_all(std::span<const Request> requests) {
  Impl &im = *impl_;
  for (const auto &r : requests) {
    if (r.statements.empty()) {
      continue;
    }
    if (r.statements.size() > 0xFFFF) {
      return im.bad_request("a batch holds at most 65535 statements").status();
    }
    for (const auto &s : r.statements) {
      if (const detail::Error st = im.check_prepared(s.prepared, s.values); !st.ok()) {
        return st.status();
      }
    }
  }
  im.begin_run();
  im.tasks.reserve(requests.size());
  for (const auto &r : requests) {
    if (r.statements.empty()) {
      continue;
    }
    Impl::Task t;
    t.kind = Impl::Kind::execute_all;
    t.request = &r;
    im.route(t);
    im.ready.push_back(im.add_task(std::move(t)));
  }
  return im.run().status();
}

bool Session::reconnect() {
  Impl &im = *impl_;
  const auto now = detail::Clock::now();
  for (auto &n : im.nodes) {
    if (!n->up && !n->removed && now >= n->next_attempt) {
      detail::Error st;
      (void)im.setup(*n, st);
    }
  }
  im.housekeeping();
  return im.any_up();
}

std::vector<NodeStats> Session::stats() const {
  const Impl &im = *impl_;
  std::vector<NodeStats> out;
  out.reserve(im.nodes.size());
  const std::size_t nb = latency_bounds().size();
  for (const auto &n : im.nodes) {
    if (n->removed) {
      continue;
    }
    NodeStats s;
    s.host = n->label;
    s.up = n->up;
    s.requests = n->requests;
    s.retries = n->retries;
    s.routed_to_replica = n->routed_to_replica;
    s.routed_elsewhere = n->routed_elsewhere;
    s.in_flight = n->conn.streams().in_flight();
    s.latency_buckets.assign(nb, 0);
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < nb && i < n->buckets.size(); ++i) {
      acc += n->buckets[i];
      s.latency_buckets[i] = acc;
    }
    s.latency_sum_seconds = n->latency_sum;
    s.latency_count = n->latency_count;
    s.errors = n->errors;
    s.data_center = n->dc;
    s.rack = n->rack;
    out.push_back(std::move(s));
  }
  return out;
}

} // namespace ta::cql
