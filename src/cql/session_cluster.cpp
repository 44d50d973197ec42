// Session: knowing the cluster (README "The cluster" under Storage
// (Cassandra)). One node's connection is the control connection: it is
// REGISTERed for TOPOLOGY_CHANGE and STATUS_CHANGE and asked system.local
// and system.peers_v2 (system.peers before Cassandra 4). Discovered nodes
// get a connection each, like the contact points, and their tokens make the
// token ring. The Session runs no thread, so events wait in the control
// connection until housekeeping() takes them: after every run() and in
// reconnect().
#include <poll.h>

#include <array>
#include <map>

#include "cluster_rows.hpp"
#include "session_impl.hpp"

namespace ta::cql {

using detail::make_error;
using detail::NodeRow;
using detail::NodeTable;

namespace {

constexpr std::size_t kMaxWarnings = 100;
constexpr auto kAgreementPoll = std::chrono::milliseconds{200};

std::string host_label(const HostPort &hp) {
  const bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

std::string label_of(const IpAddress &ip, std::int32_t port) {
  return host_label({ip.to_string(), static_cast<std::uint16_t>(port)});
}

// A failure of the connection itself: the node is taken down. An odd
// answer (an error, no rows) is not one: the node still serves requests (a
// bad frame also fails the connection at its next read).
bool connection_failed(const detail::Error &st) {
  return st.kind == ErrorKind::closed || st.kind == ErrorKind::timeout ||
         st.kind == ErrorKind::connect;
}

} // namespace

struct Session::Impl::Topology {
  NodeRow local;
  std::vector<NodeRow> peers;       // usable rows only
  std::vector<std::string> skipped; // one line per skipped row
};

std::uint32_t Session::Impl::add_node(const HostPort &hp, bool discovered) {
  auto n = std::make_unique<Node>(hp, host_label(hp));
  n->buckets.assign(latency_bounds().size() + 1, 0);
  n->conn.reset(max_in_flight);
  if (auto ip = IpAddress::parse(hp.host)) {
    n->ip = *ip;
  }
  n->discovered = discovered;
  nodes.push_back(std::move(n));
  return static_cast<std::uint32_t>(nodes.size() - 1);
}

void Session::Impl::warn(std::string line) {
  if (warnings.size() >= kMaxWarnings) {
    warnings.erase(warnings.begin());
  }
  warnings.push_back(std::move(line));
}

std::uint32_t Session::Impl::find_node(const IpAddress &ip, std::int32_t port) const {
  std::uint32_t by_ip = kNone;
  int same_ip = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node &n = *nodes[i];
    if (!n.ip || *n.ip != ip) {
      continue;
    }
    if (n.hp.port == port) {
      return static_cast<std::uint32_t>(i);
    }
    by_ip = static_cast<std::uint32_t>(i);
    ++same_ip;
  }
  // An event may carry another port (the storage port on old servers).
  return same_ip == 1 && port < 0 ? by_ip : kNone;
}

// A blocking SELECT on node ni's connection; rows in `out` (views into the
// connection's buffer: valid until its next exchange).
bool Session::Impl::select(std::uint32_t ni, std::string_view cql, ResultResponse &out, Error &st) {
  Node &n = *nodes[ni];
  QueryRequest q;
  q.query = cql;
  q.params.consistency = Consistency::one; // system tables are node-local
  q.params.page_size = kQueryPageSize;
  Opcode op{};
  Bytes body;
  if (!n.conn.roundtrip(q, Clock::now() + opts.connect_timeout, op, body, st)) {
    return false;
  }
  if (op == Opcode::error) {
    ErrorResponse e;
    if (e.decode(body) != CodecError::ok) {
      st = make_error(ErrorKind::protocol, n.label, "protocol error: ERROR body");
      return false;
    }
    st = make_error(ErrorKind::server, n.label, detail::describe_server_error(e.code, e.message),
                    e.code);
    return false;
  }
  if (op != Opcode::result || out.decode(body) != CodecError::ok ||
      out.kind != ResultResponse::Kind::rows) {
    st = make_error(ErrorKind::protocol, n.label,
                    "protocol error: " + std::string(cql) + " answered without rows");
    return false;
  }
  return true;
}

bool Session::Impl::read_topology(std::uint32_t ci, Topology &t, Error &st) {
  const Node &c = *nodes[ci];
  ResultResponse res;
  if (!select(ci, "SELECT * FROM system.local", res, st)) {
    return false;
  }
  if (res.row_count < 1) {
    st = make_error(ErrorKind::protocol, c.label, "system.local has no row");
    return false;
  }
  (void)detail::read_node_row(res, 0, NodeTable::local, c.hp.port, t.local);
  std::string_view table = "system.peers_v2";
  if (peers_v2 && !select(ci, "SELECT * FROM system.peers_v2", res, st)) {
    // Before Cassandra 4 the table does not exist: 0x2200 Invalid.
    if (st.kind != ErrorKind::server ||
        st.code != static_cast<std::int32_t>(ServerError::invalid)) {
      return false;
    }
    peers_v2 = false;
  }
  if (!peers_v2) {
    table = "system.peers";
    if (!select(ci, "SELECT * FROM system.peers", res, st)) {
      return false;
    }
  }
  const NodeTable kind = peers_v2 ? NodeTable::peers_v2 : NodeTable::peers;
  for (std::size_t r = 0; r < static_cast<std::size_t>(res.row_count); ++r) {
    NodeRow row;
    std::string why = detail::read_node_row(res, r, kind, c.hp.port, row);
    if (why.empty() && ((c.ip && *c.ip == *row.address && c.hp.port == row.port) ||
                        (!row.host_id.empty() && row.host_id == t.local.host_id))) {
      why = "the node lists itself as its peer";
    }
    for (std::size_t i = 0; why.empty() && i < t.peers.size(); ++i) {
      const NodeRow &p = t.peers[i];
      if ((*p.address == *row.address && p.port == row.port) ||
          (!row.host_id.empty() && p.host_id == row.host_id)) {
        why = "duplicate of " + label_of(*p.address, p.port);
      }
    }
    if (!why.empty()) {
      std::string line = c.label + ": ";
      line += table;
      line += " row " + std::to_string(r + 1);
      if (row.address) {
        line += " (" + label_of(*row.address, row.port) + ")";
      }
      line += " skipped: " + why;
      t.skipped.push_back(std::move(line));
      continue;
    }
    t.peers.push_back(std::move(row));
  }
  return true;
}

// The control connection: the first node up from the last one's successor.
bool Session::Impl::open_control() {
  const std::size_t count = nodes.size();
  const std::size_t start = control == kNone ? 0 : control + 1;
  control = kNone;
  cluster.control.clear();
  static constexpr std::array<std::string_view, 2> kEvents{"TOPOLOGY_CHANGE", "STATUS_CHANGE"};
  for (std::size_t i = 0; i < count; ++i) {
    const auto ni = static_cast<std::uint32_t>((start + i) % count);
    Node &n = *nodes[ni];
    if (!n.up || n.removed) {
      continue;
    }
    Opcode op{};
    Bytes body;
    Error st;
    if (!n.conn.roundtrip(RegisterRequest{kEvents}, Clock::now() + opts.connect_timeout, op, body,
                          st)) {
      fail_setup(n, st);
      continue;
    }
    if (op != Opcode::ready) {
      warn(n.label + ": REGISTER refused (" + std::string(opcode_name(op)) +
           "): topology and status events are not followed");
    }
    control = ni;
    cluster.control = n.label;
    need_refresh = true;
    return true;
  }
  return false;
}

void Session::Impl::remove_node(std::uint32_t ni) {
  Node &n = *nodes[ni];
  n.removed = true;
  n.up = false;
  n.probe = false;
  n.conn.reset(max_in_flight);
  if (ni == control) {
    control = kNone;
    cluster.control.clear();
  }
}

void Session::Impl::refresh() {
  need_refresh = false;
  if (control == kNone) {
    need_refresh = true;
    return;
  }
  const std::uint32_t ci = control;
  Topology t;
  Error st;
  if (!read_topology(ci, t, st)) {
    warn(st.message + " (discovery: keeping the nodes known so far)");
    if (connection_failed(st)) {
      fail_setup(*nodes[ci], st);
      need_refresh = true;
    }
    return;
  }
  ++cluster.refreshes;
  for (auto &line : t.skipped) {
    ++cluster.skipped_peer_rows;
    warn(std::move(line));
  }
  Node &c = *nodes[ci];
  c.dc = t.local.data_center;
  c.rack = t.local.rack;
  c.host_id = t.local.host_id;
  c.schema_version = t.local.schema_version;
  c.tokens = t.local.tokens;
  std::vector<bool> seen(nodes.size(), false);
  seen[ci] = true;
  for (const NodeRow &p : t.peers) {
    std::uint32_t ni = find_node(*p.address, p.port);
    const bool fresh = ni == kNone || nodes[ni]->removed;
    if (ni == kNone) {
      ni = add_node({p.address->to_string(), p.port}, true);
      seen.push_back(false);
    }
    Node &n = *nodes[ni];
    seen[ni] = true;
    n.removed = false;
    n.dc = p.data_center;
    n.rack = p.rack;
    n.host_id = p.host_id;
    n.schema_version = p.schema_version;
    n.tokens = p.tokens;
    Error e;
    if (fresh && !setup(n, e)) {
      warn(e.message + " (discovered node: kept down, tried again with backoff)");
    }
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!seen[i] && nodes[i]->discovered && !nodes[i]->removed) {
      remove_node(static_cast<std::uint32_t>(i)); // no longer in the cluster
    }
  }
  rebuild_ring();
}

void Session::Impl::remember_keyspace(const PreparedMetadata &m) {
  if (statement_keyspace.empty()) {
    statement_keyspace = !m.global_keyspace.empty()
                             ? m.global_keyspace
                             : (m.columns.empty() ? std::string{} : m.columns[0].keyspace);
  }
}

// The token ring: every node's tokens (system.local / peers `tokens`), the
// keyspace's replication from system_schema.keyspaces (a map<text,text>
// cell: [int n] then n x ([bytes] key, [bytes] value)). No keyspace, one
// not created yet or an unusable replication: no ring (round robin).
void Session::Impl::rebuild_ring() {
  const std::string &ks = keyspace.empty() ? statement_keyspace : keyspace;
  ring_keyspace = ks;
  ring_stale = false;
  if (ks.empty() || control == kNone || !nodes[control]->up) {
    set_ring(nullptr);
    return;
  }
  // Unquoted names are stored lower-cased; "Quoted" ones as written.
  std::string name;
  if (ks.size() >= 2 && ks.front() == '"' && ks.back() == '"') {
    name = ks.substr(1, ks.size() - 2);
  } else {
    for (const char ch : ks) {
      name += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
  }
  std::string cql = "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = '";
  for (const char ch : name) {
    cql += ch == '\'' ? "''" : std::string(1, ch);
  }
  cql += "'";
  ResultResponse res;
  Error st;
  std::vector<std::pair<std::string, std::string>> options;
  if (!select(control, cql, res, st)) {
    if (st.kind == ErrorKind::closed || st.kind == ErrorKind::timeout) {
      fail_setup(*nodes[control], st); // the next control connection rebuilds
    }
    set_ring(nullptr);
    return;
  }
  if (res.row_count < 1 || res.metadata.column_count < 1 || !res.row(0)[0]) {
    set_ring(nullptr); // the keyspace does not exist (yet)
    return;
  }
  BodyReader r(*res.row(0)[0]);
  std::int32_t n = 0;
  bool ok = r.read_int(n) && n >= 0;
  for (std::int32_t i = 0; ok && i < n; ++i) {
    std::optional<std::string> k;
    std::optional<std::string> v;
    Cell kc;
    Cell vc;
    ok = r.read_bytes(kc) && r.read_bytes(vc) && (k = as_text(kc)) && (v = as_text(vc));
    if (ok) {
      options.emplace_back(*k, *v);
    }
  }
  auto replication = ok ? detail::parse_replication(options)
                        : Result<detail::Replication>(Status::invalid_argument("undecodable map"));
  if (!replication) {
    if (ring_warned != ks) {
      ring_warned = ks;
      warn(nodes[control]->label + ": keyspace " + ks +
           " replication: " + replication.status().message() + " (requests are not token-aware)");
    }
    set_ring(nullptr);
    return;
  }
  std::vector<std::pair<std::int64_t, std::uint32_t>> tokens;
  std::vector<std::string> dcs(nodes.size());
  std::vector<std::string> racks(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node &nd = *nodes[i];
    if (nd.removed) {
      continue;
    }
    dcs[i] = nd.dc;
    racks[i] = nd.rack;
    for (const std::int64_t t : nd.tokens) {
      tokens.emplace_back(t, static_cast<std::uint32_t>(i));
    }
  }
  set_ring(std::make_shared<const detail::TokenRing>(
      detail::TokenRing::build(std::move(tokens), *replication, std::move(dcs), std::move(racks))));
}

// Non-blocking: reads what the control connection holds outside a run
// (events; late answers to abandoned requests free their stream ids).
void Session::Impl::take_events() {
  if (control == kNone || !nodes[control]->up) {
    return;
  }
  Node &n = *nodes[control];
  auto &c = n.conn;
  std::string err;
  for (int rounds = 0; rounds < 16; ++rounds) {
    std::size_t got = 0;
    const detail::Io io = c.read_some(got, err);
    if (io == detail::Io::would_block) {
      return;
    }
    if (io == detail::Io::closed || io == detail::Io::error) {
      fail_setup(n, make_error(ErrorKind::closed, n.label, "control connection lost"));
      return;
    }
    Frame f;
    while (c.decoder().next(f)) {
      if (f.header.stream < 0) {
        need_refresh = !c.stash_event(f) || need_refresh;
      } else {
        (void)c.streams().release_orphan(f.header.stream);
      }
    }
    if (c.decoder().error() != CodecError::ok) {
      fail_setup(n, make_error(ErrorKind::protocol, n.label, "protocol error: bad frame"));
      return;
    }
  }
}

// TOPOLOGY_CHANGE: NEW_NODE and MOVED_NODE refresh, REMOVED_NODE drops the
// node. STATUS_CHANGE: UP connects now (backoff reset); DOWN is only a
// hint (gossip may be wrong about us): a live connection is probed, not
// dropped. A node we do not know: a refresh and one warning.
void Session::Impl::handle_event(Bytes body) {
  ++cluster.events;
  EventResponse ev;
  if (ev.decode(body) != CodecError::ok) {
    warn(cluster.control + ": undecodable EVENT ignored");
    need_refresh = true;
    return;
  }
  if (ev.type != "TOPOLOGY_CHANGE" && ev.type != "STATUS_CHANGE") {
    return;
  }
  std::uint32_t ni = find_node(ev.address, ev.port);
  if (ni == kNone) {
    ni = find_node(ev.address, -1);
  }
  const bool known = ni != kNone && !nodes[ni]->removed;
  if (ev.change == "NEW_NODE" || ev.change == "MOVED_NODE") {
    need_refresh = true;
    return;
  }
  if (!known) {
    ++cluster.unknown_node_events;
    warn(cluster.control + ": " + ev.type + " " + ev.change + " for unknown node " +
         label_of(ev.address, ev.port) + ": refreshing the node list");
    need_refresh = true;
    return;
  }
  Node &n = *nodes[ni];
  if (ev.change == "REMOVED_NODE") {
    remove_node(ni);
  } else if (ev.change == "UP" && !n.up) {
    n.backoff = std::chrono::milliseconds{0};
    n.next_attempt = Clock::now();
    Error st;
    (void)setup(n, st);
  } else if (ev.change == "DOWN" && n.up) {
    n.probe = true;
  }
}

void Session::Impl::housekeeping() {
  if (!opts.discover) {
    return;
  }
  take_events();
  if (control == kNone || !nodes[control]->up || nodes[control]->removed) {
    if (!open_control()) {
      return; // no node up: the next call tries again
    }
  }
  std::vector<std::vector<std::byte>> events;
  events.swap(nodes[control]->conn.events());
  for (const auto &e : events) {
    handle_event(e);
  }
  for (auto &np : nodes) {
    Node &n = *np;
    if (!n.probe) {
      continue;
    }
    n.probe = false;
    Opcode op{};
    Bytes body;
    Error st;
    if (n.up &&
        !n.conn.roundtrip(OptionsRequest{}, Clock::now() + opts.connect_timeout, op, body, st)) {
      fail_setup(n, st);
    }
  }
  if (control != kNone && !nodes[control]->up) {
    (void)open_control();
  }
  if (need_refresh) {
    refresh();
  }
  if (control != kNone &&
      (ring_stale || ring_keyspace != (keyspace.empty() ? statement_keyspace : keyspace))) {
    rebuild_ring();
  }
}

detail::Error Session::Impl::schema_agreement(std::chrono::milliseconds bound) {
  const auto deadline = Clock::now() + bound;
  std::string last = "no node up";
  for (;;) {
    std::uint32_t ci = control != kNone && nodes[control]->up ? control : kNone;
    for (std::size_t i = 0; ci == kNone && i < nodes.size(); ++i) {
      if (nodes[i]->up) {
        ci = static_cast<std::uint32_t>(i);
      }
    }
    Topology t;
    Error st;
    if (ci == kNone) {
      last = "no node up";
    } else if (!read_topology(ci, t, st)) {
      last = st.message;
      if (connection_failed(st)) {
        fail_setup(*nodes[ci], st);
      }
    } else {
      // version -> nodes reporting it (live ones only)
      std::map<std::string, std::string> by_version;
      const auto add = [&](const std::string &version, const std::string &label) {
        auto &list = by_version[version.empty() ? "(none)" : version];
        list += (list.empty() ? "" : ", ") + label;
      };
      add(t.local.schema_version, nodes[ci]->label);
      for (const NodeRow &p : t.peers) {
        const std::uint32_t ni = find_node(*p.address, p.port);
        if (ni != kNone && nodes[ni]->up && !nodes[ni]->removed) {
          add(p.schema_version, nodes[ni]->label);
        }
      }
      if (by_version.size() == 1 && by_version.begin()->first != "(none)") {
        ring_stale = true; // the DDL may have made or altered the keyspace
        return {};
      }
      last.clear();
      for (const auto &[version, list] : by_version) {
        last += last.empty() ? "" : "; ";
        last += version;
        last += " on " + list;
      }
    }
    if (Clock::now() + kAgreementPoll > deadline) {
      break;
    }
    ::poll(nullptr, 0, static_cast<int>(kAgreementPoll.count()));
  }
  return make_error(ErrorKind::timeout, "",
                    "no schema agreement after " + std::to_string(bound.count()) + " ms: " + last);
}

// ------------------------------------------------------------------ Session

Status Session::wait_schema_agreement(std::chrono::milliseconds bound) {
  return impl_->schema_agreement(bound).status();
}

std::vector<std::string> Session::take_warnings() {
  std::vector<std::string> out;
  out.swap(impl_->warnings);
  return out;
}

ClusterStats Session::cluster_stats() const {
  return impl_->cluster;
}

} // namespace ta::cql
