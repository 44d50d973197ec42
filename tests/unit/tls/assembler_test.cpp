// ClientHelloAssembler: real first flights (see test_util.hpp for where each
// fixture and its expected name come from) split at every byte, across
// records, and record layers that are not TLS or that lie.
#include <string>

#include <gtest/gtest.h>

#include "ta/tls/tls.hpp"

#include "test_util.hpp"

namespace ta::tls {
namespace {

using test::Buf;
using test::hex;
using test::text;
using A = AssemblerState;
using S = ClientHelloStatus;

struct Real {
  std::string_view record_hex;
  std::string_view name;
};

const Real kReal[] = {
    {test::kChromeRecord, "www.iit.cnr.it"},
    {test::kChromePaddedRecord, "www.iit.cnr.it"},
    {test::kEsniRecord1, "these-are-not-the-droids-youre-looking-for.com"},
    {test::kEsniRecord2, "you-think-thats-normal-tls-traffic-youre-seeing.com"},
    {test::kJa4TcpRecord, "cloudflare-quic.com"},
};

Bytes part(const Buf &b, std::size_t from, std::size_t to) {
  return Bytes(b).subspan(from, to - from);
}

TEST(Assembler, WholeRecordInOnePiece) {
  ClientHelloAssembler a;
  for (const Real &r : kReal) {
    a.reset();
    const Buf rec = hex(r.record_hex);
    ASSERT_EQ(a.feed(rec), A::done);
    const ClientHelloResult res = a.result();
    ASSERT_EQ(res.status, S::ok) << r.name;
    EXPECT_EQ(text(res.server_name), r.name);
    EXPECT_EQ(a.message().size(), rec.size() - 5);
  }
}

TEST(Assembler, SplitAtEveryByte) {
  ClientHelloAssembler a;
  for (const Real &r : kReal) {
    const Buf rec = hex(r.record_hex);
    for (std::size_t cut = 0; cut <= rec.size(); ++cut) {
      a.reset();
      const A first = a.feed(part(rec, 0, cut));
      ASSERT_EQ(first, cut == rec.size() ? A::done : A::need_more) << r.name << " cut " << cut;
      ASSERT_EQ(a.result().status, cut == rec.size() ? S::ok : S::need_more);
      ASSERT_EQ(a.feed(part(rec, cut, rec.size())), A::done);
      ASSERT_EQ(text(a.result().server_name), r.name) << cut;
    }
  }
}

TEST(Assembler, OneByteAtATime) {
  const Buf rec = hex(test::kChromeRecord);
  ClientHelloAssembler a;
  for (std::size_t i = 0; i < rec.size(); ++i) {
    ASSERT_EQ(a.state(), A::need_more) << i;
    a.feed(part(rec, i, i + 1));
  }
  ASSERT_EQ(a.state(), A::done);
  EXPECT_EQ(text(a.result().server_name), "www.iit.cnr.it");
}

TEST(Assembler, AcrossRecords) {
  const Buf msg = test::strip_record(hex(test::kEsniRecord1));
  ClientHelloAssembler a;
  // Two records (split at every point), then many small ones.
  for (std::size_t first = 1; first < msg.size(); ++first) {
    Buf recs =
        test::records(Buf(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(first)), first);
    test::append(recs,
                 test::records(Buf(msg.begin() + static_cast<std::ptrdiff_t>(first), msg.end()),
                               msg.size()));
    a.reset();
    ASSERT_EQ(a.feed(recs), A::done) << first;
    ASSERT_EQ(text(a.result().server_name), "these-are-not-the-droids-youre-looking-for.com");
  }
  for (const std::size_t frag : {1U, 7U, 100U}) {
    const Buf recs = test::records(msg, frag);
    a.reset();
    ASSERT_EQ(a.feed(recs), A::done) << frag;
    ASSERT_EQ(text(a.result().server_name), "these-are-not-the-droids-youre-looking-for.com");
  }
}

TEST(Assembler, BytesAfterTheMessageAreIgnored) {
  // The ClientHello and the start of something else in the same record, then
  // a record that is not handshake: done at the message's last byte.
  Buf hs = test::strip_record(hex(test::kJa4TcpRecord));
  const std::size_t n = hs.size();
  test::append(hs, hex("0b000000"));
  Buf recs = test::records(hs, hs.size());
  test::append(recs, hex("1703030001ff"));
  ClientHelloAssembler a;
  ASSERT_EQ(a.feed(recs), A::done);
  EXPECT_EQ(a.message().size(), n);
  EXPECT_EQ(text(a.result().server_name), "cloudflare-quic.com");
  // Later feeds change nothing.
  EXPECT_EQ(a.feed(hex("00")), A::done);
}

TEST(Assembler, NotTls) {
  ClientHelloAssembler a;
  EXPECT_EQ(a.feed(test::bytes("GET / HTTP/1.1\r\n")), A::not_tls);
  EXPECT_EQ(a.result().status, S::not_tls);
  a.reset();
  EXPECT_EQ(a.feed(hex("16")), A::need_more);
  EXPECT_EQ(a.feed(hex("02")), A::not_tls); // version 2.x
  a.reset();
  // An SSLv2-compatible ClientHello (RFC 5246 App. E.2) is not read.
  EXPECT_EQ(a.feed(hex("80f1010301")), A::not_tls);
  a.reset();
  EXPECT_EQ(a.feed(hex("17030300")), A::not_tls); // application data first
  EXPECT_EQ(a.feed(hex("16")), A::not_tls);       // sticks
}

TEST(Assembler, NotAClientHello) {
  // A ServerHello in a handshake record: decided at its type byte.
  ClientHelloAssembler a;
  EXPECT_EQ(a.feed(hex("160303004a02")), A::done);
  EXPECT_EQ(a.result().status, S::not_client_hello);
}

TEST(Assembler, RecordLayerThatLies) {
  ClientHelloAssembler a;
  EXPECT_EQ(a.feed(hex("1603010000")), A::malformed); // zero-length fragment
  EXPECT_EQ(a.result().status, S::bad_record);
  a.reset();
  EXPECT_EQ(a.feed(hex("1603014101")), A::malformed); // 2^14 + 257
  a.reset();
  EXPECT_EQ(a.feed(hex("1603014100")), A::need_more); // 2^14 + 256 tolerated
  // A second record that is not handshake, or not 3.x.
  const Buf msg = test::client_hello({test::sni_extension("example.com")});
  Buf first = test::records(Buf(msg.begin(), msg.begin() + 10), 10);
  for (const char *bad : {"1703030010", "1604030010", "16030100"}) {
    a.reset();
    ASSERT_EQ(a.feed(first), A::need_more);
    Buf second = hex(bad);
    if (second.size() == 4) {
      second.push_back(std::byte{0}); // zero-length
    }
    EXPECT_EQ(a.feed(second), A::malformed) << bad;
  }
}

TEST(Assembler, TooLarge) {
  // Handshake length 16 KiB - 3: refused from the handshake header on.
  ClientHelloAssembler a;
  EXPECT_EQ(a.feed(hex("16030100040100"
                       "3ffd")),
            A::too_large);
  EXPECT_EQ(a.result().status, S::too_large);
  // The largest allowed message is joined whole across two records.
  a.reset();
  // client_hello() is 88 bytes plus the name.
  const std::size_t longest = kMaxHandshakeMessage - 88;
  const Buf msg = test::client_hello({test::sni_extension(std::string(longest, 'z'))});
  ASSERT_EQ(msg.size(), kMaxHandshakeMessage);
  EXPECT_EQ(a.feed(test::records(msg, 16384 - 1)), A::done);
  EXPECT_EQ(a.result().status, S::ok);
  EXPECT_EQ(a.result().server_name.size(), longest);
  // A 65535-byte server_name extension.
  a.reset();
  const Buf huge = test::client_hello({test::sni_extension(std::string(65535 - 5, 'h'))});
  EXPECT_EQ(a.feed(test::records(huge, 16384)), A::too_large);
}

TEST(Assembler, TruncatedAtEveryLength) {
  // Each prefix, copied to its own buffer, never completes and never reads past.
  const Buf rec = hex(test::kChromePaddedRecord);
  ClientHelloAssembler a;
  for (std::size_t n = 0; n < rec.size(); ++n) {
    const Buf prefix(rec.begin(), rec.begin() + static_cast<std::ptrdiff_t>(n));
    a.reset();
    ASSERT_EQ(a.feed(prefix), A::need_more) << n;
    ASSERT_EQ(a.result().status, S::need_more);
  }
}

TEST(Assembler, StateNames) {
  for (std::uint8_t s = 0; s < static_cast<std::uint8_t>(A::count_); ++s) {
    EXPECT_NE(assembler_state_name(static_cast<A>(s)), "unknown");
  }
  EXPECT_EQ(assembler_state_name(A::not_tls), "not_tls");
}

} // namespace
} // namespace ta::tls
