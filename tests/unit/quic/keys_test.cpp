// Initial keys and packet protection against RFC 9001 Appendix A (v1) and
// RFC 9369 Appendix A (v2).
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace ta::quic {
namespace {

using test::hex;
using test::to_hex;
using test::view;

TEST(QuicKeys, Rfc9001ClientInitialKeys) {
  InitialKeys k;
  ASSERT_TRUE(derive_client_initial_keys(Version::v1, view(hex(test::kRfcDcid)), k));
  // RFC 9001 §A.1, client: key, iv, hp.
  EXPECT_EQ(to_hex(k.key), "1f369613dd76d5467730efcbe3b1a22d");
  EXPECT_EQ(to_hex(k.iv), "fa044b2f42a3fd3b46fb255c");
  EXPECT_EQ(to_hex(k.hp), "9f50449e04a0e810283a1e9933adedd2");
}

TEST(QuicKeys, Rfc9369ClientInitialKeys) {
  InitialKeys k;
  ASSERT_TRUE(derive_client_initial_keys(Version::v2, view(hex(test::kRfcDcid)), k));
  // RFC 9369 §A.1, client: key, iv, hp.
  EXPECT_EQ(to_hex(k.key), "8b1a0bc121284290a29e0971b5cd045d");
  EXPECT_EQ(to_hex(k.iv), "91f73e2351d8fa91660e909f");
  EXPECT_EQ(to_hex(k.hp), "45b95e15235d6f45a6b19cbcb0294ba9");
}

// The test builder must reproduce the RFC packets exactly; every synthetic
// packet in the other tests is made by it.
TEST(QuicKeys, ProtectReproducesRfc9001ClientInitial) {
  test::InitialSpec spec;
  spec.packet_number = test::kRfcPacketNumber;
  const test::Buf packet =
      test::protect(spec, view(test::padded(hex(test::kRfcCryptoFrame), test::kRfcPayloadLength)));
  EXPECT_EQ(packet, hex(test::kRfc9001ClientInitial));
}

TEST(QuicKeys, ProtectReproducesRfc9369ClientInitial) {
  test::InitialSpec spec;
  spec.version = Version::v2;
  spec.packet_number = test::kRfcPacketNumber;
  const test::Buf packet =
      test::protect(spec, view(test::padded(hex(test::kRfcCryptoFrame), test::kRfcPayloadLength)));
  EXPECT_EQ(packet, hex(test::kRfc9369ClientInitial));
}

TEST(QuicKeys, UnprotectRfc9001ClientInitial) {
  InitialParser p;
  const test::Buf packet = hex(test::kRfc9001ClientInitial);
  const FeedResult r = p.feed(view(packet));
  EXPECT_EQ(r.outcome, Outcome::sni);
  EXPECT_EQ(r.sni, "example.com"); // RFC 9001 §A.2: server_name extension 0000000e00000b6578...
  EXPECT_EQ(p.stats().packets_decrypted, 1U);
  EXPECT_EQ(p.stats().key_derivations, 1U);
}

TEST(QuicKeys, UnprotectRfc9369ClientInitial) {
  InitialParser p;
  const test::Buf packet = hex(test::kRfc9369ClientInitial);
  const FeedResult r = p.feed(view(packet));
  EXPECT_EQ(r.outcome, Outcome::sni);
  EXPECT_EQ(r.sni, "example.com");
}

TEST(QuicKeys, FlippedTagByteFailsToDecrypt) {
  for (const auto *packet_hex : {&test::kRfc9001ClientInitial, &test::kRfc9369ClientInitial}) {
    test::Buf packet = hex(*packet_hex);
    packet.back() ^= std::byte{0x01};
    InitialParser p;
    EXPECT_EQ(p.feed(view(packet)).outcome, Outcome::need_more);
    EXPECT_EQ(p.stats().count(PacketError::decrypt_failed), 1U);
    EXPECT_EQ(p.stats().packets_decrypted, 0U);
  }
}

TEST(QuicKeys, V1PacketDoesNotOpenAsV2) {
  // The same bytes with the version field changed to v2: the v2 keys (and
  // type bits: 0b00 is a v2 Retry) do not apply.
  test::Buf packet = hex(test::kRfc9001ClientInitial);
  packet[1] = std::byte{0x6b};
  packet[2] = std::byte{0x33};
  packet[3] = std::byte{0x43};
  packet[4] = std::byte{0xcf};
  InitialParser p;
  EXPECT_EQ(p.feed(view(packet)).outcome, Outcome::need_more);
  EXPECT_EQ(p.stats().packets_decrypted, 0U);
}

} // namespace
} // namespace ta::quic
