// Writes QUIC client Initial packets protected for real, so any QUIC
// dissector can remove the protection and read the ClientHello:
//
//   RFC 9001 §5.2: initial_secret = HKDF-Extract(salt, client's DCID);
//     client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32);
//     key/iv/hp = HKDF-Expand-Label(secret, "quic key"/"quic iv"/"quic hp", "", 16/12/16)
//     with v1's salt 0x38762cf7f55934b34d179ae6a4c80cadccbb7f0a. QUIC v2
//     (RFC 9369 §3.3.1-3.3.2) uses salt 0x0dede3def700a6db819381be6e269dcbf9bd2ed9
//     and the labels "quicv2 key", "quicv2 iv", "quicv2 hp".
//   RFC 9001 §5.3: AES-128-GCM over the payload, nonce = iv XOR the packet
//     number, associated data = the header up to and including the packet number.
//   RFC 9001 §5.4: header protection, mask = AES-128-ECB(hp, 16-byte sample
//     taken 4 bytes after the packet number's start); the low 4 bits of the
//     first byte and the packet number bytes are XORed with the mask.
//
// The packet (RFC 9000 §17.2.2): first byte 1 1 TT RR PP (type Initial: 00
// in v1, 01 in v2), version, DCID length + DCID, SCID length + SCID, token
// length 0, Length (2-byte varint), a 2-byte packet number, then a CRYPTO
// frame (type 0x06, offset, length, data) and PADDING up to the 1200-byte
// datagram a client Initial must fill (RFC 9000 §14.1).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace ta::generate::detail {

inline constexpr std::uint32_t kQuicV1 = 0x00000001;
inline constexpr std::uint32_t kQuicV2 = 0x6b3343cf;
inline constexpr std::size_t kQuicInitialSize = 1200;

struct QuicKeys {
  std::array<std::uint8_t, 16> key{};
  std::array<std::uint8_t, 12> iv{};
  std::array<std::uint8_t, 16> hp{};
};

// The client's Initial keys for `version` (v1 or v2) and the client's first
// Destination Connection ID. False if libcrypto fails.
[[nodiscard]] bool quic_client_initial_keys(std::uint32_t version,
                                            std::span<const std::uint8_t> dcid,
                                            QuicKeys &keys) noexcept;

class QuicInitialWriter {
public:
  QuicInitialWriter();
  ~QuicInitialWriter();
  QuicInitialWriter(const QuicInitialWriter &) = delete;
  QuicInitialWriter &operator=(const QuicInitialWriter &) = delete;

  // Writes one protected Initial of kQuicInitialSize bytes carrying
  // `crypto` at CRYPTO offset `crypto_offset`; returns its size, or 0 when
  // it does not fit `capacity` or libcrypto fails.
  [[nodiscard]] std::size_t write(std::uint8_t *out, std::size_t capacity, std::uint32_t version,
                                  std::span<const std::uint8_t> dcid,
                                  std::span<const std::uint8_t> scid, std::uint16_t packet_number,
                                  std::uint32_t crypto_offset,
                                  std::span<const std::uint8_t> crypto) noexcept;

private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

} // namespace ta::generate::detail
