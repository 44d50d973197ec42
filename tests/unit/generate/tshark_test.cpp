// The generator's truth against tshark's dissection of the same bytes, under
// both naming contracts (README "What is counted"; flow naming), computed
// here simply for the traffic the generator writes from tshark's fields:
//   ip/ipv6 addresses and lengths, tcp/udp ports and flags, dns.* of the
//   responses, tls.handshake.extensions_server_name (TLS and, decrypted by
//   tshark from the Initial keys, QUIC), http.host.
// And the QUIC Initial keys against the RFCs' test vectors.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ta/common/address.hpp"
#include "ta/generate/generate.hpp"

#include "quic_initial.hpp"
#include "test_util.hpp"

namespace {

using ta::IpAddress;
using ta::TimeUs;
using ta::generate::EndpointTruth;
using ta::generate::FlowEndpointTruth;
using ta::generate::GroundTruth;
using ta::generate::NameSource;
using ta::generate::test::options;
using ta::generate::test::run_command;
using ta::generate::test::temp_path;

std::string hex(const std::uint8_t *p, std::size_t n) {
  static const char *digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4U];
    s += digits[p[i] & 0x0FU];
  }
  return s;
}

// RFC 9001 Appendix A.1 and RFC 9369 Appendix A.1: the client Initial keys
// for the Destination Connection ID 0x8394c8f03e515708.
TEST(QuicInitial, KeysMatchTheRfcVectors) {
  const std::array<std::uint8_t, 8> dcid{0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
  ta::generate::detail::QuicKeys v1;
  ASSERT_TRUE(
      ta::generate::detail::quic_client_initial_keys(ta::generate::detail::kQuicV1, dcid, v1));
  EXPECT_EQ(hex(v1.key.data(), 16), "1f369613dd76d5467730efcbe3b1a22d");
  EXPECT_EQ(hex(v1.iv.data(), 12), "fa044b2f42a3fd3b46fb255c");
  EXPECT_EQ(hex(v1.hp.data(), 16), "9f50449e04a0e810283a1e9933adedd2");
  ta::generate::detail::QuicKeys v2;
  ASSERT_TRUE(
      ta::generate::detail::quic_client_initial_keys(ta::generate::detail::kQuicV2, dcid, v2));
  EXPECT_EQ(hex(v2.key.data(), 16), "8b1a0bc121284290a29e0971b5cd045d");
  EXPECT_EQ(hex(v2.iv.data(), 12), "91f73e2351d8fa91660e909f");
  EXPECT_EQ(hex(v2.hp.data(), 16), "45b95e15235d6f45a6b19cbcb0294ba9");
}

// ---------------------------------------------------------------------------
// tshark -T fields, one frame a line.

constexpr const char *kFields[] = {"frame.time_epoch", "frame.protocols",
                                   "ip.src",           "ip.dst",
                                   "ipv6.src",         "ipv6.dst",
                                   "ip.len",           "ipv6.plen",
                                   "tcp.srcport",      "tcp.dstport",
                                   "udp.srcport",      "udp.dstport",
                                   "tcp.flags.syn",    "tcp.flags.ack",
                                   "tcp.flags.fin",    "tcp.flags.reset",
                                   "tcp.len",          "dns.flags.response",
                                   "dns.flags.rcode",  "dns.qry.name",
                                   "dns.qry.type",     "dns.count.answers",
                                   "dns.cname",        "dns.a",
                                   "dns.aaaa",         "tls.handshake.extensions_server_name",
                                   "http.host",        "tls.record.content_type",
                                   "http.request"};
enum Field {
  kTime,
  kProtocols,
  kIpSrc,
  kIpDst,
  kIp6Src,
  kIp6Dst,
  kIpLen,
  kIp6Plen,
  kTcpSrc,
  kTcpDst,
  kUdpSrc,
  kUdpDst,
  kSyn,
  kAck,
  kFin,
  kRst,
  kTcpLen,
  kDnsResponse,
  kRcode,
  kQname,
  kQtype,
  kAnswers,
  kCname,
  kDnsA,
  kDnsAaaa,
  kSni,
  kHttpHost,
  kTlsRecord,
  kHttpRequest,
  kFieldCount
};

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) {
    out.push_back(cur);
  }
  if (!s.empty() && s.back() == sep) {
    out.emplace_back();
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string canonical(const std::string &text) {
  const auto a = IpAddress::parse(text);
  return a ? a->to_string() : text;
}

TimeUs epoch_us(const std::string &t) {
  const auto dot = t.find('.');
  const std::string frac = (t.substr(dot + 1) + "000000").substr(0, 6);
  return std::stoll(t.substr(0, dot)) * 1'000'000 + std::stoll(frac);
}

// HTTP Host without its port; an IPv6 literal keeps its brackets.
std::string host_name(const std::string &host) {
  if (!host.empty() && host.front() == '[') {
    return lower(host.substr(0, host.find(']') + 1));
  }
  const auto colon = host.find(':');
  return lower(colon == std::string::npos ? host : host.substr(0, colon));
}

struct Counts {
  std::uint64_t sent = 0, sent_bytes = 0, received = 0, received_bytes = 0;
  TimeUs first = 0, last = 0;
  std::array<std::uint64_t, ta::generate::kNameSources> names{};
};

struct Held {
  TimeUs ts;
  std::uint32_t bytes;
  bool sent;
};

struct TsharkFlow {
  std::string endpoint_addr;
  std::string client_addr;
  bool named = false;
  std::string name;
  NameSource source = NameSource::none;
  std::string fallback;
  NameSource fallback_source = NameSource::none;
  std::vector<Held> held;
  std::set<std::string> fin_from;
  bool ended = false;
};

class Reference {
public:
  // `f`: the fields of one frame, each with every occurrence (an ICMP error
  // quoting a packet has two of IP and UDP: the outer ones come first).
  void feed(std::vector<std::string> f) {
    ++frames_;
    for (const Field k : {kIpSrc, kIpDst, kIp6Src, kIp6Dst, kIpLen, kIp6Plen, kTcpSrc, kTcpDst,
                          kUdpSrc, kUdpDst, kSyn, kAck, kFin, kRst, kTcpLen}) {
      f[k] = f[k].substr(0, f[k].find(','));
    }
    const bool v4 = !f[kIpSrc].empty();
    if (!v4 && f[kIp6Src].empty()) {
      return;
    }
    const std::string src = canonical(v4 ? f[kIpSrc] : f[kIp6Src]);
    const std::string dst = canonical(v4 ? f[kIpDst] : f[kIp6Dst]);
    const auto bytes =
        static_cast<std::uint32_t>(v4 ? std::stoul(f[kIpLen]) : 40 + std::stoul(f[kIp6Plen]));
    const TimeUs ts = epoch_us(f[kTime]);
    const bool tcp = !f[kTcpSrc].empty();
    const bool udp = !f[kUdpSrc].empty() && f[kProtocols].find("icmp") == std::string::npos;
    const int sport = tcp ? std::stoi(f[kTcpSrc]) : (udp ? std::stoi(f[kUdpSrc]) : 0);
    const int dport = tcp ? std::stoi(f[kTcpDst]) : (udp ? std::stoi(f[kUdpDst]) : 0);
    if ((tcp || udp) && (sport == 53 || dport == 53)) {
      if (sport == 53 && f[kDnsResponse] == "1") {
        learn(f, dst);
      }
      return;
    }
    // DNS-only naming: outbound packets by the latest answer to anyone.
    if (local_.contains(src)) {
      const auto it = names_.find(dst);
      const std::string name = it == names_.end() ? "" : it->second;
      EndpointTruth &e = a_[name];
      if (e.packets == 0) {
        e.endpoint = name;
        e.first_seen = ts;
      }
      ++e.packets;
      e.bytes += bytes;
      e.last_seen = ts;
      a_addresses_[name].insert(dst);
    }
    if (!tcp && !udp) {
      if (local_.contains(src)) { // flow naming leaves ICMP to DNS-only naming
        const auto it = names_.find(dst);
        add(it == names_.end() ? "" : it->second,
            it == names_.end() ? NameSource::none : NameSource::dns, ts, bytes, true);
      }
      return;
    }
    flow_packet(f, tcp, src, dst, sport, dport, ts, bytes);
  }

  [[nodiscard]] GroundTruth result() {
    for (auto &[key, flow] : flows_) {
      if (!flow.named) {
        decide(flow, flow.fallback, flow.fallback_source);
      }
    }
    GroundTruth t;
    t.frames = frames_;
    for (auto &[name, e] : a_) {
      const auto &set = a_addresses_[name];
      e.addresses.assign(set.begin(), set.end());
      t.endpoints.push_back(e);
    }
    for (const auto &[a, name] : names_) {
      t.final_addresses.emplace_back(a, name);
    }
    std::sort(t.final_addresses.begin(), t.final_addresses.end());
    for (const auto &[name, c] : b_) {
      FlowEndpointTruth e;
      e.endpoint = name;
      e.packets = c.sent;
      e.bytes = c.sent_bytes;
      e.received_packets = c.received;
      e.received_bytes = c.received_bytes;
      e.first_seen = c.first;
      e.last_seen = c.last;
      e.names = c.names;
      t.flow_endpoints.push_back(e);
    }
    return t;
  }

private:
  void learn(const std::vector<std::string> &f, const std::string &client) {
    local_.insert(client);
    if (f[kRcode] != "0") {
      return;
    }
    // Answer-section addresses: the answer count minus its CNAMEs, taken
    // from the front of dns.a / dns.aaaa (glue in additional comes last).
    const std::string qname = lower(f[kQname]);
    const std::size_t cnames = f[kCname].empty() ? 0 : split(f[kCname], ',').size();
    const std::size_t n = std::stoul(f[kAnswers]) - cnames;
    const std::string &list = f[kQtype] == "28" ? f[kDnsAaaa] : f[kDnsA];
    const auto addrs = split(list, ',');
    for (std::size_t i = 0; i < n && i < addrs.size(); ++i) {
      names_[canonical(addrs[i])] = qname;
      per_client_[client][canonical(addrs[i])] = qname;
    }
  }

  void flow_packet(const std::vector<std::string> &f, bool tcp, const std::string &src,
                   const std::string &dst, int sport, int dport, TimeUs ts, std::uint32_t bytes) {
    const bool syn_only = tcp && f[kSyn] == "1" && f[kAck] == "0";
    auto key =
        std::make_tuple(tcp, std::min(std::make_pair(src, sport), std::make_pair(dst, dport)),
                        std::max(std::make_pair(src, sport), std::make_pair(dst, dport)));
    auto it = flows_.find(key);
    if (it != flows_.end() && it->second.ended && syn_only) {
      if (!it->second.named) {
        decide(it->second, it->second.fallback, it->second.fallback_source);
      }
      done_.push_back(std::move(it->second));
      flows_.erase(it);
      it = flows_.end();
    }
    if (it == flows_.end()) {
      TsharkFlow flow;
      const bool src_local = local_.contains(src);
      const bool dst_local = local_.contains(dst);
      bool dst_is_endpoint = true;
      if (src_local != dst_local) {
        dst_is_endpoint = src_local;
      } else if (!syn_only) {
        dst_is_endpoint = dport <= sport; // the lower port; equal: the receiver
      }
      flow.endpoint_addr = dst_is_endpoint ? dst : src;
      flow.client_addr = dst_is_endpoint ? src : dst;
      const auto &mine = per_client_[flow.client_addr];
      const auto own = mine.find(flow.endpoint_addr);
      const auto any = names_.find(flow.endpoint_addr);
      if (own != mine.end()) {
        flow.fallback = own->second;
      } else if (any != names_.end()) {
        flow.fallback = any->second;
      }
      flow.fallback_source = flow.fallback.empty() ? NameSource::none : NameSource::dns;
      it = flows_.emplace(key, std::move(flow)).first;
    }
    TsharkFlow &flow = it->second;
    const bool sent = src == flow.client_addr;
    if (!flow.named && sent) {
      // TCP: the client's first payload tshark has dissected whole (a first
      // segment of a split ClientHello has no TLS record yet: still
      // waiting). UDP: the client's first packet.
      const bool dissected = !f[kTlsRecord].empty() || f[kHttpRequest] == "1";
      if (!f[kSni].empty()) {
        decide(flow, lower(f[kSni]), tcp ? NameSource::sni : NameSource::quic);
      } else if (tcp && !f[kHttpHost].empty()) {
        decide(flow, host_name(f[kHttpHost]), NameSource::http);
      } else if (!tcp || (f[kTcpLen] != "0" && dissected)) {
        decide(flow, flow.fallback, flow.fallback_source);
      }
    }
    if (flow.named) {
      add(flow.name, flow.source, ts, bytes, sent);
    } else {
      flow.held.push_back({ts, bytes, sent});
    }
    if (tcp && f[kFin] == "1") {
      flow.fin_from.insert(src);
    }
    if (tcp && (f[kRst] == "1" || flow.fin_from.size() == 2)) {
      flow.ended = true;
    }
  }

  void decide(TsharkFlow &flow, const std::string &name, NameSource source) {
    flow.named = true;
    flow.name = name;
    flow.source = source;
    for (const Held &h : flow.held) {
      add(name, source, h.ts, h.bytes, h.sent);
    }
    flow.held.clear();
  }

  void add(const std::string &name, NameSource source, TimeUs ts, std::uint32_t bytes, bool sent) {
    Counts &c = b_[name];
    if (c.sent + c.received == 0 || ts < c.first) {
      c.first = ts;
    }
    c.last = std::max(c.last, ts);
    (sent ? c.sent : c.received) += 1;
    (sent ? c.sent_bytes : c.received_bytes) += bytes;
    ++c.names[static_cast<std::size_t>(source)];
  }

  using Key = std::tuple<bool, std::pair<std::string, int>, std::pair<std::string, int>>;
  std::uint64_t frames_ = 0;
  std::set<std::string> local_;
  std::map<std::string, std::string> names_;
  std::map<std::string, std::map<std::string, std::string>> per_client_;
  std::map<std::string, EndpointTruth> a_;
  std::map<std::string, std::set<std::string>> a_addresses_;
  std::map<std::string, Counts> b_;
  std::map<Key, TsharkFlow> flows_;
  std::vector<TsharkFlow> done_;
};

std::string tshark_fields_command(const std::string &path) {
  std::string cmd = "tshark -n -r '" + path +
                    "' -T fields -E separator=/t -E occurrence=a"
                    " -E aggregator=,";
  for (const char *f : kFields) {
    cmd += std::string(" -e ") + f;
  }
  return cmd + " 2>/dev/null";
}

class TsharkReading : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    if (!ta::generate::test::have_tshark()) {
      return;
    }
    path_ = new std::string(temp_path("contracts.pcap"));
    auto written = ta::generate::write_capture(options(6'000, 20, 11), *path_);
    ASSERT_TRUE(written.ok()) << written.status().message();
    truth_ = new GroundTruth(*written);
  }
  static void TearDownTestSuite() {
    if (path_ != nullptr) {
      std::filesystem::remove(*path_);
    }
    delete path_;
    delete truth_;
    path_ = nullptr;
    truth_ = nullptr;
  }
  void SetUp() override {
    if (truth_ == nullptr) {
      GTEST_SKIP() << "tshark not installed";
    }
  }

  static std::string *path_;
  static GroundTruth *truth_;
};

std::string *TsharkReading::path_ = nullptr;
GroundTruth *TsharkReading::truth_ = nullptr;

void expect_tshark_agrees(const std::string &path, const GroundTruth &t) {
  const auto r = run_command(tshark_fields_command(path));
  ASSERT_EQ(r.exit_status, 0);
  Reference ref;
  for (const std::string &line : split(r.out, '\n')) {
    if (line.empty()) {
      continue;
    }
    auto f = split(line, '\t');
    f.resize(kFieldCount);
    ref.feed(f);
  }
  const GroundTruth got = ref.result();
  EXPECT_EQ(got.frames, t.frames);
  // DNS-only naming.
  ASSERT_EQ(got.endpoints.size(), t.endpoints.size());
  for (std::size_t i = 0; i < t.endpoints.size(); ++i) {
    SCOPED_TRACE("dns-only endpoint \"" + t.endpoints[i].endpoint + "\"");
    EXPECT_EQ(got.endpoints[i].endpoint, t.endpoints[i].endpoint);
    EXPECT_EQ(got.endpoints[i].packets, t.endpoints[i].packets);
    EXPECT_EQ(got.endpoints[i].bytes, t.endpoints[i].bytes);
    EXPECT_EQ(got.endpoints[i].first_seen, t.endpoints[i].first_seen);
    EXPECT_EQ(got.endpoints[i].last_seen, t.endpoints[i].last_seen);
    EXPECT_EQ(got.endpoints[i].addresses, t.endpoints[i].addresses);
  }
  EXPECT_EQ(got.final_addresses, t.final_addresses);
  // Flow naming.
  ASSERT_EQ(got.flow_endpoints.size(), t.flow_endpoints.size());
  for (std::size_t i = 0; i < t.flow_endpoints.size(); ++i) {
    const FlowEndpointTruth &a = got.flow_endpoints[i];
    const FlowEndpointTruth &b = t.flow_endpoints[i];
    SCOPED_TRACE("flow endpoint \"" + b.endpoint + "\"");
    EXPECT_EQ(a.endpoint, b.endpoint);
    EXPECT_EQ(a.packets, b.packets);
    EXPECT_EQ(a.bytes, b.bytes);
    EXPECT_EQ(a.received_packets, b.received_packets);
    EXPECT_EQ(a.received_bytes, b.received_bytes);
    EXPECT_EQ(a.first_seen, b.first_seen);
    EXPECT_EQ(a.last_seen, b.last_seen);
    EXPECT_EQ(a.names, b.names);
  }
}

TEST_F(TsharkReading, BothContractsAgreeWithTheTruth) {
  expect_tshark_agrees(*path_, *truth_);
}

// Few endpoints: the second client's addresses are endpoint 0's and 1's only.
TEST_F(TsharkReading, BothContractsAgreeWithTheTruthWithTwoEndpoints) {
  const std::string path = temp_path("two_endpoints.pcap");
  const auto written = ta::generate::write_capture(options(4'000, 2, 3), path);
  ASSERT_TRUE(written.ok()) << written.status().message();
  expect_tshark_agrees(path, *written);
  std::filesystem::remove(path);
}

TEST_F(TsharkReading, EveryNameSourceAndEdgeCaseIsPresent) {
  std::map<std::string, const FlowEndpointTruth *> by_name;
  std::array<std::uint64_t, ta::generate::kNameSources> sources{};
  for (const FlowEndpointTruth &e : truth_->flow_endpoints) {
    by_name[e.endpoint] = &e;
    for (std::size_t k = 0; k < sources.size(); ++k) {
      sources[k] += e.names[k];
    }
  }
  for (std::size_t k = 0; k < sources.size(); ++k) {
    EXPECT_GT(sources[k], 0U) << ta::generate::name_source_name(static_cast<NameSource>(k));
  }
  for (const char *name : {"dns.google", "cloudflare-dns.com", "dns.quad9.net", "h.test",
                           "sni-not-dns.example.test", ""}) {
    EXPECT_TRUE(by_name.contains(name)) << name;
  }
  // Flow naming counts the flows already running at the start as unnamed,
  // and both directions.
  ASSERT_TRUE(by_name.contains(""));
  EXPECT_GT(by_name.at("")->received_packets, 0U);
}

// tshark removes the Initial protection (RFC 9001 §5, RFC 9369 §3.3) and
// reads the ClientHello's server_name, for v1 and v2 alike.
TEST_F(TsharkReading, QuicInitialsDecryptWithTheirSni) {
  const auto r = run_command("tshark -n -r '" + *path_ +
                             "' -Y 'quic && tls.handshake.type == 1' -T fields"
                             " -e quic.version -e tls.handshake.extensions_server_name"
                             " 2>/dev/null");
  ASSERT_EQ(r.exit_status, 0);
  std::map<std::string, std::set<std::string>> sni_by_version;
  for (const std::string &line : split(r.out, '\n')) {
    const auto f = split(line, '\t');
    if (f.size() == 2 && !f[1].empty()) {
      sni_by_version[f[0]].insert(f[1]);
    }
  }
  // quic.version as tshark prints it; the special flows send www.example.com.
  EXPECT_TRUE(sni_by_version["0x00000001"].contains("www.example.com"));
  EXPECT_TRUE(sni_by_version["0x6b3343cf"].contains("www.example.com"));
}

// The split ClientHello: tshark reassembles it from two segments.
TEST_F(TsharkReading, ASplitClientHelloReassembles) {
  const auto r = run_command("tshark -n -r '" + *path_ +
                             "' -Y 'tls.handshake.type == 1 && tcp.segments' -T fields"
                             " -e tcp.segment.count -e tls.handshake.extensions_server_name"
                             " 2>/dev/null");
  ASSERT_EQ(r.exit_status, 0);
  EXPECT_NE(r.out.find("2\t"), std::string::npos) << r.out;
}

} // namespace
