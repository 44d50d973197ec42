// parse_request_host on real requests (expected hosts are tshark's http.host
// for the same frames, port stripped; see test_util.hpp) and on built ones.
#include <string>

#include <gtest/gtest.h>

#include "ta/http/http.hpp"

#include "test_util.hpp"

namespace ta::http {
namespace {

using test::Buf;
using test::bytes;
using test::hex;
using test::text;
using S = HostStatus;

HostResult parse(std::string_view request) {
  static Buf keep; // outlives the returned view until the next call
  keep = bytes(request);
  return parse_request_host(keep);
}

S status(std::string_view request) {
  return parse(request).status;
}

std::string host(std::string_view request) {
  const HostResult r = parse(request);
  EXPECT_EQ(r.status, S::ok) << request;
  return text(r.host);
}

struct Real {
  std::string_view hex_text;
  std::string_view host;
};

const Real kReal[] = {
    {test::kEspnGet, "www.espn.com"},
    {test::kEspnLongTarget, "a.espncdn.com"},
    {test::kConnect, "apache.org"}, // http.host apache.org:443, port stripped
};

TEST(ParseRequestHost, RealRequests) {
  for (const Real &r : kReal) {
    const Buf req = hex(r.hex_text);
    const HostResult res = parse_request_host(req);
    ASSERT_EQ(res.status, S::ok) << r.host;
    EXPECT_EQ(text(res.host), r.host);
    EXPECT_GE(res.host.data(), req.data()); // a view into the input
    EXPECT_LE(res.host.data() + res.host.size(), req.data() + req.size());
  }
}

TEST(ParseRequestHost, EveryPrefixWaitsThenDecides) {
  for (const Real &r : kReal) {
    const Buf req = hex(r.hex_text);
    const std::string all = text(req);
    // Decided once the Host line's LF and one more byte are there.
    const std::size_t host_at = all.find("\r\nHost:");
    ASSERT_NE(host_at, std::string::npos);
    const std::size_t decided_at = all.find('\n', host_at + 2) + 2;
    for (std::size_t n = 0; n <= req.size(); ++n) {
      // A copy of exactly n bytes, so the sanitizer sees any read past it.
      const Buf prefix(req.begin(), req.begin() + static_cast<std::ptrdiff_t>(n));
      const HostResult res = parse_request_host(prefix);
      if (n < decided_at) {
        ASSERT_EQ(res.status, S::need_more) << r.host << " at " << n;
      } else {
        ASSERT_EQ(res.status, S::ok) << r.host << " at " << n;
        ASSERT_EQ(text(res.host), r.host);
      }
    }
  }
}

TEST(ParseRequestHost, AnyMethodToken) {
  for (const char *m : {"GET", "POST", "CONNECT", "M-SEARCH", "PROPFIND", "X!#$%&'*+.^_`|~1"}) {
    EXPECT_EQ(host(std::string(m) + " / HTTP/1.1\r\nHost: h.example\r\n\r\n"), "h.example") << m;
  }
  EXPECT_EQ(host("GET / HTTP/1.0\r\nHost: h.example\r\n\r\n"), "h.example");
  EXPECT_EQ(host("OPTIONS * HTTP/1.1\r\nHost: h.example\r\n\r\n"), "h.example");
}

TEST(ParseRequestHost, FieldNameAnyCaseValueTrimmed) {
  EXPECT_EQ(host("GET / HTTP/1.1\r\nhOsT: h.example\r\n\r\n"), "h.example");
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHOST:h.example\r\n\r\n"), "h.example");
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: \t h.example \t\r\n\r\n"), "h.example");
  // Not Host: a longer name, a prefix of it.
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHostx: a\r\nHos: b\r\nX-Host: c\r\n\r\n"), S::no_host);
}

TEST(ParseRequestHost, FirstHostWins) {
  EXPECT_EQ(host("GET / HTTP/1.1\r\nA: 1\r\nHost: first.example\r\nHost: second.example\r\n\r\n"),
            "first.example");
}

TEST(ParseRequestHost, PortStripped) {
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: h.example:8080\r\n\r\n"), "h.example");
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: h.example:\r\n\r\n"), "h.example"); // port = *DIGIT
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n"), "192.0.2.1");
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), "[::1]");
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n"), "[2001:db8::1]");
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: h.example:80a\r\n\r\n"), S::malformed);
  // An unbracketed IPv6 address (invalid, but sent: this repository's own
  // generator wrote one into tests/data/generated_small.pcap, frame 4414,
  // http.host 2001:db8:ffff::2a) is taken whole.
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: 2001:db8:ffff::2a\r\n\r\n"), "2001:db8:ffff::2a");
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), S::malformed);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), S::malformed);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), S::malformed);
}

TEST(ParseRequestHost, HostBytesAreRaw) {
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost: WWW.Ex\xffmple_.COM.\r\n\r\n"), "WWW.Ex\xffmple_.COM.");
}

TEST(ParseRequestHost, NoHost) {
  EXPECT_EQ(status("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"), S::no_host);
  EXPECT_EQ(status("GET / HTTP/1.0\r\n\r\n"), S::no_host);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost:\r\n\r\n"), S::no_host);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost:  \r\n\r\n"), S::no_host);
}

TEST(ParseRequestHost, BareLfLineEnds) {
  EXPECT_EQ(host("GET / HTTP/1.1\nHost: lf.example\n\n"), "lf.example");
  EXPECT_EQ(host("GET / HTTP/1.1\r\nA: b\nHost: mixed.example\r\n\r\n"), "mixed.example");
  EXPECT_EQ(status("GET / HTTP/1.0\n\n"), S::no_host);
}

TEST(ParseRequestHost, EmptyLinesBeforeTheRequestLine) {
  EXPECT_EQ(host("\r\n\nGET / HTTP/1.1\r\nHost: h.example\r\n\r\n"), "h.example");
  EXPECT_EQ(status("\r\n\r"), S::need_more);
  EXPECT_EQ(status("\rX"), S::not_http);
}

TEST(ParseRequestHost, NotHttp) {
  EXPECT_EQ(parse_request_host(hex("16030102000100")).status, S::not_http); // a TLS record
  EXPECT_EQ(parse_request_host(hex("16")).status, S::not_http);             // at once
  EXPECT_EQ(status("GET /\r\n"), S::not_http);                              // HTTP/0.9
  EXPECT_EQ(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), S::not_http);       // HTTP/2 preface
  EXPECT_EQ(status("GET / HTTP/2\r\n"), S::not_http);
  EXPECT_EQ(status("GET / http/1.1\r\n"), S::not_http);
  EXPECT_EQ(status("GET / HTTP/1.x\r\n"), S::not_http);
  EXPECT_EQ(status("GET / HTTP/1.1 \r\n"), S::not_http);
  EXPECT_EQ(status("GET / HTTP/1.1\rX"), S::not_http);
  EXPECT_EQ(status("GET  / HTTP/1.1\r\n"), S::not_http); // empty target
  EXPECT_EQ(status(" GET / HTTP/1.1\r\n"), S::not_http);
  EXPECT_EQ(status("GET\t/ HTTP/1.1\r\n"), S::not_http);
  EXPECT_EQ(status("GET /\x01 HTTP/1.1\r\n"), S::not_http);
  EXPECT_EQ(status("SSH-2.0-OpenSSH_9.6\r\n"), S::not_http);
}

TEST(ParseRequestHost, NeedMoreWhileTheRequestLineCouldStillBeOne) {
  for (const char *partial :
       {"", "G", "GET", "GET ", "GET /x", "GET /x ", "GET /x HTTP/1", "GET /x HTTP/1.1",
        "GET /x HTTP/1.1\r", "GET /x HTTP/1.1\r\n", "GET /x HTTP/1.1\r\nHost: a",
        "GET /x HTTP/1.1\r\nHost: a\r\n", "GET /x HTTP/1.1\r\nA: b\r\n\r"}) {
    EXPECT_EQ(status(partial), S::need_more) << partial;
  }
}

TEST(ParseRequestHost, Malformed) {
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), S::malformed); // RFC 9112 5.1
  EXPECT_EQ(status("GET / HTTP/1.1\r\nno colon here\r\n\r\n"), S::malformed);
  EXPECT_EQ(status("GET / HTTP/1.1\r\n: empty name\r\n\r\n"), S::malformed);
  EXPECT_EQ(status("GET / HTTP/1.1\r\n folded-first\r\n\r\n"), S::malformed);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"), S::malformed); // folded Host
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), S::malformed);    // bare CR
  EXPECT_EQ(status("GET / HTTP/1.1\r\n\rX"), S::malformed);
}

TEST(ParseRequestHost, OtherFoldedFieldsAreSkipped) {
  EXPECT_EQ(host("GET / HTTP/1.1\r\nX-A: one\r\n two\r\nHost: h.example\r\n\r\n"), "h.example");
}

TEST(ParseRequestHost, BoundedAt16KiB) {
  const std::string line = "GET / HTTP/1.1\r\n";
  std::string filler;
  while (line.size() + filler.size() < kMaxRequestHead + 100) {
    filler += "X-Filler: 0123456789abcdef0123456789abcdef\r\n";
  }
  const std::string head = line + filler;
  // Undecided in the first 16 KiB: too_large once 16 KiB are there.
  EXPECT_EQ(status(head.substr(0, kMaxRequestHead - 1)), S::need_more);
  EXPECT_EQ(status(head.substr(0, kMaxRequestHead)), S::too_large);
  EXPECT_EQ(status(head + "Host: late.example\r\n\r\n"), S::too_large);
  // A Host inside the bound is found however long the input.
  EXPECT_EQ(host(line + "Host: early.example\r\n" + filler), "early.example");
  // A request line longer than the bound.
  EXPECT_EQ(status("GET /" + std::string(kMaxRequestHead, 'a')), S::too_large);
}

TEST(ParseRequestHost, StatusNames) {
  for (std::uint8_t s = 0; s < static_cast<std::uint8_t>(S::count_); ++s) {
    EXPECT_NE(host_status_name(static_cast<S>(s)), "unknown");
  }
  EXPECT_EQ(host_status_name(S::not_http), "not_http");
  EXPECT_EQ(host_status_name(S::count_), "unknown");
}

} // namespace
} // namespace ta::http
