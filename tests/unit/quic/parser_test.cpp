// InitialParser on synthetic packets: coalescing, reassembly, key caching,
// Retry, and every kind of damage.
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace ta::quic {
namespace {

using test::Buf;
using test::hex;
using test::view;

Buf slice(const Buf &b, std::size_t from, std::size_t to) {
  if (from > to || to > b.size()) {
    ADD_FAILURE() << "slice [" << from << ", " << to << ") of " << b.size();
    return {};
  }
  return {b.begin() + static_cast<std::ptrdiff_t>(from),
          b.begin() + static_cast<std::ptrdiff_t>(to)};
}

Buf concat(std::initializer_list<Buf> parts) {
  Buf out;
  for (const Buf &p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

// An Initial carrying the RFC ClientHello bytes [from, to) at their offset.
Buf ch_piece(std::size_t from, std::size_t to, std::uint64_t pn, Version v = Version::v1,
             const Buf &dcid = hex(test::kRfcDcid)) {
  const Buf ch = test::rfc_client_hello();
  test::InitialSpec spec;
  spec.version = v;
  spec.dcid = dcid;
  spec.packet_number = pn;
  return test::protect(
      spec, view(test::padded(test::crypto_frame(from, view(slice(ch, from, to))), 400)));
}

TEST(QuicParser, OutcomeAndErrorNamesAreStable) {
  EXPECT_EQ(outcome_name(Outcome::need_more), "need_more");
  EXPECT_EQ(outcome_name(Outcome::unsupported_version), "unsupported_version");
  EXPECT_EQ(outcome_name(Outcome::not_quic), "not_quic");
  EXPECT_EQ(packet_error_name(PacketError::decrypt_failed), "decrypt_failed");
  EXPECT_EQ(packet_error_name(PacketError::crypto_too_large), "crypto_too_large");
  for (std::size_t i = 0; i < static_cast<std::size_t>(PacketError::count_); ++i) {
    EXPECT_NE(packet_error_name(static_cast<PacketError>(i)), "unknown");
  }
}

TEST(QuicParser, CryptoOutOfOrderAcrossPacketsAndOverlapping) {
  // ClientHello (241 bytes: 4 + 0xed) in three pieces, the middle one overlapping both
  // neighbours, sent last piece first.
  InitialParser p;
  EXPECT_EQ(p.feed(view(ch_piece(150, 241, 0))).outcome, Outcome::need_more);
  EXPECT_EQ(p.feed(view(ch_piece(0, 100, 1))).outcome, Outcome::need_more);
  const FeedResult r = p.feed(view(ch_piece(90, 160, 2)));
  EXPECT_EQ(r.outcome, Outcome::sni);
  EXPECT_EQ(r.sni, "example.com");
  EXPECT_EQ(p.stats().key_derivations, 1U); // one DCID, one derivation
  EXPECT_EQ(p.stats().packets_decrypted, 3U);
}

TEST(QuicParser, CoalescedInitialsAndZeroRttInOneDatagram) {
  test::InitialSpec zero_rtt;
  zero_rtt.v1_type = 1;
  const Buf datagram = concat({ch_piece(100, 241, 0), test::protect(zero_rtt, view(Buf(40))),
                               ch_piece(0, 100, 1), Buf(30)}); // trailing zero padding
  InitialParser p;
  const FeedResult r = p.feed(view(datagram));
  EXPECT_EQ(r.outcome, Outcome::sni);
  EXPECT_EQ(r.sni, "example.com");
  EXPECT_EQ(p.stats().count(PacketError::not_initial), 1U);
}

TEST(QuicParser, FinalResultIsSticky) {
  InitialParser p;
  const Buf packet = hex(test::kRfc9001ClientInitial);
  ASSERT_EQ(p.feed(view(packet)).outcome, Outcome::sni);
  EXPECT_TRUE(p.done());
  const FeedResult again = p.feed(view(Buf{std::byte{0x40}}));
  EXPECT_EQ(again.outcome, Outcome::sni);
  EXPECT_EQ(again.sni, "example.com");
  EXPECT_EQ(p.stats().packets_decrypted, 1U);
}

TEST(QuicParser, NewDcidAfterRetryRestartsTheStream) {
  const Buf second_dcid = hex("0102030405060708090a");
  InitialParser p;
  EXPECT_EQ(p.feed(view(ch_piece(0, 100, 0))).outcome, Outcome::need_more);
  // After a Retry: the same ClientHello again from offset 0, new DCID, keys
  // derived from it; packet numbers continue (RFC 9000 §17.2.5.2).
  EXPECT_EQ(p.feed(view(ch_piece(0, 200, 1, Version::v1, second_dcid))).outcome,
            Outcome::need_more);
  const FeedResult r = p.feed(view(ch_piece(200, 241, 2, Version::v1, second_dcid)));
  EXPECT_EQ(r.outcome, Outcome::sni);
  EXPECT_EQ(p.stats().key_derivations, 2U);
}

TEST(QuicParser, ServerChosenDcidKeepsFirstKeys) {
  // RFC 9001 §5.2: after the server's Initial the client addresses the
  // server's CID but still protects Initials with the keys of its first DCID.
  const Buf server_cid = hex("aabbccdd");
  const Buf ch = test::rfc_client_hello();
  auto later = [&](std::size_t from, std::size_t to, std::uint64_t pn) {
    test::InitialSpec spec;
    spec.dcid = server_cid;
    spec.key_dcid = hex(test::kRfcDcid);
    spec.packet_number = pn;
    return test::protect(
        spec, view(test::padded(test::crypto_frame(from, view(slice(ch, from, to))), 400)));
  };
  InitialParser p;
  EXPECT_EQ(p.feed(view(ch_piece(0, 100, 0))).outcome, Outcome::need_more);
  EXPECT_EQ(p.feed(view(later(100, 150, 1))).outcome, Outcome::need_more);
  EXPECT_EQ(p.stats().key_derivations, 1U); // the first keys open it: none for the server CID
  EXPECT_EQ(p.feed(view(later(150, 241, 2))).outcome, Outcome::sni);
  EXPECT_EQ(p.stats().key_derivations, 1U);
  EXPECT_EQ(p.stats().packets_decrypted, 3U);
  EXPECT_EQ(p.stats().count(PacketError::decrypt_failed), 0U);
}

TEST(QuicParser, WrongKeysAreDerivedOnce) {
  InitialParser p;
  Buf wrong = ch_piece(100, 200, 0, Version::v1, hex("aabbccdd"));
  wrong.back() ^= std::byte{0xFF};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p.feed(view(wrong)).outcome, Outcome::need_more);
  }
  EXPECT_EQ(p.stats().count(PacketError::decrypt_failed), 3U);
  EXPECT_EQ(p.stats().key_derivations, 1U);
}

TEST(QuicParser, NoServerNameIsNoSni) {
  // A ClientHello with an empty extensions block: 01 len | 0303 | random | 00 |
  // 0002 1301 | 01 00 | 0000.
  Buf ch = hex("0100002c0303");
  ch.resize(ch.size() + 32, std::byte{0x11});
  const Buf tail = hex("00000213010100"
                       "0000");
  ch.insert(ch.end(), tail.begin(), tail.end());
  ch[3] = static_cast<std::byte>(ch.size() - 4);
  test::InitialSpec spec;
  InitialParser p;
  EXPECT_EQ(p.feed(view(test::protect(spec, view(test::padded(test::crypto_frame(0, view(ch)))))))
                .outcome,
            Outcome::no_sni);
}

TEST(QuicParser, NotAClientHelloIsNoSni) {
  test::InitialSpec spec;
  const Buf server_hello = hex("0200000400000000");
  InitialParser p;
  EXPECT_EQ(p.feed(view(test::protect(
                       spec, view(test::padded(test::crypto_frame(0, view(server_hello)))))))
                .outcome,
            Outcome::no_sni);
  EXPECT_EQ(p.stats().count(PacketError::bad_client_hello), 1U);
}

TEST(QuicParser, ForbiddenFrameDiscardsThePacket) {
  // A STREAM frame (0x08) may not appear in an Initial (RFC 9000 §12.4); the
  // CRYPTO frame before it is not used either.
  Buf frames = test::crypto_frame(0, view(test::rfc_client_hello()));
  const Buf stream = hex("08000474657374");
  frames.insert(frames.end(), stream.begin(), stream.end());
  test::InitialSpec spec;
  InitialParser p;
  EXPECT_EQ(p.feed(view(test::protect(spec, view(test::padded(frames))))).outcome,
            Outcome::need_more);
  EXPECT_EQ(p.stats().count(PacketError::bad_frame), 1U);
}

TEST(QuicParser, AckPingAndConnectionCloseAreAllowed) {
  // PING; ACK (largest 5, delay 0, 1 range, first range 0, gap 0, length 0);
  // ACK_ECN (largest 2, delay 0, no ranges, first range 0, ECT0/ECT1/CE 0);
  // CONNECTION_CLOSE (error 0, frame type 0, empty reason).
  Buf frames = hex("01"
                   "02050001000000"
                   "0302000000000000"
                   "1c000000");
  const Buf crypto = test::crypto_frame(0, view(test::rfc_client_hello()));
  frames.insert(frames.end(), crypto.begin(), crypto.end());
  test::InitialSpec spec;
  InitialParser p;
  const FeedResult r = p.feed(view(test::protect(spec, view(test::padded(frames)))));
  EXPECT_EQ(r.outcome, Outcome::sni);
  EXPECT_EQ(p.stats().count(PacketError::bad_frame), 0U);
}

TEST(QuicParser, CryptoBeyondTheBound) {
  test::InitialSpec spec;
  InitialParser p;
  const Buf far = test::crypto_frame(InitialParser::kMaxCrypto - 10, view(Buf(40)));
  EXPECT_EQ(p.feed(view(test::protect(spec, view(test::padded(far))))).outcome, Outcome::need_more);
  EXPECT_EQ(p.stats().count(PacketError::crypto_too_large), 1U);
  // A ClientHello that says it is longer than the bound can never complete.
  spec.packet_number = 1;
  const Buf huge_header = hex("01004000");
  EXPECT_EQ(p.feed(view(test::protect(
                       spec, view(test::padded(test::crypto_frame(0, view(huge_header)))))))
                .outcome,
            Outcome::no_sni);
  EXPECT_EQ(p.stats().count(PacketError::crypto_too_large), 2U);
}

TEST(QuicParser, DatagramsThatAreNotV1OrV2) {
  InitialParser p;
  EXPECT_EQ(p.feed({}).outcome, Outcome::not_quic);
  EXPECT_EQ(p.feed(view(hex("4000112233"))).outcome, Outcome::not_quic);
  EXPECT_EQ(p.stats().count(PacketError::short_header), 1U);
  EXPECT_EQ(p.feed(view(hex("8000000001"))).outcome, Outcome::not_quic);
  EXPECT_EQ(p.stats().count(PacketError::fixed_bit_clear), 1U);
  // Draft-29 and version negotiation (version 0).
  Buf draft = hex(test::kRfc9001ClientInitial);
  draft[1] = std::byte{0xff};
  draft[4] = std::byte{0x1d};
  EXPECT_EQ(p.feed(view(draft)).outcome, Outcome::unsupported_version);
  EXPECT_EQ(p.feed(view(hex("c000000000"))).outcome, Outcome::unsupported_version);
  EXPECT_EQ(p.stats().count(PacketError::unsupported_version), 2U);
  EXPECT_EQ(p.stats().packets_decrypted, 0U);
  EXPECT_EQ(p.stats().key_derivations, 0U);
  // A later v1 Initial (after version negotiation) still names the flow.
  EXPECT_EQ(p.feed(view(hex(test::kRfc9001ClientInitial))).outcome, Outcome::sni);
}

TEST(QuicParser, DamagedHeaders) {
  const Buf good = hex(test::kRfc9001ClientInitial);
  {
    Buf b = good; // DCID length 21
    b[5] = std::byte{21};
    InitialParser p;
    EXPECT_EQ(p.feed(view(b)).outcome, Outcome::need_more);
    EXPECT_EQ(p.stats().count(PacketError::bad_connection_id), 1U);
  }
  {
    Buf b = good; // token length 0x3fff: runs past the datagram
    b[15] = std::byte{0x7f};
    b[16] = std::byte{0xff};
    InitialParser p;
    (void)p.feed(view(slice(b, 0, 40)));
    EXPECT_EQ(p.stats().count(PacketError::bad_token_length), 1U);
  }
  {
    Buf b = good; // Length 0x3fff > the datagram
    b[16] = std::byte{0x7f};
    b[17] = std::byte{0xff};
    InitialParser p;
    (void)p.feed(view(b));
    EXPECT_EQ(p.stats().count(PacketError::bad_length), 1U);
  }
  {
    Buf b = good; // Length 19: no room for the header protection sample
    b[16] = std::byte{0x40};
    b[17] = std::byte{19};
    InitialParser p;
    (void)p.feed(view(b));
    // What follows those 19 bytes is walked as a coalesced packet (garbage).
    EXPECT_GE(p.stats().count(PacketError::bad_length), 1U);
    EXPECT_EQ(p.stats().packets_decrypted, 0U);
  }
}

TEST(QuicParser, TruncatedAtEveryLength) {
  for (const auto *packet_hex : {&test::kRfc9001ClientInitial, &test::kRfc9369ClientInitial}) {
    const Buf good = hex(*packet_hex);
    for (std::size_t n = 0; n < good.size(); ++n) {
      InitialParser p;
      const FeedResult r = p.feed(view(slice(good, 0, n)));
      ASSERT_NE(r.outcome, Outcome::sni) << n;
      ASSERT_EQ(p.stats().packets_decrypted, 0U) << n;
      std::uint64_t errors = 0;
      for (const std::uint64_t e : p.stats().errors) {
        errors += e;
      }
      if (n > 0) {
        ASSERT_EQ(errors, 1U) << n; // each cut is counted once, under one name
      }
    }
  }
}

} // namespace
} // namespace ta::quic
