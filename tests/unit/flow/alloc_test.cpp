// The per-packet path must not allocate in steady state: packets of decided
// flows, and flows that come and go once the pools have grown (their naming
// state, held-packet records and entries are reused). Counts calls to the
// (replaced, binary-wide) global operator new.
#include <atomic>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "ta/testing/alloc_counter.hpp"

#include "test_util.hpp"

namespace ta::flow {
namespace {

std::size_t news() {
  return ta::testing::allocations();
}

// A TLS connection from client port `port`: handshake, the real ClientHello,
// data both ways, FIN from both ends. Packets are built before counting.
std::vector<test::Pkt> connection(std::uint16_t port, const std::vector<std::byte> &hello) {
  const std::uint32_t isn = 1000;
  std::vector<test::Pkt> v;
  v.push_back(test::tcp("10.0.0.1", port, "1.1.1.1", 443, kSyn, isn));
  v.push_back(test::tcp("1.1.1.1", 443, "10.0.0.1", port, kSyn | kAck, 9));
  v.push_back(test::tcp("10.0.0.1", port, "1.1.1.1", 443, kAck, isn + 1));
  v.push_back(test::tcp("10.0.0.1", port, "1.1.1.1", 443, kAck, isn + 1, hello));
  for (int i = 0; i < 4; ++i) {
    v.push_back(test::tcp("1.1.1.1", 443, "10.0.0.1", port, kAck, 10, test::bytes("data")));
  }
  v.push_back(test::tcp("10.0.0.1", port, "1.1.1.1", 443, kFin | kAck, 5000));
  v.push_back(test::tcp("1.1.1.1", 443, "10.0.0.1", port, kFin | kAck, 20));
  return v;
}

struct Counting {
  std::uint64_t emitted = 0;
  std::unique_ptr<Table> table;
  explicit Counting(Options o) {
    table = std::make_unique<Table>(
        o, [](const IpAddress &, const IpAddress &) { return std::optional<std::string_view>(); },
        [this](const Emitted &) { ++emitted; });
  }
};

TEST(NoAllocation, SteadyStateFlowChurnWithRealParsers) {
  Options o;
  o.idle_timeout_us = 1000; // ended flows leave quickly, their entries are reused
  Counting c(o);
  const auto hello = test::chrome_client_hello();
  std::vector<std::vector<test::Pkt>> conns;
  for (std::uint16_t i = 0; i < 64; ++i) {
    conns.push_back(connection(static_cast<std::uint16_t>(40000 + i), hello));
  }
  TimeUs now = 0;
  std::uint64_t frame = 0;
  auto run = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      for (auto &k : conns[i]) {
        k.p.ts = ++now;
        k.p.frame = frame++;
        c.table->on_packet(k.p);
      }
      now += 2000; // past the idle timeout: the previous flows are swept
    }
  };
  run(0, 8); // warm-up grows the pools
  const std::size_t before = news();
  run(8, 64);
  EXPECT_EQ(news(), before);
  EXPECT_EQ(c.emitted, 64U * 10U);
  EXPECT_EQ(c.table->stats().decided(store::NameSource::sni), 64U);
}

} // namespace
} // namespace ta::flow
