#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ta/capture/capture.hpp"
#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"
#include "ta/generate/generate.hpp"

#include "test_util.hpp"

namespace {

using ta::ByteCursor;
using ta::Bytes;
using ta::IpAddress;
using ta::TimeUs;
using ta::generate::EndpointTruth;
using ta::generate::Generator;
using ta::generate::GroundTruth;
using ta::generate::Options;

using ta::generate::test::options;
using ta::generate::test::run_command;
using ta::generate::test::temp_path;

std::uint64_t fnv1a(std::uint64_t h, const void *data, std::size_t n) {
  const auto *p = static_cast<const unsigned char *>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h = (h ^ p[i]) * 0x100000001B3ULL;
  }
  return h;
}

std::uint64_t digest(const Options &o) {
  Generator g(o);
  std::uint64_t h = 0xCBF29CE484222325ULL;
  TimeUs ts = 0;
  Bytes frame;
  while (g.next(ts, frame)) {
    h = fnv1a(h, &ts, sizeof ts);
    h = fnv1a(h, frame.data(), frame.size());
  }
  return h;
}

// ---------------------------------------------------------------------------
// An independent reading of the attribution contract (README "What is counted")
// over the bytes: decode Ethernet/802.1Q/IP/UDP/TCP, parse DNS responses, apply
// the rules. The generator's truth is computed without parsing anything, so the
// two agreeing means the bytes say what the truth claims.

struct Packet {
  IpAddress src;
  IpAddress dst;
  std::uint8_t proto = 0;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t ip_length = 0;
  Bytes payload;
};

bool parse_packet(Bytes frame, Packet &p) {
  ByteCursor c(frame);
  std::uint16_t type = 0;
  if (!c.skip(12) || !c.read_u16(type)) {
    return false;
  }
  while (type == 0x8100 || type == 0x88A8) {
    if (!c.skip(2) || !c.read_u16(type)) {
      return false;
    }
  }
  Bytes l4;
  if (type == 0x0800) {
    Bytes ip;
    std::uint8_t vihl = 0;
    if (!c.peek_u8(vihl)) {
      return false;
    }
    ByteCursor h(c.rest());
    std::uint16_t total = 0;
    Bytes src;
    Bytes dst;
    if (!h.skip(2) || !h.read_u16(total) || !h.skip(5) || !h.read_u8(p.proto) || !h.skip(2) ||
        !h.take(4, src) || !h.take(4, dst) || !c.take(total, ip)) {
      return false;
    }
    p.src = IpAddress::v4(src.data());
    p.dst = IpAddress::v4(dst.data());
    p.ip_length = total;
    l4 = ip.subspan(static_cast<std::size_t>(vihl & 0x0FU) * 4);
  } else if (type == 0x86DD) {
    std::uint16_t plen = 0;
    Bytes src;
    Bytes dst;
    if (!c.skip(4) || !c.read_u16(plen) || !c.read_u8(p.proto) || !c.skip(1) || !c.take(16, src) ||
        !c.take(16, dst) || !c.take(plen, l4)) {
      return false;
    }
    p.src = IpAddress::v6(src.data());
    p.dst = IpAddress::v6(dst.data());
    p.ip_length = 40U + plen;
  } else {
    return false;
  }
  ByteCursor t(l4);
  if (p.proto == 17) {
    return t.read_u16(p.sport) && t.read_u16(p.dport) && t.skip(4) && (p.payload = t.rest(), true);
  }
  if (p.proto == 6) {
    std::uint8_t offset = 0;
    return t.read_u16(p.sport) && t.read_u16(p.dport) && t.skip(8) && t.read_u8(offset) &&
           t.seek(static_cast<std::size_t>(offset >> 4U) * 4U) && (p.payload = t.rest(), true);
  }
  p.sport = 0;
  p.dport = 0;
  return true;
}

bool read_name(Bytes msg, ByteCursor &c, std::string &out) {
  ByteCursor at = c;
  bool jumped = false;
  for (int hops = 0; hops < 32;) {
    std::uint8_t len = 0;
    if (!at.read_u8(len)) {
      return false;
    }
    if ((len & 0xC0U) == 0xC0U) {
      std::uint8_t low = 0;
      if (!at.read_u8(low)) {
        return false;
      }
      if (!jumped) {
        c = at;
        jumped = true;
      }
      at = ByteCursor(msg);
      if (!at.seek(((len & 0x3FU) << 8U) | low)) {
        return false;
      }
      ++hops;
      continue;
    }
    if (len == 0) {
      if (!jumped) {
        c = at;
      }
      return true;
    }
    Bytes label;
    if (!at.take(len, label)) {
      return false;
    }
    if (!out.empty()) {
      out += '.';
    }
    for (const std::byte b : label) {
      out += static_cast<char>(std::tolower(std::to_integer<unsigned char>(b)));
    }
  }
  return false;
}

struct Dns {
  bool response = false;
  std::uint8_t rcode = 0;
  std::string qname;
  std::vector<IpAddress> answers;
};

bool parse_dns(Bytes msg, Dns &d) {
  ByteCursor c(msg);
  std::uint16_t flags = 0;
  std::uint16_t qd = 0;
  std::uint16_t an = 0;
  if (!c.skip(2) || !c.read_u16(flags) || !c.read_u16(qd) || !c.read_u16(an) || !c.skip(4) ||
      qd != 1) {
    return false;
  }
  d.response = (flags & 0x8000U) != 0;
  d.rcode = static_cast<std::uint8_t>(flags & 0x0FU);
  if (!read_name(msg, c, d.qname) || !c.skip(4)) {
    return false;
  }
  for (std::uint16_t i = 0; i < an; ++i) {
    std::string owner;
    std::uint16_t type = 0;
    std::uint16_t rdlength = 0;
    Bytes rdata;
    if (!read_name(msg, c, owner) || !c.read_u16(type) || !c.skip(6) || !c.read_u16(rdlength) ||
        !c.take(rdlength, rdata)) {
      return false;
    }
    if (type == 1 && rdlength == 4) {
      d.answers.push_back(IpAddress::v4(rdata.data()));
    } else if (type == 28 && rdlength == 16) {
      d.answers.push_back(IpAddress::v6(rdata.data()));
    }
  }
  return true;
}

class ContractModel {
public:
  void feed(TimeUs ts, Bytes frame) {
    ++frames_;
    Packet p;
    if (!parse_packet(frame, p)) {
      return;
    }
    if ((p.proto == 17 || p.proto == 6) && p.sport == 53) {
      Dns d;
      if (p.proto == 17 && parse_dns(p.payload, d) && d.response) {
        local_.insert(p.dst);
        if (d.rcode == 0) {
          for (const IpAddress &a : d.answers) {
            names_[a] = d.qname;
          }
        }
        ++responses_;
      }
    }
    if (!local_.contains(p.src)) {
      return;
    }
    if ((p.proto == 17 || p.proto == 6) && (p.sport == 53 || p.dport == 53)) {
      return;
    }
    const auto it = names_.find(p.dst);
    const std::string name = it == names_.end() ? std::string() : it->second;
    EndpointTruth &e = endpoints_[name];
    if (e.packets == 0) {
      e.endpoint = name;
      e.first_seen = ts;
    }
    ++e.packets;
    e.bytes += p.ip_length;
    e.last_seen = ts;
    addresses_[name].insert(p.dst.to_string());
  }

  [[nodiscard]] GroundTruth result() const {
    GroundTruth t;
    t.frames = frames_;
    for (const auto &[name, e] : endpoints_) {
      EndpointTruth copy = e;
      const auto &set = addresses_.at(name);
      copy.addresses.assign(set.begin(), set.end());
      t.endpoints.push_back(copy);
    }
    for (const auto &[a, name] : names_) {
      t.final_addresses.emplace_back(a.to_string(), name);
    }
    std::sort(t.final_addresses.begin(), t.final_addresses.end());
    return t;
  }

  [[nodiscard]] std::uint64_t responses() const { return responses_; }

private:
  std::uint64_t frames_ = 0;
  std::uint64_t responses_ = 0;
  std::set<IpAddress> local_;
  std::map<IpAddress, std::string> names_;
  std::map<std::string, EndpointTruth> endpoints_;
  std::map<std::string, std::set<std::string>> addresses_;
};

void expect_same(const GroundTruth &expected, const GroundTruth &actual) {
  EXPECT_EQ(expected.frames, actual.frames);
  ASSERT_EQ(expected.endpoints.size(), actual.endpoints.size());
  for (std::size_t i = 0; i < expected.endpoints.size(); ++i) {
    const EndpointTruth &a = expected.endpoints[i];
    const EndpointTruth &b = actual.endpoints[i];
    SCOPED_TRACE("endpoint \"" + a.endpoint + "\"");
    EXPECT_EQ(a.endpoint, b.endpoint);
    EXPECT_EQ(a.packets, b.packets);
    EXPECT_EQ(a.bytes, b.bytes);
    EXPECT_EQ(a.first_seen, b.first_seen);
    EXPECT_EQ(a.last_seen, b.last_seen);
    EXPECT_EQ(a.addresses, b.addresses);
  }
  EXPECT_EQ(expected.final_addresses, actual.final_addresses);
}

const EndpointTruth *find(const GroundTruth &t, const std::string &name) {
  for (const EndpointTruth &e : t.endpoints) {
    if (e.endpoint == name) {
      return &e;
    }
  }
  return nullptr;
}

bool has_address(const EndpointTruth *e, const std::string &address) {
  return e != nullptr &&
         std::find(e->addresses.begin(), e->addresses.end(), address) != e->addresses.end();
}

// ---------------------------------------------------------------------------

TEST(Generate, SameOptionsSameBytes) {
  EXPECT_EQ(digest(options(30'000)), digest(options(30'000)));
  EXPECT_NE(digest(options(30'000, 20, 7)), digest(options(30'000, 20, 8)));
}

TEST(Generate, FrameCountTimestampsAndSizes) {
  const Options o = options(25'000);
  Generator g(o);
  TimeUs ts = 0;
  TimeUs previous = o.start_us;
  Bytes frame;
  std::uint64_t n = 0;
  std::uint64_t total = 0;
  std::uint64_t vlan = 0;
  while (g.next(ts, frame)) {
    ++n;
    total += frame.size();
    ASSERT_GE(ts, previous);
    ASSERT_GE(frame.size(), 60U);
    ASSERT_LE(frame.size(), 1518U);
    vlan += std::to_integer<int>(frame[12]) == 0x81 && std::to_integer<int>(frame[13]) == 0 ? 1 : 0;
    previous = ts;
  }
  EXPECT_EQ(n, o.packets);
  EXPECT_FALSE(g.next(ts, frame));
  EXPECT_EQ(g.truth().frames, o.packets);
  // 2000 packets/s: the last frame is about 12.5 s in.
  EXPECT_LT(previous - o.start_us, 12'500'000);
  EXPECT_GT(previous - o.start_us, 12'490'000);
  EXPECT_GT(vlan, 0U);
  const double mean = static_cast<double>(total) / static_cast<double>(n);
  EXPECT_GT(mean, 65.0);
  EXPECT_LT(mean, 100.0);
}

TEST(Generate, TruthMatchesAContractReadingOfTheBytes) {
  struct Case {
    std::uint64_t packets;
    std::uint32_t endpoints;
    std::uint64_t seed;
  };
  for (const Case c :
       {Case{40'000, 20, 7}, Case{40'000, 20, 99}, Case{3'000, 0, 1}, Case{3'000, 1, 2},
        Case{5'000, 2, 3}, Case{30'000, 300, 4}, Case{50, 20, 5}}) {
    SCOPED_TRACE("packets " + std::to_string(c.packets) + " endpoints " +
                 std::to_string(c.endpoints) + " seed " + std::to_string(c.seed));
    Generator g(options(c.packets, c.endpoints, c.seed));
    ContractModel model;
    TimeUs ts = 0;
    Bytes frame;
    std::uint64_t n = 0;
    while (g.next(ts, frame)) {
      model.feed(ts, frame);
      if (++n == c.packets / 3) { // truth() is valid mid-stream too
        expect_same(model.result(), g.truth());
      }
    }
    EXPECT_GT(model.responses(), 0U);
    const GroundTruth truth = g.truth();
    expect_same(model.result(), truth);
    std::uint64_t counted = 0;
    for (const EndpointTruth &e : truth.endpoints) {
      counted += e.packets;
      EXPECT_LE(e.first_seen, e.last_seen);
      EXPECT_GE(e.bytes, 28U * e.packets);
      EXPECT_TRUE(std::is_sorted(e.addresses.begin(), e.addresses.end()));
    }
    EXPECT_LE(counted, truth.frames);
    EXPECT_TRUE(
        std::is_sorted(truth.endpoints.begin(), truth.endpoints.end(),
                       [](const auto &a, const auto &b) { return a.endpoint < b.endpoint; }));
  }
}

TEST(Generate, ReResolutionHalfWay) {
  const Options o = options(20'000);
  Generator g(o);
  TimeUs ts = 0;
  Bytes frame;
  while (g.next(ts, frame)) {
  }
  const GroundTruth t = g.truth();
  ASSERT_FALSE(t.moved_address.empty());
  EXPECT_EQ(t.moved_from, "www.example.com");
  EXPECT_EQ(t.moved_to, "api.github.test");
  const auto half = o.start_us + static_cast<TimeUs>(o.packets / 2 * 1'000'000 / 2'000);
  EXPECT_GE(t.moved_at, half);
  EXPECT_LT(t.moved_at, half + 1'000'000);
  // Counted for both names: before the move for the first, after for the second.
  EXPECT_TRUE(has_address(find(t, "www.example.com"), t.moved_address));
  EXPECT_TRUE(has_address(find(t, "api.github.test"), t.moved_address));
  const auto it = std::find_if(t.final_addresses.begin(), t.final_addresses.end(),
                               [&](const auto &p) { return p.first == t.moved_address; });
  ASSERT_NE(it, t.final_addresses.end());
  EXPECT_EQ(it->second, "api.github.test");
}

TEST(Generate, EdgeCasesArePresent) {
  Generator g(options(20'000));
  TimeUs ts = 0;
  Bytes frame;
  while (g.next(ts, frame)) {
  }
  const GroundTruth t = g.truth();
  const EndpointTruth *unresolved = find(t, "");
  ASSERT_NE(unresolved, nullptr);
  EXPECT_EQ(&t.endpoints.front(), unresolved);
  EXPECT_TRUE(has_address(unresolved, "192.0.2.53"));  // glue only
  EXPECT_TRUE(has_address(unresolved, "192.0.2.99"));  // NXDOMAIN answer only
  EXPECT_TRUE(has_address(unresolved, "10.0.0.1"));    // the ICMP error quoting DNS
  EXPECT_TRUE(has_address(unresolved, "203.0.113.7")); // never resolved
  EXPECT_TRUE(has_address(unresolved, "2001:db8:ffff::7"));
  EXPECT_NE(find(t, "cdn.news.test"), nullptr); // asked in mixed case
  bool v6 = false;
  for (const auto &[address, name] : t.final_addresses) {
    EXPECT_NE(name, "decoy.example.test");
    EXPECT_NE(name, "missing.example.test");
    EXPECT_EQ(name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), std::string::npos);
    v6 = v6 || address.find(':') != std::string::npos;
  }
  EXPECT_TRUE(v6);
  EXPECT_EQ(find(t, "decoy.example.test"), nullptr);
  EXPECT_EQ(find(t, "missing.example.test"), nullptr);
}

TEST(Generate, JsonShape) {
  Generator g(options(5'000));
  TimeUs ts = 0;
  Bytes frame;
  while (g.next(ts, frame)) {
  }
  const GroundTruth t = g.truth();
  const auto j = nlohmann::json::parse(ta::generate::truth_to_json(t));
  EXPECT_EQ(j.at("frames").get<std::uint64_t>(), 5'000U);
  ASSERT_EQ(j.at("endpoints").size(), t.endpoints.size());
  ASSERT_EQ(j.at("addresses").size(), t.final_addresses.size());
  const auto &first = j.at("endpoints").at(0);
  EXPECT_EQ(first.at("endpoint").get<std::string>(), "");
  for (const auto &e : j.at("endpoints")) {
    for (const char *key : {"endpoint", "packets", "bytes", "first_seen", "last_seen"}) {
      EXPECT_TRUE(e.contains(key)) << key;
    }
    EXPECT_TRUE(e.at("addresses").is_array());
    const auto first_seen = e.at("first_seen").get<std::string>();
    EXPECT_EQ(first_seen.size(), std::string("2024-01-01T00:00:00.000000Z").size());
    EXPECT_EQ(first_seen.substr(0, 11), "2024-01-01T");
    EXPECT_EQ(first_seen.back(), 'Z');
  }
  ASSERT_EQ(j.at("flow_endpoints").size(), t.flow_endpoints.size());
  EXPECT_EQ(j.at("flow_endpoints").at(0).at("endpoint").get<std::string>(), "");
  for (const auto &e : j.at("flow_endpoints")) {
    for (const char *key : {"endpoint", "packets", "bytes", "received_packets", "received_bytes",
                            "first_seen", "last_seen"}) {
      EXPECT_TRUE(e.contains(key)) << key;
    }
    std::vector<std::string> keys;
    for (const auto &[key, value] : e.at("names").items()) {
      keys.push_back(key);
      EXPECT_TRUE(value.is_number_unsigned());
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"dns", "http", "none", "quic", "sni"})); // sorted
  }
  const auto &a = j.at("addresses").at(0);
  EXPECT_TRUE(a.at("address").is_string());
  EXPECT_TRUE(a.at("name").is_string());
  EXPECT_EQ(ta::format_rfc3339_us(t.endpoints.front().first_seen),
            first.at("first_seen").get<std::string>());
}

TEST(Generate, WriteCaptureReadsBackTheSameFrames) {
  const Options o = options(12'000);
  const std::string path = temp_path("roundtrip.pcap");
  auto written = ta::generate::write_capture(o, path);
  ASSERT_TRUE(written.ok()) << written.status().message();
  const GroundTruth &truth = *written;
  auto opened = ta::capture::FileReader::open(path);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  std::unique_ptr<ta::capture::FileReader> reader = std::move(opened).value();
  EXPECT_EQ(reader->link_type(), 1U);
  EXPECT_EQ(reader->snaplen(), 65535U);
  Generator g(o);
  TimeUs ts = 0;
  Bytes frame;
  ta::capture::Frame read;
  std::uint64_t n = 0;
  while (g.next(ts, frame)) {
    ASSERT_EQ(reader->next(read), ta::capture::ReadStatus::frame) << reader->status().message();
    ASSERT_EQ(read.ts_us, ts);
    ASSERT_EQ(read.wire_length, frame.size());
    ASSERT_TRUE(std::equal(frame.begin(), frame.end(), read.data.begin(), read.data.end()));
    ++n;
  }
  EXPECT_EQ(reader->next(read), ta::capture::ReadStatus::end);
  EXPECT_EQ(n, o.packets);
  expect_same(g.truth(), truth);
  reader.reset();
  std::filesystem::remove(path);
}

TEST(Generate, WriteCaptureNamesAFileItCannotWrite) {
  const std::string path = temp_path("no-such-dir") + "/out.pcap";
  const auto written = ta::generate::write_capture(options(10), path);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().code(), ta::StatusCode::io_error);
  EXPECT_EQ(written.status().message().rfind(path + ": cannot write (", 0), 0U)
      << written.status().message();
}

// tshark (scripts/install-deps installs it; without it this test skips, and
// under CI=true fails) dissects every frame without a malformed packet or a
// bad checksum, and sees the DNS responses the generator meant to write.
TEST(Generate, TsharkFindsNothingMalformed) {
  if (!ta::generate::test::have_tshark()) {
    const char *ci = std::getenv("CI");
    ASSERT_FALSE(ci != nullptr && std::string_view(ci) == "true") << "tshark not installed";
    GTEST_SKIP() << "tshark not installed";
  }
  const std::string path = temp_path("tshark.pcap");
  const auto written = ta::generate::write_capture(options(20'000), path);
  ASSERT_TRUE(written.ok()) << written.status().message();
  // tshark read the whole file: one line per frame, and a clean exit (a
  // filter below that tshark rejected, or a read error, is a non-zero exit,
  // never an empty "nothing found").
  const auto all = run_command("tshark -n -r '" + path + "' -T fields -e frame.number 2>/dev/null");
  ASSERT_EQ(all.exit_status, 0);
  EXPECT_EQ(static_cast<std::uint64_t>(std::count(all.out.begin(), all.out.end(), '\n')),
            written.value().frames);
  const auto bad = run_command(
      "tshark -n -r '" + path +
      "' -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE"
      " -Y '_ws.malformed || _ws.expert.severity >= error || ip.checksum.status == 0 ||"
      " udp.checksum.status == 0 || tcp.checksum.status == 0 || icmp.checksum.status == 0'"
      " -T fields -e frame.number 2>/dev/null");
  EXPECT_EQ(bad.exit_status, 0);
  EXPECT_EQ(bad.out, "");
  const auto responses =
      run_command("tshark -n -r '" + path + "' -Y 'dns.flags.response == 1 && !icmp' -T fields" +
                  " -e dns.flags.rcode 2>/dev/null");
  EXPECT_EQ(responses.exit_status, 0);
  EXPECT_NE(responses.out.find("0\n"), std::string::npos);
  EXPECT_NE(responses.out.find("3\n"), std::string::npos);
  std::filesystem::remove(path);
}

} // namespace
