// quic: the server name a QUIC client puts in the ClientHello of its Initial
// packets. Removes Initial packet protection (RFC 9001 §5 for QUIC v1,
// RFC 9369 §3.3 for QUIC v2), joins the CRYPTO frames of the client's Initial
// packets and reads the ClientHello's server_name. ta_quic links ta_common,
// ta_tls (the ClientHello walk) and, privately, OpenSSL's libcrypto.
//
// Contract:
//   - One InitialParser per flow, fed only the client's UDP payloads, in
//     capture order. A datagram may hold several coalesced packets
//     (RFC 9000 §12.2); they are walked by their Length fields.
//   - Only version fields 0x00000001 (v1) and 0x6b3343cf (v2) are decrypted.
//     Anything else (drafts, gQUIC, version negotiation) is
//     `unsupported_version` and never decrypted.
//   - The first complete ClientHello decides: `sni` or `no_sni`. The result
//     is then final; later feeds return it again without work.
//   - Bounded: a parser holds at most 16 KiB of CRYPTO data plus a constant
//     (the heap state is made at the first v1/v2 Initial to open and released
//     once the result is final). Per-packet failures are counted in
//     InitialStats under PacketError, never thrown; nothing is printed.
//   - Decryption works in one scratch buffer per thread (64 KiB, made once);
//     nothing is allocated per packet.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ta/common/byte_cursor.hpp"

namespace ta::quic {

inline constexpr std::uint32_t kVersion1 = 0x00000001; // RFC 9000
inline constexpr std::uint32_t kVersion2 = 0x6b3343cf; // RFC 9369 §3.1

enum class Version : std::uint8_t { v1, v2 };

// The client's Initial packet protection keys (AEAD_AES_128_GCM).
struct InitialKeys {
  std::array<std::byte, 16> key{};
  std::array<std::byte, 12> iv{};
  std::array<std::byte, 16> hp{};
};

// RFC 9001 §5.2 (v1) / RFC 9369 §3.3.1-3.3.2 (v2):
//   initial_secret        = HKDF-Extract(initial_salt, client's DCID)
//   client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32)
//   key/iv/hp             = HKDF-Expand-Label(client_initial_secret,
//                           "quic key"/"quic iv"/"quic hp" (v2: "quicv2 ..."), "", 16/12/16)
// False only if libcrypto fails.
[[nodiscard]] bool derive_client_initial_keys(Version version, Bytes dcid,
                                              InitialKeys &out) noexcept;

// What one feed() says about the flow. Stable snake_case names (outcome_name).
enum class Outcome : std::uint8_t {
  need_more,           // a v1/v2 long header was seen; no complete ClientHello yet
  sni,                 // final: the ClientHello names a server (FeedResult::sni)
  no_sni,              // final: the first complete ClientHello has no host_name
  unsupported_version, // only long headers of versions this library does not decrypt
  not_quic,            // nothing in the datagram is a QUIC long header
};

[[nodiscard]] std::string_view outcome_name(Outcome o) noexcept;

// Why a packet (or the rest of a datagram) was not used. Stable snake_case
// names (packet_error_name), used as metric labels: append only.
enum class PacketError : std::uint8_t {
  short_header,        // header form bit 0 (a 1-RTT packet, or not QUIC)
  fixed_bit_clear,     // long header whose fixed bit (0x40) is 0
  truncated_header,    // the datagram ends inside the long header
  bad_connection_id,   // a v1/v2 connection ID longer than 20 bytes (RFC 9000 §17.2)
  bad_token_length,    // the Initial's token runs past the datagram
  bad_length,          // Length runs past the datagram, or leaves no room for
                       // the 4-byte packet number sample offset + 16-byte sample
  unsupported_version, // a version other than v1/v2 (or 0: version negotiation)
  not_initial,         // a v1/v2 0-RTT, Handshake or Retry packet (skipped)
  decrypt_failed,      // the AEAD tag did not verify under any known key
  bad_frame,           // a frame an Initial may not carry, or one cut short
  crypto_too_large,    // CRYPTO data beyond the 16 KiB bound (or a larger ClientHello)
  bad_client_hello,    // the handshake stream does not start with a valid ClientHello
  count_               // number of values; keep last
};

[[nodiscard]] std::string_view packet_error_name(PacketError e) noexcept;

struct InitialStats {
  std::array<std::uint64_t, static_cast<std::size_t>(PacketError::count_)> errors{};
  std::uint64_t packets_decrypted = 0;
  std::uint64_t key_derivations = 0; // once per new (version, DCID), never per packet

  [[nodiscard]] std::uint64_t count(PacketError e) const noexcept {
    return errors[static_cast<std::size_t>(e)];
  }
};

struct FeedResult {
  Outcome outcome = Outcome::need_more;
  // The host_name bytes as sent (not lower-cased; the caller normalises).
  // Set with Outcome::sni; valid as long as the parser lives.
  std::string_view sni;
};

class InitialParser {
public:
  // Upper bound on the joined CRYPTO stream (the ClientHello must fit).
  static constexpr std::size_t kMaxCrypto = std::size_t{16} * 1024;

  InitialParser() noexcept;
  ~InitialParser();
  InitialParser(InitialParser &&) noexcept;
  InitialParser &operator=(InitialParser &&) noexcept;
  InitialParser(const InitialParser &) = delete;
  InitialParser &operator=(const InitialParser &) = delete;

  // One UDP payload sent by the client.
  [[nodiscard]] FeedResult feed(Bytes udp_payload) noexcept;

  // Starts over for a new connection, keeping the buffers and cipher
  // contexts of the last one (a parser that decided holds them until then).
  void reset() noexcept;

  [[nodiscard]] bool done() const noexcept { return done_; }
  [[nodiscard]] const InitialStats &stats() const noexcept { return stats_; }

  struct State; // the heap part (keys, CRYPTO buffer); private to the library

private:
  void open_initial(Bytes packet, std::size_t pn_offset, Version version, Bytes dcid) noexcept;
  void check_client_hello() noexcept;
  void finish(Outcome outcome, Bytes name);

  std::unique_ptr<State> state_;
  std::unique_ptr<State> spare_; // the last connection's, for the next one
  InitialStats stats_;
  std::string sni_;
  Outcome final_ = Outcome::need_more;
  bool done_ = false;
};

} // namespace ta::quic
