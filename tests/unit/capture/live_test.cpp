#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "ta/capture/live.hpp"

#include "test_util.hpp"

namespace ta::capture {
namespace {

using namespace std::chrono_literals;
using test::one_line;
using SteadyClock = std::chrono::steady_clock;

#define TA_REQUIRE_ROOT()                                                                          \
  do {                                                                                             \
    if (::geteuid() != 0) {                                                                        \
      GTEST_SKIP() << "live capture needs root (or cap_net_raw,cap_net_admin)";                    \
    }                                                                                              \
  } while (false)

// ---- default_filter / check_filter (no privileges needed) ------------------

TEST(DefaultFilter, ListsPortsAndDnsWithoutDirection) {
  EXPECT_EQ(LiveCapture::default_filter({}), "");
  EXPECT_EQ(LiveCapture::default_filter({443}), "port 443 or port 53");
  EXPECT_EQ(LiveCapture::default_filter({80, 443, 80}), "port 80 or port 443 or port 53");
  EXPECT_EQ(LiveCapture::default_filter({53, 80}), "port 53 or port 80");
}

std::vector<std::vector<std::uint16_t>> port_lists() {
  std::vector<std::uint16_t> many;
  for (std::uint16_t p = 8000; p < 8064; ++p) {
    many.push_back(p);
  }
  return {{}, {443}, {80, 443}, {53}, {0, 65535}, {22, 80, 443, 8080, 8443}, many};
}

TEST(DefaultFilter, PcapCompilesItOnCookedAndEthernet) {
  for (const auto &ports : port_lists()) {
    const std::string filter = LiveCapture::default_filter(ports);
    for (const int dlt : {DLT_LINUX_SLL2, DLT_LINUX_SLL, DLT_EN10MB}) {
      pcap_t *p = pcap_open_dead(dlt, 262144);
      ASSERT_NE(p, nullptr);
      bpf_program prog{};
      EXPECT_EQ(pcap_compile(p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0)
          << "dlt " << dlt << ": " << filter << ": " << pcap_geterr(p);
      pcap_freecode(&prog);
      pcap_close(p);
      const ta::Status st = LiveCapture::check_filter(filter, static_cast<std::uint32_t>(dlt));
      EXPECT_TRUE(st.ok()) << st.message();
    }
  }
}

TEST(CheckFilter, RejectsGarbageWithOneLine) {
  const ta::Status st = LiveCapture::check_filter("port banana", 276);
  EXPECT_TRUE(st.is_invalid_argument()) << st.message();
  EXPECT_TRUE(one_line(st.message())) << st.message();
  EXPECT_NE(st.message().find("port banana"), std::string::npos) << st.message();
}

// An SLL2 frame: protocol, reserved, ifindex, hatype, packet type, halen,
// address[8], then IPv4 + a TCP or UDP header.
std::vector<u_char> sll2_frame(std::uint8_t packet_type, std::uint8_t ip_proto, std::uint16_t sport,
                               std::uint16_t dport) {
  const std::size_t l4_len = ip_proto == 6 ? 20 : 8;
  std::vector<u_char> f(20 + 20 + l4_len, 0);
  f[0] = 0x08; // protocol IPv4
  f[7] = 2;    // ifindex
  f[9] = 1;    // hatype Ethernet
  f[10] = packet_type;
  f[11] = 6;
  u_char *ip = &f[20];
  ip[0] = 0x45;
  ip[3] = static_cast<u_char>(20 + l4_len);
  ip[8] = 64;
  ip[9] = ip_proto;
  const std::array<u_char, 8> addrs = {10, 0, 0, 1, 93, 184, 216, 34};
  std::copy(addrs.begin(), addrs.end(), ip + 12);
  u_char *l4 = ip + 20;
  l4[0] = static_cast<u_char>(sport >> 8U);
  l4[1] = static_cast<u_char>(sport & 0xffU);
  l4[2] = static_cast<u_char>(dport >> 8U);
  l4[3] = static_cast<u_char>(dport & 0xffU);
  if (ip_proto == 6) {
    l4[12] = 0x50; // data offset 5
  }
  return f;
}

TEST(DefaultFilter, MeansThePortsOrDns) {
  constexpr std::uint8_t kHost = 0;
  constexpr std::uint8_t kOutgoing = 4;
  constexpr std::uint8_t kTcp = 6;
  constexpr std::uint8_t kUdp = 17;
  pcap_t *p = pcap_open_dead(DLT_LINUX_SLL2, 262144);
  ASSERT_NE(p, nullptr);
  bpf_program prog{};
  ASSERT_EQ(
      pcap_compile(p, &prog, LiveCapture::default_filter({443}).c_str(), 1, PCAP_NETMASK_UNKNOWN),
      0);
  auto matches = [&prog](const std::vector<u_char> &frame) {
    pcap_pkthdr hdr{};
    hdr.caplen = static_cast<bpf_u_int32>(frame.size());
    hdr.len = hdr.caplen;
    return pcap_offline_filter(&prog, &hdr, frame.data()) != 0;
  };
  EXPECT_TRUE(matches(sll2_frame(kOutgoing, kTcp, 40000, 443)));
  EXPECT_FALSE(matches(sll2_frame(kOutgoing, kTcp, 40000, 80)));
  EXPECT_TRUE(matches(sll2_frame(kHost, kTcp, 443, 40000))); // the reply: the analyzer skips it
  EXPECT_TRUE(matches(sll2_frame(kHost, kUdp, 53, 40000)));  // DNS answer
  EXPECT_TRUE(matches(sll2_frame(kHost, kTcp, 53, 40000)));  // DNS over TCP
  EXPECT_FALSE(matches(sll2_frame(kHost, kUdp, 123, 40000)));
  pcap_freecode(&prog);
  pcap_close(p);
}

// ---- live capture on loopback (root) ----------------------------------------

// Sends UDP datagrams to 127.0.0.1:port; payloads carry a nonce so that
// traffic of a concurrently running test is not counted.
class LoopbackSender {
public:
  explicit LoopbackSender(std::uint16_t port) : port_(port) {
    nonce_ = "ta-live-" + std::to_string(::getpid()) + "-" + std::to_string(port) + "-" +
             std::to_string(SteadyClock::now().time_since_epoch().count());
    send_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    // A receiver keeps the kernel from answering with ICMP port unreachable.
    recv_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const sockaddr_in addr = address();
    if (::bind(recv_fd_, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
      ::close(recv_fd_);
      recv_fd_ = -1;
    }
  }
  ~LoopbackSender() {
    ::close(send_fd_);
    if (recv_fd_ >= 0) {
      ::close(recv_fd_);
    }
  }
  LoopbackSender(const LoopbackSender &) = delete;
  LoopbackSender &operator=(const LoopbackSender &) = delete;

  bool send(int count) const {
    const sockaddr_in addr = address();
    for (int i = 0; i < count; ++i) {
      const std::string payload = nonce_ + "#" + std::to_string(i);
      if (::sendto(send_fd_, payload.data(), payload.size(), 0,
                   reinterpret_cast<const sockaddr *>(&addr), sizeof addr) < 0) {
        return false;
      }
    }
    return true;
  }

  [[nodiscard]] bool carries_nonce(const Frame &frame) const {
    const auto *begin = reinterpret_cast<const char *>(frame.data.data());
    const char *end = begin + frame.data.size();
    return std::search(begin, end, nonce_.begin(), nonce_.end()) != end;
  }

private:
  [[nodiscard]] sockaddr_in address() const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }
  std::uint16_t port_;
  std::string nonce_;
  int send_fd_ = -1;
  int recv_fd_ = -1;
};

// Polls until `want` frames per interface carried the sender's nonce or
// 5 s passed. Returns the counts per interface.
std::vector<int> poll_until(LiveCapture &cap, const LoopbackSender &sender, int want,
                            const std::function<void(std::size_t, const Frame &)> &check = {}) {
  std::vector<int> seen(cap.interface_count(), 0);
  const auto deadline = SteadyClock::now() + 5s;
  while (SteadyClock::now() < deadline &&
         std::any_of(seen.begin(), seen.end(), [want](int n) { return n < want; })) {
    const int rc = cap.poll_once(100, [&](std::size_t index, const Frame &frame) {
      if (sender.carries_nonce(frame)) {
        ++seen.at(index);
        if (check) {
          check(index, frame);
        }
      }
    });
    if (rc < 0) {
      ADD_FAILURE() << cap.error();
      break;
    }
  }
  return seen;
}

TEST(LiveCapture, LoopbackSeesEveryDatagram) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"lo"};
  options.filter = "udp port 45999";
  auto opened = LiveCapture::open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  ASSERT_EQ(cap->interface_count(), 1U);
  EXPECT_EQ(cap->interface_name(0), "lo");
  // Cooked when libpcap grants it; libpcap 1.10 keeps lo at Ethernet (1)
  // and grants SLL/SLL2 only on "any" (see AnyGivesCookedFrames).
  const std::uint32_t lt = cap->link_type(0);
  EXPECT_TRUE(lt == 276 || lt == 113 || lt == 1) << lt;

  const LoopbackSender sender(45999);
  const auto before_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  ASSERT_TRUE(sender.send(50));
  const auto seen = poll_until(*cap, sender, 50, [&](std::size_t index, const Frame &frame) {
    EXPECT_EQ(index, 0U);
    EXPECT_GE(frame.ts_us, before_us - 1'000'000);
    EXPECT_GE(frame.wire_length, frame.data.size());
  });
  EXPECT_EQ(seen[0], 50);

  const auto stats = cap->stats();
  ASSERT_EQ(stats.size(), 1U);
  EXPECT_EQ(stats[0].name, "lo");
  EXPECT_EQ(stats[0].link_type, lt);
  EXPECT_GE(stats[0].received, 50U);
  EXPECT_EQ(stats[0].dropped, 0U);
}

TEST(LiveCapture, ImmediateModeDeliversEveryFrameGivenRoom) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"lo"};
  options.filter = "udp port 45993";
  options.immediate = true;
  // TPACKET_V2: one slot per frame sized for lo's 64 KiB MTU, and on lo
  // every packet takes two slots: 16 MiB holds 128 packets.
  options.buffer_bytes = 16U << 20U;
  auto opened = LiveCapture::open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  const LoopbackSender sender(45993);
  ASSERT_TRUE(sender.send(50));
  const auto seen = poll_until(*cap, sender, 50);
  EXPECT_EQ(seen[0], 50);
  EXPECT_EQ(cap->stats()[0].dropped, 0U);
}

TEST(LiveCapture, RingOverflowIsCountedAsDropped) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"lo"};
  options.filter = "udp port 45992";
  options.immediate = true; // fixed-size slots: a small ring overflows for sure
  options.buffer_bytes = 1U << 20U;
  auto opened = LiveCapture::open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  const LoopbackSender sender(45992);
  ASSERT_TRUE(sender.send(3000));
  int seen = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_GE(
        cap->poll_once(20, [&](std::size_t, const Frame &f) { seen += sender.carries_nonce(f); }),
        0)
        << cap->error();
  }
  const auto stats = cap->stats();
  EXPECT_LT(seen, 3000);
  EXPECT_GT(stats[0].dropped, 0U);
  EXPECT_GE(stats[0].received, 3000U);
}

TEST(LiveCapture, AnyGivesCookedFramesWithInterfaceAndType) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"any"};
  options.filter = "udp port 45998 and host 127.0.0.1";
  auto opened = LiveCapture::open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  const std::uint32_t lt = cap->link_type(0);
  ASSERT_TRUE(lt == 276 || lt == 113) << lt;

  const LoopbackSender sender(45998);
  ASSERT_TRUE(sender.send(10));
  const unsigned lo_index = ::if_nametoindex("lo");
  const auto seen = poll_until(*cap, sender, 10, [&](std::size_t, const Frame &frame) {
    const auto *d = reinterpret_cast<const unsigned char *>(frame.data.data());
    ASSERT_GE(frame.data.size(), 20U);
    if (lt == 276) {
      EXPECT_EQ(d[0], 0x08); // protocol IPv4
      EXPECT_EQ(d[1], 0x00);
      const unsigned ifindex =
          (unsigned{d[4]} << 24U) | (unsigned{d[5]} << 16U) | (unsigned{d[6]} << 8U) | d[7];
      EXPECT_EQ(ifindex, lo_index);
      EXPECT_LE(d[10], 4); // a Linux packet type (host .. outgoing)
    }
  });
  EXPECT_GE(seen[0], 10);
}

TEST(LiveCapture, SeveralInterfacesAreMultiplexed) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"lo", "any"};
  options.filter = "udp port 45997";
  auto opened = LiveCapture::open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  ASSERT_EQ(cap->interface_count(), 2U);
  EXPECT_EQ(cap->interface_name(1), "any");
  const LoopbackSender sender(45997);
  ASSERT_TRUE(sender.send(20));
  const auto seen = poll_until(*cap, sender, 20);
  EXPECT_EQ(seen[0], 20);
  EXPECT_EQ(seen[1], 20);
  const auto stats = cap->stats();
  ASSERT_EQ(stats.size(), 2U);
  EXPECT_GE(stats[0].received, 20U);
  EXPECT_GE(stats[1].received, 20U);
}

ta::Result<std::unique_ptr<LiveCapture>> quiet_capture() {
  LiveOptions options;
  options.interfaces = {"lo"};
  options.filter = "udp port 45996";
  return LiveCapture::open(options);
}

// poll_once(-1) on a thread of its own (SIGUSR1 blocked there): no timeout,
// so only an event ends it. `trigger` runs once the poller is about to
// poll. The poll's result, or nothing when no event ended it within the
// bound, which only a lost wake-up reaches; then datagrams to `port` end the
// poll, so the test fails instead of hanging.
std::optional<int> poll_until_event(LiveCapture &cap, std::uint16_t port,
                                    const std::function<void()> &trigger) {
  std::promise<int> result;
  std::future<int> done = result.get_future();
  std::atomic<bool> polling{false};
  std::thread poller([&] {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, nullptr);
    polling = true;
    result.set_value(cap.poll_once(-1, [](std::size_t, const Frame &) {}));
  });
  while (!polling) {
    std::this_thread::yield();
  }
  trigger();
  std::optional<int> rc;
  if (done.wait_for(60s) == std::future_status::ready) {
    rc = done.get();
  } else {
    const LoopbackSender sender(port);
    while (done.wait_for(50ms) != std::future_status::ready) {
      (void)sender.send(1);
    }
  }
  poller.join();
  return rc;
}

TEST(LiveCapture, WakeEndsAWaitFromAnotherThread) {
  TA_REQUIRE_ROOT();
  auto opened = quiet_capture();
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  const auto rc = poll_until_event(*cap, 45996, [&cap] { cap->wake(); });
  ASSERT_TRUE(rc.has_value()) << "wake() did not end the wait";
  EXPECT_EQ(*rc, 0); // no frame: the wake-up ended it
}

TEST(LiveCapture, WakeBeforePollIsNotLostAndDoesNotAccumulate) {
  TA_REQUIRE_ROOT();
  auto opened = quiet_capture();
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  cap->wake();
  cap->wake();
  cap->wake();
  const auto rc = poll_until_event(*cap, 45996, [] {});
  ASSERT_TRUE(rc.has_value()) << "the wake-ups before the poll were lost";
  EXPECT_EQ(*rc, 0);
  // All three were consumed by that poll: the next one is ended by a frame,
  // not by a wake-up left over (which would end it at once, with 0 frames).
  const LoopbackSender sender(45996);
  std::promise<int> result;
  std::future<int> done = result.get_future();
  std::thread poller(
      [&] { result.set_value(cap->poll_once(-1, [](std::size_t, const Frame &) {})); });
  const auto bound = SteadyClock::now() + 60s;
  while (done.wait_for(50ms) != std::future_status::ready && SteadyClock::now() < bound) {
    ASSERT_TRUE(sender.send(1));
  }
  while (done.wait_for(50ms) != std::future_status::ready) {
    (void)sender.send(1); // past the bound: end the poll, the check below fails
  }
  poller.join();
  EXPECT_GT(done.get(), 0);
}

LiveCapture *g_signal_capture = nullptr;
void wake_on_signal(int /*signo*/) {
  g_signal_capture->wake();
}

TEST(LiveCapture, WakeFromASignalHandler) {
  TA_REQUIRE_ROOT();
  auto opened = quiet_capture();
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  g_signal_capture = cap.get();
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_handler = &wake_on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; // poll() is never restarted anyway; the eventfd matters
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  // The poller blocks SIGUSR1, so the handler runs on this thread and only
  // its wake() (not an interrupted poll) can end the wait.
  const auto rc = poll_until_event(*cap, 45996, [] { ::kill(::getpid(), SIGUSR1); });
  ::sigaction(SIGUSR1, &old, nullptr);
  g_signal_capture = nullptr;
  ASSERT_TRUE(rc.has_value()) << "the handler's wake() did not end the wait";
  EXPECT_EQ(*rc, 0);
}

TEST(LiveCapture, ThrowingHandlerBecomesAnError) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"lo"};
  options.filter = "udp port 45995";
  auto opened = LiveCapture::open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  const LoopbackSender sender(45995);
  ASSERT_TRUE(sender.send(3));
  int rc = 0;
  const auto deadline = SteadyClock::now() + 5s;
  while (rc == 0 && SteadyClock::now() < deadline) {
    rc = cap->poll_once(100, [](std::size_t, const Frame &) { throw std::runtime_error("boom"); });
  }
  EXPECT_EQ(rc, -1);
  EXPECT_TRUE(one_line(cap->error())) << cap->error();
  EXPECT_NE(cap->error().find("lo: frame handler failed: boom"), std::string::npos) << cap->error();
}

TEST(LiveCapture, UnknownInterfaceIsNamedInOneLine) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"lo", "no-such-if0"};
  const auto opened = LiveCapture::open(options);
  ASSERT_FALSE(opened.ok());
  const std::string &error = opened.status().message();
  EXPECT_EQ(opened.status().code(), ta::StatusCode::not_found);
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_EQ(error, "no-such-if0: no such interface (see `ip link`)");
}

TEST(LiveCapture, BadFilterIsNamedInOneLine) {
  TA_REQUIRE_ROOT();
  LiveOptions options;
  options.interfaces = {"lo"};
  options.filter = "udp port banana";
  const auto opened = LiveCapture::open(options);
  ASSERT_FALSE(opened.ok());
  const std::string &error = opened.status().message();
  EXPECT_EQ(opened.status().code(), ta::StatusCode::invalid_argument);
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_EQ(error.rfind("lo: bad capture filter \"udp port banana\"", 0), 0U) << error;
}

TEST(LiveCapture, NoInterfaceIsAnError) {
  const auto opened = LiveCapture::open(LiveOptions{});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), ta::StatusCode::invalid_argument);
  EXPECT_TRUE(one_line(opened.status().message())) << opened.status().message();
}

// ---- interface going down / away (own network namespace) ----------------

// Whether a forked child can make a veth pair in a fresh network namespace
// (root with CAP_SYS_ADMIN and iproute2). Nothing is visible outside it.
bool can_make_veth_in_own_netns() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) {
      std::_Exit(1);
    }
    std::_Exit(std::system("ip link add ta-v0 type veth peer name ta-v1 >/dev/null 2>&1") == 0 ? 0
                                                                                               : 1);
  }
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

[[noreturn]] void watch_interface_go_down_up_and_away() {
  auto fail = [](const std::string &why) {
    std::fprintf(stderr, "FAIL: %s\n", why.c_str());
    std::_Exit(1);
  };
  auto ip = [&fail](const char *command) {
    if (std::system(command) != 0) {
      fail(command);
    }
  };
  if (::unshare(CLONE_NEWNET) != 0) {
    fail("unshare");
  }
  ip("ip link add ta-v0 type veth peer name ta-v1 && ip link set ta-v1 up && "
     "ip link set ta-v0 up");
  LiveOptions options;
  options.interfaces = {"ta-v0"};
  auto opened = LiveCapture::open(options);
  if (!opened) {
    fail(opened.status().message());
  }
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  // Polls until stats().up == want or poll_once fails; false on timeout.
  auto poll_for = [&cap](bool want) {
    const auto deadline = SteadyClock::now() + 3s;
    while (SteadyClock::now() < deadline) {
      if (cap->poll_once(100, [](std::size_t, const Frame &) {}) < 0) {
        return false;
      }
      if (cap->stats()[0].up == want) {
        return true;
      }
    }
    return false;
  };
  ip("ip link set ta-v0 down");
  if (!poll_for(false)) {
    fail("down not noticed: " + cap->error());
  }
  ip("ip link set ta-v0 up");
  if (!poll_for(true)) {
    fail("up not noticed: " + cap->error());
  }
  // Removal while down raises nothing on the socket; only the re-check sees it.
  ip("ip link set ta-v0 down");
  if (!poll_for(false)) {
    fail("second down not noticed: " + cap->error());
  }
  ip("ip link del ta-v0");
  const auto deadline = SteadyClock::now() + 3s;
  while (SteadyClock::now() < deadline) {
    if (cap->poll_once(100, [](std::size_t, const Frame &) {}) < 0) {
      std::fprintf(stderr, "%s\n", cap->error().c_str());
      std::_Exit(0);
    }
  }
  fail("removal not noticed");
  std::_Exit(1);
}

TEST(LiveCaptureDeathTest, InterfaceDownIsReportedAndRemovalIsAnError) {
  TA_REQUIRE_ROOT();
  if (!can_make_veth_in_own_netns()) {
    GTEST_SKIP() << "cannot create a veth pair in a private network namespace";
  }
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(watch_interface_go_down_up_and_away(), ::testing::ExitedWithCode(0),
              // libpcap may see the removal first ("The interface disappeared"),
              // or our own check does ("interface disappeared; capture stopped").
              "ta-v0: .*[Ii]nterface disappeared.*restart");
}

// ---- drop_privileges ---------------------------------------------------------

TEST(DropPrivileges, UnknownUserIsRefusedWithoutChangingAnything) {
  const uid_t before = ::geteuid();
  const ta::Status st = drop_privileges("no-such-user-ta");
  const std::string &error = st.message();
  EXPECT_EQ(st.code(), ta::StatusCode::not_found) << error;
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("no-such-user-ta"), std::string::npos) << error;
  EXPECT_EQ(::geteuid(), before);
}

TEST(DropPrivileges, RootIsNotAnUnprivilegedUser) {
  const ta::Status st = drop_privileges("root");
  EXPECT_EQ(st.code(), ta::StatusCode::invalid_argument) << st.message();
  EXPECT_TRUE(one_line(st.message())) << st.message();
}

// In a forked child (the switch cannot be undone): an open capture keeps
// working after the switch, a new one is refused with the hint.
[[noreturn]] void drop_then_capture() {
  auto fail = [](const std::string &why) {
    std::fprintf(stderr, "FAIL: %s\n", why.c_str());
    std::_Exit(1);
  };
  LiveOptions options;
  options.interfaces = {"lo"};
  options.filter = "udp port 45994";
  auto opened = LiveCapture::open(options);
  if (!opened) {
    fail(opened.status().message());
  }
  const std::unique_ptr<LiveCapture> cap = std::move(opened).value();
  if (const ta::Status st = drop_privileges("nobody"); !st) {
    fail(st.message());
  }
  if (::getuid() != 65534 || ::geteuid() != 65534 || ::setuid(0) == 0) {
    fail("still privileged");
  }
  const LoopbackSender sender(45994);
  if (!sender.send(5)) {
    fail("send");
  }
  int seen = 0;
  const auto deadline = SteadyClock::now() + 5s;
  while (seen < 5 && SteadyClock::now() < deadline) {
    if (cap->poll_once(100, [&](std::size_t, const Frame &f) { seen += sender.carries_nonce(f); }) <
        0) {
      fail(cap->error());
    }
  }
  if (seen != 5) {
    fail("open capture stopped working after the switch");
  }
  const auto again = LiveCapture::open(options);
  if (again.ok()) {
    fail("a new capture could be opened");
  }
  std::fprintf(stderr, "%s\n", again.status().message().c_str());
  std::_Exit(0);
}

TEST(DropPrivilegesDeathTest, OpenCapturesSurviveNewOnesAreRefused) {
  TA_REQUIRE_ROOT();
  if (::getpwnam("nobody") == nullptr) {
    GTEST_SKIP() << "no user nobody";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(drop_then_capture(), ::testing::ExitedWithCode(0),
              "lo: permission denied: run as root or grant the binary cap_net_raw,cap_net_admin "
              "\\(setcap cap_net_raw,cap_net_admin\\+eip .*\\)");
}

} // namespace
} // namespace ta::capture
