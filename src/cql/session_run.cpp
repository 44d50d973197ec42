// Session: tasks and the poll loop that drives them (see session_impl.hpp).
#include <algorithm>

#include "session_impl.hpp"
#include "token.hpp"

namespace ta::cql {

using detail::Io;
using detail::make_error;
using detail::RetryAction;

// ---------------------------------------------------------------- tasks

std::uint32_t Session::Impl::add_task(Task t) {
  tasks.push_back(std::move(t));
  ++pending;
  return static_cast<std::uint32_t>(tasks.size() - 1);
}

void Session::Impl::clear_queues() {
  tasks.clear();
  ready.clear();
  ready_head = 0;
  delayed.clear();
  deadlines.clear();
  deadline_head = 0;
}

void Session::Impl::begin_run() {
  clear_queues();
  pending = 0;
  failure = {};
  best_effort_failure = {};
  keyspace_changed = false;
}

void Session::Impl::finish_task(std::uint32_t ti) {
  Task &t = tasks[ti];
  if (!t.done) {
    t.done = true;
    --pending;
  }
}

void Session::Impl::fail_task(std::uint32_t ti, const Error &st) {
  const std::uint32_t then = tasks[ti].then;
  const bool best_effort = tasks[ti].best_effort;
  finish_task(ti);
  if (best_effort) {
    if (best_effort_failure.ok()) {
      best_effort_failure = st;
    }
  } else if (failure.ok()) {
    failure = st;
  }
  if (then != kNone) {
    fail_task(then, st);
  }
}

// A request failed with `st` (on node ni, or kNone when no node was up):
// again after the policy's delay, or failed for good.
void Session::Impl::retry_task(std::uint32_t ti, std::uint32_t ni, const Error &st) {
  Task &t = tasks[ti];
  const detail::RetryDecision d = policy.decide(st.kind, st.code, t.attempts);
  if (d.action == RetryAction::error) {
    Error final_st = st;
    if (d.gave_up) {
      final_st.message += " (gave up after " + std::to_string(t.attempts) + " retries)";
    }
    fail_task(ti, final_st);
    return;
  }
  ++t.attempts;
  if (ni != kNone) {
    ++nodes[ni]->retries;
  }
  delayed.emplace_back(Clock::now() + d.delay, ti);
}

// ---------------------------------------------------------------- sending

// An EXECUTE, or a BATCH whose statements all have the same partition key,
// gets that key's token; anything without a full key stays unrouted.
void Session::Impl::route(Task &t) {
  t.routable = false;
  if (!ring || ring->empty()) {
    return;
  }
  const auto key_of = [&](std::uint32_t entry, const Values &v, std::vector<std::byte> &out) {
    const auto &p = prepared[entry];
    return (ring_keyspace.empty() || p.table_keyspace == ring_keyspace) &&
           detail::routing_key(v.encoded(), v.count(), p.pk_indices, out);
  };
  if (t.kind == Kind::execute_paged) {
    if (!key_of(t.prepared, *t.values, routing_key)) {
      return;
    }
  } else if (t.kind == Kind::execute_all) {
    const auto &stmts = t.request->statements;
    if (!key_of(stmts[0].prepared.index, stmts[0].values, routing_key)) {
      return;
    }
    for (std::size_t i = 1; i < stmts.size(); ++i) {
      if (!key_of(stmts[i].prepared.index, stmts[i].values, other_key) ||
          other_key != routing_key) {
        return;
      }
    }
  } else {
    return;
  }
  t.token = detail::murmur3_token(routing_key);
  t.routable = true;
}

bool Session::Impl::is_replica(const Task &t, std::uint32_t ni) const {
  if (!ring) {
    return false;
  }
  const auto r = ring->replicas(t.token);
  return std::find(r.begin(), r.end(), ni) != r.end();
}

// Picks a connection for a task; kNone if none can take it now. A routable
// task prefers a replica that is up with a free stream (round robin among
// them), then any node.
std::uint32_t Session::Impl::pick(const Task &t) {
  const auto usable = [](const Node &n) { return n.up && n.conn.streams().available(); };
  if (t.pinned != kNone) {
    return usable(*nodes[t.pinned]) ? t.pinned : kNone;
  }
  if (t.routable && ring && opts.routing == Routing::token_aware) {
    const auto r = ring->replicas(t.token);
    const std::size_t start = replica_rr++;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::uint32_t ni = r[(start + i) % r.size()];
      if (ni < nodes.size() && usable(*nodes[ni])) {
        return ni;
      }
    }
  }
  const std::size_t count = nodes.size();
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t ni = (rr + i) % count;
    if (usable(*nodes[ni])) {
      rr = ni + 1;
      return static_cast<std::uint32_t>(ni);
    }
  }
  return kNone;
}

void Session::Impl::encode_task(detail::Connection &c, const Task &t, std::int16_t stream) {
  switch (t.kind) {
  case Kind::execute_all: {
    const auto &stmts = t.request->statements;
    if (stmts.size() == 1) {
      ExecuteRequest e;
      e.id = prepared[stmts[0].prepared.index].id;
      e.params.consistency = opts.consistency;
      e.params.value_count = stmts[0].values.count();
      e.params.values = stmts[0].values.encoded();
      c.append(e, stream);
    } else {
      batch.clear();
      for (const auto &s : stmts) {
        batch.push_back({prepared[s.prepared.index].id, s.values.count(), s.values.encoded()});
      }
      BatchRequest b;
      b.statements = batch;
      b.consistency = opts.consistency;
      c.append(b, stream);
    }
    break;
  }
  case Kind::query: {
    QueryRequest q;
    q.query = t.cql;
    q.params.consistency = opts.consistency;
    q.params.page_size = t.page_size;
    if (!t.paging_state.empty()) {
      q.params.paging_state = Bytes(t.paging_state);
    }
    c.append(q, stream);
    break;
  }
  case Kind::prepare:
    c.append(PrepareRequest{t.cql}, stream);
    break;
  case Kind::execute_paged: {
    ExecuteRequest e;
    e.id = prepared[t.prepared].id;
    e.params.consistency = opts.consistency;
    e.params.value_count = t.values->count();
    e.params.values = t.values->encoded();
    e.params.page_size = t.page_size;
    if (!t.paging_state.empty()) {
      e.params.paging_state = Bytes(t.paging_state);
    }
    c.append(e, stream);
    break;
  }
  }
}

void Session::Impl::send(std::uint32_t ti, std::uint32_t ni, Clock::time_point now) {
  Node &n = *nodes[ni];
  // pick() saw a free id on this connection.
  const std::int16_t stream = n.conn.streams().acquire(ti).value_or(0);
  Task &t = tasks[ti];
  t.node = ni;
  t.stream = stream;
  t.seq = ++seq;
  t.sent = now;
  encode_task(n.conn, t, stream);
  ++n.requests;
  if (t.routable) {
    ++(is_replica(t, ni) ? n.routed_to_replica : n.routed_elsewhere);
  }
  deadlines.push_back({now + opts.request_timeout, ti, t.seq});
}

// Sends ready tasks while connections have room.
void Session::Impl::dispatch(Clock::time_point now) {
  while (ready_head < ready.size() && failure.ok()) {
    const std::uint32_t ti = ready[ready_head];
    Task &t = tasks[ti];
    if (t.done) {
      ++ready_head;
      continue;
    }
    if (t.pinned != kNone && !nodes[t.pinned]->up) {
      // A per-node task whose node went away: nothing to do there.
      ++ready_head;
      const std::uint32_t then = t.then;
      finish_task(ti);
      if (then != kNone) {
        ready.push_back(then);
      }
      continue;
    }
    const std::uint32_t ni = pick(t);
    if (ni == kNone) {
      break;
    }
    ++ready_head;
    send(ti, ni, now);
  }
  if (ready_head == ready.size()) {
    ready.clear();
    ready_head = 0;
  }
}

void Session::Impl::flush_writes(std::uint32_t ni) {
  std::string err;
  if (!nodes[ni]->conn.flush(err)) {
    fail_conn(ni, ErrorKind::closed, "write failed: " + err);
  }
}

// ---------------------------------------------------------------- receiving

void Session::Impl::read_conn(std::uint32_t ni) {
  Node &n = *nodes[ni];
  auto &c = n.conn;
  std::string err;
  for (int rounds = 0; rounds < 64 && n.up; ++rounds) {
    std::size_t got = 0;
    const Io io = c.read_some(got, err);
    if (io == Io::would_block) {
      return;
    }
    if (io == Io::closed || io == Io::error) {
      std::string what = io == Io::closed ? "connection closed by peer" : "read failed: " + err;
      if (c.decoder().buffered() > 0) {
        what += " mid-frame (" + std::to_string(c.decoder().buffered()) + " bytes buffered)";
      }
      fail_conn(ni, ErrorKind::closed, what);
      return;
    }
    Frame f;
    while (n.up && c.decoder().next(f)) {
      on_frame(ni, f);
    }
    if (n.up && c.decoder().error() != CodecError::ok) {
      fail_conn(ni, ErrorKind::protocol,
                "protocol error: bad frame: " + std::string(to_string(c.decoder().error())));
      return;
    }
    if (got < detail::kReadChunk / 2) {
      return; // drained; poll before reading again
    }
  }
}

void Session::Impl::on_frame(std::uint32_t ni, const Frame &f) {
  Node &n = *nodes[ni];
  auto &c = n.conn;
  const std::int16_t stream = f.header.stream;
  if (stream < 0) {
    // A server push (EVENT, on the control connection): kept for
    // housekeeping(); one that cannot be kept is made up by a refresh.
    need_refresh = !c.stash_event(f) || need_refresh;
    return;
  }
  const auto owner = c.streams().release(stream);
  if (!owner) {
    fail_conn(ni, ErrorKind::protocol,
              "protocol error: response on unused stream " + std::to_string(stream));
    return;
  }
  if (*owner == detail::StreamManager::kOrphan) {
    return;
  }
  const std::uint32_t ti = *owner;
  tasks[ti].node = kNone;
  n.record_latency(Clock::now() - tasks[ti].sent);
  const auto protocol = [&](std::string_view what, CodecError e) {
    n.count_error("protocol");
    fail_task(
        ti, make_error(ErrorKind::protocol, n.label,
                       "protocol error: " + std::string(what) + ": " + std::string(to_string(e))));
  };
  Bytes message;
  std::string_view what;
  if (const CodecError e = c.open(f, message, what); e != CodecError::ok) {
    protocol(what, e);
    return;
  }
  if (f.header.opcode == Opcode::error) {
    if (const CodecError e = error.decode(message); e != CodecError::ok) {
      protocol("ERROR body", e);
      return;
    }
    on_error(ti, ni);
    return;
  }
  if (f.header.opcode != Opcode::result) {
    protocol("unexpected " + std::string(opcode_name(f.header.opcode)), CodecError::unexpected);
    return;
  }
  if (const CodecError e = result.decode(message); e != CodecError::ok) {
    protocol("RESULT body", e);
    return;
  }
  on_result(ti, ni);
}

void Session::Impl::on_error(std::uint32_t ti, std::uint32_t ni) {
  Node &n = *nodes[ni];
  n.count_error(server_error_name(error.code));
  const Error st = make_error(ErrorKind::server, n.label,
                              detail::describe_server_error(error.code, error.message), error.code);
  if (static_cast<ServerError>(error.code) != ServerError::unprepared) {
    retry_task(ti, ni, st);
    return;
  }
  // UNPREPARED: PREPARE the statement again on this node, then resend.
  std::uint32_t entry = kNone;
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    if (std::equal(prepared[i].id.begin(), prepared[i].id.end(), error.unprepared_id.begin(),
                   error.unprepared_id.end())) {
      entry = static_cast<std::uint32_t>(i);
      break;
    }
  }
  const detail::RetryDecision d = policy.decide(st.kind, st.code, tasks[ti].attempts);
  if (entry == kNone || d.action != RetryAction::retry_same_node) {
    fail_task(ti, st);
    return;
  }
  ++tasks[ti].attempts;
  ++n.retries;
  Task p;
  p.kind = Kind::prepare;
  p.cql = prepared[entry].cql;
  p.prepared = entry;
  p.pinned = ni;
  p.then = ti;
  const std::uint32_t pi = add_task(std::move(p));
  // The dependent task is not "pending" on its own while it waits.
  ready.push_back(pi);
}

void Session::Impl::on_result(std::uint32_t ti, std::uint32_t ni) {
  Node &n = *nodes[ni];
  Task &t = tasks[ti];
  switch (t.kind) {
  case Kind::execute_all:
    finish_task(ti);
    return;
  case Kind::prepare: {
    if (result.kind != ResultResponse::Kind::prepared) {
      fail_task(ti, make_error(ErrorKind::protocol, n.label,
                               "protocol error: PREPARE answered without a prepared id"));
      return;
    }
    auto &p = prepared[t.prepared];
    p.id = result.prepared_id;
    p.bind_count = static_cast<std::uint16_t>(result.prepared_metadata.column_count);
    remember_keyspace(result.prepared_metadata);
    p.pk_indices = result.prepared_metadata.pk_indices;
    const auto &meta = result.prepared_metadata;
    p.table_keyspace = !meta.global_keyspace.empty() ? meta.global_keyspace
                       : meta.columns.empty()        ? std::string()
                                                     : meta.columns[0].keyspace;
    const std::uint32_t then = t.then;
    finish_task(ti);
    if (then != kNone) {
      ready.push_back(then);
    }
    return;
  }
  case Kind::query:
  case Kind::execute_paged:
    break;
  }
  if (result.kind == ResultResponse::Kind::set_keyspace) {
    keyspace = result.keyspace;
    keyspace_changed = true;
    keyspace_node = ni;
  }
  if (result.kind != ResultResponse::Kind::rows) {
    finish_task(ti);
    return;
  }
  if (t.on_row != nullptr && *t.on_row) {
    for (std::size_t r = 0; r < static_cast<std::size_t>(result.row_count); ++r) {
      (*t.on_row)(Row{result.row(r)});
    }
  }
  Task &again = tasks[ti]; // the callback cannot add tasks, but be explicit
  if (result.metadata.has_more_pages() && result.metadata.paging_state &&
      !result.metadata.paging_state->empty()) {
    again.paging_state = *result.metadata.paging_state;
    again.attempts = 0;
    ready.push_back(ti);
    return;
  }
  finish_task(ti);
}

// ---------------------------------------------------------------- timing

void Session::Impl::check_timeouts(Clock::time_point now) {
  while (deadline_head < deadlines.size() && deadlines[deadline_head].at <= now) {
    const Deadline d = deadlines[deadline_head++];
    Task &t = tasks[d.task];
    if (t.done || t.seq != d.seq || t.node == kNone) {
      continue;
    }
    const std::uint32_t ni = t.node;
    Node &n = *nodes[ni];
    // The stream stays reserved until the late answer shows up.
    n.conn.streams().orphan(t.stream);
    t.node = kNone;
    n.count_error("timeout");
    retry_task(d.task, ni,
               make_error(ErrorKind::timeout, n.label,
                          "request timed out after " +
                              std::to_string(opts.request_timeout.count()) + " ms"));
    if (n.conn.streams().orphans() > max_in_flight / 2) {
      fail_conn(ni, ErrorKind::timeout, "too many requests timed out");
    }
  }
  if (deadline_head == deadlines.size()) {
    deadlines.clear();
    deadline_head = 0;
  }
}

void Session::Impl::promote_delayed(Clock::time_point now) {
  std::size_t keep = 0;
  for (std::size_t i = 0; i < delayed.size(); ++i) {
    if (delayed[i].first <= now) {
      ready.push_back(delayed[i].second);
    } else {
      delayed[keep++] = delayed[i];
    }
  }
  delayed.resize(keep);
}

// Abandons what is still in flight: its streams become orphans.
void Session::Impl::abandon() {
  for (auto &n : nodes) {
    n->conn.streams().orphan_all();
  }
}

// ---------------------------------------------------------------- the loop

// One poll over the connections that are up (readable always, writable
// when output waits), until the next deadline or delayed retry.
void Session::Impl::poll_once() {
  pfds.clear();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto &n = *nodes[i];
    if (!n.up) {
      continue;
    }
    if (n.conn.has_output()) {
      flush_writes(static_cast<std::uint32_t>(i));
    }
    if (!n.up) {
      continue;
    }
    short ev = POLLIN;
    if (n.conn.has_output()) {
      ev = static_cast<short>(ev | POLLOUT);
    }
    pfds.push_back({n.conn.transport().fd(), ev, 0});
  }
  const auto now = Clock::now();
  auto wake = now + std::chrono::seconds(1);
  for (const auto &[at, ti] : delayed) {
    wake = std::min(wake, at);
  }
  if (deadline_head < deadlines.size()) {
    wake = std::min(wake, deadlines[deadline_head].at);
  }
  if (ready_head < ready.size() && !any_up()) {
    wake = now;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
  const int timeout = static_cast<int>(std::clamp<long long>(ms + 1, 0, 1000));
  if (pfds.empty()) {
    if (timeout > 0) {
      ::poll(nullptr, 0, timeout);
    }
    return;
  }
  if (::poll(pfds.data(), pfds.size(), timeout) <= 0) {
    return;
  }
  for (const auto &p : pfds) {
    if (p.revents == 0) {
      continue;
    }
    std::uint32_t ni = kNone;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i]->up && nodes[i]->conn.transport().fd() == p.fd) {
        ni = static_cast<std::uint32_t>(i);
        break;
      }
    }
    if (ni == kNone) {
      continue;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      read_conn(ni);
    }
    if (nodes[ni]->up && (p.revents & POLLOUT) != 0) {
      flush_writes(ni);
    }
  }
}

detail::Error Session::Impl::run() {
  for (;;) {
    const auto now = Clock::now();
    check_timeouts(now);
    promote_delayed(now);
    feed_many();
    if (!failure.ok() || pending == 0) {
      break;
    }
    if (ready_head < ready.size() && !any_up()) {
      no_node_up();
      continue;
    }
    dispatch(now);
    if (!failure.ok()) {
      break;
    }
    poll_once();
  }
  abandon();
  Error out = failure;
  clear_queues();
  housekeeping(); // events and discovery, now that nothing is in flight
  return out;
}

} // namespace ta::cql
