// A scripted CQL v4 server for Session tests: a thread listening on
// 127.0.0.1 or another loopback address (port 0 or given), decoding request frames with the
// library's own FrameDecoder and answering through a per-test handler; whatever the handler leaves
// alone gets the default answer (READY, Void, Prepared, ...). Also the module's other test helpers:
// the hex fixture builder Fx and EXPECT_BYTES. The cluster it describes (system tables, events):
// fake_cluster.hpp.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ta/common/address.hpp"
#include "ta/cql/frame.hpp"
#include "ta/cql/messages.hpp"

#include "fake_cluster.hpp"

namespace ta::cql::test {

// Fixture builder: .h("00 0b") appends hex octets, .s("text") ASCII.
struct Fx {
  std::vector<std::byte> v;
  Fx &h(std::string_view hex) {
    int nibbles = 0;
    unsigned acc = 0;
    for (const char ch : hex) {
      unsigned d = 0;
      if (ch >= '0' && ch <= '9') {
        d = static_cast<unsigned>(ch - '0');
      } else if (ch >= 'a' && ch <= 'f') {
        d = static_cast<unsigned>(ch - 'a' + 10);
      } else if (ch >= 'A' && ch <= 'F') {
        d = static_cast<unsigned>(ch - 'A' + 10);
      } else {
        continue;
      }
      acc = (acc << 4U) | d;
      if (++nibbles == 2) {
        v.push_back(static_cast<std::byte>(acc));
        nibbles = 0;
        acc = 0;
      }
    }
    EXPECT_EQ(nibbles, 0) << hex;
    return *this;
  }
  Fx &s(std::string_view text) {
    for (const char ch : text) {
      v.push_back(static_cast<std::byte>(ch));
    }
    return *this;
  }
  operator Bytes() const { return v; } // NOLINT(google-explicit-constructor)
};

inline std::string dump(Bytes b) {
  std::string out;
  char buf[4];
  for (const auto x : b) {
    std::snprintf(buf, sizeof buf, "%02x ", std::to_integer<unsigned>(x));
    out += buf;
  }
  return out;
}

// Parsed <query_parameters> of a QUERY or EXECUTE.
struct Params {
  std::uint16_t consistency = 0;
  std::uint8_t flags = 0;
  std::vector<Cell> values;
  std::int32_t page_size = 0;
  std::optional<std::vector<std::byte>> paging_state;
};

inline bool parse_params(BodyReader &r, Params &p) {
  if (!r.read_short(p.consistency) || !r.read_byte(p.flags)) {
    return false;
  }
  if ((p.flags & 0x01U) != 0) {
    std::uint16_t n = 0;
    if (!r.read_short(n)) {
      return false;
    }
    p.values.resize(n);
    for (auto &v : p.values) {
      if (!r.read_bytes(v)) {
        return false;
      }
    }
  }
  if ((p.flags & 0x04U) != 0 && !r.read_int(p.page_size)) {
    return false;
  }
  if ((p.flags & 0x08U) != 0 && !r.read_bytes(p.paging_state)) {
    return false;
  }
  return true;
}

// Response bodies.
inline std::vector<std::byte> error_body(std::int32_t code, std::string_view msg,
                                         const std::function<void(BodyWriter &)> &extra = {}) {
  std::vector<std::byte> b;
  BodyWriter w(b);
  w.put_int(code);
  w.put_string(msg);
  if (extra) {
    extra(w);
  }
  return b;
}

inline std::vector<std::byte> void_body() {
  std::vector<std::byte> b;
  BodyWriter(b).put_int(1);
  return b;
}

// Rows of one int column "v"; paging state when more pages follow.
inline std::vector<std::byte> int_rows_body(const std::vector<std::int32_t> &values,
                                            const std::optional<std::string> &paging_state) {
  std::vector<std::byte> b;
  BodyWriter w(b);
  w.put_int(2);
  w.put_int(0x0001 | (paging_state ? 0x0002 : 0));
  w.put_int(1);
  if (paging_state) {
    w.put_bytes(to_bytes(*paging_state));
  }
  w.put_string("ks");
  w.put_string("t");
  w.put_string("v");
  w.put_short(0x0009);
  w.put_int(static_cast<std::int32_t>(values.size()));
  for (const auto v : values) {
    w.put_int(4);
    w.put_int(v);
  }
  return b;
}

inline std::vector<std::byte> prepared_body(Bytes id, std::int32_t binds) {
  std::vector<std::byte> b;
  BodyWriter w(b);
  w.put_int(4);
  w.put_short_bytes(id);
  w.put_int(0x0001); // global table spec
  w.put_int(binds);
  w.put_int(0); // pk_count
  w.put_string("ks");
  w.put_string("t");
  for (std::int32_t i = 0; i < binds; ++i) {
    w.put_string("c" + std::to_string(i));
    w.put_short(0x0009);
  }
  w.put_int(0x0004); // result metadata: no_metadata, 0 columns
  w.put_int(0);
  return b;
}

class FakeServer {
public:
  struct Conn {
    int fd = -1;
    int index = 0;
    FrameDecoder decoder{Direction::request};
    std::vector<std::byte> out;
    std::vector<std::vector<std::byte>> deferred; // answered reversed per read
    bool compress = false;
    bool close_after_flush = false;
    bool registered = false; // sent REGISTER: gets pushed events
  };

  class Ctx {
  public:
    Ctx(FakeServer &s, Conn &c) : server(s), conn(c) {}
    // Frames one response (LZ4 when the connection negotiated it).
    std::vector<std::byte> frame(std::int16_t stream, Opcode op, Bytes body) const {
      std::vector<std::byte> f;
      FrameHeader h;
      h.version = 0x84;
      h.stream = stream;
      h.opcode = op;
      encode_header(h, f);
      if (conn.compress && !body.empty()) {
        lz4_compress(body, f);
        h.flags = kFlagCompression;
      } else {
        f.insert(f.end(), body.begin(), body.end());
      }
      h.length = static_cast<std::uint32_t>(f.size() - kHeaderSize);
      encode_header(h, std::span<std::byte, kHeaderSize>(f.data(), kHeaderSize));
      return f;
    }
    void reply(std::int16_t stream, Opcode op, Bytes body) const {
      const auto f = frame(stream, op, body);
      conn.out.insert(conn.out.end(), f.begin(), f.end());
    }
    void defer(std::int16_t stream, Opcode op, Bytes body) const {
      conn.deferred.push_back(frame(stream, op, body));
    }
    void raw(Bytes bytes) const { conn.out.insert(conn.out.end(), bytes.begin(), bytes.end()); }
    void close_after_flush() const { conn.close_after_flush = true; }
    FakeServer &server;
    Conn &conn;
  };

  // Returns true when it answered (or chose not to); false: default answer.
  using Handler = std::function<bool(Ctx &, const Frame &, Bytes body)>;

  // Listens on `host` (any 127.x.y.z works on Linux loopback) at `port`
  // (0: any free port). Its system.local describes itself alone.
  explicit FakeServer(Handler handler = {}, std::string host = "127.0.0.1", std::uint16_t port = 0)
      : handler_(std::move(handler)), host_(std::move(host)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    const auto ip = IpAddress::parse(host_);
    EXPECT_TRUE(ip && ip->family == 4) << host_;
    if (ip) {
      std::memcpy(&a.sin_addr, ip->bytes.data(), 4);
    }
    bound_ = ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&a), &len);
    port_ = ntohs(a.sin_port);
    cluster_.local.address = host_;
    cluster_.local.port = port_;
    char id[40];
    std::snprintf(id, sizeof id, "%032x", static_cast<unsigned>(port_) ^ (ip ? ip->bytes[3] : 0U));
    cluster_.local.host_id = id;
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    for (auto &c : conns_) {
      if (c.fd >= 0) {
        ::close(c.fd);
      }
    }
    ::close(listen_fd_);
  }
  FakeServer(const FakeServer &) = delete;
  FakeServer &operator=(const FakeServer &) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] bool bound() const { return bound_; }
  [[nodiscard]] HostPort address() const { return {host_, port_}; }
  // This node's row as its peers list it.
  [[nodiscard]] NodeRowSpec as_peer() {
    const std::lock_guard lock(mu_);
    return cluster_.local;
  }
  void set_cluster(ClusterSpec c) {
    const std::lock_guard lock(mu_);
    cluster_ = std::move(c);
  }
  ClusterSpec cluster() {
    const std::lock_guard lock(mu_);
    return cluster_;
  }
  // Pushes an EVENT (stream -1) to every connection that REGISTERed.
  void push_event(std::vector<std::byte> body) {
    const std::lock_guard lock(mu_);
    events_.push_back(std::move(body));
  }
  // The cluster requests, kept apart from log(): "SELECT * FROM
  // system.local", ..., "REGISTER".
  std::vector<std::string> system_log() {
    const std::lock_guard lock(mu_);
    return system_log_;
  }

  // What the server saw, in order: "QUERY <text>", "PREPARE <text>",
  // "EXECUTE", "BATCH <n>", "STARTUP <k=v,...>", "AUTH_RESPONSE <token>".
  std::vector<std::string> log() {
    const std::lock_guard lock(mu_);
    return log_;
  }
  void note(std::string s) {
    const std::lock_guard lock(mu_);
    log_.push_back(std::move(s));
  }
  std::atomic<int> connections{0};
  std::atomic<int> max_concurrent{0}; // most requests decoded from one read

private:
  void loop() {
    std::vector<pollfd> pfds;
    while (!stop_) {
      pfds.clear();
      pfds.push_back({listen_fd_, POLLIN, 0});
      for (auto &c : conns_) {
        short ev = POLLIN;
        if (!c.out.empty()) {
          ev = static_cast<short>(ev | POLLOUT);
        }
        pfds.push_back({c.fd, ev, 0});
      }
      push_events();
      if (::poll(pfds.data(), pfds.size(), 5) <= 0) {
        continue;
      }
      if ((pfds[0].revents & POLLIN) != 0) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          conns_.emplace_back();
          conns_.back().fd = fd;
          conns_.back().index = connections++;
        }
      }
      std::size_t i = 1;
      for (auto it = conns_.begin(); it != conns_.end(); ++i) {
        if (i >= pfds.size() || pfds[i].fd != it->fd) {
          ++it;
          continue;
        }
        if (!service(*it, pfds[i].revents)) {
          ::close(it->fd);
          it = conns_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  void push_events() {
    std::vector<std::vector<std::byte>> events;
    {
      const std::lock_guard lock(mu_);
      events.swap(events_);
    }
    for (auto &c : conns_) {
      for (const auto &e : events) {
        if (c.registered) {
          Ctx(*this, c).reply(-1, Opcode::event, e);
        }
      }
    }
  }

  // The cluster requests, answered here before any test handler sees them.
  bool system_request(Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode == Opcode::register_) {
      ctx.conn.registered = true;
      ctx.reply(f.header.stream, Opcode::ready, {});
      const std::lock_guard lock(mu_);
      system_log_.emplace_back("REGISTER");
      return true;
    }
    if (f.header.opcode != Opcode::query) {
      return false;
    }
    BodyReader r(body);
    std::string_view text;
    (void)r.read_long_string(text);
    static constexpr std::string_view kPrefix = "SELECT * FROM system.";
    static constexpr std::string_view kSchema =
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = '";
    if (text.starts_with(kSchema)) {
      const std::string_view name = text.substr(kSchema.size(), text.size() - kSchema.size() - 1);
      const std::lock_guard lock(mu_);
      system_log_.emplace_back(text);
      ctx.reply(f.header.stream, Opcode::result,
                replication_rows_body(name == cluster_.keyspace ? &cluster_.replication : nullptr));
      return true;
    }
    if (!text.starts_with(kPrefix)) {
      return false;
    }
    const std::string table(text.substr(kPrefix.size()));
    ClusterSpec c;
    {
      const std::lock_guard lock(mu_);
      system_log_.emplace_back(text);
      c = cluster_;
    }
    if (table == "local" && c.local_unauthorized) {
      ctx.reply(f.header.stream, Opcode::error,
                error_body(0x2100, "User x has no SELECT permission on <table system.local>"));
    } else if (table == "local") {
      ctx.reply(f.header.stream, Opcode::result, system_rows_body("local", {c.local}));
    } else if (table == "peers_v2" && !c.peers_v2) {
      ctx.reply(f.header.stream, Opcode::error, error_body(0x2200, "unconfigured table peers_v2"));
    } else {
      ctx.reply(f.header.stream, Opcode::result, system_rows_body(table, c.peers));
    }
    return true;
  }

  bool service(Conn &c, short revents) {
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      auto room = c.decoder.prepare(64 * 1024);
      const ssize_t n = ::recv(c.fd, room.data(), room.size(), MSG_DONTWAIT);
      if (n <= 0) {
        return false;
      }
      c.decoder.commit(static_cast<std::size_t>(n));
      Frame f;
      int count = 0;
      while (c.decoder.next(f)) {
        ++count;
        handle(c, f);
      }
      if (count > max_concurrent) {
        max_concurrent = count;
      }
      for (auto d = c.deferred.rbegin(); d != c.deferred.rend(); ++d) {
        c.out.insert(c.out.end(), d->begin(), d->end());
      }
      c.deferred.clear();
    }
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n <= 0) {
        break;
      }
      c.out.erase(c.out.begin(), c.out.begin() + n);
    }
    return !(c.close_after_flush && c.out.empty());
  }

  void handle(Conn &c, const Frame &f) {
    Ctx ctx(*this, c);
    std::vector<std::byte> plain;
    Bytes body = f.body;
    if ((f.header.flags & kFlagCompression) != 0) {
      if (lz4_decompress(body, plain) != CodecError::ok) {
        note("BAD_LZ4");
        return;
      }
      body = plain;
    }
    if (system_request(ctx, f, body)) {
      return;
    }
    record(f, body);
    if (handler_ && handler_(ctx, f, body)) {
      if (f.header.opcode == Opcode::startup) {
        c.compress = startup_lz4_;
      }
      return;
    }
    const auto stream = f.header.stream;
    BodyReader r(body);
    switch (f.header.opcode) {
    case Opcode::startup:
      ctx.reply(stream, Opcode::ready, {});
      c.compress = startup_lz4_; // after the READY: it went out plain
      break;
    case Opcode::options: {
      std::vector<std::byte> b;
      BodyWriter w(b);
      w.put_short(1);
      w.put_string("COMPRESSION");
      const std::array<std::string_view, 1> v{"lz4"};
      w.put_string_list(v);
      ctx.reply(stream, Opcode::supported, b);
      break;
    }
    case Opcode::query: {
      std::string_view text;
      (void)r.read_long_string(text);
      if (text.starts_with("USE ")) {
        std::vector<std::byte> b;
        BodyWriter w(b);
        w.put_int(3);
        w.put_string(text.substr(4));
        ctx.reply(stream, Opcode::result, b);
      } else {
        ctx.reply(stream, Opcode::result, void_body());
      }
      break;
    }
    case Opcode::prepare: {
      std::string_view text;
      (void)r.read_long_string(text);
      const auto id = to_bytes("id:" + std::string(text.substr(0, 8)));
      const auto binds = static_cast<std::int32_t>(std::count(text.begin(), text.end(), '?'));
      ctx.reply(stream, Opcode::result, prepared_body(id, binds));
      break;
    }
    default:
      ctx.reply(stream, Opcode::result, void_body());
      break;
    }
  }

  void record(const Frame &f, Bytes body) {
    BodyReader r(body);
    switch (f.header.opcode) {
    case Opcode::startup: {
      std::uint16_t n = 0;
      std::string s = "STARTUP";
      (void)r.read_short(n);
      startup_lz4_ = false;
      for (std::uint16_t i = 0; i < n; ++i) {
        std::string k;
        std::string v;
        (void)r.read_string(k);
        (void)r.read_string(v);
        s += " " + k + "=" + v;
        if (k == "COMPRESSION" && v == "lz4") {
          startup_lz4_ = true;
        }
      }
      note(s);
      break;
    }
    case Opcode::query:
    case Opcode::prepare: {
      std::string_view text;
      (void)r.read_long_string(text);
      note(std::string(opcode_name(f.header.opcode)) + " " + std::string(text));
      break;
    }
    case Opcode::batch: {
      std::uint8_t type = 0;
      std::uint16_t n = 0;
      (void)r.read_byte(type);
      (void)r.read_short(n);
      note("BATCH type=" + std::to_string(type) + " n=" + std::to_string(n));
      break;
    }
    case Opcode::auth_response: {
      Cell token;
      (void)r.read_bytes(token);
      std::string s = "AUTH_RESPONSE ";
      if (token) {
        for (const auto b : *token) {
          const auto ch = static_cast<char>(b);
          s += ch == '\0' ? '|' : ch;
        }
      }
      note(s);
      break;
    }
    default:
      note(std::string(opcode_name(f.header.opcode)));
      break;
    }
  }

  Handler handler_;
  std::string host_;
  bool bound_ = false;
  ClusterSpec cluster_;
  std::vector<std::vector<std::byte>> events_;
  std::vector<std::string> system_log_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::list<Conn> conns_;
  bool startup_lz4_ = false;
  std::mutex mu_;
  std::vector<std::string> log_;
};

} // namespace ta::cql::test

#define EXPECT_BYTES(actual, expected)                                                             \
  EXPECT_EQ(::ta::cql::test::dump(actual), ::ta::cql::test::dump(expected))
