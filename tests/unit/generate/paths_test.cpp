// The generator's less common paths, read back from the bytes it writes:
// link types other than Ethernet, IPv4 fragments, DNS over TCP with a split
// response, and the bounded DNS table of the truth.
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "ta/generate/generate.hpp"

#include "test_util.hpp"

namespace ta::generate {
namespace {

using test::options;

std::vector<std::vector<std::uint8_t>> frames_of(const Options &o) {
  Generator g(o);
  std::vector<std::vector<std::uint8_t>> out;
  TimeUs ts = 0;
  Bytes f;
  while (g.next(ts, f)) {
    const auto *p = reinterpret_cast<const std::uint8_t *>(f.data());
    out.emplace_back(p, p + f.size());
  }
  return out;
}

std::uint16_t be16(const std::uint8_t *p) {
  return static_cast<std::uint16_t>((p[0] << 8U) | p[1]);
}

// The IP packet of an Ethernet frame (one 802.1Q tag at most), padding cut.
std::vector<std::uint8_t> ip_of_ethernet(const std::vector<std::uint8_t> &f) {
  const std::size_t l3 = be16(f.data() + 12) == 0x8100 ? 18 : 14;
  const std::uint8_t *ip = f.data() + l3;
  const std::size_t n = (ip[0] >> 4U) == 6 ? 40U + be16(ip + 4) : be16(ip + 2);
  return {ip, ip + n};
}

bool from_client(const std::vector<std::uint8_t> &eth) {
  // Source MAC 02:00:00:00:00:02 or :03 (the gateway is :01).
  return eth[6] == 0x02 && eth[11] >= 2;
}

Options all_paths(std::uint32_t link) {
  Options o = options(4000, 12, 5);
  o.link = link;
  o.dns_over_tcp = true;
  o.fragments = true;
  return o;
}

TEST(GeneratePaths, EveryLinkTypeCarriesTheEthernetFramesIpPackets) {
  const auto eth = frames_of(all_paths(1));
  for (const std::uint32_t link : {113U, 276U, 101U, 0U}) {
    SCOPED_TRACE(link);
    Generator probe(all_paths(link));
    EXPECT_EQ(probe.link_type(), link);
    const auto frames = frames_of(all_paths(link));
    ASSERT_EQ(frames.size(), eth.size());
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const auto ip = ip_of_ethernet(eth[i]);
      const auto &f = frames[i];
      const bool vlan = be16(eth[i].data() + 12) == 0x8100;
      std::size_t head = 0;
      if (link == 113) {
        EXPECT_EQ(be16(f.data()), from_client(eth[i]) ? 4 : 0) << i; // packet type
        EXPECT_EQ(be16(f.data() + 2), 1);                            // ARPHRD_ETHER
        EXPECT_EQ(0, std::memcmp(f.data() + 6, eth[i].data() + 6, 6)) << i;
        EXPECT_EQ(be16(f.data() + 14), vlan ? 0x8100 : (ip[0] >> 4U) == 6 ? 0x86DD : 0x0800);
        head = vlan ? 20 : 16;
      } else if (link == 276) {
        EXPECT_EQ(f[10], from_client(eth[i]) ? 4 : 0) << i;
        EXPECT_EQ(be16(f.data()), vlan ? 0x8100 : (ip[0] >> 4U) == 6 ? 0x86DD : 0x0800);
        head = vlan ? 24 : 20;
      } else if (link == 0) {
        EXPECT_EQ(f[0], (ip[0] >> 4U) == 6 ? 24 : 2) << i; // AF_INET / AF_INET6, little-endian
        head = 4;
      }
      ASSERT_EQ(f.size(), head + ip.size()) << i;
      EXPECT_EQ(0, std::memcmp(f.data() + head, ip.data(), ip.size())) << i;
    }
  }
}

TEST(GeneratePaths, FragmentsComeInPairsOfOneDnsResponse) {
  const auto frames = frames_of(all_paths(1));
  int pairs = 0;
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
    const auto a = ip_of_ethernet(frames[i]);
    if (a[0] != 0x45 || (be16(a.data() + 6) & 0x2000U) == 0) {
      continue;
    }
    ++pairs;
    const auto b = ip_of_ethernet(frames[i + 1]);
    EXPECT_EQ(be16(a.data() + 6), 0x2000);                         // MF, offset 0
    EXPECT_EQ(be16(b.data() + 6), (a.size() - 20) / 8);            // no MF, offset in 8-byte units
    EXPECT_EQ(be16(a.data() + 4), be16(b.data() + 4));             // one IP ID
    EXPECT_EQ(a[9], 17);                                           // UDP
    EXPECT_EQ(be16(a.data() + 20), 53);                            // from the resolver
    EXPECT_EQ(be16(a.data() + 24), a.size() - 20 + b.size() - 20); // UDP length: the whole
  }
  EXPECT_GE(pairs, 1);
}

TEST(GeneratePaths, DnsOverTcpSplitsEveryResponseInTwo) {
  const auto frames = frames_of(all_paths(1));
  int responses = 0;
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
    const auto ip = ip_of_ethernet(frames[i]);
    const std::size_t ihl = (ip[0] >> 4U) == 6 ? 40 : 20;
    const std::uint8_t proto = (ip[0] >> 4U) == 6 ? ip[6] : ip[9];
    if (proto != 6 || be16(ip.data() + ihl) != 53) {
      continue;
    }
    const std::size_t payload = ip.size() - ihl - 20;
    if (payload == 0) {
      continue;
    }
    // The first segment: the 2-byte length promises more than it carries;
    // the next frame carries exactly the rest.
    const std::size_t length = be16(ip.data() + ihl + 20);
    ASSERT_GT(length + 2, payload);
    const auto next = ip_of_ethernet(frames[i + 1]);
    EXPECT_EQ(next.size() - ihl - 20, length + 2 - payload);
    ++responses;
    ++i;
  }
  EXPECT_GE(responses, 2);
}

TEST(GeneratePaths, TheBoundedTableForgetsAndCountsLessAsResolved) {
  Options bounded = options(20000, 40, 3);
  bounded.dns_table_size = 16;
  Generator a(bounded);
  Generator b(options(20000, 40, 3));
  TimeUs ts = 0;
  Bytes f;
  while (a.next(ts, f) && b.next(ts, f)) {
  }
  const GroundTruth ta = a.truth();
  const GroundTruth tb = b.truth();
  EXPECT_LE(ta.final_addresses.size(), 16U);
  EXPECT_GT(tb.final_addresses.size(), 16U);
  const auto unresolved = [](const GroundTruth &t) {
    return t.endpoints.empty() || !t.endpoints.front().endpoint.empty()
               ? std::uint64_t{0}
               : t.endpoints.front().packets;
  };
  EXPECT_GT(unresolved(ta), unresolved(tb));
  EXPECT_EQ(ta.frames, tb.frames);
}

TEST(GeneratePaths, OnlyKnownLinkTypesAreWritten) {
  Options o = options(10);
  o.link = 147;
  const auto r = write_capture(o, test::temp_path("bad_link.pcap"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_invalid_argument());
  EXPECT_TRUE(is_generated_link(276));
  EXPECT_FALSE(is_generated_link(147));
}

} // namespace
} // namespace ta::generate
