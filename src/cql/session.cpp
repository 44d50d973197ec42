// Session: one connection per node, every request a Task driven by one
// poll() loop (run()) inside the calling thread.
//
// How a call works: the public method turns its work into Tasks, run()
// sends them round-robin over the nodes that are up (a stream id each, up
// to max_in_flight per connection), reads responses in big chunks, matches
// them by stream id and decides per Task: done, retry later (backoff), send
// again (next page, re-prepared), or failed for good. The first permanent
// failure ends the call; what is still in flight is abandoned: its stream
// ids stay reserved ("orphans") until the late response arrives.
//
// Connection setup (connect, STARTUP, auth, USE, re-PREPARE) is a blocking
// exchange on the new socket with connect_timeout as deadline: it happens at
// connect(), in reconnect(), and inside run() only when no node is up.
#include "ta/cql/session.hpp"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>

#include "ta/cql/frame.hpp"
#include "ta/cql/messages.hpp"

#include "transport.hpp"

namespace ta::cql {

using detail::Clock;
using detail::Io;

std::string_view error_kind_name(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::none:
    return "none";
  case ErrorKind::connect:
    return "connect";
  case ErrorKind::closed:
    return "closed";
  case ErrorKind::protocol:
    return "protocol";
  case ErrorKind::timeout:
    return "timeout";
  case ErrorKind::server:
    return "server";
  case ErrorKind::auth:
    return "auth";
  case ErrorKind::no_host:
    return "no_host";
  case ErrorKind::bad_request:
    return "bad_request";
  }
  return "unknown";
}

namespace {

constexpr std::uint32_t kFree = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint32_t kOrphan = kFree - 1;
constexpr std::uint32_t kNone = kFree;
constexpr std::int32_t kQueryPageSize = 5000;
constexpr std::size_t kReadChunk = std::size_t{256} * 1024;

std::string code_hex(std::int32_t code) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%04X", static_cast<unsigned>(code));
  return buf.data();
}

// "server error 0x1001 (overloaded): <message>"
std::string describe_server_error(std::int32_t code, std::string_view message) {
  std::string s = "server error " + code_hex(code) + " (";
  s += server_error_name(code);
  s += "): ";
  s += message;
  return s;
}

Status make_status(ErrorKind kind, const std::string &host, std::string_view what,
                   std::int32_t code = 0) {
  Status st;
  st.kind = kind;
  st.server_code = code;
  st.host = host;
  st.message = host.empty() ? std::string(what) : host + ": " + std::string(what);
  return st;
}

bool is_retryable_server_error(std::int32_t code) {
  switch (code) {
  case 0x1000: // unavailable
  case 0x1001: // overloaded
  case 0x1002: // is_bootstrapping
  case 0x1100: // write_timeout
  case 0x1200: // read_timeout
    return true;
  default:
    return false;
  }
}

std::string host_label(const HostPort &hp) {
  const bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

} // namespace

struct Session::Impl {
  struct Conn {
    detail::Transport transport;
    FrameDecoder decoder{Direction::response};
    std::vector<std::byte> out; // frames not yet written
    std::size_t out_off = 0;
    std::vector<std::uint32_t> slots; // stream id -> task index, kFree, kOrphan
    std::vector<std::int16_t> free_streams;
    std::size_t in_flight = 0; // including orphans
    std::size_t orphans = 0;
    bool compress = false;
  };

  struct Node {
    HostPort hp;
    std::string label; // "HOST:PORT"
    Conn conn;
    bool up = false;
    Clock::time_point next_attempt{};
    std::chrono::milliseconds backoff{0};
    std::string last_error;
    // Statistics.
    std::uint64_t requests = 0;
    std::uint64_t retries = 0;
    std::vector<std::uint64_t> buckets; // per bound, not cumulative; last = over
    double latency_sum = 0;
    std::uint64_t latency_count = 0;
    std::vector<std::pair<std::string, std::uint64_t>> errors;

    void count_error(std::string_view name) {
      for (auto &[n, c] : errors) {
        if (n == name) {
          ++c;
          return;
        }
      }
      errors.emplace_back(std::string(name), 1);
    }
  };

  enum class Kind : std::uint8_t { execute_all, query, prepare, execute_paged };

  struct Task {
    Kind kind = Kind::execute_all;
    const Request *request = nullptr;    // execute_all
    std::string_view cql;                // query, prepare
    std::uint32_t prepared = 0;          // prepare (entry to fill), execute_paged
    const Values *values = nullptr;      // execute_paged
    std::int32_t page_size = 0;          // query, execute_paged
    std::vector<std::byte> paging_state; // empty: first page
    const std::function<void(const Row &)> *on_row = nullptr;
    std::uint32_t pinned = kNone; // node index, or any node
    std::uint32_t then = kNone;   // task to resume when this one is done
    bool best_effort = false;     // failure does not fail the call
    bool done = false;
    int attempts = 0;           // retries used
    std::uint32_t node = kNone; // in flight on
    std::int16_t stream = 0;
    std::uint64_t seq = 0; // send generation (timeouts)
    Clock::time_point sent{};
  };

  struct PreparedEntry {
    std::string cql;
    std::vector<std::byte> id;
    std::uint16_t bind_count = 0;
  };

  struct Deadline {
    Clock::time_point at;
    std::uint32_t task;
    std::uint64_t seq;
  };

  Options opts;
  std::size_t max_in_flight = 512;
  std::unique_ptr<detail::TlsContext> tls;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<PreparedEntry> prepared;
  std::string keyspace;
  std::size_t rr = 0;

  // Per run().
  std::vector<Task> tasks;
  std::vector<std::uint32_t> ready; // FIFO: ready[ready_head..]
  std::size_t ready_head = 0;
  std::vector<std::pair<Clock::time_point, std::uint32_t>> delayed;
  std::vector<Deadline> deadlines; // FIFO in send order
  std::size_t deadline_head = 0;
  std::size_t pending = 0;
  std::uint64_t seq = 0;
  Status failure;
  Status best_effort_failure;
  bool keyspace_changed = false;
  std::uint32_t keyspace_node = kNone;

  // Scratch, reused.
  std::vector<std::byte> body;
  std::vector<std::byte> decompressed;
  std::vector<std::byte> sync_body;
  std::vector<BatchStatement> batch;
  std::vector<Cell> row_cells;
  ResponseEnvelope envelope;
  ResultResponse result;
  ErrorResponse error;
  std::vector<pollfd> pfds;

  // ------------------------------------------------------------ helpers

  std::chrono::milliseconds backoff_for(int attempt) const {
    auto d = opts.retry_base_delay;
    for (int i = 1; i < attempt && d < opts.retry_max_delay; ++i) {
      d *= 2;
    }
    return std::min(d, opts.retry_max_delay);
  }

  void reset_conn(Conn &c) {
    c.transport.close();
    c.decoder.reset();
    c.out.clear();
    c.out_off = 0;
    c.slots.assign(max_in_flight, kFree);
    c.free_streams.clear();
    for (std::size_t i = max_in_flight; i-- > 0;) {
      c.free_streams.push_back(static_cast<std::int16_t>(i));
    }
    c.in_flight = 0;
    c.orphans = 0;
    c.compress = false;
  }

  void record_latency(Node &n, Clock::duration d) {
    const double s = std::chrono::duration<double>(d).count();
    const auto bounds = latency_bounds();
    if (n.buckets.size() != bounds.size() + 1) {
      n.buckets.assign(bounds.size() + 1, 0);
    }
    const auto it = std::lower_bound(bounds.begin(), bounds.end(), s);
    ++n.buckets[static_cast<std::size_t>(it - bounds.begin())];
    n.latency_sum += s;
    ++n.latency_count;
  }

  // -------------------------------------------------- synchronous setup

  // Writes the whole out buffer of a connection, waiting until deadline.
  bool sync_flush(Node &n, Clock::time_point deadline, Status &st) {
    auto &c = n.conn;
    std::string err;
    while (c.out_off < c.out.size() || c.transport.has_pending_output()) {
      std::size_t put = 0;
      const Io io = c.out_off < c.out.size()
                        ? c.transport.write(Bytes(c.out).subspan(c.out_off), put, err)
                        : (c.transport.flush_pending(err) ? Io::would_block : Io::error);
      if (io == Io::error || io == Io::closed) {
        st = make_status(ErrorKind::closed, n.label, "write failed: " + err);
        return false;
      }
      c.out_off += put;
      if (io == Io::would_block || put == 0) {
        pollfd p{c.transport.fd(), POLLOUT, 0};
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (ms.count() <= 0 || ::poll(&p, 1, static_cast<int>(ms.count())) == 0) {
          st = make_status(ErrorKind::timeout, n.label, "write timed out");
          return false;
        }
      }
    }
    c.out.clear();
    c.out_off = 0;
    return true;
  }

  // Appends one request frame to the connection's out buffer, compressed
  // when negotiated (never STARTUP, never an empty body).
  template <class Req> void append_frame(Conn &c, const Req &req, std::int16_t stream) {
    if (!c.compress) {
      encode_frame(req, stream, c.out);
      return;
    }
    body.clear();
    req.encode(body);
    FrameHeader h;
    h.stream = stream;
    h.opcode = Req::kOpcode;
    const std::size_t at = c.out.size();
    encode_header(h, c.out);
    if (body.empty()) {
      return;
    }
    lz4_compress(body, c.out);
    h.flags = kFlagCompression;
    h.length = static_cast<std::uint32_t>(c.out.size() - at - kHeaderSize);
    encode_header(h, std::span<std::byte, kHeaderSize>(c.out.data() + at, kHeaderSize));
  }

  // Sends `req` on stream 0 of a connection with nothing else in flight
  // (or only orphans, whose answers are dropped) and waits for the answer.
  // On ok, `frame_opcode` and sync_body (envelope removed) hold it.
  template <class Req>
  bool roundtrip(Node &n, const Req &req, Clock::time_point deadline, Opcode &frame_opcode,
                 Status &st) {
    auto &c = n.conn;
    if (c.free_streams.empty()) {
      st = make_status(ErrorKind::protocol, n.label, "no free stream id");
      return false;
    }
    const std::int16_t stream = c.free_streams.back();
    c.free_streams.pop_back();
    append_frame(c, req, stream);
    const bool flushed = sync_flush(n, deadline, st);
    c.free_streams.push_back(stream);
    if (!flushed) {
      return false;
    }
    std::string err;
    for (;;) {
      Frame f;
      while (c.decoder.next(f)) {
        if (f.header.stream != stream) {
          drop_frame(c, f.header.stream);
          continue;
        }
        Bytes b = f.body;
        if ((f.header.flags & kFlagCompression) != 0) {
          const CodecError e = lz4_decompress(b, decompressed);
          if (e != CodecError::ok) {
            st = make_status(ErrorKind::protocol, n.label,
                             std::string("protocol error: compressed body: ") +
                                 std::string(to_string(e)));
            return false;
          }
          b = decompressed;
        }
        const CodecError e = envelope.decode(f.header.flags, b);
        if (e != CodecError::ok) {
          st = make_status(ErrorKind::protocol, n.label,
                           std::string("protocol error: frame envelope: ") +
                               std::string(to_string(e)));
          return false;
        }
        sync_body.assign(envelope.message.begin(), envelope.message.end());
        frame_opcode = f.header.opcode;
        return true;
      }
      if (c.decoder.error() != CodecError::ok) {
        st = make_status(ErrorKind::protocol, n.label,
                         std::string("protocol error: bad frame: ") +
                             std::string(to_string(c.decoder.error())));
        return false;
      }
      std::size_t got = 0;
      const Io io = c.transport.read(c.decoder.prepare(kReadChunk), got, err);
      if (io == Io::ok) {
        c.decoder.commit(got);
        continue;
      }
      if (io == Io::closed || io == Io::error) {
        st = make_status(ErrorKind::closed, n.label,
                         io == Io::closed ? "connection closed by peer during setup"
                                          : "read failed: " + err);
        return false;
      }
      pollfd p{c.transport.fd(), POLLIN, 0};
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (ms.count() <= 0 || ::poll(&p, 1, static_cast<int>(ms.count())) == 0) {
        st = make_status(ErrorKind::timeout, n.label, "no answer before the connect timeout");
        return false;
      }
    }
  }

  void drop_frame(Conn &c, std::int16_t stream) {
    if (stream < 0 || static_cast<std::size_t>(stream) >= c.slots.size()) {
      return;
    }
    if (c.slots[static_cast<std::size_t>(stream)] == kOrphan) {
      c.slots[static_cast<std::size_t>(stream)] = kFree;
      c.free_streams.push_back(stream);
      --c.in_flight;
      --c.orphans;
    }
  }

  Status error_status(const Node &n, ErrorKind kind, std::string_view prefix) {
    ErrorResponse er;
    const CodecError e = er.decode(sync_body);
    if (e != CodecError::ok) {
      return make_status(ErrorKind::protocol, n.label,
                         std::string("protocol error: ERROR body: ") + std::string(to_string(e)));
    }
    const bool auth = kind == ErrorKind::auth || er.code == 0x0100;
    return make_status(auth ? ErrorKind::auth : kind, n.label,
                       std::string(prefix) + describe_server_error(er.code, er.message), er.code);
  }

  // STARTUP, authentication, USE, PREPARE of every known statement.
  bool setup(Node &n, Status &st) {
    auto &c = n.conn;
    reset_conn(c);
    n.up = false;
    const auto deadline = Clock::now() + opts.connect_timeout;
    std::string err;
    if (!c.transport.connect(n.hp.host, n.hp.port, tls.get(), deadline, err)) {
      st = make_status(ErrorKind::connect, n.label, "connect failed: " + err);
      return fail_setup(n, st);
    }
    Opcode op{};
    if (!roundtrip(n, StartupRequest{opts.lz4}, deadline, op, st)) {
      return fail_setup(n, st);
    }
    if (op == Opcode::authenticate) {
      AuthenticateResponse a;
      (void)a.decode(sync_body);
      if (opts.username.empty()) {
        st = make_status(ErrorKind::auth, n.label,
                         "server requires authentication (" + a.authenticator +
                             ") but no username is configured");
        return fail_setup(n, st);
      }
      c.compress = opts.lz4;
      const auto token = AuthResponseRequest::plain_token(opts.username, opts.password);
      for (int round = 0;; ++round) {
        if (round > 8) {
          st = make_status(ErrorKind::auth, n.label, "authentication did not finish");
          return fail_setup(n, st);
        }
        if (!roundtrip(n, AuthResponseRequest{token}, deadline, op, st)) {
          return fail_setup(n, st);
        }
        if (op == Opcode::auth_success) {
          break;
        }
        if (op == Opcode::error) {
          st = error_status(n, ErrorKind::auth, "authentication failed: ");
          return fail_setup(n, st);
        }
        if (op != Opcode::auth_challenge) {
          st = make_status(ErrorKind::protocol, n.label,
                           "protocol error: unexpected " + std::string(opcode_name(op)) +
                               " during authentication");
          return fail_setup(n, st);
        }
        // SASL PLAIN has no challenge step; answer with the same token.
      }
    } else if (op == Opcode::error) {
      st = error_status(n, ErrorKind::connect, "STARTUP failed: ");
      return fail_setup(n, st);
    } else if (op != Opcode::ready) {
      st = make_status(ErrorKind::protocol, n.label,
                       "protocol error: unexpected " + std::string(opcode_name(op)) +
                           " after STARTUP");
      return fail_setup(n, st);
    }
    c.compress = opts.lz4;
    if (!keyspace.empty() && !use_keyspace(n, deadline, st)) {
      return fail_setup(n, st);
    }
    for (auto &p : prepared) {
      if (p.cql.empty()) {
        continue;
      }
      if (!roundtrip(n, PrepareRequest{p.cql}, deadline, op, st)) {
        return fail_setup(n, st);
      }
      if (op == Opcode::result && result.decode(sync_body) == CodecError::ok &&
          result.kind == ResultResponse::Kind::prepared) {
        p.id = result.prepared_id;
      }
    }
    n.up = true;
    n.backoff = std::chrono::milliseconds{0};
    n.last_error.clear();
    return true;
  }

  // "USE <keyspace>"; a keyspace that does not exist yet (0x2200 invalid)
  // is not an error: the caller may be about to create it.
  bool use_keyspace(Node &n, Clock::time_point deadline, Status &st) {
    Opcode op{};
    QueryRequest q;
    const std::string text = "USE " + keyspace;
    q.query = text;
    q.params.consistency = opts.consistency;
    if (!roundtrip(n, q, deadline, op, st)) {
      return false;
    }
    if (op == Opcode::error) {
      ErrorResponse er;
      if (er.decode(sync_body) == CodecError::ok && er.code == 0x2200) {
        return true;
      }
      st = error_status(n, ErrorKind::server, "USE " + keyspace + " failed: ");
      return false;
    }
    return true;
  }

  bool fail_setup(Node &n, const Status &st) {
    n.up = false;
    n.last_error = st.message;
    n.count_error(error_kind_name(st.kind));
    reset_conn(n.conn);
    n.backoff =
        n.backoff.count() == 0
            ? opts.retry_base_delay
            : std::min(n.backoff * 2, std::max(opts.retry_max_delay, opts.retry_base_delay));
    n.next_attempt = Clock::now() + n.backoff;
    return false;
  }

  // Connection lost or unusable: every request on it is retried (closed,
  // timeout) or failed (protocol); the node is down until reconnected.
  void fail_conn(std::uint32_t ni, ErrorKind kind, const std::string &what) {
    Node &n = *nodes[ni];
    const Status st = make_status(kind, n.label, what);
    std::vector<std::uint32_t> lost;
    for (const std::uint32_t ti : n.conn.slots) {
      if (ti != kFree && ti != kOrphan) {
        lost.push_back(ti);
      }
    }
    fail_setup(n, st);
    for (const std::uint32_t ti : lost) {
      tasks[ti].node = kNone;
      if (kind == ErrorKind::protocol) {
        fail_task(ti, st);
      } else {
        retry_task(ti, ni, st);
      }
    }
  }

  // ------------------------------------------------------------ run loop

  std::uint32_t add_task(Task t) {
    tasks.push_back(std::move(t));
    ++pending;
    return static_cast<std::uint32_t>(tasks.size() - 1);
  }

  void begin_run() {
    tasks.clear();
    ready.clear();
    ready_head = 0;
    delayed.clear();
    deadlines.clear();
    deadline_head = 0;
    pending = 0;
    failure = {};
    best_effort_failure = {};
    keyspace_changed = false;
  }

  void finish_task(std::uint32_t ti) {
    Task &t = tasks[ti];
    if (!t.done) {
      t.done = true;
      --pending;
    }
  }

  void fail_task(std::uint32_t ti, const Status &st) {
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

  void retry_task(std::uint32_t ti, std::uint32_t ni, const Status &st) {
    Task &t = tasks[ti];
    if (t.attempts >= opts.max_retries) {
      Status final_st = st;
      final_st.message += " (gave up after " + std::to_string(t.attempts) + " retries)";
      fail_task(ti, final_st);
      return;
    }
    ++t.attempts;
    if (ni != kNone) {
      ++nodes[ni]->retries;
    }
    delayed.emplace_back(Clock::now() + backoff_for(t.attempts), ti);
  }

  // Picks a connection for a task; kNone if none can take it now.
  std::uint32_t pick(const Task &t) {
    const auto usable = [&](const Node &n) {
      return n.up && !n.conn.free_streams.empty() && n.conn.in_flight < max_in_flight;
    };
    if (t.pinned != kNone) {
      return usable(*nodes[t.pinned]) ? t.pinned : kNone;
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

  bool any_up() const {
    return std::any_of(nodes.begin(), nodes.end(), [](const auto &n) { return n->up; });
  }

  void encode_task(Conn &c, const Task &t, std::int16_t stream) {
    switch (t.kind) {
    case Kind::execute_all: {
      const auto &stmts = t.request->statements;
      if (stmts.size() == 1) {
        ExecuteRequest e;
        e.id = prepared[stmts[0].prepared.index].id;
        e.params.consistency = opts.consistency;
        e.params.value_count = stmts[0].values.count();
        e.params.values = stmts[0].values.encoded();
        append_frame(c, e, stream);
      } else {
        batch.clear();
        for (const auto &s : stmts) {
          batch.push_back({prepared[s.prepared.index].id, s.values.count(), s.values.encoded()});
        }
        BatchRequest b;
        b.statements = batch;
        b.consistency = opts.consistency;
        append_frame(c, b, stream);
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
      append_frame(c, q, stream);
      break;
    }
    case Kind::prepare:
      append_frame(c, PrepareRequest{t.cql}, stream);
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
      append_frame(c, e, stream);
      break;
    }
    }
  }

  void send(std::uint32_t ti, std::uint32_t ni, Clock::time_point now) {
    Node &n = *nodes[ni];
    Conn &c = n.conn;
    const std::int16_t stream = c.free_streams.back();
    c.free_streams.pop_back();
    c.slots[static_cast<std::size_t>(stream)] = ti;
    ++c.in_flight;
    Task &t = tasks[ti];
    t.node = ni;
    t.stream = stream;
    t.seq = ++seq;
    t.sent = now;
    encode_task(c, t, stream);
    ++n.requests;
    deadlines.push_back({now + opts.request_timeout, ti, t.seq});
  }

  // Sends ready tasks while connections have room.
  void dispatch(Clock::time_point now) {
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

  // No node is up but tasks wait: reconnect now (ignoring backoff), and if
  // that fails count an attempt against each waiting task.
  void no_node_up() {
    Status first;
    for (auto &n : nodes) {
      Status st;
      if (setup(*n, st)) {
        return;
      }
      if (first.ok()) {
        first = st;
      }
    }
    std::string msg = "no host available:";
    for (const auto &n : nodes) {
      msg += " " + n->last_error + ";";
    }
    msg.pop_back();
    const Status st =
        first.kind == ErrorKind::auth ? first : make_status(ErrorKind::no_host, "", msg);
    std::vector<std::uint32_t> waiting(ready.begin() + static_cast<std::ptrdiff_t>(ready_head),
                                       ready.end());
    ready.clear();
    ready_head = 0;
    for (const std::uint32_t ti : waiting) {
      if (tasks[ti].done) {
        continue;
      }
      if (st.kind == ErrorKind::auth) {
        fail_task(ti, st);
      } else {
        retry_task(ti, kNone, st);
      }
    }
  }

  void flush_writes(std::uint32_t ni) {
    Node &n = *nodes[ni];
    Conn &c = n.conn;
    std::string err;
    while (c.out_off < c.out.size()) {
      std::size_t put = 0;
      const Io io = c.transport.write(Bytes(c.out).subspan(c.out_off), put, err);
      if (io == Io::error || io == Io::closed) {
        fail_conn(ni, ErrorKind::closed, "write failed: " + err);
        return;
      }
      c.out_off += put;
      if (io == Io::would_block || put == 0) {
        return;
      }
    }
    if (c.transport.has_pending_output() && !c.transport.flush_pending(err)) {
      fail_conn(ni, ErrorKind::closed, "write failed: " + err);
      return;
    }
    c.out.clear();
    c.out_off = 0;
  }

  void read_conn(std::uint32_t ni) {
    Node &n = *nodes[ni];
    Conn &c = n.conn;
    std::string err;
    for (int rounds = 0; rounds < 64 && n.up; ++rounds) {
      std::size_t got = 0;
      const Io io = c.transport.read(c.decoder.prepare(kReadChunk), got, err);
      if (io == Io::would_block) {
        return;
      }
      if (io == Io::closed || io == Io::error) {
        std::string what = io == Io::closed ? "connection closed by peer" : "read failed: " + err;
        if (c.decoder.buffered() > 0) {
          what += " mid-frame (" + std::to_string(c.decoder.buffered()) + " bytes buffered)";
        }
        fail_conn(ni, ErrorKind::closed, what);
        return;
      }
      c.decoder.commit(got);
      Frame f;
      while (n.up && c.decoder.next(f)) {
        on_frame(ni, f);
      }
      if (n.up && c.decoder.error() != CodecError::ok) {
        fail_conn(ni, ErrorKind::protocol,
                  "protocol error: bad frame: " + std::string(to_string(c.decoder.error())));
        return;
      }
      if (got < kReadChunk / 2) {
        return; // drained; poll before reading again
      }
    }
  }

  void on_frame(std::uint32_t ni, const Frame &f) {
    Node &n = *nodes[ni];
    Conn &c = n.conn;
    const std::int16_t stream = f.header.stream;
    if (stream < 0) {
      return; // server push (EVENT); we never REGISTER
    }
    const auto si = static_cast<std::size_t>(stream);
    if (si >= c.slots.size() || c.slots[si] == kFree) {
      fail_conn(ni, ErrorKind::protocol,
                "protocol error: response on unused stream " + std::to_string(stream));
      return;
    }
    const std::uint32_t ti = c.slots[si];
    c.slots[si] = kFree;
    c.free_streams.push_back(stream);
    --c.in_flight;
    if (ti == kOrphan) {
      --c.orphans;
      return;
    }
    tasks[ti].node = kNone;
    record_latency(n, Clock::now() - tasks[ti].sent);
    Bytes b = f.body;
    const auto protocol = [&](std::string_view what, CodecError e) {
      n.count_error("protocol");
      fail_task(ti, make_status(ErrorKind::protocol, n.label,
                                "protocol error: " + std::string(what) + ": " +
                                    std::string(to_string(e))));
    };
    if ((f.header.flags & kFlagCompression) != 0) {
      const CodecError e = lz4_decompress(b, decompressed);
      if (e != CodecError::ok) {
        protocol("compressed body", e);
        return;
      }
      b = decompressed;
    }
    if (const CodecError e = envelope.decode(f.header.flags, b); e != CodecError::ok) {
      protocol("frame envelope", e);
      return;
    }
    if (f.header.opcode == Opcode::error) {
      if (const CodecError e = error.decode(envelope.message); e != CodecError::ok) {
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
    if (const CodecError e = result.decode(envelope.message); e != CodecError::ok) {
      protocol("RESULT body", e);
      return;
    }
    on_result(ti, ni);
  }

  void on_error(std::uint32_t ti, std::uint32_t ni) {
    Node &n = *nodes[ni];
    n.count_error(server_error_name(error.code));
    const Status st = make_status(ErrorKind::server, n.label,
                                  describe_server_error(error.code, error.message), error.code);
    if (error.code == 0x2500) {
      // UNPREPARED: PREPARE the statement again on this node, then resend.
      std::uint32_t entry = kNone;
      for (std::size_t i = 0; i < prepared.size(); ++i) {
        if (Bytes(prepared[i].id).size() == error.unprepared_id.size() &&
            std::equal(prepared[i].id.begin(), prepared[i].id.end(), error.unprepared_id.begin())) {
          entry = static_cast<std::uint32_t>(i);
          break;
        }
      }
      if (entry == kNone || tasks[ti].attempts >= opts.max_retries) {
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
      return;
    }
    if (is_retryable_server_error(error.code)) {
      retry_task(ti, ni, st);
      return;
    }
    fail_task(ti, st);
  }

  void on_result(std::uint32_t ti, std::uint32_t ni) {
    Node &n = *nodes[ni];
    Task &t = tasks[ti];
    switch (t.kind) {
    case Kind::execute_all:
      finish_task(ti);
      return;
    case Kind::prepare: {
      if (result.kind != ResultResponse::Kind::prepared) {
        fail_task(ti, make_status(ErrorKind::protocol, n.label,
                                  "protocol error: PREPARE answered without a prepared id"));
        return;
      }
      auto &p = prepared[t.prepared];
      p.id = result.prepared_id;
      p.bind_count = static_cast<std::uint16_t>(result.prepared_metadata.column_count);
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

  void check_timeouts(Clock::time_point now) {
    while (deadline_head < deadlines.size() && deadlines[deadline_head].at <= now) {
      const Deadline d = deadlines[deadline_head++];
      Task &t = tasks[d.task];
      if (t.done || t.seq != d.seq || t.node == kNone) {
        continue;
      }
      const std::uint32_t ni = t.node;
      Node &n = *nodes[ni];
      Conn &c = n.conn;
      // The stream stays reserved until the late answer shows up.
      c.slots[static_cast<std::size_t>(t.stream)] = kOrphan;
      ++c.orphans;
      t.node = kNone;
      n.count_error("timeout");
      retry_task(d.task, ni,
                 make_status(ErrorKind::timeout, n.label,
                             "request timed out after " +
                                 std::to_string(opts.request_timeout.count()) + " ms"));
      if (c.orphans > max_in_flight / 2) {
        fail_conn(ni, ErrorKind::timeout, "too many requests timed out");
      }
    }
    if (deadline_head == deadlines.size()) {
      deadlines.clear();
      deadline_head = 0;
    }
  }

  void promote_delayed(Clock::time_point now) {
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
  void abandon() {
    for (auto &n : nodes) {
      for (auto &slot : n->conn.slots) {
        if (slot != kFree && slot != kOrphan) {
          slot = kOrphan;
          ++n->conn.orphans;
        }
      }
    }
  }

  Status run() {
    for (;;) {
      auto now = Clock::now();
      check_timeouts(now);
      promote_delayed(now);
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
      // Poll: readable always, writable when output waits.
      pfds.clear();
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        auto &n = *nodes[i];
        if (!n.up) {
          continue;
        }
        if (n.conn.out_off < n.conn.out.size() || n.conn.transport.has_pending_output()) {
          flush_writes(static_cast<std::uint32_t>(i));
        }
        if (!n.up) {
          continue;
        }
        short ev = POLLIN;
        if (n.conn.out_off < n.conn.out.size() || n.conn.transport.has_pending_output()) {
          ev = static_cast<short>(ev | POLLOUT);
        }
        pfds.push_back({n.conn.transport.fd(), ev, 0});
      }
      now = Clock::now();
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
        continue;
      }
      const int rc = ::poll(pfds.data(), pfds.size(), timeout);
      if (rc <= 0) {
        continue;
      }
      for (const auto &p : pfds) {
        if (p.revents == 0) {
          continue;
        }
        std::uint32_t ni = kNone;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
          if (nodes[i]->up && nodes[i]->conn.transport.fd() == p.fd) {
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
    abandon();
    Status out = failure;
    tasks.clear();
    ready.clear();
    ready_head = 0;
    delayed.clear();
    deadlines.clear();
    deadline_head = 0;
    return out;
  }

  // After a USE through query(): the other connections follow.
  void propagate_keyspace() {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      auto &n = *nodes[i];
      if (!n.up || i == keyspace_node) {
        continue;
      }
      Status st;
      if (!use_keyspace(n, Clock::now() + opts.connect_timeout, st)) {
        fail_setup(n, st);
      }
    }
  }

  Status bad_request(const std::string &what) {
    return make_status(ErrorKind::bad_request, "", what);
  }

  Status check_prepared(const Prepared &p, const Values &v) {
    if (p.index >= prepared.size() || prepared[p.index].cql.empty()) {
      return bad_request("unknown prepared statement #" + std::to_string(p.index));
    }
    const auto &e = prepared[p.index];
    if (v.count() != e.bind_count) {
      return bad_request("statement #" + std::to_string(p.index) + " takes " +
                         std::to_string(e.bind_count) + " values, got " +
                         std::to_string(v.count()) + ": " + e.cql);
    }
    return {};
  }
};

// ------------------------------------------------------------------ Session

Session::Session() : impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

const Options &Session::options() const {
  return impl_->opts;
}

std::unique_ptr<Session> Session::connect(const Options &options, Status &status) {
  status = {};
  if (options.contact_points.empty()) {
    status = make_status(ErrorKind::bad_request, "", "no contact points");
    return nullptr;
  }
  std::unique_ptr<Session> s(new Session());
  Impl &im = *s->impl_;
  im.opts = options;
  im.max_in_flight = std::clamp<std::size_t>(options.max_in_flight_per_connection, 1, 32768);
  im.keyspace = options.keyspace;
  if (options.tls) {
    std::string err;
    im.tls = detail::TlsContext::create(options.tls_ca_file, options.tls_verify, err);
    if (!im.tls) {
      status = make_status(ErrorKind::connect, "", "TLS: " + err);
      return nullptr;
    }
  }
  for (const auto &cp : options.contact_points) {
    auto n = std::make_unique<Impl::Node>();
    n->hp = cp;
    n->label = host_label(cp);
    n->buckets.assign(latency_bounds().size() + 1, 0);
    im.reset_conn(n->conn);
    im.nodes.push_back(std::move(n));
  }
  Status first_auth;
  std::string msg = "no host available:";
  for (auto &n : im.nodes) {
    Status st;
    if (!im.setup(*n, st)) {
      if (st.kind == ErrorKind::auth && first_auth.ok()) {
        first_auth = st;
      }
      msg += " " + st.message + ";";
    }
  }
  if (!im.any_up()) {
    msg.pop_back();
    status = first_auth.ok() ? make_status(ErrorKind::no_host, "", msg) : first_auth;
    if (im.nodes.size() == 1 && first_auth.ok()) {
      status.host = im.nodes[0]->label;
    }
    return nullptr;
  }
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
  Status st = im.run();
  if (st.ok() && im.keyspace_changed) {
    im.propagate_keyspace();
  }
  return st;
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
    im.prepared.push_back({std::string(cql), {}, 0});
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
  Status st = im.run();
  if (!st.ok()) {
    if (im.prepared[entry].id.empty()) {
      im.prepared[entry].cql.clear(); // never usable; keep indices stable
    }
    return st;
  }
  out.index = entry;
  out.bind_count = im.prepared[entry].bind_count;
  return {};
}

Status Session::execute_paged(const Prepared &p, const Values &values, std::int32_t page_size,
                              const std::function<void(const Row &)> &on_row) {
  Impl &im = *impl_;
  if (Status st = im.check_prepared(p, values); !st.ok()) {
    return st;
  }
  im.begin_run();
  Impl::Task t;
  t.kind = Impl::Kind::execute_paged;
  t.prepared = p.index;
  t.values = &values;
  t.page_size = page_size;
  t.on_row = &on_row;
  im.ready.push_back(im.add_task(std::move(t)));
  return im.run();
}

Status Session::execute_all(std::span<const Request> requests) {
  Impl &im = *impl_;
  for (const auto &r : requests) {
    if (r.statements.empty()) {
      continue;
    }
    if (r.statements.size() > 0xFFFF) {
      return im.bad_request("a batch holds at most 65535 statements");
    }
    for (const auto &s : r.statements) {
      if (Status st = im.check_prepared(s.prepared, s.values); !st.ok()) {
        return st;
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
    im.ready.push_back(im.add_task(std::move(t)));
  }
  return im.run();
}

bool Session::reconnect() {
  Impl &im = *impl_;
  const auto now = Clock::now();
  for (auto &n : im.nodes) {
    if (!n->up && now >= n->next_attempt) {
      Status st;
      (void)im.setup(*n, st);
    }
  }
  return im.any_up();
}

std::vector<NodeStats> Session::stats() const {
  const Impl &im = *impl_;
  std::vector<NodeStats> out;
  out.reserve(im.nodes.size());
  const std::size_t nb = latency_bounds().size();
  for (const auto &n : im.nodes) {
    NodeStats s;
    s.host = n->label;
    s.up = n->up;
    s.requests = n->requests;
    s.retries = n->retries;
    s.in_flight = n->conn.in_flight;
    s.latency_buckets.assign(nb, 0);
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < nb && i < n->buckets.size(); ++i) {
      acc += n->buckets[i];
      s.latency_buckets[i] = acc;
    }
    s.latency_sum_seconds = n->latency_sum;
    s.latency_count = n->latency_count;
    s.errors = n->errors;
    out.push_back(std::move(s));
  }
  return out;
}

} // namespace ta::cql
