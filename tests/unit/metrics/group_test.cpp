// Per-domain series (Group::domain): hosts of one registrable domain share a
// series holding their sum, under the Public Suffix List's rules (co.uk is a
// suffix, github.io a private one); unresolved traffic and IP literals keep
// their own series; max_endpoints bounds the domains.
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/metrics/metrics.hpp"

namespace ta::metrics {
namespace {

std::unique_ptr<Metrics> make(Group group, std::size_t max_endpoints = 1000, bool legacy = false) {
  Options o;
  o.listen = "";
  o.tick_thread = false;
  o.group = group;
  o.max_endpoints = max_endpoints;
  o.legacy_names = legacy;
  auto m = Metrics::open(o);
  EXPECT_TRUE(m) << m.status().message();
  return m ? std::move(m).value() : nullptr;
}

// `counts[i]` sent records of 100 bytes and `received[i]` received ones of 10
// bytes for endpoint name i.
store::Batch batch_of(const std::vector<std::string> &names, const std::vector<int> &counts,
                      const std::vector<int> &received = {}) {
  store::Batch b;
  b.endpoints = names;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const int in = i < received.size() ? received[i] : 0;
    for (int k = 0; k < counts[i] + in; ++k) {
      store::PacketRecord r;
      r.frame = b.packets.size();
      const bool sent = k < counts[i];
      r.bytes = sent ? 100 : 10;
      r.direction = sent ? store::Direction::sent : store::Direction::received;
      r.endpoint = static_cast<std::uint32_t>(i);
      b.packets.push_back(r);
    }
  }
  return b;
}

std::optional<double> value(const std::string &text, const std::string &series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

std::optional<double> packets(const std::string &text, const std::string &label) {
  return value(text, "traffic_endpoint_packets_total{endpoint=\"" + label + "\"}");
}

// Every endpoint label value of the packets family, in exposition order.
std::vector<std::string> labels(const std::string &text) {
  const std::string prefix = "traffic_endpoint_packets_total{endpoint=\"";
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) == 0) {
      out.push_back(line.substr(prefix.size(), line.find("\"}") - prefix.size()));
    }
  }
  return out;
}

TEST(MetricsGroup, TwoHostsOfOneDomainAreOneSeriesWithTheSum) {
  auto m = make(Group::domain);
  const auto b = batch_of({"www.example.com", "api.example.com"}, {3, 2}, {4, 1});
  m->on_batch_sealed(b);
  m->on_batch_written(b, 0.01);
  const std::string text = m->render();
  EXPECT_EQ(labels(text), std::vector<std::string>{"example.com"});
  EXPECT_EQ(packets(text, "example.com"), 5.0);
  EXPECT_EQ(value(text, "traffic_endpoint_bytes_total{endpoint=\"example.com\"}"), 500.0);
  EXPECT_EQ(value(text, "traffic_endpoint_received_packets_total{endpoint=\"example.com\"}"), 5.0);
  EXPECT_EQ(value(text, "traffic_endpoint_received_bytes_total{endpoint=\"example.com\"}"), 50.0);
  EXPECT_EQ(value(text, "traffic_endpoint_writes_total{endpoint=\"example.com\"}"), 5.0);
  // A later batch with one more host of the domain adds to the same series.
  m->on_batch_sealed(batch_of({"cdn.EXAMPLE.com."}, {7}));
  EXPECT_EQ(packets(m->render(), "example.com"), 12.0);
}

TEST(MetricsGroup, PublicSuffixRulesIcannAndPrivate) {
  auto m = make(Group::domain);
  m->on_batch_sealed(batch_of(
      {"a.example.co.uk", "b.example.co.uk", "x.github.io", "y.github.io", "deep.x.github.io"},
      {1, 2, 4, 8, 16}));
  const std::string text = m->render();
  EXPECT_EQ(packets(text, "example.co.uk"), 3.0); // co.uk is a public suffix
  EXPECT_EQ(packets(text, "x.github.io"), 20.0);  // github.io is a private suffix
  EXPECT_EQ(packets(text, "y.github.io"), 8.0);
  EXPECT_EQ(labels(text).size(), 3U) << text;
}

TEST(MetricsGroup, UnresolvedAndIpLiteralsStayAsTheyAre) {
  auto m = make(Group::domain);
  m->on_batch_sealed(
      batch_of({"", "192.0.2.7", "2001:db8::1", "localhost", "co.uk"}, {1, 2, 3, 4, 5}));
  const std::string text = m->render();
  EXPECT_EQ(packets(text, "(unresolved)"), 1.0);
  EXPECT_EQ(packets(text, "192.0.2.7"), 2.0);
  EXPECT_EQ(packets(text, "2001:db8::1"), 3.0);
  EXPECT_EQ(packets(text, "localhost"), 4.0); // a single label has no registrable domain
  EXPECT_EQ(packets(text, "co.uk"), 5.0);     // nor has a public suffix itself
}

TEST(MetricsGroup, MaxEndpointsBoundsDomains) {
  auto m = make(Group::domain, 2);
  m->on_batch_sealed(
      batch_of({"a.one.test", "b.one.test", "c.one.test", "x.two.test", "y.three.test"},
               {1, 1, 1, 10, 100}));
  const std::string text = m->render();
  EXPECT_EQ(packets(text, "one.test"), 3.0); // three hosts, one of the two series
  EXPECT_EQ(packets(text, "two.test"), 10.0);
  EXPECT_EQ(packets(text, "(other)"), 100.0);
  EXPECT_EQ(labels(text).size(), 3U) << text;
  // With the bound reached, a new host of a domain that has a series still
  // counts there; one of a new domain is (other).
  m->on_batch_sealed(batch_of({"new.two.test", "new.four.test"}, {5, 7}));
  const std::string after = m->render();
  EXPECT_EQ(packets(after, "two.test"), 15.0);
  EXPECT_EQ(packets(after, "(other)"), 107.0);
}

TEST(MetricsGroup, LegacyNamesFollowTheDomain) {
  auto m = make(Group::domain, 1000, true);
  const auto b = batch_of({"www.example.com", "api.example.com"}, {3, 2});
  m->on_batch_written(b, 0.01);
  const std::string text = m->render();
  EXPECT_EQ(value(text, "example_com_writes_total"), 5.0);
  EXPECT_EQ(value(text, "www_example_com_writes_total"), std::nullopt);
}

TEST(MetricsGroup, HostIsTheDefaultAndKeepsEveryName) {
  EXPECT_EQ(Options{}.group, Group::host);
  auto m = make(Group::host);
  m->on_batch_sealed(batch_of({"www.example.com", "api.example.com"}, {3, 2}));
  const std::string text = m->render();
  EXPECT_EQ(packets(text, "www.example.com"), 3.0);
  EXPECT_EQ(packets(text, "api.example.com"), 2.0);
  EXPECT_EQ(packets(text, "example.com"), std::nullopt);
}

} // namespace
} // namespace ta::metrics
