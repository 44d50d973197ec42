#include <vector>

#include <gtest/gtest.h>

#include "ta/dns/tcp_reassembler.hpp"

namespace ta::dns {
namespace {

constexpr std::uint8_t kFin = 0x01;
constexpr std::uint8_t kSyn = 0x02;
constexpr std::uint8_t kRst = 0x04;
constexpr std::uint8_t kAck = 0x10;

using Buf = std::vector<std::byte>;

// A message body of `n` octets whose content encodes `tag`.
Buf body(std::size_t n, unsigned tag) {
  Buf b(n);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<std::byte>((std::size_t{tag} * 31U + i) & 0xFFU);
  }
  return b;
}

// [length(16)][message]
Buf framed(const Buf &msg) {
  Buf out{static_cast<std::byte>(msg.size() >> 8U), static_cast<std::byte>(msg.size() & 0xFFU)};
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

Buf cat(std::initializer_list<Buf> parts) {
  Buf out;
  for (const auto &p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

TcpFlowKey flow(unsigned n) {
  TcpFlowKey k;
  k.src = *IpAddress::parse("192.0.2.53");
  k.dst = *IpAddress::parse("198.51.100.1");
  k.src_port = 53;
  k.dst_port = static_cast<std::uint16_t>(40000 + n);
  return k;
}

struct Harness {
  explicit Harness(TcpReassembler::Limits limits = {}) : r(limits) {}

  void feed(const TcpFlowKey &k, std::uint32_t seq, std::uint8_t flags, const Buf &payload) {
    r.feed(k, seq, flags, payload, sink);
  }
  // Feeds `stream[from, to)` as one segment whose first octet is at isn + 1 + from.
  void feed_range(const TcpFlowKey &k, std::uint32_t isn, const Buf &stream, std::size_t from,
                  std::size_t to, std::uint8_t flags = kAck) {
    const Buf seg(stream.begin() + static_cast<std::ptrdiff_t>(from),
                  stream.begin() + static_cast<std::ptrdiff_t>(to));
    feed(k, isn + 1U + static_cast<std::uint32_t>(from), flags, seg);
  }

  TcpReassembler r;
  std::vector<Buf> got;
  TcpReassembler::MessageSink sink = [this](Bytes m) { got.emplace_back(m.begin(), m.end()); };
};

TEST(TcpReassembler, MessageInOneSegment) {
  Harness h;
  const Buf m = body(40, 1);
  h.feed(flow(0), 1000, kSyn, {});
  h.feed(flow(0), 1001, kAck | 0x08, framed(m));
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], m);
  EXPECT_EQ(h.r.stats().messages, 1U);
  EXPECT_EQ(h.r.flow_count(), 1U);
}

TEST(TcpReassembler, MessageInOneSegmentWithoutSyn) {
  Harness h;
  const Buf m = body(40, 1);
  h.feed(flow(0), 77, kAck, framed(m));
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], m);
}

TEST(TcpReassembler, SplitOverThreeSegments) {
  Harness h;
  const Buf m = body(300, 2);
  const Buf s = framed(m);
  const std::uint32_t isn = 5000;
  h.feed(flow(0), isn, kSyn, {});
  h.feed_range(flow(0), isn, s, 0, 1); // half of the length prefix
  h.feed_range(flow(0), isn, s, 1, 100);
  EXPECT_TRUE(h.got.empty());
  h.feed_range(flow(0), isn, s, 100, s.size());
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], m);
}

TEST(TcpReassembler, PrefixThenWholeBody) {
  Harness h;
  const Buf m = body(50, 3);
  const Buf s = framed(m);
  h.feed(flow(0), 0, kSyn, {});
  h.feed_range(flow(0), 0, s, 0, 2);
  h.feed_range(flow(0), 0, s, 2, s.size());
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], m);
}

TEST(TcpReassembler, TwoMessagesInOneSegmentAndOneSplitAcross) {
  Harness h;
  const Buf a = body(20, 4);
  const Buf b = body(30, 5);
  const Buf c = body(40, 6);
  const Buf s = cat({framed(a), framed(b), framed(c)});
  h.feed(flow(0), 9, kSyn, {});
  h.feed_range(flow(0), 9, s, 0, 22 + 32 + 10);
  ASSERT_EQ(h.got.size(), 2U);
  EXPECT_EQ(h.got[0], a);
  EXPECT_EQ(h.got[1], b);
  h.feed_range(flow(0), 9, s, 22 + 32 + 10, s.size());
  ASSERT_EQ(h.got.size(), 3U);
  EXPECT_EQ(h.got[2], c);
  EXPECT_EQ(h.r.stats().messages, 3U);
}

TEST(TcpReassembler, EmptyMessageDelivered) {
  Harness h;
  h.feed(flow(0), 1, kAck, framed({}));
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_TRUE(h.got[0].empty());
}

TEST(TcpReassembler, RetransmissionIgnored) {
  Harness h;
  const Buf a = body(20, 7);
  const Buf b = body(200, 8);
  const Buf s = cat({framed(a), framed(b)});
  h.feed(flow(0), 100, kSyn, {});
  h.feed_range(flow(0), 100, s, 0, 22);
  h.feed_range(flow(0), 100, s, 0, 22); // whole retransmission
  EXPECT_EQ(h.got.size(), 1U);
  h.feed_range(flow(0), 100, s, 22, 80);
  // Retransmission overlapping old and new data: only the new part counts.
  h.feed_range(flow(0), 100, s, 10, 150);
  h.feed_range(flow(0), 100, s, 60, s.size());
  ASSERT_EQ(h.got.size(), 2U);
  EXPECT_EQ(h.got[1], b);
  EXPECT_EQ(h.r.stats().gaps, 0U);
  // Keep-alive (one octet before the window) and a late duplicate change nothing.
  h.feed(flow(0), 100 + static_cast<std::uint32_t>(s.size()), kAck, Buf{std::byte{0}});
  h.feed_range(flow(0), 100, s, 0, s.size());
  EXPECT_EQ(h.got.size(), 2U);
}

TEST(TcpReassembler, GapDropsPartialAndResyncs) {
  Harness h;
  const Buf a = body(100, 9);
  const Buf b = body(30, 10);
  const Buf s = cat({framed(a), framed(b)});
  h.feed(flow(0), 0, kSyn, {});
  h.feed_range(flow(0), 0, s, 0, 40);
  // 40..60 lost; 60..102 arrives: a's partial (40 octets) is dropped.
  h.feed_range(flow(0), 0, s, 60, 102);
  EXPECT_EQ(h.r.stats().gaps, 1U);
  EXPECT_EQ(h.r.stats().bytes_dropped, 40U);
  // The segment after the gap was mid-message; bytes go to garbage units
  // that the parser would reject, and nothing from `a` is delivered.
  for (const auto &g : h.got) {
    EXPECT_NE(g, a);
  }

  // A later gap that lands on a unit boundary resynchronises exactly.
  Harness h2;
  h2.feed(flow(1), 0, kSyn, {});
  h2.feed_range(flow(1), 0, s, 0, 50);
  h2.feed_range(flow(1), 0, s, 102, s.size());
  ASSERT_EQ(h2.got.size(), 1U);
  EXPECT_EQ(h2.got[0], b);
  EXPECT_EQ(h2.r.stats().gaps, 1U);
  EXPECT_EQ(h2.r.stats().bytes_dropped, 50U);
}

TEST(TcpReassembler, OutOfOrderEarlierSegmentIgnoredAfterResync) {
  Harness h;
  const Buf a = body(10, 11);
  const Buf b = body(10, 12);
  const Buf s = cat({framed(a), framed(b)});
  h.feed(flow(0), 0, kSyn, {});
  h.feed_range(flow(0), 0, s, 12, 24); // b first
  h.feed_range(flow(0), 0, s, 0, 12);  // then a: now behind the window
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], b);
  EXPECT_EQ(h.r.stats().gaps, 1U);
}

TEST(TcpReassembler, SequenceWraparound) {
  Harness h;
  const Buf m = body(500, 13);
  const Buf s = framed(m);
  const std::uint32_t isn = 0xFFFFFF00U;
  h.feed(flow(0), isn, kSyn, {});
  h.feed_range(flow(0), isn, s, 0, 200); // crosses 2^32
  h.feed_range(flow(0), isn, s, 100, 300);
  h.feed_range(flow(0), isn, s, 300, s.size());
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], m);
  EXPECT_EQ(h.r.stats().gaps, 0U);
}

TEST(TcpReassembler, DirectionsAreIndependent) {
  Harness h;
  TcpFlowKey rev = flow(0);
  std::swap(rev.src, rev.dst);
  std::swap(rev.src_port, rev.dst_port);
  const Buf q = framed(body(30, 14));
  const Buf r = framed(body(30, 15));
  h.feed(flow(0), 0, kSyn, {});
  h.feed(rev, 500, kSyn | kAck, {});
  h.feed_range(flow(0), 0, q, 0, 10);
  h.feed_range(rev, 500, r, 0, 10);
  h.feed_range(flow(0), 0, q, 10, q.size());
  h.feed_range(rev, 500, r, 10, r.size());
  ASSERT_EQ(h.got.size(), 2U);
  EXPECT_EQ(h.got[0], body(30, 14));
  EXPECT_EQ(h.got[1], body(30, 15));
  EXPECT_EQ(h.r.flow_count(), 2U);
}

TEST(TcpReassembler, FinDeliversCompleteAndForgets) {
  Harness h;
  const Buf a = body(20, 16);
  const Buf s = cat({framed(a), framed(body(50, 17))});
  h.feed(flow(0), 0, kSyn, {});
  h.feed_range(flow(0), 0, s, 0, 30, kAck | kFin);
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], a);
  EXPECT_EQ(h.r.flow_count(), 0U);
  EXPECT_EQ(h.r.stats().bytes_dropped, 8U);
}

TEST(TcpReassembler, RstForgetsPartial) {
  Harness h;
  const Buf s = framed(body(50, 18));
  h.feed(flow(0), 0, kSyn, {});
  h.feed_range(flow(0), 0, s, 0, 20);
  h.feed(flow(0), 21, kRst, {});
  EXPECT_EQ(h.r.flow_count(), 0U);
  EXPECT_EQ(h.r.stats().bytes_dropped, 20U);
  EXPECT_TRUE(h.got.empty());
}

TEST(TcpReassembler, FinOnUnknownFlowDeliversWithoutTracking) {
  Harness h;
  const Buf a = body(20, 19);
  h.feed(flow(0), 1234, kAck | kFin, cat({framed(a), Buf{std::byte{0}}}));
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], a);
  EXPECT_EQ(h.r.flow_count(), 0U);
  EXPECT_EQ(h.r.stats().bytes_dropped, 1U);
}

TEST(TcpReassembler, BareAckCreatesNoFlow) {
  Harness h;
  h.feed(flow(0), 1, kAck, {});
  EXPECT_EQ(h.r.flow_count(), 0U);
}

TEST(TcpReassembler, SynRestartsDirection) {
  Harness h;
  const Buf s = framed(body(50, 20));
  h.feed(flow(0), 0, kSyn, {});
  h.feed_range(flow(0), 0, s, 0, 20);
  h.feed(flow(0), 9000, kSyn, {});
  EXPECT_EQ(h.r.stats().bytes_dropped, 20U);
  h.feed_range(flow(0), 9000, s, 0, s.size());
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.r.stats().gaps, 0U);
}

TEST(TcpReassembler, FlowEvictionLeastRecentlyFed) {
  Harness h(TcpReassembler::Limits{.max_flows = 2, .max_buffered_bytes = 1U << 20U});
  const Buf s = framed(body(100, 21));
  for (unsigned f = 0; f < 2; ++f) {
    h.feed(flow(f), 0, kSyn, {});
    h.feed_range(flow(f), 0, s, 0, 10);
  }
  h.feed_range(flow(0), 0, s, 10, 20); // flow 0 is now the most recent
  h.feed(flow(2), 0, kSyn, {});        // evicts flow 1
  EXPECT_EQ(h.r.flow_count(), 2U);
  EXPECT_EQ(h.r.stats().flows_evicted, 1U);
  EXPECT_EQ(h.r.stats().bytes_dropped, 10U);
  h.feed_range(flow(0), 0, s, 20, s.size());
  ASSERT_EQ(h.got.size(), 1U);
  // Flow 1's rest arrives as a new direction: its mid-message bytes are not
  // mistaken for the completed message.
  h.feed_range(flow(1), 0, s, 10, s.size());
  EXPECT_EQ(h.r.stats().flows_evicted, 2U);
  for (std::size_t i = 1; i < h.got.size(); ++i) {
    EXPECT_NE(h.got[i], body(100, 21));
  }
}

TEST(TcpReassembler, ManyFlowsStayBounded) {
  Harness h(TcpReassembler::Limits{.max_flows = 64, .max_buffered_bytes = 1U << 20U});
  const Buf s = framed(body(100, 22));
  for (unsigned f = 0; f < 1000; ++f) {
    h.feed(flow(f), 0, kSyn, {});
    h.feed_range(flow(f), 0, s, 0, 50);
    EXPECT_LE(h.r.flow_count(), 64U);
  }
  EXPECT_EQ(h.r.stats().flows_evicted, 1000U - 64U);
  // The 64 most recent complete.
  for (unsigned f = 1000 - 64; f < 1000; ++f) {
    h.feed_range(flow(f), 0, s, 50, s.size(), kAck | kFin);
  }
  EXPECT_EQ(h.got.size(), 64U);
  EXPECT_EQ(h.r.flow_count(), 0U);
}

TEST(TcpReassembler, BufferBoundSkipsOversizeAndResyncs) {
  Harness h(TcpReassembler::Limits{.max_flows = 16, .max_buffered_bytes = 1000});
  const Buf big = body(1500, 23);
  const Buf small = body(40, 24);
  const Buf s = cat({framed(big), framed(small)});
  h.feed(flow(0), 0, kSyn, {});
  for (std::size_t at = 0; at < s.size(); at += 300) {
    h.feed_range(flow(0), 0, s, at, std::min(s.size(), at + 300));
  }
  EXPECT_EQ(h.r.stats().oversize, 1U);
  ASSERT_EQ(h.got.size(), 1U);
  EXPECT_EQ(h.got[0], small);
  EXPECT_EQ(h.r.stats().bytes_dropped, 1502U);
  // Whole-segment messages need no buffer, so any size passes.
  h.feed(flow(1), 0, kAck, framed(big));
  ASSERT_EQ(h.got.size(), 2U);
  EXPECT_EQ(h.got[1], big);
}

TEST(TcpReassembler, BufferBoundIsShared) {
  Harness h(TcpReassembler::Limits{.max_flows = 16, .max_buffered_bytes = 250});
  const Buf s = framed(body(100, 25));
  for (unsigned f = 0; f < 3; ++f) {
    h.feed(flow(f), 0, kSyn, {});
    h.feed_range(flow(f), 0, s, 0, 10);
  }
  EXPECT_EQ(h.r.stats().oversize, 1U); // the third would need 300 > 250
  // Completing one frees its share; the third direction resumes after its skip.
  for (unsigned f = 0; f < 3; ++f) {
    h.feed_range(flow(f), 0, s, 10, s.size());
  }
  EXPECT_EQ(h.got.size(), 2U);
  h.feed_range(flow(2), 0, cat({s, s}), s.size(), 2 * s.size());
  EXPECT_EQ(h.got.size(), 3U);
}

TEST(TcpReassembler, ZeroFlowsIsStateless) {
  Harness h(TcpReassembler::Limits{.max_flows = 0, .max_buffered_bytes = 0});
  const Buf a = body(10, 26);
  h.feed(flow(0), 0, kAck, cat({framed(a), framed(a)}));
  EXPECT_EQ(h.got.size(), 2U);
  EXPECT_EQ(h.r.flow_count(), 0U);
}

} // namespace
} // namespace ta::dns
