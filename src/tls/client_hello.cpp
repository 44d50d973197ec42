// ClientHello parsing down to the server_name extension.
//
// Handshake message (RFC 8446 §4):
//   uint8  msg_type;          // 1 = client_hello
//   uint24 length;            // of the body that follows
// ClientHello body (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 has the same layout):
//   uint16 legacy_version;                    // 0x0303 (any value accepted)
//   opaque random[32];
//   opaque legacy_session_id<0..32>;          // uint8 length
//   CipherSuite cipher_suites<2..2^16-2>;     // uint16 length, 2 bytes each
//   opaque legacy_compression_methods<1..2^8-1>; // uint8 length
//   Extension extensions<8..2^16-1>;          // uint16 length; absent in old
//                                             // TLS 1.2 clients (RFC 5246 §7.4.1.2)
// Extension (RFC 8446 §4.2): uint16 extension_type; opaque extension_data<0..2^16-1>.
// server_name, extension type 0 (RFC 6066 §3):
//   struct { NameType name_type;  // 0 = host_name
//            select (name_type) { case host_name: HostName; } name; } ServerName;
//   opaque HostName<1..2^16-1>;
//   struct { ServerName server_name_list<1..2^16-1>; } ServerNameList;
//
// Surprises handled here:
// - RFC 6066 defines no length for name types other than host_name; like
//   every deployed parser, entries of other types are taken to carry the same
//   uint16 length prefix and are skipped.
// - A client MUST NOT send two extensions of one type (RFC 8446 §4.2); two
//   server_name extensions are rejected (bad_extension), since which one a
//   server would read is undefined. Other repeated types are not checked.
// - The whole extensions block is walked, so a message whose framing lies
//   after the server_name extension is still rejected whole.
#include <cstdint>

#include "ta/tls/tls.hpp"

namespace ta::tls {
namespace {

constexpr std::uint8_t kClientHello = 1;
constexpr std::size_t kHandshakeHeader = 4;
constexpr std::size_t kRandom = 32;
constexpr std::uint8_t kMaxSessionId = 32;
constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint8_t kNameTypeHostName = 0;

using S = ClientHelloStatus;

// Reads the server_name extension data; sets `name` to the first host_name,
// or leaves it empty (no host_name: no_sni).
S read_server_name(Bytes data, Bytes &name) noexcept {
  ByteCursor c(data);
  if (c.empty()) {
    return S::no_sni; // an empty extension: the form a server echoes; no name
  }
  std::uint16_t list_len = 0;
  Bytes list;
  if (!c.read_u16(list_len) || list_len != c.remaining() || !c.take(list_len, list)) {
    return S::bad_extension;
  }
  ByteCursor l(list);
  while (!l.empty()) {
    std::uint8_t type = 0;
    std::uint16_t len = 0;
    Bytes entry;
    if (!l.read_u8(type) || !l.read_u16(len) || !l.take(len, entry)) {
      return S::bad_extension;
    }
    if (type == kNameTypeHostName) {
      if (entry.empty()) {
        return S::bad_extension; // HostName<1..2^16-1>
      }
      if (name.empty()) {
        name = entry; // the first host_name wins; the rest is only walked
      }
    }
  }
  return name.empty() ? S::no_sni : S::ok;
}

S parse_body(Bytes body, Bytes &name) noexcept {
  ByteCursor c(body);
  std::uint8_t sid_len = 0;
  if (!c.skip(2 + kRandom) || !c.read_u8(sid_len)) {
    return S::truncated;
  }
  if (sid_len > kMaxSessionId) {
    return S::bad_length;
  }
  std::uint16_t suites_len = 0;
  if (!c.skip(sid_len) || !c.read_u16(suites_len)) {
    return S::truncated;
  }
  if (suites_len == 0 || suites_len % 2 != 0) {
    return S::bad_length;
  }
  std::uint8_t comp_len = 0;
  if (!c.skip(suites_len) || !c.read_u8(comp_len)) {
    return S::truncated;
  }
  if (comp_len == 0) {
    return S::bad_length;
  }
  if (!c.skip(comp_len)) {
    return S::truncated;
  }
  if (c.empty()) {
    return S::no_sni; // no extensions at all (RFC 5246 §7.4.1.2)
  }
  std::uint16_t ext_len = 0;
  Bytes exts;
  if (!c.read_u16(ext_len) || !c.take(ext_len, exts)) {
    return S::truncated;
  }
  if (!c.empty()) {
    return S::bad_length;
  }
  ByteCursor e(exts);
  bool seen_sni = false;
  S sni = S::no_sni;
  while (!e.empty()) {
    std::uint16_t type = 0;
    std::uint16_t len = 0;
    Bytes data;
    if (!e.read_u16(type) || !e.read_u16(len) || !e.take(len, data)) {
      return S::bad_extension;
    }
    if (type != kExtServerName) {
      continue;
    }
    if (seen_sni) {
      return S::bad_extension;
    }
    seen_sni = true;
    sni = read_server_name(data, name);
    if (sni == S::bad_extension) {
      return sni;
    }
  }
  return sni;
}

} // namespace

std::string_view client_hello_status_name(ClientHelloStatus s) noexcept {
  switch (s) {
  case S::ok:
    return "ok";
  case S::need_more:
    return "need_more";
  case S::not_client_hello:
    return "not_client_hello";
  case S::no_sni:
    return "no_sni";
  case S::truncated:
    return "truncated";
  case S::bad_length:
    return "bad_length";
  case S::bad_extension:
    return "bad_extension";
  case S::too_large:
    return "too_large";
  case S::not_tls:
    return "not_tls";
  case S::bad_record:
    return "bad_record";
  case S::count_:
    break;
  }
  return "unknown";
}

ClientHelloResult parse_client_hello(Bytes msg) noexcept {
  ByteCursor c(msg);
  std::uint8_t type = 0;
  if (!c.read_u8(type)) {
    return {S::need_more, {}};
  }
  if (type != kClientHello) {
    return {S::not_client_hello, {}};
  }
  std::uint8_t l0 = 0;
  std::uint16_t l12 = 0;
  if (!c.read_u8(l0) || !c.read_u16(l12)) {
    return {S::need_more, {}};
  }
  const std::size_t body_len = (std::size_t{l0} << 16U) | l12;
  if (body_len > kMaxHandshakeMessage - kHandshakeHeader) {
    return {S::too_large, {}};
  }
  Bytes body;
  if (!c.take(body_len, body)) {
    return {S::need_more, {}};
  }
  Bytes name;
  const S s = parse_body(body, name);
  if (s != S::ok) {
    return {s, {}};
  }
  return {S::ok, name};
}

} // namespace ta::tls
