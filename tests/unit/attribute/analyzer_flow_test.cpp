// Flow naming inside the Analyzer (README "What is counted"): what the flow
// table decides becomes records in both directions, per-batch flow records,
// per-client DNS names, encrypted-DNS counts, and a ledger that never passes
// a packet still waiting for its flow's name.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/attribute/analyzer.hpp"

#include "test_util.hpp"

namespace ta::attribute {
namespace {

using namespace test; // NOLINT(google-build-using-namespace)

constexpr unsigned kSyn = 0x02;
constexpr unsigned kSynAck = 0x12;
constexpr unsigned kAck = 0x10;

// A TLS record holding a minimal ClientHello whose server_name is `sni`
// (RFC 8446 4.1.2, RFC 6066 3).
Frame client_hello(const std::string &sni) {
  Frame ext;
  put16(ext, 0); // server_name
  put16(ext, static_cast<unsigned>(sni.size() + 5));
  put16(ext, static_cast<unsigned>(sni.size() + 3)); // server_name_list
  ext.push_back(std::byte{0});                       // host_name
  put16(ext, static_cast<unsigned>(sni.size()));
  for (char c : sni) {
    ext.push_back(static_cast<std::byte>(c));
  }
  Frame body;
  put16(body, 0x0303);
  body.insert(body.end(), 32, std::byte{0x11}); // random
  body.push_back(std::byte{0});                 // session id
  put16(body, 2);
  put16(body, 0x1301);
  body.push_back(std::byte{1});
  body.push_back(std::byte{0});
  put16(body, static_cast<unsigned>(ext.size()));
  body.insert(body.end(), ext.begin(), ext.end());
  Frame rec;
  rec.push_back(std::byte{0x16});
  put16(rec, 0x0301);
  put16(rec, static_cast<unsigned>(body.size() + 4));
  rec.push_back(std::byte{1});
  rec.push_back(std::byte{0});
  put16(rec, static_cast<unsigned>(body.size()));
  rec.insert(rec.end(), body.begin(), body.end());
  return rec;
}

struct FlowHarness {
  std::vector<store::Batch> batches;
  Analyzer analyzer;
  std::uint64_t index = 0;

  explicit FlowHarness(Options o = {})
      : analyzer(std::move(o), [this](store::Batch &b) {
          batches.push_back(b);
          b.clear();
        }) {
    analyzer.begin_source(1, 0);
  }
  void feed(const Frame &f, TimeUs ts = 1'000'000) {
    analyzer.on_frame(decode::LinkType::ethernet, index++, ts, Bytes(f.data(), f.size()));
  }
  void finish() { analyzer.end_source(true); }
  // endpoint -> {sent, received} packets over every batch
  std::map<std::string, std::pair<int, int>> counts() const {
    std::map<std::string, std::pair<int, int>> out;
    for (const auto &b : batches) {
      for (const auto &p : b.packets) {
        auto &c = out[b.endpoints[p.endpoint]];
        (p.direction == store::Direction::sent ? c.first : c.second) += 1;
      }
    }
    return out;
  }
};

TEST(AnalyzerFlows, ATlsFlowIsNamedBySniInBothDirectionsWithoutAnyDns) {
  FlowHarness h;
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, kNoPayload, kSyn, 999));
  h.feed(ipv4("192.0.2.9", "10.0.0.2", 6, 443, 40000, kNoPayload, kSynAck, 5000));
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, kNoPayload, kAck, 1000));
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, client_hello("Www.Site.Test."), 0x18, 1000));
  h.feed(ipv4("192.0.2.9", "10.0.0.2", 6, 443, 40000, Frame(100, std::byte{1}), 0x18, 5001));
  h.finish();
  const auto c = h.counts();
  ASSERT_EQ(c.size(), 1U);
  EXPECT_EQ(c.at("www.site.test"), std::make_pair(3, 2)); // the SYN too
  const Stats &st = h.analyzer.stats();
  EXPECT_EQ(st.names[static_cast<std::size_t>(store::NameSource::sni)], 5U);
  EXPECT_EQ(st.received_packets, 2U);
  EXPECT_EQ(st.outcome(Outcome::counted), 5U);
  EXPECT_EQ(st.flows_created, 1U);
  // One flow record over the batch, with the ends and both directions.
  ASSERT_EQ(h.batches.size(), 1U);
  ASSERT_EQ(h.batches[0].flows.size(), 1U);
  const store::FlowRecord &f = h.batches[0].flows[0];
  EXPECT_EQ(f.client, *IpAddress::parse("10.0.0.2"));
  EXPECT_EQ(f.endpoint_port, 443);
  EXPECT_EQ(f.source, store::NameSource::sni);
  EXPECT_EQ(f.sent_packets, 3U);
  EXPECT_EQ(f.received_packets, 2U);
  EXPECT_EQ(f.first_frame, 0U);
  const auto &run = h.analyzer.run_summary().at("www.site.test");
  EXPECT_EQ(run.packets, 3U);
  EXPECT_EQ(run.received_packets, 2U);
}

TEST(AnalyzerFlows, DnsNamesAFlowByTheAnswerItsOwnClientGot) {
  FlowHarness h;
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("a.test", {"192.0.2.1"})));
  h.feed(ipv4("10.0.0.1", "10.0.0.3", 17, 53, 5001, dns_response("b.test", {"192.0.2.1"})));
  // The latest answer to anyone says b.test; client .2 was told a.test.
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 17, 40000, 7000, Frame(20, std::byte{0})));
  h.feed(ipv4("10.0.0.3", "192.0.2.1", 17, 40001, 7000, Frame(20, std::byte{0})));
  h.feed(ipv4("10.0.0.9", "192.0.2.1", 17, 40002, 7000, Frame(20, std::byte{0})));
  h.finish();
  const auto c = h.counts();
  EXPECT_EQ(c.at("a.test"), std::make_pair(1, 0));
  EXPECT_EQ(c.at("b.test"), std::make_pair(2, 0)); // .3's own answer, and .9's: anyone's
  EXPECT_EQ(h.analyzer.stats().names[static_cast<std::size_t>(store::NameSource::dns)], 3U);
}

// The per-client table holds kClientPairsPerAddress pairs per address of the
// DNS table: with a table of 2 addresses, 8 pairs. Client .2 is told
// a.test for 192.0.2.1, then `others` more answers for other addresses; the
// table of everyone's answers forgets 192.0.2.1 after 2 of them, the client's
// table after 8.
std::map<std::string, std::pair<int, int>> named_after(int others) {
  Options o;
  o.dns_table_capacity = 2;
  FlowHarness h(o);
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("a.test", {"192.0.2.1"})));
  for (int i = 0; i < others; ++i) {
    const std::string other = "198.51.100." + std::to_string(10 + i);
    h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000,
                dns_response("o" + std::to_string(i) + ".test", {other.c_str()})));
  }
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 17, 40000, 7000, Frame(20, std::byte{0})));
  h.finish();
  return h.counts();
}

TEST(AnalyzerFlows, ThePerClientTableIsBoundedByTheDnsTableSize) {
  static_assert(kClientPairsPerAddress == 4);
  EXPECT_EQ(named_after(7).at("a.test"), std::make_pair(1, 0)); // 8 pairs: still there
  const auto evicted = named_after(8);                          // 9 pairs: the oldest goes
  EXPECT_EQ(evicted.count("a.test"), 0U);
  EXPECT_EQ(evicted.at(""), std::make_pair(1, 0));
}

TEST(AnalyzerFlows, TheLedgerNeverPassesAPacketStillWaitingForItsName) {
  Options o;
  o.batch_records = 2;
  FlowHarness h(o);
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, kNoPayload, kSyn, 999)); // frame 0: waits
  for (int i = 0; i < 4; ++i) { // UDP flows to port 7000 are decided at once by no QUIC
    h.feed(ipv4("10.0.0.2", "192.0.2.8", 17, 41000 + i, 7000, Frame(8, std::byte{0})));
  }
  h.analyzer.flush();
  ASSERT_FALSE(h.batches.empty());
  for (const auto &b : h.batches) {
    EXPECT_EQ(b.frames_through, 0U) << "frame 0 is held";
  }
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, client_hello("x.test"), 0x18, 1000));
  h.finish();
  EXPECT_EQ(h.batches.back().frames_through, 6U);
  EXPECT_EQ(h.counts().at("x.test"), std::make_pair(2, 0));
}

TEST(AnalyzerFlows, EncryptedDnsFlowsAreCountedByKind) {
  FlowHarness h;
  h.feed(ipv4("10.0.0.2", "192.0.2.53", 6, 40000, 853, kNoPayload, kSyn, 1));
  h.feed(ipv4("10.0.0.2", "192.0.2.53", 17, 40001, 853, Frame(30, std::byte{0})));
  h.feed(ipv4("10.0.0.2", "192.0.2.54", 6, 40002, 443, client_hello("dns.google"), 0x18, 1000));
  h.feed(ipv4("10.0.0.2", "192.0.2.55", 6, 40003, 443, client_hello("www.site.test"), 0x18, 1000));
  h.finish();
  const Stats &st = h.analyzer.stats();
  EXPECT_EQ(st.encrypted_dns_flows[static_cast<std::size_t>(EncryptedDns::dot)], 1U);
  EXPECT_EQ(st.encrypted_dns_flows[static_cast<std::size_t>(EncryptedDns::doq)], 1U);
  EXPECT_EQ(st.encrypted_dns_flows[static_cast<std::size_t>(EncryptedDns::doh)], 1U);
  EXPECT_EQ(h.analyzer.encrypted_dns_clients(), 1U);
}

TEST(AnalyzerFlows, PortsSelectFlowsByTheEndpointPort) {
  Options o;
  o.ports = {443};
  FlowHarness h(o);
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, client_hello("a.test"), 0x18, 1000));
  h.feed(ipv4("192.0.2.9", "10.0.0.2", 6, 443, 40000, Frame(10, std::byte{1}), 0x18, 1));
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40001, 80, client_hello("b.test"), 0x18, 1000));
  h.finish();
  EXPECT_EQ(h.counts(), (std::map<std::string, std::pair<int, int>>{{"a.test", {1, 1}}}));
  EXPECT_EQ(h.analyzer.stats().outcome(Outcome::port_filtered), 1U);
}

TEST(AnalyzerFlows, NonFlowPacketsAreNamedPerPacketOutboundOnly) {
  FlowHarness h;
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("a.test", {"192.0.2.1"})));
  Frame icmp = ipv4("10.0.0.2", "192.0.2.1", 1, 0, 0, kNoPayload);
  h.feed(icmp);
  Frame back = ipv4("192.0.2.1", "10.0.0.2", 1, 0, 0, kNoPayload);
  h.feed(back);
  h.finish();
  EXPECT_EQ(h.counts().at("a.test"), std::make_pair(1, 0));
  EXPECT_EQ(h.analyzer.stats().outcome(Outcome::not_outbound), 1U);
}

// The run summary counts each flow once, under the name it was first counted
// with, however many batches carry it; and it keeps the sources that named
// the endpoint's packets: here SNI for one flow and the client's DNS answer
// for another flow to the same name.
TEST(AnalyzerFlows, TheRunSummaryCountsFlowsOnceAndTheirNameSources) {
  Options o;
  o.batch_records = 2; // the TLS flow spans several batches
  FlowHarness h(o);
  h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000, dns_response("www.site.test", {"192.0.2.1"})));
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, kNoPayload, kSyn, 999));
  h.feed(ipv4("192.0.2.9", "10.0.0.2", 6, 443, 40000, kNoPayload, kSynAck, 5000));
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, kNoPayload, kAck, 1000));
  h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, client_hello("www.site.test"), 0x18, 1000));
  for (int i = 0; i < 5; ++i) {
    h.feed(ipv4("192.0.2.9", "10.0.0.2", 6, 443, 40000, Frame(100, std::byte{1}), 0x18,
                5001 + 100 * i));
  }
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 17, 41000, 7000, Frame(20, std::byte{0})));
  h.feed(ipv4("10.0.0.2", "192.0.2.1", 17, 41000, 7000, Frame(20, std::byte{0})));
  h.feed(ipv4("10.0.0.2", "192.0.2.77", 17, 41001, 7000, Frame(20, std::byte{0}))); // unnamed
  h.finish();
  ASSERT_GT(h.batches.size(), 2U);
  const auto &summary = h.analyzer.run_summary();
  const EndpointRun &site = summary.at("www.site.test");
  EXPECT_EQ(site.flows, 2U);
  EXPECT_EQ(site.packets + site.received_packets, 11U);
  EXPECT_TRUE(site.named_by(store::NameSource::sni));
  EXPECT_TRUE(site.named_by(store::NameSource::dns));
  EXPECT_FALSE(site.named_by(store::NameSource::http));
  const EndpointRun &unnamed = summary.at("");
  EXPECT_EQ(unnamed.flows, 1U);
  EXPECT_EQ(unnamed.sources, EndpointRun::source_bit(store::NameSource::none));
  EXPECT_EQ(h.analyzer.stats().flows_created, 3U);
}

// Folding endpoints out of the bounded summary moves their flows and sources
// into the rest: kept flows plus the rest's are every flow.
TEST(AnalyzerFlows, FoldedEndpointsKeepTheFlowTotalExact) {
  Options o;
  o.summary_capacity = 4;
  o.batch_records = 8;
  FlowHarness h(o);
  constexpr int kNames = 40;
  for (int i = 0; i < kNames; ++i) {
    const std::string addr = "198.18.0." + std::to_string(1 + i);
    h.feed(ipv4("10.0.0.1", "10.0.0.2", 17, 53, 5000,
                dns_response("r" + std::to_string(i) + ".test", {addr.c_str()})));
    h.feed(ipv4("10.0.0.2", addr.c_str(), 17, 41000, 7000, Frame(20, std::byte{0})));
    // One long flow to a single SNI name, a packet of it in every batch.
    h.feed(ipv4("10.0.0.2", "192.0.2.9", 6, 40000, 443, client_hello("busy.test"), 0x18, 1000));
  }
  h.finish();
  const auto &summary = h.analyzer.run_summary();
  EXPECT_LE(summary.size(), 4U);
  ASSERT_EQ(summary.count("busy.test"), 1U);
  EXPECT_EQ(summary.at("busy.test").flows, 1U);
  std::uint64_t flows = 0;
  for (const auto &[name, r] : summary) {
    flows += r.flows;
  }
  const EndpointRun &rest = h.analyzer.run_summary_rest();
  EXPECT_GT(h.analyzer.run_summary_folded(), 0U);
  EXPECT_EQ(flows + rest.flows, kNames + 1U);
  EXPECT_EQ(rest.sources, EndpointRun::source_bit(store::NameSource::dns));
}

} // namespace
} // namespace ta::attribute
