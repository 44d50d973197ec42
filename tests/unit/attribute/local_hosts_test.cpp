// The learnt local-host set (README "What is counted", --max-local-hosts):
// bounded, least recently active host forgotten first, evictions counted. A
// flood of DNS responses to other hosts must not make an active client's
// traffic uncounted, under either naming.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/attribute/analyzer.hpp"

#include "test_util.hpp"

namespace ta::attribute {
namespace {

using namespace test; // NOLINT(google-build-using-namespace)

struct Harness {
  std::vector<store::Batch> batches;
  Analyzer analyzer;
  std::uint64_t index = 0;

  explicit Harness(Options o)
      : analyzer(std::move(o), [this](store::Batch &b) {
          batches.push_back(b);
          b.clear();
        }) {
    analyzer.begin_source(1, 0);
  }
  void feed(const Frame &f) {
    const std::uint64_t i = index++;
    analyzer.on_frame(decode::LinkType::ethernet, i, 1'000'000 + static_cast<TimeUs>(i),
                      Bytes(f.data(), f.size()));
  }
  // A DNS response from the resolver to `host`.
  void respond_to(const std::string &host) {
    feed(ipv4("192.0.2.53", host.c_str(), 17, 53, 5353, dns_response("a.test", {"198.51.100.7"})));
  }
  [[nodiscard]] std::uint64_t outcome(Outcome o) const { return analyzer.stats().outcome(o); }
};

// 10.1.x.y for i in [0, 5000): hosts that are not the client.
std::string flood_host(int i) {
  return "10.1." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
}

Options with(Naming naming, std::size_t capacity = 4096) {
  Options o;
  o.naming = naming;
  o.local_hosts_capacity = capacity;
  return o;
}

TEST(LocalHosts, LeastRecentlyActiveGoesNotOldestLearnt) {
  Harness h(with(Naming::dns, 2));
  h.respond_to("10.0.0.1"); // learnt first
  h.respond_to("10.0.0.2");
  h.feed(ipv4("10.0.0.1", "198.51.100.7", 6, 40000, 443, kNoPayload)); // 10.0.0.1 is active
  h.respond_to("10.0.0.3"); // over the bound: 10.0.0.2 (idle) goes
  EXPECT_EQ(h.analyzer.stats().local_hosts_evicted, 1U);
  EXPECT_EQ(h.analyzer.local_host_count(), 2U);
  h.feed(ipv4("10.0.0.1", "198.51.100.7", 6, 40000, 443, kNoPayload));
  h.feed(ipv4("10.0.0.3", "198.51.100.7", 6, 40001, 443, kNoPayload));
  h.feed(ipv4("10.0.0.2", "198.51.100.7", 6, 40002, 443, kNoPayload));
  EXPECT_EQ(h.outcome(Outcome::counted), 3U); // 10.0.0.1 twice, 10.0.0.3
  EXPECT_EQ(h.outcome(Outcome::not_outbound), 1U);
}

TEST(LocalHosts, ReceivingAResponseIsActivity) {
  Harness h(with(Naming::dns, 2));
  h.respond_to("10.0.0.1");
  h.respond_to("10.0.0.2");
  h.respond_to("10.0.0.1"); // refreshed: 10.0.0.2 is now the least recent
  h.respond_to("10.0.0.3");
  h.feed(ipv4("10.0.0.1", "198.51.100.7", 6, 40000, 443, kNoPayload));
  h.feed(ipv4("10.0.0.2", "198.51.100.7", 6, 40002, 443, kNoPayload));
  EXPECT_EQ(h.outcome(Outcome::counted), 1U);
  EXPECT_EQ(h.outcome(Outcome::not_outbound), 1U);
  EXPECT_EQ(h.analyzer.stats().local_hosts_learnt, 3U);
  EXPECT_EQ(h.analyzer.stats().local_hosts_evicted, 1U);
}

// The flood: 5,000 responses addressed to other hosts at the default bound
// (4,096) while the real client keeps sending; an idle host learnt before the
// flood is forgotten.
TEST(LocalHosts, SpoofedFloodKeepsTheActiveClientDnsNaming) {
  Harness h(with(Naming::dns));
  h.respond_to("10.0.0.9"); // idle from now on
  h.respond_to("10.0.0.2");
  for (int i = 0; i < 5000; ++i) {
    h.respond_to(flood_host(i));
    if (i % 100 == 0) {
      h.feed(ipv4("10.0.0.2", "198.51.100.7", 6, 40000, 443, kNoPayload));
    }
  }
  const std::uint64_t during = h.outcome(Outcome::counted);
  EXPECT_EQ(during, 50U);
  h.feed(ipv4("10.0.0.2", "198.51.100.7", 6, 40000, 443, kNoPayload));
  h.feed(ipv4("10.0.0.9", "198.51.100.7", 6, 40000, 443, kNoPayload));
  EXPECT_EQ(h.outcome(Outcome::counted), during + 1);
  EXPECT_EQ(h.outcome(Outcome::not_outbound), 1U); // the idle host
  // 5,002 hosts learnt, 4,096 kept.
  EXPECT_EQ(h.analyzer.stats().local_hosts_learnt, 5002U);
  EXPECT_EQ(h.analyzer.stats().local_hosts_evicted, 906U);
  EXPECT_EQ(h.analyzer.local_host_count(), 4096U);
  EXPECT_EQ(h.analyzer.stats().local_hosts, 4096U);
}

// Under flow naming the client's side of a flow depends on it being local:
// UDP from the client's port 100 to a server's port 40000 has the client as
// its endpoint by the port rule when neither end is local. The client keeps
// sending on a running flow through the flood, then starts a new one.
TEST(LocalHosts, SpoofedFloodKeepsTheActiveClientFlowNaming) {
  Harness h(with(Naming::flow));
  h.respond_to("10.0.0.9"); // idle from now on
  h.respond_to("10.0.0.2");
  for (int i = 0; i < 5000; ++i) {
    h.respond_to(flood_host(i));
    if (i % 100 == 0) {
      h.feed(ipv4("10.0.0.2", "198.51.100.7", 6, 40000, 443, kNoPayload));
    }
  }
  h.feed(ipv4("10.0.0.2", "198.51.100.7", 17, 100, 40000, Frame(10)));
  h.feed(ipv4("10.0.0.9", "198.51.100.7", 17, 100, 40001, Frame(10)));
  h.analyzer.end_source(true);
  int sent_to_server = 0;
  int received_from_idle = 0;
  for (const auto &b : h.batches) {
    for (const auto &p : b.packets) {
      if (p.protocol != 17) {
        continue;
      }
      const auto &f = b.flows[p.flow];
      if (f.endpoint_port == 40000 && p.direction == store::Direction::sent) {
        ++sent_to_server; // the client is local: the server is the endpoint
      }
      if (f.endpoint_port == 100 && p.direction == store::Direction::received) {
        ++received_from_idle; // neither end local: the lower port is the endpoint
      }
    }
  }
  EXPECT_EQ(sent_to_server, 1);
  EXPECT_EQ(received_from_idle, 1);
  EXPECT_EQ(h.analyzer.stats().local_hosts_evicted, 906U);
}

} // namespace
} // namespace ta::attribute
