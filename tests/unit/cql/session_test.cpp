// Session against scripted fake servers on 127.0.0.1 (fake_server.hpp).
// Backoffs are 1 ms so retries stay fast; nothing here asserts timings.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ta/cql/session.hpp"

#include "fake_server.hpp"

namespace ta::cql {
namespace {

using test::FakeServer;

Options fast_options(std::vector<HostPort> nodes) {
  Options o;
  o.contact_points = std::move(nodes);
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.request_timeout = std::chrono::milliseconds(3000);
  o.retry_base_delay = std::chrono::milliseconds(1);
  o.retry_max_delay = std::chrono::milliseconds(4);
  return o;
}

std::unique_ptr<Session> must_connect(const Options &o) {
  Status st;
  auto s = Session::connect(o, st);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_NE(s, nullptr);
  return s;
}

// A port with nothing listening: bound, read back, closed.
std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string label(const FakeServer &s) {
  return "127.0.0.1:" + std::to_string(s.port());
}

std::uint64_t error_count(const NodeStats &n, std::string_view name) {
  for (const auto &[k, v] : n.errors) {
    if (k == name) {
      return v;
    }
  }
  return 0;
}

TEST(CqlSession, StartupReadyAndQuery) {
  FakeServer server([](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::query) {
      ctx.reply(f.header.stream, Opcode::result, test::int_rows_body({1, 2, 3}, std::nullopt));
      return true;
    }
    return false;
  });
  auto o = fast_options({server.address()});
  o.keyspace = "traffic";
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  std::vector<std::int32_t> got;
  const Status st = s->query("SELECT v FROM t", [&](const Row &r) {
    ASSERT_EQ(r.cells.size(), 1U);
    got.push_back(*as_int(r.cells[0]));
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(got, (std::vector<std::int32_t>{1, 2, 3}));
  const auto log = server.log();
  ASSERT_GE(log.size(), 3U);
  EXPECT_EQ(log[0], "STARTUP CQL_VERSION=3.0.0");
  EXPECT_EQ(log[1], "QUERY USE traffic");
  EXPECT_EQ(log[2], "QUERY SELECT v FROM t");
  const auto stats = s->stats();
  ASSERT_EQ(stats.size(), 1U);
  EXPECT_TRUE(stats[0].up);
  EXPECT_EQ(stats[0].host, label(server));
  EXPECT_EQ(stats[0].requests, 1U);
  EXPECT_EQ(stats[0].latency_count, 1U);
  ASSERT_EQ(stats[0].latency_buckets.size(), latency_bounds().size());
  EXPECT_EQ(stats[0].latency_buckets.back(), 1U); // cumulative
}

FakeServer::Handler password_auth(std::string_view user, std::string_view password,
                                  bool challenge) {
  const std::string expected = "AUTH_RESPONSE |" + std::string(user) + "|" + std::string(password);
  auto challenged = std::make_shared<bool>(false);
  return [expected, challenge, challenged](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    const auto stream = f.header.stream;
    if (f.header.opcode == Opcode::startup) {
      std::vector<std::byte> b;
      BodyWriter(b).put_string("org.apache.cassandra.auth.PasswordAuthenticator");
      ctx.reply(stream, Opcode::authenticate, b);
      return true;
    }
    if (f.header.opcode == Opcode::auth_response) {
      BodyReader r(body);
      Cell token;
      (void)r.read_bytes(token);
      std::string got = "AUTH_RESPONSE ";
      for (const auto b : token.value_or(Bytes{})) {
        got += static_cast<char>(b) == '\0' ? '|' : static_cast<char>(b);
      }
      if (got != expected) {
        ctx.reply(stream, Opcode::error,
                  test::error_body(0x0100, "Provided username cassandra and/or password are "
                                           "incorrect"));
        return true;
      }
      std::vector<std::byte> b;
      BodyWriter w(b);
      if (challenge && !*challenged) {
        *challenged = true;
        w.put_bytes(test::to_bytes("more"));
        ctx.reply(stream, Opcode::auth_challenge, b);
        return true;
      }
      w.put_null_bytes();
      ctx.reply(stream, Opcode::auth_success, b);
      return true;
    }
    return false;
  };
}

TEST(CqlSession, PasswordAuthentication) {
  FakeServer server(password_auth("cassandra", "cassandra", false));
  auto o = fast_options({server.address()});
  o.username = "cassandra";
  o.password = "cassandra";
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->query("SELECT 1").ok());
  const auto log = server.log();
  EXPECT_EQ(log[1], "AUTH_RESPONSE |cassandra|cassandra");
}

TEST(CqlSession, AuthChallengeThenSuccess) {
  FakeServer server(password_auth("u", "p", true));
  auto o = fast_options({server.address()});
  o.username = "u";
  o.password = "p";
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  const auto log = server.log();
  EXPECT_EQ(std::count(log.begin(), log.end(), "AUTH_RESPONSE |u|p"), 2);
}

TEST(CqlSession, BadCredentials) {
  FakeServer server(password_auth("cassandra", "right", false));
  auto o = fast_options({server.address()});
  o.username = "cassandra";
  o.password = "wrong";
  Status st;
  auto s = Session::connect(o, st);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(st.code(), StatusCode::unauthenticated);
  EXPECT_EQ(st.detail(), 0x0100);
  EXPECT_EQ(st.message().rfind(label(server) + ": ", 0), 0U) << st.message();
  EXPECT_EQ(st.message(), label(server) +
                              ": authentication failed: server error 0x0100 (bad_credentials): "
                              "Provided username cassandra and/or password are incorrect");
}

TEST(CqlSession, AuthRequiredWithoutUsername) {
  FakeServer server(password_auth("u", "p", false));
  Status st;
  auto s = Session::connect(fast_options({server.address()}), st);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(st.code(), StatusCode::unauthenticated);
  EXPECT_NE(st.message().find("requires authentication"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("no username"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(label(server)), std::string::npos) << st.message();
}

TEST(CqlSession, PipelinedAnsweredOutOfOrder) {
  std::atomic<int> executes{0};
  std::atomic<int> batches{0};
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode == Opcode::execute || f.header.opcode == Opcode::batch) {
      (f.header.opcode == Opcode::execute ? executes : batches)++;
      BodyReader r(body);
      if (f.header.opcode == Opcode::execute) {
        Bytes id;
        test::Params p;
        if (!r.read_short_bytes(id) || !test::parse_params(r, p) || p.values.size() != 2 ||
            p.consistency != 0x0001) {
          ctx.reply(f.header.stream, Opcode::error, test::error_body(0x000A, "bad EXECUTE"));
          return true;
        }
      }
      // Answered in reverse order of arrival within each read.
      ctx.defer(f.header.stream, Opcode::result, test::void_body());
      return true;
    }
    return false;
  });
  auto o = fast_options({server.address()});
  o.consistency = Consistency::one;
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("INSERT INTO t (a, b) VALUES (?, ?)", p).ok());
  EXPECT_EQ(p.bind_count, 2);
  std::vector<Request> reqs(300);
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    const int n = i % 3 == 0 ? 3 : 1; // every third request is a BATCH of 3
    for (int k = 0; k < n; ++k) {
      Statement st;
      st.prepared = p;
      st.values.add_int(static_cast<std::int32_t>(i)).add_text("x");
      reqs[i].statements.push_back(std::move(st));
    }
  }
  const Status st = s->execute_all(reqs);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(executes.load(), 200);
  EXPECT_EQ(batches.load(), 100);
  EXPECT_GT(server.max_concurrent.load(), 1); // really pipelined
  const auto log = server.log();
  EXPECT_NE(std::find(log.begin(), log.end(), "BATCH type=1 n=3"), log.end());
  EXPECT_EQ(s->stats()[0].requests, 301U); // + PREPARE
  EXPECT_EQ(s->stats()[0].in_flight, 0U);
}

TEST(CqlSession, MalformedFrameIsProtocolError) {
  FakeServer server([](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::query) {
      // Version byte 0x85: not v4.
      FrameHeader h;
      h.version = 0x85;
      h.stream = f.header.stream;
      h.opcode = Opcode::result;
      h.length = 4;
      std::vector<std::byte> b;
      encode_header(h, b);
      b.resize(b.size() + 4);
      ctx.raw(b);
      return true;
    }
    return false;
  });
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  const Status st = s->query("SELECT 1");
  EXPECT_EQ(st.code(), StatusCode::protocol_error);
  EXPECT_EQ(st.message().rfind(label(server) + ": ", 0), 0U) << st.message();
  EXPECT_NE(st.message().find(label(server)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("bad_version"), std::string::npos) << st.message();
  EXPECT_FALSE(s->stats()[0].up);
}

TEST(CqlSession, MalformedBodyFailsOnlyThatRequest) {
  FakeServer server([](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::query) {
      // RESULT kind 9.
      std::vector<std::byte> b;
      BodyWriter(b).put_int(9);
      ctx.reply(f.header.stream, Opcode::result, b);
      return true;
    }
    return false;
  });
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  const Status st = s->query("SELECT 1");
  EXPECT_EQ(st.code(), StatusCode::protocol_error);
  EXPECT_NE(st.message().find("bad_result_kind"), std::string::npos) << st.message();
  EXPECT_TRUE(s->stats()[0].up);
}

TEST(CqlSession, ClosedMidFrameRetriedOnOtherNode) {
  std::atomic<int> good_executes{0};
  std::atomic<bool> cut{false};
  FakeServer bad([&](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::execute) {
      if (cut.exchange(true)) {
        return true; // the rest: never answered, lost with the connection
      }
      auto frame = ctx.frame(f.header.stream, Opcode::result, test::void_body());
      ctx.raw(Bytes(frame).first(frame.size() - 2)); // half a frame, then EOF
      ctx.close_after_flush();
      return true;
    }
    return false;
  });
  FakeServer good([&](FakeServer::Ctx & /*ctx*/, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::execute) {
      ++good_executes;
    }
    return false;
  });
  auto s = must_connect(fast_options({bad.address(), good.address()}));
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("INSERT INTO t (a) VALUES (?)", p).ok());
  std::vector<Request> reqs(6);
  for (auto &r : reqs) {
    Statement st;
    st.prepared = p;
    st.values.add_int(1);
    r.statements.push_back(std::move(st));
  }
  const Status st = s->execute_all(reqs);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(good_executes.load(), 6);
  const auto stats = s->stats();
  EXPECT_FALSE(stats[0].up);
  EXPECT_TRUE(stats[1].up);
  EXPECT_GE(stats[0].retries, 1U);
  EXPECT_EQ(error_count(stats[0], "closed"), 1U);
}

TEST(CqlSession, WriteTimeoutRetriedThenSucceeds) {
  std::atomic<int> executes{0};
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::execute && executes++ == 0) {
      ctx.reply(f.header.stream, Opcode::error,
                test::error_body(0x1100, "Operation timed out", [](BodyWriter &w) {
                  w.put_short(6);
                  w.put_int(0);
                  w.put_int(1);
                  w.put_string("SIMPLE");
                }));
      return true;
    }
    return false;
  });
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("INSERT INTO t (a) VALUES (?)", p).ok());
  std::vector<Request> reqs(1);
  reqs[0].statements.push_back({p, {}});
  reqs[0].statements[0].values.add_int(5);
  const Status st = s->execute_all(reqs);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(executes.load(), 2);
  const auto stats = s->stats();
  EXPECT_EQ(stats[0].retries, 1U);
  EXPECT_EQ(error_count(stats[0], "write_timeout"), 1U);
}

TEST(CqlSession, OverloadedUntilRetriesExhausted) {
  std::atomic<int> executes{0};
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::execute) {
      ++executes;
      ctx.reply(f.header.stream, Opcode::error, test::error_body(0x1001, "too busy"));
      return true;
    }
    return false;
  });
  auto o = fast_options({server.address()});
  o.max_retries = 2;
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("INSERT INTO t (a) VALUES (?)", p).ok());
  std::vector<Request> reqs(1);
  reqs[0].statements.push_back({p, {}});
  reqs[0].statements[0].values.add_int(5);
  const Status st = s->execute_all(reqs);
  EXPECT_EQ(st.code(), StatusCode::server_error);
  EXPECT_EQ(st.detail(), 0x1001);
  EXPECT_EQ(st.message().rfind(label(server) + ": ", 0), 0U) << st.message();
  EXPECT_NE(st.message().find(label(server) + ": server error 0x1001 (overloaded): too busy"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(executes.load(), 3);
  EXPECT_EQ(error_count(s->stats()[0], "overloaded"), 3U);
}

TEST(CqlSession, PermanentServerErrorNamesCode) {
  FakeServer server([](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::query) {
      ctx.reply(f.header.stream, Opcode::error, test::error_body(0x2000, "line 1:0 no viable"));
      return true;
    }
    return false;
  });
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  const Status st = s->query("SELEKT");
  EXPECT_EQ(st.code(), StatusCode::server_error);
  EXPECT_EQ(st.message(),
            label(server) + ": server error 0x2000 (syntax_error): line 1:0 no viable");
  EXPECT_EQ(server.log().size(), 2U); // STARTUP, the QUERY: not retried
}

TEST(CqlSession, UnpreparedIsPreparedAgain) {
  std::atomic<bool> forgot{false};
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode == Opcode::execute && !forgot.exchange(true)) {
      BodyReader r(body);
      Bytes id;
      (void)r.read_short_bytes(id);
      ctx.reply(f.header.stream, Opcode::error,
                test::error_body(0x2500, "Prepared query with ID not found",
                                 [id](BodyWriter &w) { w.put_short_bytes(id); }));
      return true;
    }
    return false;
  });
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("INSERT INTO t (a) VALUES (?)", p).ok());
  std::vector<Request> reqs(1);
  reqs[0].statements.push_back({p, {}});
  reqs[0].statements[0].values.add_int(5);
  const Status st = s->execute_all(reqs);
  ASSERT_TRUE(st.ok()) << st.message();
  const auto log = server.log();
  ASSERT_EQ(log.size(), 5U);
  EXPECT_EQ(log[1], "PREPARE INSERT INTO t (a) VALUES (?)");
  EXPECT_EQ(log[2], "EXECUTE");
  EXPECT_EQ(log[3], "PREPARE INSERT INTO t (a) VALUES (?)");
  EXPECT_EQ(log[4], "EXECUTE");
}

TEST(CqlSession, PagingOverThreePages) {
  std::atomic<int> bad_state{0};
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode != Opcode::execute) {
      return false;
    }
    BodyReader r(body);
    Bytes id;
    test::Params p;
    (void)r.read_short_bytes(id);
    (void)test::parse_params(r, p);
    std::string state;
    if (p.paging_state) {
      state.assign(reinterpret_cast<const char *>(p.paging_state->data()), p.paging_state->size());
    }
    if (p.page_size != 2 || p.values.size() != 1) {
      ++bad_state;
    }
    if (state.empty()) {
      ctx.reply(f.header.stream, Opcode::result, test::int_rows_body({1, 2}, "page2"));
    } else if (state == "page2") {
      ctx.reply(f.header.stream, Opcode::result, test::int_rows_body({3, 4}, "page3"));
    } else if (state == "page3") {
      ctx.reply(f.header.stream, Opcode::result, test::int_rows_body({5}, std::nullopt));
    } else {
      ++bad_state;
      ctx.reply(f.header.stream, Opcode::error, test::error_body(0x2200, "bad paging state"));
    }
    return true;
  });
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("SELECT v FROM t WHERE k = ?", p).ok());
  Values v;
  v.add_text("key");
  std::vector<std::int32_t> got;
  const Status st = s->execute_paged(
      p, v, 2, [&](const Row &r) { got.push_back(as_int(r.cells[0]).value_or(-1)); });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(got, (std::vector<std::int32_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(bad_state.load(), 0);
}

TEST(CqlSession, QueryFollowsPagesToo) {
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes body) {
    if (f.header.opcode != Opcode::query) {
      return false;
    }
    BodyReader r(body);
    std::string_view text;
    test::Params p;
    (void)r.read_long_string(text);
    (void)test::parse_params(r, p);
    const bool first = !p.paging_state.has_value();
    ctx.reply(f.header.stream, Opcode::result,
              first ? test::int_rows_body({7}, "next") : test::int_rows_body({8}, std::nullopt));
    return true;
  });
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  int rows = 0;
  ASSERT_TRUE(s->query("SELECT v FROM t", [&](const Row &) { ++rows; }).ok());
  EXPECT_EQ(rows, 2);
}

TEST(CqlSession, FailoverToSecondContactPoint) {
  FakeServer server;
  const HostPort dead{"127.0.0.1", closed_port()};
  auto s = must_connect(fast_options({dead, server.address()}));
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->query("SELECT 1").ok());
  const auto stats = s->stats();
  ASSERT_EQ(stats.size(), 2U);
  EXPECT_FALSE(stats[0].up);
  EXPECT_TRUE(stats[1].up);
  EXPECT_EQ(error_count(stats[0], "connect"), 1U);
  EXPECT_TRUE(s->reconnect()); // the second node is still up
}

TEST(CqlSession, ConnectToNothing) {
  const std::uint16_t port = closed_port();
  Status st;
  auto s = Session::connect(fast_options({{"127.0.0.1", port}}), st);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(st.code(), StatusCode::unavailable);
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("connect failed"), std::string::npos) << st.message();
}

TEST(CqlSession, BadRequests) {
  FakeServer server;
  auto s = must_connect(fast_options({server.address()}));
  ASSERT_NE(s, nullptr);
  Prepared p;
  ASSERT_TRUE(s->prepare("INSERT INTO t (a, b) VALUES (?, ?)", p).ok());
  std::vector<Request> reqs(1);
  reqs[0].statements.push_back({p, {}});
  reqs[0].statements[0].values.add_int(1); // one of two
  EXPECT_EQ(s->execute_all(reqs).code(), StatusCode::invalid_argument);
  Prepared unknown{99, 0};
  EXPECT_EQ(s->execute_paged(unknown, Values{}, 10, {}).code(), StatusCode::invalid_argument);
}

TEST(CqlSession, Lz4Compression) {
  std::atomic<int> compressed{0};
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if ((f.header.flags & kFlagCompression) != 0) {
      ++compressed;
    }
    if (f.header.opcode == Opcode::query) {
      ctx.reply(f.header.stream, Opcode::result, test::int_rows_body({42}, std::nullopt));
      return true;
    }
    return false;
  });
  auto o = fast_options({server.address()});
  o.lz4 = true;
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  std::int32_t v = 0;
  ASSERT_TRUE(s->query("SELECT v FROM t", [&](const Row &r) { v = *as_int(r.cells[0]); }).ok());
  EXPECT_EQ(v, 42);
  EXPECT_EQ(server.log()[0], "STARTUP CQL_VERSION=3.0.0 COMPRESSION=lz4");
  EXPECT_EQ(compressed.load(), 1); // the QUERY, not the STARTUP
}

TEST(CqlSession, RequestTimeoutRetried) {
  std::atomic<int> queries{0};
  FakeServer server([&](FakeServer::Ctx &ctx, const Frame &f, Bytes /*body*/) {
    if (f.header.opcode == Opcode::query) {
      if (queries++ == 0) {
        return true; // never answered
      }
      ctx.reply(f.header.stream, Opcode::result, test::void_body());
      return true;
    }
    return false;
  });
  auto o = fast_options({server.address()});
  o.request_timeout = std::chrono::milliseconds(100);
  auto s = must_connect(o);
  ASSERT_NE(s, nullptr);
  const Status st = s->query("INSERT 1");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(queries.load(), 2);
  EXPECT_EQ(error_count(s->stats()[0], "timeout"), 1U);
}

TEST(CqlSession, UseReachesEveryConnection) {
  FakeServer a;
  FakeServer b;
  auto s = must_connect(fast_options({a.address(), b.address()}));
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->query("USE ks2").ok());
  const auto la = a.log();
  const auto lb = b.log();
  EXPECT_NE(std::find(la.begin(), la.end(), "QUERY USE ks2"), la.end());
  EXPECT_NE(std::find(lb.begin(), lb.end(), "QUERY USE ks2"), lb.end());
}

} // namespace
} // namespace ta::cql
