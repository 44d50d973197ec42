// A fake /proc tree (Options::proc_root) with hand-written /proc/net lines.
// The addresses are written the way the kernel prints them on a
// little-endian machine (each 32-bit word as a native integer: 127.0.0.1 is
// 0100007F), so these tests run on little-endian hosts only.
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ta/process/mapper.hpp"

#include "socket_table.hpp"

namespace {

namespace fs = std::filesystem;
using ta::IpAddress;
using ta::process::FlowKey;
using ta::process::Mapper;
using ta::process::Options;
using ta::process::Outcome;
using ta::process::Protocol;

constexpr const char *header = "  sl  local_address rem_address   st tx_queue rx_queue tr "
                               "tm->when retrnsmt   uid  timeout inode\n";
constexpr const char *tail = " 1 0000000000000000 100 0 0 10 0\n";

std::string line(int sl, const char *local, const char *remote, const char *state,
                 const char *inode) {
  return "   " + std::to_string(sl) + ": " + local + " " + remote + " " + state +
         " 00000000:00000000 00:00000000 00000000     0        0 " + inode + tail;
}

class FakeProc : public ::testing::Test {
protected:
  void SetUp() override {
    if constexpr (std::endian::native != std::endian::little) {
      GTEST_SKIP() << "the fixtures are written as a little-endian kernel prints them";
    }
    std::string templ = (fs::temp_directory_path() / "ta-fakeproc-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    root_ = templ;
    fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    fs::create_directories(root_ / "net");
    write("net/tcp",
          std::string(header) +
              line(0, "0100007F:1F90", "00000000:0000", "0A", "1001") + // 127.0.0.1:8080 listen
              line(1, "0100007F:C350", "0100007F:1F90", "01", "1002") + // :50000 -> :8080
              line(2, "0100007F:C351", "0100007F:1F90", "06", "0") +    // TIME_WAIT
              line(3, "1401A8C0:01BB", "0200000A:D431", "01", "1003") + // 192.168.1.20:443
              "   4: ZZZZZZZZ:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7" +
              tail +                                                    // bad hex
              "   5: 0100007F:0050\n" +                                 // cut short
              line(6, "0100007F:0051", "00000000:0000", "0A", "12ab") + // bad inode
              line(7, "0100007F:1F91", "00000000:0000", "0A", "1005") + // held by nobody
              line(8, "0100007F:1F92", "00000000:0000", "0A", "1006")); // held by 100 and 200
    write("net/tcp6", std::string(header) +
                          // ::ffff:127.0.0.1:8083, an IPv4 client of a dual-stack socket
                          line(0, "0000000000000000FFFF00000100007F:1F93",
                               "0000000000000000FFFF00000100007F:9C40", "01", "1007") +
                          // [2001:db8::5]:80 listening
                          line(1, "B80D0120000000000000000005000000:0050",
                               "00000000000000000000000000000000:0000", "0A", "1008"));
    write("net/udp", std::string(header) +
                         line(0, "00000000:0035", "00000000:0000", "07", "1009")); // 0.0.0.0:53
    // No net/udp6: a kernel without IPv6.
    process(
        100, "curl\n",
        {{"0", "/dev/null"}, {"3", "socket:[1002]"}, {"4", "socket:[1006]"}, {"5", "pipe:[1001]"}});
    process(200, "dns\tserver\n", {{"7", "socket:[1006]"}, {"8", "socket:[1009]"}});
    process(300, "nginx\n", {{"3", "socket:[1008]"}, {"4", "socket:[1003]"}});
    process(500, "srv\n", {{"9", "socket:[1001]"}, {"10", "socket:[1007]"}});
    fs::create_directories(root_ / "400"); // no fd directory: a kernel thread's view
    fs::create_symlink("100", root_ / "self");
  }
  void TearDown() override {
    if (!root_.empty()) {
      fs::remove_all(root_);
    }
  }

  void write(const std::string &rel, const std::string &text) {
    std::ofstream out(root_ / rel, std::ios::binary);
    out << text;
  }
  void process(int pid, const std::string &comm,
               std::initializer_list<std::pair<const char *, const char *>> fds) {
    const fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir / "fd");
    write(std::to_string(pid) + "/comm", comm);
    for (const auto &[fd, target] : fds) {
      fs::create_symlink(target, dir / "fd" / fd);
    }
  }
  Options options() {
    Options o;
    o.proc_root = root_.string();
    o.local_addresses =
        std::vector<IpAddress>{*IpAddress::parse("127.0.0.1"), *IpAddress::parse("192.168.1.20"),
                               *IpAddress::parse("10.9.9.9"), *IpAddress::parse("2001:db8::5")};
    o.clock = [this] { return now_; };
    return o;
  }
  static FlowKey flow(Protocol p, const char *local, std::uint16_t lport, const char *remote,
                      std::uint16_t rport) {
    return FlowKey{p, *IpAddress::parse(local), lport, *IpAddress::parse(remote), rport};
  }

  fs::path root_;
  std::chrono::steady_clock::time_point now_{std::chrono::seconds(1000)};
};

void expect_mapped(Mapper &m, const FlowKey &f, int pid, const std::string &comm) {
  const auto r = m.lookup(f);
  EXPECT_EQ(r.outcome, Outcome::mapped) << ta::process::outcome_name(r.outcome);
  EXPECT_EQ(r.process.pid, pid);
  EXPECT_EQ(r.process.comm, comm);
}

TEST_F(FakeProc, ParsesAndMatchesMostSpecificFirst) {
  Mapper m(options());
  expect_mapped(m, flow(Protocol::tcp, "127.0.0.1", 50000, "127.0.0.1", 8080), 100, "curl");
  // A new client of the listener: the listener's process.
  expect_mapped(m, flow(Protocol::tcp, "127.0.0.1", 8080, "127.0.0.1", 40000), 500, "srv");
  expect_mapped(m, flow(Protocol::tcp, "192.168.1.20", 443, "10.0.0.2", 54321), 300, "nginx");
  // Held by two processes (a forked server): the lowest pid.
  expect_mapped(m, flow(Protocol::tcp, "127.0.0.1", 8082, "127.0.0.1", 1), 100, "curl");
  // An IPv4 flow of a socket the kernel lists as ::ffff:127.0.0.1.
  expect_mapped(m, flow(Protocol::tcp, "127.0.0.1", 8083, "127.0.0.1", 40000), 500, "srv");
  expect_mapped(m, flow(Protocol::tcp, "2001:db8::5", 80, "2001:db8::9", 5555), 300, "nginx");
  // UDP bound to 0.0.0.0:53; comm keeps its bytes.
  expect_mapped(m, flow(Protocol::udp, "10.9.9.9", 53, "192.0.2.7", 5353), 200, "dns\tserver");
  EXPECT_EQ(m.counters().rescans, 1U);
  EXPECT_EQ(m.counters().sockets, 8U); // 11 lines: 3 malformed; TIME_WAIT (inode 0) left out
  EXPECT_EQ(m.counters().unreadable_pids, 0U);
}

TEST_F(FakeProc, MalformedLinesAreCountedAndSkipped) {
  std::ifstream in(root_ / "net/tcp");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<ta::process::detail::SocketEntry> out;
  ta::process::detail::DumpStats stats;
  ta::process::detail::parse_proc_net(text, Protocol::tcp, false, out, 100, stats);
  EXPECT_EQ(stats.malformed, 3U);
  ASSERT_EQ(out.size(), 6U);
  EXPECT_EQ(out[0].local, *IpAddress::parse("127.0.0.1"));
  EXPECT_EQ(out[0].local_port, 8080);
  EXPECT_EQ(out[2].inode, 0U);
  EXPECT_EQ(out[3].remote, *IpAddress::parse("10.0.0.2"));
  EXPECT_EQ(out[3].remote_port, 54321);
  // The bound: two kept, the rest counted.
  out.clear();
  stats = {};
  ta::process::detail::parse_proc_net(text, Protocol::tcp, false, out, 2, stats);
  EXPECT_EQ(out.size(), 2U);
  EXPECT_EQ(stats.over_bound, 4U);
}

TEST_F(FakeProc, UnmappableFlowsAreNamed) {
  Mapper m(options());
  // TIME_WAIT (inode 0) and a port with no socket at all.
  EXPECT_EQ(m.lookup(flow(Protocol::tcp, "127.0.0.1", 50001, "127.0.0.1", 8080)).outcome,
            Outcome::no_socket);
  // A socket no process here holds.
  now_ += std::chrono::milliseconds(100);
  EXPECT_EQ(m.lookup(flow(Protocol::tcp, "127.0.0.1", 8081, "127.0.0.1", 1)).outcome,
            Outcome::other_namespace);
  // Not an address of this namespace: answered without a rescan.
  now_ += std::chrono::milliseconds(100);
  EXPECT_EQ(m.lookup(flow(Protocol::tcp, "203.0.113.9", 80, "198.51.100.1", 1)).outcome,
            Outcome::other_namespace);
  // A pipe:[1001] is not socket 1001, and UDP is not TCP.
  EXPECT_EQ(m.lookup(flow(Protocol::udp, "127.0.0.1", 8080, "127.0.0.1", 1)).outcome,
            Outcome::no_socket);
  const auto &c = m.counters();
  EXPECT_EQ(c.of(Outcome::no_socket), 2U);
  EXPECT_EQ(c.of(Outcome::other_namespace), 2U);
  EXPECT_EQ(c.rescans, 3U); // the first lookup, then one per unknown flow 100 ms apart
  EXPECT_FALSE(m.take_permission_warning().has_value());
}

TEST_F(FakeProc, RescansAreBoundedAndNewFlowsFoundAfterTheInterval) {
  Mapper m(options());
  const FlowKey late = flow(Protocol::tcp, "127.0.0.1", 50002, "127.0.0.1", 8080);
  EXPECT_EQ(m.lookup(late).outcome, Outcome::no_socket);
  // The flow's socket and process appear.
  std::ofstream(root_ / "net/tcp", std::ios::app)
      << line(9, "0100007F:C352", "0100007F:1F90", "01", "1011");
  process(700, "wget\n", {{"3", "socket:[1011]"}});
  for (int i = 0; i < 50; ++i) { // a burst within the interval: no rescans
    EXPECT_EQ(m.lookup(late).outcome, Outcome::deferred);
  }
  EXPECT_EQ(m.counters().rescans, 1U);
  now_ += std::chrono::milliseconds(99);
  EXPECT_EQ(m.lookup(late).outcome, Outcome::deferred);
  now_ += std::chrono::milliseconds(1);
  expect_mapped(m, late, 700, "wget");
  EXPECT_EQ(m.counters().rescans, 2U);
  EXPECT_EQ(m.counters().of(Outcome::deferred), 51U);
  // The process exits: the flow keeps its program, without a rescan.
  fs::remove_all(root_ / "700");
  now_ += std::chrono::seconds(5);
  expect_mapped(m, late, 700, "wget");
  EXPECT_EQ(m.counters().rescans, 2U);
}

TEST_F(FakeProc, RememberedFlowsAreBounded) {
  Options o = options();
  o.max_remembered = 2; // one per generation
  Mapper m(o);
  const FlowKey a = flow(Protocol::tcp, "127.0.0.1", 50000, "127.0.0.1", 8080);
  const FlowKey b = flow(Protocol::tcp, "127.0.0.1", 8082, "127.0.0.1", 1);
  const FlowKey c = flow(Protocol::tcp, "127.0.0.1", 8080, "127.0.0.1", 2);
  expect_mapped(m, a, 100, "curl");
  expect_mapped(m, b, 100, "curl");
  expect_mapped(m, c, 500, "srv");
  fs::remove_all(root_ / "100");
  ASSERT_TRUE(m.refresh().ok());
  // `b` is still remembered (the older generation); `a` was dropped with the
  // generation before: looked up afresh, its socket is now held by no process.
  expect_mapped(m, b, 100, "curl");
  now_ += std::chrono::milliseconds(100);
  EXPECT_EQ(m.lookup(a).outcome, Outcome::other_namespace);
}

TEST_F(FakeProc, UnreadableFdTablesAreNoPermissionAndReportedOnce) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to make a tree another user cannot read";
  }
  std::ofstream(root_ / "net/tcp", std::ios::app)
      << line(9, "0100007F:1F94", "00000000:0000", "0A", "1010"); // :8084 listen
  process(600, "secret\n", {{"3", "socket:[1010]"}});
  fs::permissions(root_ / "600" / "fd", fs::perms::owner_all);
  for (const char *d : {"100", "200", "300", "500", "400", "net"}) {
    fs::permissions(root_ / d,
                    fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) { // as nobody; gtest does not see this process: exit codes say
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(10);
    }
    Mapper m(options());
    if (m.lookup(flow(Protocol::tcp, "127.0.0.1", 8084, "127.0.0.1", 1)).outcome !=
        Outcome::no_permission) {
      ::_exit(11);
    }
    if (m.lookup(flow(Protocol::tcp, "127.0.0.1", 50000, "127.0.0.1", 8080)).outcome !=
        Outcome::mapped) {
      ::_exit(12); // the readable processes are still mapped
    }
    const auto w = m.take_permission_warning();
    if (!w || w->code() != ta::StatusCode::permission_denied ||
        w->message().find("CAP_SYS_PTRACE") == std::string::npos) {
      ::_exit(13);
    }
    if (m.take_permission_warning().has_value() || m.counters().unreadable_pids != 1) {
      ::_exit(14);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

} // namespace
