// Writes a TLS 1.3 ClientHello handshake message (RFC 8446 §4.1.2) into a
// caller's buffer, shaped like a browser's:
//   msg_type 1, length u24,
//   legacy_version 0x0303, random[32], legacy_session_id<0..32>,
//   cipher_suites<2..>, legacy_compression_methods<1..> = {0},
//   extensions<8..>: server_name (RFC 6066 §3: list of {name_type 0 =
//   host_name, HostName<1..>}), supported_groups, signature_algorithms, ALPN
//   (RFC 7301), supported_versions {TLS 1.3}, psk_key_exchange_modes,
//   key_share {x25519} and, for QUIC, quic_transport_parameters (RFC 9001
//   §8.2, RFC 9000 §18).
// Over TCP the message goes in a handshake record (put_tls_record_header);
// in QUIC it is the data of CRYPTO frames, with an empty session id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ta::generate::detail {

struct ClientHelloShape {
  std::string_view server_name;            // empty: no server_name extension
  std::span<const std::uint8_t> random;    // 32 bytes: random, session id, key share
  bool quic = false;                       // ALPN h3, transport parameters, no session id
  std::span<const std::uint8_t> quic_scid; // initial_source_connection_id
};

// The message length, or 0 when `capacity` is too small.
[[nodiscard]] std::size_t write_client_hello(std::uint8_t *out, std::size_t capacity,
                                             const ClientHelloShape &shape) noexcept;

// TLSPlaintext header (RFC 8446 §5.1): type, legacy_record_version 0x0301 for
// a ClientHello record (0x0303 otherwise), length.
inline constexpr std::uint8_t kTlsHandshake = 22;
inline constexpr std::uint8_t kTlsApplicationData = 23;
void put_tls_record_header(std::uint8_t *p, std::uint8_t type, std::size_t length) noexcept;

} // namespace ta::generate::detail
