#include "tls_hello.hpp"

#include <array>
#include <cstring>

namespace ta::generate::detail {
namespace {

// Appends big-endian fields and patches length prefixes; stops writing (and
// reports failure) once the buffer is full.
class Out {
public:
  Out(std::uint8_t *p, std::size_t capacity) noexcept : p_(p), capacity_(capacity) {}

  void u8(std::uint32_t v) noexcept {
    if (room(1)) {
      p_[n_++] = static_cast<std::uint8_t>(v);
    }
  }
  void u16(std::uint32_t v) noexcept {
    u8(v >> 8U);
    u8(v);
  }
  void raw(const void *data, std::size_t n) noexcept {
    if (room(n)) {
      std::memcpy(p_ + n_, data, n);
      n_ += n;
    }
  }
  // Reserves a length prefix of `bytes` bytes; close() fills it in.
  [[nodiscard]] std::size_t open(std::size_t bytes) noexcept {
    const std::size_t at = n_;
    for (std::size_t i = 0; i < bytes; ++i) {
      u8(0);
    }
    return at;
  }
  void close(std::size_t at, std::size_t bytes) noexcept {
    if (!ok_) {
      return;
    }
    const std::size_t v = n_ - at - bytes;
    for (std::size_t i = 0; i < bytes; ++i) {
      p_[at + i] = static_cast<std::uint8_t>(v >> (8U * (bytes - 1 - i)));
    }
  }
  [[nodiscard]] std::size_t size() const noexcept { return ok_ ? n_ : 0; }

private:
  bool room(std::size_t n) noexcept {
    ok_ = ok_ && n_ + n <= capacity_;
    return ok_;
  }

  std::uint8_t *p_;
  std::size_t capacity_;
  std::size_t n_ = 0;
  bool ok_ = true;
};

// A QUIC variable-length integer of 1, 2 or 4 bytes (RFC 9000 §16).
void varint(Out &o, std::uint32_t v) noexcept {
  if (v < 64) {
    o.u8(v);
  } else if (v < 16384) {
    o.u16(0x4000U | v);
  } else {
    o.u16(0x8000U | (v >> 16U));
    o.u16(v & 0xFFFFU);
  }
}

} // namespace

void put_tls_record_header(std::uint8_t *p, std::uint8_t type, std::size_t length) noexcept {
  p[0] = type;
  p[1] = 3;
  p[2] = type == kTlsHandshake ? 1 : 3;
  p[3] = static_cast<std::uint8_t>(length >> 8U);
  p[4] = static_cast<std::uint8_t>(length);
}

std::size_t write_client_hello(std::uint8_t *out, std::size_t capacity,
                               const ClientHelloShape &shape) noexcept {
  if (shape.random.size() < 32) {
    return 0;
  }
  Out o(out, capacity);
  o.u8(1); // client_hello
  const std::size_t body = o.open(3);
  o.u16(0x0303);
  o.raw(shape.random.data(), 32);
  if (shape.quic) {
    o.u8(0);
  } else {
    o.u8(32); // a middlebox-compatibility session id (RFC 8446 §D.4)
    o.raw(shape.random.data(), 32);
  }
  constexpr std::array<std::uint16_t, 5> kTcpSuites{0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F};
  const std::size_t suites = shape.quic ? 3 : kTcpSuites.size();
  o.u16(static_cast<std::uint32_t>(2 * suites));
  for (std::size_t i = 0; i < suites; ++i) {
    o.u16(kTcpSuites[i]);
  }
  o.u8(1);
  o.u8(0); // null compression
  const std::size_t exts = o.open(2);

  if (!shape.server_name.empty()) {
    o.u16(0x0000); // server_name
    const std::size_t ext = o.open(2);
    const std::size_t list = o.open(2);
    o.u8(0); // host_name
    o.u16(static_cast<std::uint32_t>(shape.server_name.size()));
    o.raw(shape.server_name.data(), shape.server_name.size());
    o.close(list, 2);
    o.close(ext, 2);
  }
  o.u16(0x000A); // supported_groups: x25519, secp256r1
  o.u16(6);
  o.u16(4);
  o.u16(0x001D);
  o.u16(0x0017);
  o.u16(0x000D); // signature_algorithms
  o.u16(8);
  o.u16(6);
  o.u16(0x0403); // ecdsa_secp256r1_sha256
  o.u16(0x0804); // rsa_pss_rsae_sha256
  o.u16(0x0401); // rsa_pkcs1_sha256
  {
    o.u16(0x0010); // application_layer_protocol_negotiation
    const std::size_t ext = o.open(2);
    const std::size_t list = o.open(2);
    if (shape.quic) {
      o.u8(2);
      o.raw("h3", 2);
    } else {
      o.u8(2);
      o.raw("h2", 2);
      o.u8(8);
      o.raw("http/1.1", 8);
    }
    o.close(list, 2);
    o.close(ext, 2);
  }
  o.u16(0x002B); // supported_versions: TLS 1.3
  o.u16(3);
  o.u8(2);
  o.u16(0x0304);
  o.u16(0x002D); // psk_key_exchange_modes: psk_dhe_ke
  o.u16(2);
  o.u8(1);
  o.u8(1);
  o.u16(0x0033); // key_share: one x25519 share
  o.u16(38);
  o.u16(36);
  o.u16(0x001D);
  o.u16(32);
  o.raw(shape.random.data(), 32);
  if (shape.quic) {
    // Transport parameters: id, length, value (RFC 9000 §18.2).
    o.u16(0x0039);
    const std::size_t ext = o.open(2);
    varint(o, 0x01); // max_idle_timeout 30000 ms
    varint(o, 4);
    varint(o, 30000);
    varint(o, 0x04); // initial_max_data 1 MiB
    varint(o, 4);
    varint(o, 1U << 20U);
    varint(o, 0x08); // initial_max_streams_bidi 100
    varint(o, 2);
    varint(o, 100);
    varint(o, 0x0F); // initial_source_connection_id
    varint(o, static_cast<std::uint32_t>(shape.quic_scid.size()));
    o.raw(shape.quic_scid.data(), shape.quic_scid.size());
    o.close(ext, 2);
  }
  o.close(exts, 2);
  o.close(body, 3);
  return o.size();
}

} // namespace ta::generate::detail
