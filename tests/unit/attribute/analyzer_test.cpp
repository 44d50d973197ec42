// The attribution contract (README "What is counted"), frame by frame, on
// hand-built frames.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/attribute/analyzer.hpp"

#include "test_util.hpp"

namespace ta::attribute {
namespace {

using namespace test; // NOLINT(google-build-using-namespace)

// These tests pin DNS-only naming (`--naming dns`); flow naming has its own.
Options dns_naming(Options o) {
  o.naming = Naming::dns;
  return o;
}

struct Harness {
  std::vector<store::Batch> batches;
  Analyzer analyzer;
  std::uint64_t index = 0;

  explicit Harness(Options o = {})
      : analyzer(dns_naming(std::move(o)), [this](store::Batch &b) {
          batches.push_back(b);
          b.clear();
        }) {
    analyzer.begin_source(1, 0);
  }
  void feed(const Frame &f, TimeUs ts = 1'000'000) {
    analyzer.on_frame(decode::LinkType::ethernet, index++, ts, Bytes(f.data(), f.size()));
  }
  // endpoint name of every record, in order
  std::vector<std::string> finish() {
    analyzer.end_source(true);
    std::vector<std::string> out;
    for (const auto &b : batches) {
      for (const auto &p : b.packets) {
        out.push_back(b.endpoints[p.endpoint]);
      }
    }
    return out;
  }
};

TEST(Analyzer, DnsTeachesAndOutboundTrafficCounts) {
  Harness h;
  h.feed(ipv4("10.0.0.2", "198.51.100.7", 6, 40000, 80, kNoPayload)); // before any DNS: not local
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5353,
              dns_response("WWW.Example.COM", {"198.51.100.7", "198.51.100.8"})));
  h.feed(ipv4("10.0.0.2", "198.51.100.7", 6, 40000, 80, kNoPayload));
  h.feed(ipv4("10.0.0.2", "198.51.100.8", 17, 40001, 443, Frame(30)));
  h.feed(ipv4("10.0.0.2", "203.0.113.9", 6, 40002, 443, kNoPayload)); // never resolved
  h.feed(ipv4("198.51.100.7", "10.0.0.2", 6, 80, 40000, kNoPayload)); // inbound
  h.feed(ipv4("10.0.0.2", "10.0.0.1", 17, 5353, 53, Frame(20)));      // a DNS query
  const auto names = h.finish();
  EXPECT_EQ(names, (std::vector<std::string>{"www.example.com", "www.example.com", ""}));
  const Stats &s = h.analyzer.stats();
  EXPECT_EQ(s.frames, 7U);
  EXPECT_EQ(s.outcome(Outcome::counted), 3U);
  EXPECT_EQ(s.outcome(Outcome::not_outbound), 2U);
  EXPECT_EQ(s.outcome(Outcome::dns), 2U);
  EXPECT_EQ(s.unresolved, 1U);
  EXPECT_EQ(s.dns_answers_learnt, 2U);
  EXPECT_EQ(s.bytes_counted, 40U + (20U + 8U + 30U) + 40U);
  ASSERT_FALSE(h.batches.empty());
  EXPECT_EQ(h.batches.back().frames_through, 7U);
  EXPECT_TRUE(h.batches.back().source_complete);
  EXPECT_EQ(h.analyzer.run_summary().at("www.example.com").packets, 2U);
}

TEST(Analyzer, LatestAnswerWins) {
  Harness h;
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("a.test", {"192.0.2.1"})));
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 443, kNoPayload));
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("b.test", {"192.0.2.1"})));
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 443, kNoPayload));
  EXPECT_EQ(h.finish(), (std::vector<std::string>{"a.test", "b.test"}));
}

TEST(Analyzer, ErrorResponsesMarkLocalHostsButTeachNothing) {
  Harness h;
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("gone.test", {}, 3)));
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 443, kNoPayload));
  EXPECT_EQ(h.finish(), (std::vector<std::string>{""}));
  EXPECT_EQ(h.analyzer.table().size(), 0U);
}

TEST(Analyzer, DamagedDnsTeachesNothing) {
  Harness h;
  Frame msg = dns_response("a.test", {"192.0.2.1"});
  msg.resize(msg.size() - 2); // cut the last A record's data
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, msg));
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 443, kNoPayload));
  EXPECT_EQ(h.finish(), (std::vector<std::string>{""}));
  EXPECT_EQ(
      h.analyzer.stats().dns_errors[static_cast<std::size_t>(dns::DnsError::truncated_record)], 1U);
}

TEST(Analyzer, PortsFilterAndLocalNets) {
  Options o;
  o.ports = {443};
  o.local_nets = {*IpPrefix::parse("10.0.0.0/24")};
  Harness h(o);
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 443, kNoPayload)); // local by CIDR, no DNS needed
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 80, kNoPayload));  // port not listed
  h.feed(ipv4("10.0.1.2", "192.0.2.1", 6, 40000, 443, kNoPayload)); // outside the CIDR
  EXPECT_EQ(h.finish().size(), 1U);
  EXPECT_EQ(h.analyzer.stats().outcome(Outcome::port_filtered), 1U);
  EXPECT_EQ(h.analyzer.stats().outcome(Outcome::not_outbound), 1U);
}

TEST(Analyzer, ResumedSourceSkipsStoredFramesButStillLearns) {
  std::vector<store::Batch> batches;
  Analyzer a(dns_naming({}), [&](store::Batch &b) {
    batches.push_back(b);
    b.clear();
  });
  a.begin_source(9, 2);
  const Frame dns =
      ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("a.test", {"192.0.2.1"}));
  const Frame out = ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 443, kNoPayload);
  a.on_frame(decode::LinkType::ethernet, 0, 1, Bytes(dns.data(), dns.size()));
  a.on_frame(decode::LinkType::ethernet, 1, 2, Bytes(out.data(), out.size()));
  a.on_frame(decode::LinkType::ethernet, 2, 3, Bytes(out.data(), out.size()));
  a.end_source(true);
  ASSERT_EQ(batches.size(), 1U);
  ASSERT_EQ(batches[0].packets.size(), 1U);
  EXPECT_EQ(batches[0].packets[0].frame, 2U);
  EXPECT_EQ(batches[0].endpoints[batches[0].packets[0].endpoint], "a.test");
  EXPECT_EQ(batches[0].source_id, 9);
  EXPECT_EQ(a.stats().outcome(Outcome::already_stored), 1U);
}

TEST(Analyzer, BatchesAreBoundedAndLedgerAdvances) {
  Options o;
  o.batch_records = 2;
  Harness h(o);
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("a.test", {"192.0.2.1"})));
  for (int i = 0; i < 5; ++i) {
    h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40000, 443, kNoPayload), 1'000'000 + i);
  }
  EXPECT_EQ(h.finish().size(), 5U);
  std::uint64_t last = 0;
  for (const auto &b : h.batches) {
    EXPECT_LE(b.packets.size(), 2U);
    EXPECT_GE(b.frames_through, last);
    last = b.frames_through;
  }
  EXPECT_EQ(last, 6U);
}

TEST(Analyzer, DecodeErrorsAreCountedByName) {
  Harness h;
  Frame arp(12, std::byte{0});
  put16(arp, 0x0806);
  arp.resize(42);
  h.feed(arp);
  h.feed(Frame(5));
  h.finish();
  EXPECT_EQ(h.analyzer.stats().outcome(Outcome::not_ip), 1U);
  EXPECT_EQ(h.analyzer.stats().outcome(Outcome::truncated_link_header), 1U);
  EXPECT_EQ(to_string(Outcome::not_outbound), "not_outbound");
  EXPECT_EQ(to_string(Outcome::truncated_ip_header), "truncated_ip_header");
}

// A flood of distinct names (each answered once and sent one packet) beside
// one busy endpoint: the run summary stays at its capacity, the busy
// endpoint keeps its exact count, and the kept rows plus the folded rest add
// up to every counted packet.
TEST(Analyzer, RunSummaryStaysBoundedUnderANameFlood) {
  Options o;
  o.summary_capacity = 50;
  o.batch_records = 64; // many seals, so the bound is checked often
  Harness h(o);
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("busy.test", {"192.0.2.1"})));
  constexpr int kNames = 3000;
  std::size_t largest = 0;
  for (int i = 0; i < kNames; ++i) {
    const std::string addr =
        "198.18." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
    const std::string name = "r" + std::to_string(i) + ".flood.test";
    h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response(name, {addr.c_str()})));
    h.feed(ipv4("10.0.0.2", addr.c_str(), 6, 40000, 80, kNoPayload));
    h.feed(ipv4("10.0.0.2", "192.0.2.1", 6, 40001, 443, kNoPayload));
    largest = std::max(largest, h.analyzer.run_summary().size());
  }
  h.finish();
  const auto &summary = h.analyzer.run_summary();
  EXPECT_LE(largest, 50U);
  EXPECT_LE(summary.size(), 50U);
  ASSERT_EQ(summary.count("busy.test"), 1U);
  EXPECT_EQ(summary.at("busy.test").packets, static_cast<std::uint64_t>(kNames));
  std::uint64_t kept = 0;
  for (const auto &[name, r] : summary) {
    kept += r.packets;
  }
  EXPECT_GT(h.analyzer.run_summary_folded(), 0U);
  EXPECT_EQ(kept + h.analyzer.run_summary_rest().packets, 2U * kNames);
  EXPECT_EQ(h.analyzer.stats().outcome(Outcome::counted), 2U * kNames);
}

// Preloading more addresses than the DNS table holds keeps only the names
// the table still uses.
TEST(Analyzer, PreloadKeepsOnlyTheTablesNames) {
  Options o;
  o.dns_table_capacity = 100;
  Analyzer a(dns_naming(o), [](store::Batch &b) { b.clear(); });
  for (int i = 0; i < 20000; ++i) {
    const auto addr =
        IpAddress::parse("198.18." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250));
    ASSERT_TRUE(addr.has_value());
    a.preload_address(*addr, "n" + std::to_string(i) + ".flood.test", TimeUs{i});
  }
  EXPECT_EQ(a.table().size(), 100U);
  EXPECT_LE(a.table().name_count(), 100U);
}

} // namespace
} // namespace ta::attribute
