#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/dns/message.hpp"

#include "dns_wire.hpp"

namespace ta::dns {

// Readable gtest failure messages.
void PrintTo(DnsError e, std::ostream *os) {
  *os << to_string(e);
}

namespace {

using test::hex;
using test::ip;
using test::Wire;

DnsError parse(Bytes b, DnsResponse &out) {
  return parse_response(b, out);
}

DnsError parse(Bytes b) {
  DnsResponse r;
  return parse_response(b, r);
}

// example.com A 93.184.216.34, answer owner compressed to the question.
constexpr std::string_view kExampleA = "1234 8180 0001 0001 0000 0000"
                                       "07 6578616d706c65 03 636f6d 00 0001 0001"
                                       "c00c 0001 0001 00000e10 0004 5db8d822";

// A response exercising every section, compression in names and in CNAME
// RDATA, and an EDNS OPT pseudo-RR last:
//   Q   www.example.com A
//   AN  www.example.com CNAME cdn.example.net
//       cdn.example.net CNAME edge.cdn.example.net   (edge + pointer)
//       edge.cdn.example.net A 192.0.2.1
//       edge.cdn.example.net AAAA 2001:db8::1
//   NS  example.net NS ns1.example.net
//   AR  ns1.example.net A 198.51.100.53 (glue), OPT
std::vector<std::byte> rich_message() {
  Wire w;
  w.header(1, 4, 1, 2);
  const std::size_t qname = w.offset(); // 12
  w.question("www.example.com");
  // CNAME 1: owner -> question; rdata cdn.example.net uncompressed.
  w.ptr(qname).rr(test::kTypeCname, test::kClassIn, 0);
  const std::size_t rdlen1 = w.offset() - 2;
  const std::size_t cdn = w.offset();
  w.name("cdn.example.net");
  w.patch16(rdlen1, static_cast<unsigned>(w.offset() - cdn));
  // CNAME 2: owner cdn (pointer), rdata "edge" + pointer to cdn.
  w.ptr(cdn).rr(test::kTypeCname, test::kClassIn, 7);
  const std::size_t edge = w.offset();
  w.labels("edge").ptr(cdn);
  w.ptr(edge).a("c0000201");
  w.ptr(edge).aaaa("20010db8000000000000000000000001");
  // Authority: example.net (pointer into cdn.example.net) NS ns1 + pointer.
  const std::size_t example_net = cdn + 4;
  w.ptr(example_net).rr(test::kTypeNs, test::kClassIn, 6);
  const std::size_t ns1 = w.offset();
  w.labels("ns1").ptr(example_net);
  // Additional: glue, then OPT (root owner, class = UDP size).
  w.ptr(ns1).a("c6336435");
  w.name("").rr(test::kTypeOpt, 1232, 0, 0);
  return w.vec();
}

TEST(DnsMessage, ParsesAnswerA) {
  const auto msg = hex(kExampleA);
  DnsResponse r;
  ASSERT_EQ(parse(msg, r), DnsError::ok);
  EXPECT_EQ(r.id, 0x1234);
  EXPECT_EQ(r.rcode, 0);
  EXPECT_FALSE(r.truncated_flag);
  EXPECT_EQ(r.qname(), "example.com");
  EXPECT_EQ(r.answer_count, 1);
  ASSERT_EQ(r.address_count, 1);
  EXPECT_EQ(r.addresses[0], ip("93.184.216.34"));
}

TEST(DnsMessage, ParsesAnswerAaaa) {
  const auto msg = hex("abcd 8180 0001 0001 0000 0000"
                       "07 6578616d706c65 03 636f6d 00 001c 0001"
                       "c00c 001c 0001 00000e10 0010 20010db8 00000000 00000000 0000abcd");
  DnsResponse r;
  ASSERT_EQ(parse(msg, r), DnsError::ok);
  EXPECT_EQ(r.qname(), "example.com");
  ASSERT_EQ(r.address_count, 1);
  EXPECT_EQ(r.addresses[0], ip("2001:db8::abcd"));
  EXPECT_EQ(r.addresses[0].family, 6);
}

TEST(DnsMessage, CnameChainMapsToQname) {
  // www.x CNAME cdn.y, cdn.y A 203.0.113.7: the address belongs to www.x.
  Wire w;
  w.header(1, 2, 0, 0).question("www.x");
  w.ptr(12).rr(test::kTypeCname, test::kClassIn, 7);
  const std::size_t cdn = w.offset();
  w.name("cdn.y");
  w.ptr(cdn).a("cb007107");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.qname(), "www.x");
  EXPECT_EQ(r.cname_count, 1);
  ASSERT_EQ(r.address_count, 1);
  EXPECT_EQ(r.addresses[0], ip("203.0.113.7"));
}

TEST(DnsMessage, RichMessageEverySection) {
  const auto msg = rich_message();
  DnsResponse r;
  ASSERT_EQ(parse(msg, r), DnsError::ok);
  EXPECT_EQ(r.qname(), "www.example.com");
  EXPECT_EQ(r.answer_count, 4);
  EXPECT_EQ(r.cname_count, 2);
  ASSERT_EQ(r.address_count, 2);
  EXPECT_EQ(r.addresses[0], ip("192.0.2.1"));
  EXPECT_EQ(r.addresses[1], ip("2001:db8::1"));
}

TEST(DnsMessage, GlueInAuthorityAndAdditionalNotLearnt) {
  // Referral-style answer: no answers, NS in authority, A glue in additional.
  Wire w;
  w.header(1, 0, 1, 2).question("example.org");
  w.ptr(12).rr(test::kTypeNs, test::kClassIn, 5);
  const std::size_t ns = w.offset();
  w.labels("ns").ptr(12);
  w.ptr(ns).a("c0000235");
  w.ptr(ns).aaaa("20010db8000000000000000000000035");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.address_count, 0);
  EXPECT_EQ(r.qname(), "example.org");
}

TEST(DnsMessage, RcodeNxdomainParsed) {
  // NXDOMAIN with an SOA in authority.
  Wire w;
  w.header(1, 0, 1, 0, 0x8183).question("nope.example");
  w.ptr(12 + 5).rr(test::kTypeSoa, test::kClassIn, 0);
  const std::size_t rd = w.offset() - 2;
  const std::size_t start = w.offset();
  w.labels("ns").ptr(17).labels("host").ptr(17).u32(1).u32(2).u32(3).u32(4).u32(5);
  w.patch16(rd, static_cast<unsigned>(w.offset() - start));
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.rcode, 3);
  EXPECT_EQ(r.address_count, 0);
}

TEST(DnsMessage, QueryRejected) {
  Wire w;
  w.header(1, 0, 0, 0, 0x0100).question("example.com");
  EXPECT_EQ(parse(w.span()), DnsError::not_a_response);
}

TEST(DnsMessage, ShortHeader) {
  const auto msg = hex("1234 8180 0001 0000 0000 00");
  EXPECT_EQ(parse(msg), DnsError::truncated_header);
  EXPECT_EQ(parse(Bytes{}), DnsError::truncated_header);
}

TEST(DnsMessage, NoQuestion) {
  Wire w;
  w.header(0, 1, 0, 0).name("a").a("01020304");
  EXPECT_EQ(parse(w.span()), DnsError::no_question);
}

TEST(DnsMessage, TcFlag) {
  Wire w;
  w.header(1, 0, 0, 0, 0x8380).question("big.example");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_TRUE(r.truncated_flag);
}

TEST(DnsMessage, UpperCaseLowered) {
  // Only A-Z are folded; other bytes (here 0xC3 0x89 and '_') are kept.
  Wire w;
  w.header(1, 1, 0, 0);
  w.u8(3).raw("5777 57").u8(4).raw("c389 5f 5a").u8(3).raw("434f4d").u8(0).u16(1).u16(1);
  w.ptr(12).a("01020304");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.qname(), "www.\xC3\x89_z.com");
}

TEST(DnsMessage, RootQname) {
  Wire w;
  w.header(1, 0, 0, 0).question("", test::kTypeNs);
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.qname(), "");
}

TEST(DnsMessage, SecondQuestionValidatedFirstGivesQname) {
  Wire w;
  w.header(2, 0, 0, 0).question("first.example").question("second.example");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.qname(), "first.example");

  Wire bad;
  bad.header(2, 0, 0, 0).question("first.example").u8(0x40).u8(0);
  EXPECT_EQ(parse(bad.span()), DnsError::bad_name);
}

TEST(DnsMessage, CompressionPointerChain) {
  // The second question's name is "b" + pointer to "a" + pointer to qname.
  Wire w;
  w.header(2, 1, 0, 0).question("example.com");
  const std::size_t q2 = w.offset();
  w.labels("a").ptr(12).u16(1).u16(1);
  w.labels("b").ptr(q2).a("0a000001");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.address_count, 1);
}

TEST(DnsMessage, PointerToItselfIsLoop) {
  Wire w;
  w.header(1, 0, 0, 0).ptr(12).u16(1).u16(1);
  EXPECT_EQ(parse(w.span()), DnsError::pointer_loop);
}

TEST(DnsMessage, PointerPairLoop) {
  // Answer owner at X points to Y, owner at Y points back to X: one of them
  // points forwards.
  Wire w;
  w.header(1, 2, 0, 0).question("a");
  const std::size_t x = w.offset();
  const std::size_t y = x + 2 + 10 + 4;
  w.ptr(y).a("01020304");
  w.ptr(x).a("01020305");
  EXPECT_EQ(parse(w.span()), DnsError::pointer_loop);
}

TEST(DnsMessage, LabelOverPointerLoopRejected) {
  // At X: label "ab" then a pointer back to X. The pointer is strictly
  // backwards, yet the name revisits itself; each pass adds 3 octets, so the
  // length limit (or the hop cap) ends it.
  Wire w;
  w.header(1, 0, 0, 0);
  const std::size_t x = w.offset();
  w.labels("ab").ptr(x).u16(1).u16(1);
  const DnsError e = parse(w.span());
  EXPECT_TRUE(e == DnsError::name_too_long || e == DnsError::pointer_loop) << to_string(e);
}

TEST(DnsMessage, ForwardPointerRejected) {
  // Question name points to a valid name that comes after it.
  Wire w;
  w.header(1, 0, 0, 0);
  w.ptr(12 + 2 + 4).u16(1).u16(1).name("later.example");
  EXPECT_EQ(parse(w.span()), DnsError::pointer_loop);
}

TEST(DnsMessage, PointerInRdataForward) {
  Wire w;
  w.header(1, 1, 0, 0).question("a");
  w.ptr(12).rr(test::kTypeCname, test::kClassIn, 2);
  w.ptr(w.offset() + 2).name("b");
  EXPECT_EQ(parse(w.span()), DnsError::pointer_loop);
}

std::string label_of(std::size_t n) {
  return std::string(n, 'x');
}

TEST(DnsMessage, NameLengthLimit) {
  // 3 x 63-octet labels (3 x 64 wire octets) + a 61-octet label (62) + root:
  // exactly 255 octets.
  const std::string l63 = label_of(63);
  const std::string ok_name = l63 + "." + l63 + "." + l63 + "." + label_of(61);
  Wire ok;
  ok.header(1, 0, 0, 0).question(ok_name);
  DnsResponse r;
  ASSERT_EQ(parse(ok.span(), r), DnsError::ok);
  EXPECT_EQ(r.qname(), ok_name);
  EXPECT_EQ(r.qname().size(), 253U);

  Wire too_long;
  too_long.header(1, 0, 0, 0).question(l63 + "." + l63 + "." + l63 + "." + label_of(62));
  EXPECT_EQ(parse(too_long.span()), DnsError::name_too_long);

  // Over the limit only through compression.
  Wire via_ptr;
  via_ptr.header(2, 0, 0, 0).question(l63 + "." + l63 + "." + l63);
  via_ptr.labels(label_of(62)).ptr(12).u16(1).u16(1);
  EXPECT_EQ(parse(via_ptr.span()), DnsError::name_too_long);
}

TEST(DnsMessage, ReservedLabelTypes) {
  Wire w40;
  w40.header(1, 0, 0, 0).u8(0x41).u8('a').u8(0).u16(1).u16(1);
  EXPECT_EQ(parse(w40.span()), DnsError::bad_name);
  Wire w80;
  w80.header(1, 0, 0, 0).u8(0x81).u8('a').u8(0).u16(1).u16(1);
  EXPECT_EQ(parse(w80.span()), DnsError::bad_name);
}

TEST(DnsMessage, TruncatedAtEveryOffsetNeverOk) {
  for (const auto &msg : {rich_message(), hex(kExampleA)}) {
    ASSERT_EQ(parse(msg), DnsError::ok);
    for (std::size_t n = 0; n < msg.size(); ++n) {
      const DnsError e = parse(Bytes(msg).first(n));
      EXPECT_NE(e, DnsError::ok) << "prefix " << n;
      if (n < 12) {
        EXPECT_EQ(e, DnsError::truncated_header) << "prefix " << n;
      } else {
        EXPECT_TRUE(e == DnsError::truncated_question || e == DnsError::truncated_record)
            << "prefix " << n << ": " << to_string(e);
      }
    }
  }
}

TEST(DnsMessage, TrailingBytesIgnored) {
  auto msg = hex(kExampleA);
  msg.push_back(std::byte{0});
  EXPECT_EQ(parse(msg), DnsError::ok);
}

TEST(DnsMessage, BadRdataLengths) {
  Wire a5;
  a5.header(1, 1, 0, 0).question("a").ptr(12).rr(test::kTypeA, test::kClassIn, 5).raw("0102030405");
  EXPECT_EQ(parse(a5.span()), DnsError::bad_rdata_length);

  Wire aaaa4;
  aaaa4.header(1, 1, 0, 0)
      .question("a")
      .ptr(12)
      .rr(test::kTypeAaaa, test::kClassIn, 4)
      .raw("01020304");
  EXPECT_EQ(parse(aaaa4.span()), DnsError::bad_rdata_length);

  // CNAME name shorter than RDLENGTH.
  Wire cname_short;
  cname_short.header(1, 1, 0, 0).question("a").ptr(12).rr(test::kTypeCname, test::kClassIn, 4);
  cname_short.name("b").u8(0);
  EXPECT_EQ(parse(cname_short.span()), DnsError::bad_rdata_length);

  // CNAME name running past RDLENGTH.
  Wire cname_long;
  cname_long.header(1, 2, 0, 0).question("a").ptr(12).rr(test::kTypeCname, test::kClassIn, 2);
  cname_long.name("bcd").ptr(12).a("01020304");
  EXPECT_EQ(parse(cname_long.span()), DnsError::bad_rdata_length);
}

TEST(DnsMessage, DamageInLaterSectionsRejectsWhole) {
  // Valid answer, then an authority RR whose RDATA runs past the end.
  Wire cut;
  cut.header(1, 1, 1, 0).question("a").ptr(12).a("01020304");
  cut.ptr(12).rr(test::kTypeNs, test::kClassIn, 10).raw("01 62 00");
  EXPECT_EQ(parse(cut.span()), DnsError::truncated_record);

  // Valid answer, then an additional RR with a forward pointer owner.
  Wire fwd;
  fwd.header(1, 1, 0, 1).question("a").ptr(12).a("01020304");
  fwd.ptr(fwd.offset() + 2).rr(test::kTypeA, test::kClassIn, 4).raw("01020304");
  EXPECT_EQ(parse(fwd.span()), DnsError::pointer_loop);

  // Additional RR with a reserved label type.
  Wire lbl;
  lbl.header(1, 1, 0, 1).question("a").ptr(12).a("01020304");
  lbl.u8(0x80).rr(test::kTypeA, test::kClassIn, 4).raw("01020304");
  EXPECT_EQ(parse(lbl.span()), DnsError::bad_name);

  // Counts promising more RRs than present.
  Wire missing;
  missing.header(1, 1, 0, 1).question("a").ptr(12).a("01020304");
  EXPECT_EQ(parse(missing.span()), DnsError::truncated_record);
}

TEST(DnsMessage, MdnsCacheFlushClassCollected) {
  Wire w;
  w.header(1, 1, 0, 0, 0x8400, 0).question("printer.local");
  w.ptr(12).rr(test::kTypeA, 0x8001, 4).raw("c0a80142");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  ASSERT_EQ(r.address_count, 1);
  EXPECT_EQ(r.addresses[0], ip("192.168.1.66"));
}

TEST(DnsMessage, NonInClassNotCollected) {
  // CH-class "A" has a different RDATA layout; it is skipped, not checked.
  Wire w;
  w.header(1, 1, 0, 0).question("a").ptr(12).rr(test::kTypeA, 3, 3).raw("010203");
  DnsResponse r;
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.address_count, 0);
}

Wire many_a(unsigned n) {
  Wire w;
  w.header(1, n, 0, 0).question("many.example");
  for (unsigned i = 0; i < n; ++i) {
    w.ptr(12).rr(test::kTypeA, test::kClassIn, 4).u8(10).u8(0).u8(i >> 8U).u8(i);
  }
  return w;
}

TEST(DnsMessage, TooManyAnswers) {
  DnsResponse r;
  const Wire full = many_a(DnsResponse::kMaxAddresses);
  ASSERT_EQ(parse(full.span(), r), DnsError::ok);
  EXPECT_EQ(r.address_count, DnsResponse::kMaxAddresses);
  EXPECT_EQ(r.addresses[127], ip("10.0.0.127"));

  const Wire over = many_a(DnsResponse::kMaxAddresses + 1);
  EXPECT_EQ(parse(over.span(), r), DnsError::too_many_answers);
}

TEST(DnsMessage, OutIsResetBetweenParses) {
  DnsResponse r;
  ASSERT_EQ(parse(hex(kExampleA), r), DnsError::ok);
  Wire w;
  w.header(1, 0, 0, 0).question("other");
  ASSERT_EQ(parse(w.span(), r), DnsError::ok);
  EXPECT_EQ(r.address_count, 0);
  EXPECT_EQ(r.qname(), "other");
}

TEST(DnsMessage, ErrorNames) {
  EXPECT_EQ(to_string(DnsError::ok), "ok");
  EXPECT_EQ(to_string(DnsError::truncated_header), "truncated_header");
  EXPECT_EQ(to_string(DnsError::not_a_response), "not_a_response");
  EXPECT_EQ(to_string(DnsError::truncated_question), "truncated_question");
  EXPECT_EQ(to_string(DnsError::truncated_record), "truncated_record");
  EXPECT_EQ(to_string(DnsError::bad_name), "bad_name");
  EXPECT_EQ(to_string(DnsError::name_too_long), "name_too_long");
  EXPECT_EQ(to_string(DnsError::pointer_loop), "pointer_loop");
  EXPECT_EQ(to_string(DnsError::bad_rdata_length), "bad_rdata_length");
  EXPECT_EQ(to_string(DnsError::no_question), "no_question");
  EXPECT_EQ(to_string(DnsError::too_many_answers), "too_many_answers");
  for (unsigned i = 0; i < static_cast<unsigned>(DnsError::count_); ++i) {
    EXPECT_NE(to_string(static_cast<DnsError>(i)), "unknown") << i;
  }
}

} // namespace
} // namespace ta::dns
