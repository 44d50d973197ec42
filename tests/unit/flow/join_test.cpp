// The client's first bytes joined in sequence order (tcp_join.hpp), seen
// through the fake seam: what the namer receives is exactly the stream.
#include <memory>

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace ta::flow {
namespace {

using store::NameSource;
using test::bytes;
using test::tcp;

struct Joined {
  std::shared_ptr<test::FakeLog> log = std::make_shared<test::FakeLog>();
  std::unique_ptr<test::Harness> h;
  explicit Joined(Options o = {}) : h(test::fake(o, log)) {}
  void client(std::uint32_t seq, std::string_view payload, std::uint8_t flags = kAck) {
    h->feed(tcp("10.0.0.1", 5000, "1.1.1.1", 443, flags, seq, bytes(payload)));
  }
  [[nodiscard]] std::string stream() const {
    return log->streams.empty() ? std::string() : log->streams[0];
  }
};

TEST(Join, InOrderSegmentsAreJoined) {
  Joined j;
  j.client(1000, "", kSyn);
  j.client(1001, "sni:exa");
  j.client(1008, "mple.com\n");
  EXPECT_EQ(j.stream(), "sni:example.com\n");
  ASSERT_EQ(j.h->out.size(), 3U);
  EXPECT_EQ(j.h->out[0].name, "example.com");
}

TEST(Join, OutOfOrderSegmentsWaitForTheHole) {
  Joined j;
  j.client(1000, "", kSyn);
  j.client(1008, "mple.com\n");
  EXPECT_EQ(j.stream(), "");
  EXPECT_GT(j.h->table->stats().buffered_bytes, 0U);
  j.client(1001, "sni:exa");
  EXPECT_EQ(j.stream(), "sni:example.com\n");
  EXPECT_EQ(j.h->out.back().name, "example.com");
  EXPECT_EQ(j.h->table->stats().buffered_bytes, 0U);
}

TEST(Join, ThreePiecesInReverseOrder) {
  Joined j;
  j.client(1000, "", kSyn);
  j.client(1009, "ple.com\n");
  j.client(1005, "exam");
  j.client(1001, "sni:");
  EXPECT_EQ(j.stream(), "sni:example.com\n");
}

TEST(Join, RetransmitsAndOverlapsAreTrimmed) {
  Joined j;
  j.client(1000, "", kSyn);
  j.client(1001, "sni:ex");
  j.client(1001, "sni:ex");      // retransmit
  j.client(1003, "i:exam");      // overlap, new bytes "am"
  j.client(1001, "sni:example"); // overlap, new bytes "ple"
  j.client(1012, ".com\n");
  EXPECT_EQ(j.stream(), "sni:example.com\n");
}

TEST(Join, WithoutTheSynTheFirstPayloadSegmentStartsTheStream) {
  Joined j;
  j.client(5000, "sni:mid");
  j.client(4990, "0123456789"); // from before the start: ignored
  j.client(5007, ".example\n");
  EXPECT_EQ(j.stream(), "sni:mid.example\n");
}

TEST(Join, DataOnTheSynStartsAfterIt) {
  Joined j;
  j.client(1000, "sni:fast", kSyn); // TCP Fast Open
  j.client(1009, ".example\n");
  EXPECT_EQ(j.stream(), "sni:fast.example\n");
}

TEST(Join, SequenceNumbersWrap) {
  Joined j;
  j.client(0xFFFFFFFCU, "", kSyn); // stream starts at 0xFFFFFFFD
  j.client(0x00000001U, "ple\n");  // 4 bytes after the start
  j.client(0xFFFFFFFDU, "sni:");
  EXPECT_EQ(j.stream(), "sni:ple\n");
}

TEST(Join, AHoleStillOpenAtTheDecisionMeansNoName) {
  Options o;
  o.max_wait_packets = 4;
  Joined j(o);
  j.h->dns_any["1.1.1.1"] = "fallback.example";
  j.client(1000, "", kSyn);
  j.client(1008, "mple.com\n"); // "sni:exa" never comes
  j.client(1017, "x");
  j.client(1018, "y");
  ASSERT_EQ(j.h->out.size(), 4U);
  EXPECT_EQ(j.h->out[0].name, "fallback.example");
  EXPECT_EQ(j.h->out[0].source, NameSource::dns);
  EXPECT_EQ(j.h->table->stats().outcome(NamingOutcome::tcp_gap), 1U);
  EXPECT_EQ(j.h->table->stats().buffered_bytes, 0U);
}

TEST(Join, SegmentsBeyondTheWindowAreDroppedAndCounted) {
  Options o;
  o.max_first_payload = 64;
  Joined j(o);
  j.client(1000, "", kSyn);
  j.client(1000 + 1 + 100000, "far away");
  j.h->table->release_all();
  EXPECT_EQ(j.h->table->stats().outcome(NamingOutcome::tcp_window_dropped), 1U);
  EXPECT_EQ(j.h->table->stats().outcome(NamingOutcome::tcp_gap), 0U);
}

TEST(Join, TheBufferBudgetIsGlobal) {
  Options o;
  o.max_buffered_bytes = 10;
  Joined j(o);
  j.client(1000, "", kSyn);
  j.client(1011, "0123456789"); // fits the budget exactly
  EXPECT_EQ(j.h->table->stats().buffered_bytes, 10U);
  j.client(1031, "z"); // over it
  j.h->table->release_all();
  EXPECT_EQ(j.h->table->stats().outcome(NamingOutcome::tcp_window_dropped), 1U);
  EXPECT_EQ(j.h->table->stats().buffered_bytes, 0U);
}

} // namespace
} // namespace ta::flow
