// The test process's own sockets on loopback, looked up as a capture of this
// machine would see their flows. The expected pid and comm come from getpid()
// and prctl(PR_GET_NAME), not from /proc.
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "ta/process/mapper.hpp"

namespace {

using ta::IpAddress;
using ta::process::FlowKey;
using ta::process::Mapper;
using ta::process::Options;
using ta::process::Outcome;
using ta::process::Protocol;
using ta::process::SocketSource;

std::string own_comm() {
  std::array<char, 17> name{};
  EXPECT_EQ(::prctl(PR_GET_NAME, name.data()), 0);
  return name.data();
}

class Fd {
public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  [[nodiscard]] int get() const { return fd_; }

private:
  int fd_;
};

// Local address and port of a socket.
void local_of(int fd, IpAddress &addr, std::uint16_t &port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len), 0);
  if (ss.ss_family == AF_INET) {
    const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
    addr = IpAddress::v4(reinterpret_cast<const std::byte *>(&sin->sin_addr));
    port = ntohs(sin->sin_port);
  } else {
    const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
    addr = IpAddress::v6(reinterpret_cast<const std::byte *>(&sin6->sin6_addr));
    port = ntohs(sin6->sin6_port);
  }
}

int bound(int family, int type, const char *address) {
  const int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
    sin->sin_family = AF_INET;
    EXPECT_EQ(::inet_pton(AF_INET, address, &sin->sin_addr), 1);
    len = sizeof(sockaddr_in);
  } else {
    auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    sin6->sin6_family = AF_INET6;
    EXPECT_EQ(::inet_pton(AF_INET6, address, &sin6->sin6_addr), 1);
    len = sizeof(sockaddr_in6);
  }
  if (::bind(fd, reinterpret_cast<sockaddr *>(&ss), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void connect_to(int fd, int listener) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr *>(&ss), &len), 0);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&ss), len), 0);
}

struct TcpPair {
  FlowKey client; // the client's flow, seen from the client's end
  FlowKey server; // the accepted socket's flow
  FlowKey syn;    // a new flow to the listener (before accept)
};

class LiveTest : public ::testing::TestWithParam<SocketSource> {
protected:
  Options options() const {
    Options o;
    o.source = GetParam();
    return o;
  }

  void tcp_case(int family, const char *loopback) {
    Fd listener(bound(family, SOCK_STREAM, loopback));
    if (listener.get() < 0) {
      GTEST_SKIP() << "no " << loopback << " in this namespace";
    }
    ASSERT_EQ(::listen(listener.get(), 4), 0);
    Fd client(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    connect_to(client.get(), listener.get());
    Fd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(accepted.get(), 0);

    FlowKey client_flow{Protocol::tcp, {}, 0, {}, 0};
    local_of(client.get(), client_flow.local, client_flow.local_port);
    local_of(listener.get(), client_flow.remote, client_flow.remote_port);
    FlowKey server_flow{Protocol::tcp, client_flow.remote, client_flow.remote_port,
                        client_flow.local, client_flow.local_port};
    FlowKey syn_flow = server_flow;
    syn_flow.remote_port = static_cast<std::uint16_t>(client_flow.local_port ^ 1U);

    Mapper mapper(options());
    for (const FlowKey &f : {client_flow, server_flow, syn_flow}) {
      const auto r = mapper.lookup(f);
      EXPECT_EQ(r.outcome, Outcome::mapped) << ta::process::outcome_name(r.outcome);
      EXPECT_EQ(r.process.pid, ::getpid());
      EXPECT_EQ(r.process.comm, own_comm());
    }
    EXPECT_EQ(mapper.counters().of(Outcome::mapped), 3U);
    EXPECT_EQ(mapper.counters().rescans, 1U);
    if (GetParam() == SocketSource::netlink_then_proc_files) {
      EXPECT_EQ(mapper.counters().netlink_failures, 0U);
    }
  }
};

TEST_P(LiveTest, TcpIpv4ClientServerAndListener) {
  tcp_case(AF_INET, "127.0.0.1");
}

TEST_P(LiveTest, TcpIpv6ClientServerAndListener) {
  tcp_case(AF_INET6, "::1");
}

TEST_P(LiveTest, UdpBoundAndWildcard) {
  Fd bound4(bound(AF_INET, SOCK_DGRAM, "127.0.0.1"));
  Fd any4(bound(AF_INET, SOCK_DGRAM, "0.0.0.0"));
  ASSERT_GE(bound4.get(), 0);
  ASSERT_GE(any4.get(), 0);
  Mapper mapper(options());
  for (const int fd : {bound4.get(), any4.get()}) {
    FlowKey f{Protocol::udp, {}, 0, {}, 0};
    IpAddress ignored;
    local_of(fd, ignored, f.local_port);
    f.local = *IpAddress::parse("127.0.0.1");
    f.remote = *IpAddress::parse("127.0.0.1");
    f.remote_port = 53;
    const auto r = mapper.lookup(f);
    EXPECT_EQ(r.outcome, Outcome::mapped) << ta::process::outcome_name(r.outcome);
    EXPECT_EQ(r.process.pid, ::getpid());
    EXPECT_EQ(r.process.comm, own_comm());
  }
  // The same port over TCP is another socket: none.
  FlowKey tcp{Protocol::tcp, *IpAddress::parse("127.0.0.1"), 0, *IpAddress::parse("127.0.0.1"), 53};
  IpAddress ignored;
  local_of(bound4.get(), ignored, tcp.local_port);
  Options o = options();
  o.min_rescan_interval = std::chrono::milliseconds(0);
  Mapper fresh(o);
  EXPECT_EQ(fresh.lookup(tcp).outcome, Outcome::no_socket);
}

// A child connects, reports its port and exits before the lookup: its socket
// is closed (an orphan or TIME_WAIT, held by no process), so no_socket.
TEST_P(LiveTest, ChildWhoseConnectionIsGoneIsNoSocket) {
  Fd listener(bound(AF_INET, SOCK_STREAM, "127.0.0.1"));
  ASSERT_GE(listener.get(), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  std::array<int, 2> pipe_fds{};
  ASSERT_EQ(::pipe(pipe_fds.data()), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(listener.get(), reinterpret_cast<sockaddr *>(&ss), &len);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&ss), len) != 0) {
      ::_exit(1);
    }
    sockaddr_in mine{};
    len = sizeof(mine);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&mine), &len);
    const std::uint16_t port = ntohs(mine.sin_port);
    ::_exit(::write(pipe_fds[1], &port, sizeof(port)) == sizeof(port) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::uint16_t child_port = 0;
  ASSERT_EQ(::read(pipe_fds[0], &child_port, sizeof(child_port)),
            static_cast<ssize_t>(sizeof(child_port)));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  FlowKey f{Protocol::tcp, *IpAddress::parse("127.0.0.1"), child_port, {}, 0};
  local_of(listener.get(), f.remote, f.remote_port);
  Mapper mapper(options());
  EXPECT_EQ(mapper.lookup(f).outcome, Outcome::no_socket);
  EXPECT_EQ(mapper.counters().of(Outcome::no_socket), 1U);
  EXPECT_EQ(mapper.counters().of(Outcome::mapped), 0U);
}

// Without the capabilities to read other users' /proc/PID/fd (a child that
// became nobody), this process's socket is there but its owner cannot be
// read: no_permission, said once, while sockets of nobody's own are mapped.
TEST_P(LiveTest, AnotherUsersSocketIsNoPermission) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to become another user";
  }
  Fd listener(bound(AF_INET, SOCK_STREAM, "127.0.0.1"));
  ASSERT_GE(listener.get(), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  FlowKey f{Protocol::tcp, {}, 0, *IpAddress::parse("127.0.0.1"), 40000};
  local_of(listener.get(), f.local, f.local_port);
  const Options o = options();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {          // gtest does not see this process: exit codes say
    ::close(listener.get()); // only the parent (root) holds it now
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(10);
    }
    const int own = bound(AF_INET, SOCK_DGRAM, "127.0.0.1");
    FlowKey mine{Protocol::udp, *IpAddress::parse("127.0.0.1"), 0, *IpAddress::parse("127.0.0.1"),
                 53};
    sockaddr_in sin{};
    socklen_t len = sizeof(sin);
    if (own < 0 || ::getsockname(own, reinterpret_cast<sockaddr *>(&sin), &len) != 0) {
      ::_exit(11);
    }
    mine.local_port = ntohs(sin.sin_port);
    Mapper m(o);
    if (m.lookup(f).outcome != Outcome::no_permission) {
      ::_exit(12);
    }
    const auto r = m.lookup(mine);
    if (r.outcome != Outcome::mapped || r.process.pid != ::getpid()) {
      ::_exit(13);
    }
    const auto w = m.take_permission_warning();
    if (!w || w->code() != ta::StatusCode::permission_denied ||
        w->message().find("CAP_DAC_READ_SEARCH") == std::string::npos ||
        m.take_permission_warning().has_value()) {
      ::_exit(14);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

INSTANTIATE_TEST_SUITE_P(Sources, LiveTest,
                         ::testing::Values(SocketSource::netlink_then_proc_files,
                                           SocketSource::proc_files),
                         [](const ::testing::TestParamInfo<SocketSource> &p) {
                           return p.param == SocketSource::proc_files ? "ProcFiles" : "Netlink";
                         });

} // namespace
