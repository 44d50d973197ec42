// Hot paths must not allocate: parse_response, AddressTable::lookup, and
// TcpReassembler::feed for a message whole in one segment of a known flow.
// Counts calls to the (replaced, binary-wide) global operator new.
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/dns/address_table.hpp"
#include "ta/dns/message.hpp"
#include "ta/dns/tcp_reassembler.hpp"
#include "ta/testing/alloc_counter.hpp"

#include "dns_wire.hpp"

namespace ta::dns {
namespace {

std::size_t news() {
  return ta::testing::allocations();
}

TEST(NoAllocation, ParseResponse) {
  test::Wire w;
  w.header(1, 2, 0, 0).question("www.example.com");
  w.ptr(12).a("01020304");
  w.ptr(12).aaaa("20010db8000000000000000000000001");
  DnsResponse r;
  const std::size_t before = news();
  ASSERT_EQ(parse_response(w.span(), r), DnsError::ok);
  EXPECT_EQ(news(), before);
}

TEST(NoAllocation, AddressTableLookup) {
  AddressTable t(1000);
  for (std::uint8_t i = 0; i < 200; ++i) {
    IpAddress a;
    a.family = 4;
    a.bytes[3] = i;
    t.learn(a, "n" + std::to_string(i % 7), i);
  }
  IpAddress probe;
  probe.family = 4;
  const std::size_t before = news();
  std::size_t hits = 0;
  for (std::uint8_t i = 0; i < 255; ++i) {
    probe.bytes[3] = i;
    hits += t.lookup(probe).has_value() ? 1U : 0U;
  }
  EXPECT_EQ(news(), before);
  EXPECT_EQ(hits, 200U);
}

TEST(NoAllocation, ReassemblerWholeMessage) {
  TcpReassembler r;
  TcpFlowKey k;
  k.src.family = 4;
  k.dst.family = 4;
  k.src_port = 53;
  k.dst_port = 40000;
  std::size_t delivered = 0;
  const TcpReassembler::MessageSink sink = [&](Bytes) { ++delivered; };
  const std::vector<std::byte> unit = test::hex("0003 aabbcc 0001 dd");
  r.feed(k, 0, 0x02, {}, sink); // SYN: the flow is set up (may allocate)
  const std::size_t before = news();
  std::uint32_t seq = 1;
  for (int i = 0; i < 100; ++i) {
    r.feed(k, seq, 0x18, unit, sink);
    seq += static_cast<std::uint32_t>(unit.size());
  }
  EXPECT_EQ(news(), before);
  EXPECT_EQ(delivered, 200U);
}

} // namespace
} // namespace ta::dns
