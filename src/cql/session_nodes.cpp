// Session: bringing nodes up (handshake, re-PREPARE) and taking them down.
#include <algorithm>

#include <netinet/in.h>
#include <sys/socket.h>

#include "handshake.hpp"
#include "session_impl.hpp"

namespace ta::cql {

using detail::make_error;

bool Session::Impl::any_up() const {
  return std::any_of(nodes.begin(), nodes.end(), [](const auto &n) { return n->up; });
}

// STARTUP, authentication, USE, PREPARE of every known statement.
bool Session::Impl::setup(Node &n, Error &st) {
  auto &c = n.conn;
  n.up = false;
  const auto deadline = Clock::now() + opts.connect_timeout;
  const detail::StartupSettings settings{opts.lz4, opts.username, opts.password, opts.consistency};
  if (!detail::handshake(c, n.hp, tls.get(), settings, keyspace, max_in_flight, deadline, st)) {
    return fail_setup(n, st);
  }
  Opcode op{};
  Bytes body;
  for (auto &p : prepared) {
    if (p.cql.empty()) {
      continue;
    }
    if (!c.roundtrip(PrepareRequest{p.cql}, deadline, op, body, st)) {
      return fail_setup(n, st);
    }
    if (op == Opcode::result && result.decode(body) == CodecError::ok &&
        result.kind == ResultResponse::Kind::prepared) {
      p.id = result.prepared_id;
    }
  }
  if (!n.ip) { // a host name: the address it resolved to, to match peer rows
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    if (::getpeername(c.transport().fd(), reinterpret_cast<sockaddr *>(&sa), &len) == 0) {
      if (sa.ss_family == AF_INET) {
        n.ip = IpAddress::v4(reinterpret_cast<const std::byte *>(
            &reinterpret_cast<const sockaddr_in *>(&sa)->sin_addr));
      } else if (sa.ss_family == AF_INET6) {
        n.ip = IpAddress::v6(reinterpret_cast<const std::byte *>(
            &reinterpret_cast<const sockaddr_in6 *>(&sa)->sin6_addr));
      }
    }
  }
  n.up = true;
  n.backoff = std::chrono::milliseconds{0};
  n.last_error.clear();
  return true;
}

bool Session::Impl::fail_setup(Node &n, const Error &st) {
  n.up = false;
  n.last_error = st.message;
  n.count_error(error_kind_name(st.kind));
  n.conn.reset(max_in_flight);
  n.backoff = policy.node_backoff(n.backoff);
  n.next_attempt = Clock::now() + n.backoff;
  return false;
}

// Connection lost or unusable: every request on it is retried (closed,
// timeout) or failed (protocol), per the retry policy; the node is down
// until reconnected.
void Session::Impl::fail_conn(std::uint32_t ni, ErrorKind kind, const std::string &what) {
  Node &n = *nodes[ni];
  const Error st = make_error(kind, n.label, what);
  const std::vector<std::uint32_t> lost = n.conn.streams().owners();
  fail_setup(n, st);
  for (const std::uint32_t ti : lost) {
    tasks[ti].node = kNone;
    retry_task(ti, ni, st);
  }
}

// No node is up but tasks wait: reconnect now (ignoring backoff), and if
// that fails count an attempt against each waiting task.
void Session::Impl::no_node_up() {
  Error first;
  for (auto &n : nodes) {
    Error st;
    if (!n->removed && setup(*n, st)) {
      return;
    }
    if (first.ok()) {
      first = st;
    }
  }
  std::string msg = "no host available:";
  for (const auto &n : nodes) {
    if (!n->removed) {
      msg += " " + n->last_error + ";";
    }
  }
  msg.pop_back();
  const Error st = first.kind == ErrorKind::auth ? first : make_error(ErrorKind::no_host, "", msg);
  std::vector<std::uint32_t> waiting(ready.begin() + static_cast<std::ptrdiff_t>(ready_head),
                                     ready.end());
  ready.clear();
  ready_head = 0;
  for (const std::uint32_t ti : waiting) {
    if (!tasks[ti].done) {
      retry_task(ti, kNone, st);
    }
  }
}

// After a USE through query(): the other connections follow.
void Session::Impl::propagate_keyspace() {
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto &n = *nodes[i];
    if (!n.up || i == keyspace_node) {
      continue;
    }
    Error st;
    if (!detail::use_keyspace(n.conn, keyspace, opts.consistency,
                              Clock::now() + opts.connect_timeout, st)) {
      fail_setup(n, st);
    }
  }
}

} // namespace ta::cql
