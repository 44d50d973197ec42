// parse_client_hello on real ClientHellos (expected names are tshark's
// tls.handshake.extensions_server_name for the same frames, see test_util.hpp)
// and on built ones that lie.
#include <string>

#include <gtest/gtest.h>

#include "ta/tls/tls.hpp"

#include "test_util.hpp"

namespace ta::tls {
namespace {

using test::Buf;
using test::hex;
using test::text;
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

TEST(ParseClientHello, RealTcpClientHellos) {
  for (const Real &r : kReal) {
    const Buf msg = test::strip_record(hex(r.record_hex));
    const ClientHelloResult res = parse_client_hello(msg);
    ASSERT_EQ(res.status, S::ok) << r.name;
    EXPECT_TRUE(res.sni_is_present());
    EXPECT_EQ(text(res.server_name), r.name);
    // A view into the input, not a copy.
    EXPECT_GE(res.server_name.data(), msg.data());
    EXPECT_LE(res.server_name.data() + res.server_name.size(), msg.data() + msg.size());
  }
}

TEST(ParseClientHello, QuicCryptoStreamHasNoRecordLayer) {
  const Buf msg = hex(test::kJa4QuicClientHello);
  const ClientHelloResult res = parse_client_hello(msg);
  ASSERT_EQ(res.status, S::ok);
  EXPECT_EQ(text(res.server_name), "cloudflare-quic.com");
}

TEST(ParseClientHello, EveryPrefixNeedsMore) {
  for (const Real &r : kReal) {
    const Buf msg = test::strip_record(hex(r.record_hex));
    for (std::size_t n = 0; n < msg.size(); ++n) {
      // A copy of exactly n bytes, so the sanitizer sees any read past it.
      const Buf prefix(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(n));
      const ClientHelloResult res = parse_client_hello(prefix);
      ASSERT_EQ(res.status, S::need_more) << r.name << " at " << n;
      ASSERT_TRUE(res.server_name.empty());
    }
  }
}

TEST(ParseClientHello, BytesAfterTheMessageAreIgnored) {
  Buf msg = test::strip_record(hex(test::kChromeRecord));
  msg.push_back(std::byte{0x02}); // a next message's first byte
  const ClientHelloResult res = parse_client_hello(msg);
  ASSERT_EQ(res.status, S::ok);
  EXPECT_EQ(text(res.server_name), "www.iit.cnr.it");
}

TEST(ParseClientHello, NotAClientHello) {
  // A ServerHello (msg_type 2) is refused from its first byte on.
  EXPECT_EQ(parse_client_hello(hex("02")).status, S::not_client_hello);
  EXPECT_EQ(parse_client_hello(hex("020000")).status, S::not_client_hello);
  EXPECT_EQ(parse_client_hello(hex("")).status, S::need_more);
  EXPECT_EQ(parse_client_hello(hex("01")).status, S::need_more);
}

TEST(ParseClientHello, BuiltWithOneName) {
  const Buf msg = test::client_hello(
      {test::extension(10, hex("0002001d")), test::sni_extension("example.com")});
  const ClientHelloResult res = parse_client_hello(msg);
  ASSERT_EQ(res.status, S::ok);
  EXPECT_EQ(text(res.server_name), "example.com");
}

TEST(ParseClientHello, NoSni) {
  // No extensions block at all (a TLS 1.2 client may omit it).
  EXPECT_EQ(parse_client_hello(test::client_hello({}, false)).status, S::no_sni);
  // An empty extensions block, and extensions without server_name.
  EXPECT_EQ(parse_client_hello(test::client_hello({})).status, S::no_sni);
  EXPECT_EQ(parse_client_hello(test::client_hello({test::extension(43, hex("020304"))})).status,
            S::no_sni);
  // server_name with empty extension_data (the form a server echoes).
  const ClientHelloResult empty_ext =
      parse_client_hello(test::client_hello({test::extension(0, {})}));
  EXPECT_EQ(empty_ext.status, S::no_sni);
  EXPECT_FALSE(empty_ext.sni_is_present());
  // server_name with an empty server_name_list: zero names.
  EXPECT_EQ(parse_client_hello(test::client_hello({test::extension(0, test::server_name_data({}))}))
                .status,
            S::no_sni);
  // Names of other types only.
  EXPECT_EQ(parse_client_hello(
                test::client_hello({test::extension(0, test::server_name_data({{7, "x"}}))}))
                .status,
            S::no_sni);
}

TEST(ParseClientHello, FirstHostNameWins) {
  const Buf two = test::client_hello(
      {test::extension(0, test::server_name_data({{0, "first.example"}, {0, "second.example"}}))});
  EXPECT_EQ(text(parse_client_hello(two).server_name), "first.example");

  const Buf other_first = test::client_hello(
      {test::extension(0, test::server_name_data({{5, "not-a-host"}, {0, "host.example"}}))});
  EXPECT_EQ(text(parse_client_hello(other_first).server_name), "host.example");

  std::vector<std::pair<std::uint8_t, std::string>> hundred;
  for (int i = 0; i < 100; ++i) {
    hundred.emplace_back(0, "n" + std::to_string(i) + ".example");
  }
  const Buf msg = test::client_hello({test::extension(0, test::server_name_data(hundred))});
  const ClientHelloResult res = parse_client_hello(msg);
  ASSERT_EQ(res.status, S::ok);
  EXPECT_EQ(text(res.server_name), "n0.example");
}

TEST(ParseClientHello, RepeatedServerNameExtensionIsRefused) {
  const Buf msg =
      test::client_hello({test::sni_extension("a.example"), test::sni_extension("b.example")});
  EXPECT_EQ(parse_client_hello(msg).status, S::bad_extension);
}

TEST(ParseClientHello, NamesAreRawBytes) {
  // Upper case, a NUL, a byte >= 0x80, a space and a trailing dot: all kept.
  const std::string raw("Ex\x00mple\xff x.COM.", 15);
  const Buf msg = test::client_hello({test::sni_extension(raw)});
  const ClientHelloResult res = parse_client_hello(msg);
  ASSERT_EQ(res.status, S::ok);
  EXPECT_EQ(text(res.server_name), raw);
}

TEST(ParseClientHello, LongNames) {
  // A 10000-byte name fits the 16 KiB bound and comes back whole.
  const std::string long_name(10000, 'a');
  const Buf long_msg = test::client_hello({test::sni_extension(long_name)});
  const ClientHelloResult res = parse_client_hello(long_msg);
  ASSERT_EQ(res.status, S::ok);
  EXPECT_EQ(res.server_name.size(), long_name.size());
  // A server_name extension of 65535 bytes makes the message too large,
  // whether or not the bytes are there.
  const std::string huge(65535 - 5, 'b');
  const Buf msg = test::client_hello({test::sni_extension(huge)});
  EXPECT_EQ(parse_client_hello(msg).status, S::too_large);
  EXPECT_EQ(parse_client_hello(Buf(msg.begin(), msg.begin() + 4)).status, S::too_large);
}

TEST(ParseClientHello, EmptyHostNameIsMalformed) {
  // HostName<1..2^16-1>.
  EXPECT_EQ(parse_client_hello(test::client_hello({test::sni_extension("")})).status,
            S::bad_extension);
}

// Rewrites the uint8/uint16/uint24 at `at` in a copy of `msg`.
Buf with_u8(Buf msg, std::size_t at, std::size_t v) {
  msg[at] = static_cast<std::byte>(v);
  return msg;
}
Buf with_u16(Buf msg, std::size_t at, std::size_t v) {
  msg[at] = static_cast<std::byte>(v >> 8U);
  msg[at + 1] = static_cast<std::byte>(v & 0xFFU);
  return msg;
}

TEST(ParseClientHello, LengthsThatLie) {
  const Buf good = test::client_hello({test::sni_extension("example.com")});
  ASSERT_EQ(parse_client_hello(good).status, S::ok);
  const std::size_t body = good.size() - 4;

  // Handshake length: longer than the bytes -> waits; shorter -> the body's
  // vectors run past it.
  EXPECT_EQ(parse_client_hello(with_u16(good, 2, body + 1)).status, S::need_more);
  for (std::size_t cut = 1; cut < body; ++cut) {
    const ClientHelloResult r = parse_client_hello(with_u16(good, 2, body - cut));
    EXPECT_NE(r.status, S::ok) << cut;
    EXPECT_NE(r.status, S::need_more) << cut;
  }
  EXPECT_EQ(parse_client_hello(with_u16(good, 2, 10)).status, S::truncated);

  EXPECT_EQ(parse_client_hello(with_u8(good, test::kSessionIdLenAt, 33)).status, S::bad_length);
  EXPECT_EQ(parse_client_hello(with_u16(good, test::kSuitesLenAt, 0)).status, S::bad_length);
  EXPECT_EQ(parse_client_hello(with_u16(good, test::kSuitesLenAt, 3)).status, S::bad_length);
  EXPECT_EQ(parse_client_hello(with_u16(good, test::kSuitesLenAt, 0xFFFE)).status, S::truncated);
  EXPECT_EQ(parse_client_hello(with_u8(good, test::kCompLenAt, 0)).status, S::bad_length);
  EXPECT_EQ(parse_client_hello(with_u8(good, test::kCompLenAt, 255)).status, S::truncated);

  const std::size_t exts = good.size() - test::kFirstExtAt;
  EXPECT_EQ(parse_client_hello(with_u16(good, test::kExtsLenAt, exts + 1)).status, S::truncated);
  EXPECT_EQ(parse_client_hello(with_u16(good, test::kExtsLenAt, exts - 1)).status, S::bad_length);

  // Inside the server_name extension: its length, the list length, the name length.
  const std::size_t ext_len_at = test::kFirstExtAt + 2;
  const std::size_t list_len_at = ext_len_at + 2;
  const std::size_t name_len_at = list_len_at + 3;
  EXPECT_EQ(parse_client_hello(with_u16(good, ext_len_at, exts)).status, S::bad_extension);
  EXPECT_EQ(parse_client_hello(with_u16(good, list_len_at, 11 + 3 + 1)).status, S::bad_extension);
  EXPECT_EQ(parse_client_hello(with_u16(good, list_len_at, 11 + 3 - 1)).status, S::bad_extension);
  EXPECT_EQ(parse_client_hello(with_u16(good, name_len_at, 12)).status, S::bad_extension);
  EXPECT_EQ(parse_client_hello(with_u16(good, name_len_at, 10)).status, S::bad_extension);
}

TEST(ParseClientHello, ExtensionFramingAfterServerNameIsChecked) {
  Buf msg =
      test::client_hello({test::sni_extension("example.com"), test::extension(43, hex("0304"))});
  // The last extension claims one byte more than the block holds.
  msg[msg.size() - 3] = std::byte{3};
  EXPECT_EQ(parse_client_hello(msg).status, S::bad_extension);
}

TEST(ParseClientHello, StatusNames) {
  for (std::uint8_t s = 0; s < static_cast<std::uint8_t>(S::count_); ++s) {
    EXPECT_NE(client_hello_status_name(static_cast<S>(s)), "unknown");
  }
  EXPECT_EQ(client_hello_status_name(S::no_sni), "no_sni");
  EXPECT_EQ(client_hello_status_name(S::count_), "unknown");
}

} // namespace
} // namespace ta::tls
