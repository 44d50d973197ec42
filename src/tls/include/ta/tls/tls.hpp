// tls/tls: the server_name a TLS client puts in its ClientHello (RFC 6066 §3),
// read from one handshake message (parse_client_hello) or from the client's
// first TCP payload bytes with the record layer around it
// (ClientHelloAssembler). ta_tls links only ta_common.
//
// Zero-copy and exception-free: parse_client_hello returns a view into the
// bytes it was given; the assembler owns one buffer allocated at construction
// and never allocates afterwards. parse_client_hello knows nothing of the
// record layer, so QUIC hands it the bytes of its CRYPTO stream (RFC 9001
// §4: a QUIC ClientHello has no record layer) and TCP hands it what the
// assembler joined.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "ta/common/byte_cursor.hpp"

namespace ta::tls {

// The largest handshake message (4-byte header included) read. A ClientHello
// is a few hundred bytes; post-quantum key shares bring it to ~2 KiB.
inline constexpr std::size_t kMaxHandshakeMessage = std::size_t{16} * 1024;

// Why a ClientHello did or did not give a name. Stable snake_case names
// (client_hello_status_name) are counted by callers: append only.
enum class ClientHelloStatus : std::uint8_t {
  ok = 0,           // server_name holds the first host_name
  need_more,        // the handshake message is not complete yet
  not_client_hello, // the first handshake message is not a ClientHello (msg_type != 1)
  no_sni,           // well-formed; no server_name extension, or no host_name in it
  truncated,        // a field or vector runs past the end of the handshake message
  bad_length,       // a vector length outside its range (session_id > 32, odd or
                    // empty cipher_suites, empty compression_methods), or bytes
                    // left over after the extensions
  bad_extension,    // an extension runs past the extensions block, or the
                    // server_name extension is malformed or repeated
  too_large,        // the message is longer than kMaxHandshakeMessage
  not_tls,          // assembler only: the first record is not TLS handshake 3.x
  bad_record,       // assembler only: a later record is not a handshake record, or
                    // a record length is 0 or over 2^14 + 256
  count_
};

[[nodiscard]] std::string_view client_hello_status_name(ClientHelloStatus s) noexcept;

struct ClientHelloResult {
  ClientHelloStatus status = ClientHelloStatus::need_more;
  // The raw host_name bytes (a view into the parsed input; not normalised:
  // see ta/common/hostname.hpp). Empty unless status is ok.
  Bytes server_name{};

  // True only for a host_name of at least one byte. An extension with an
  // empty server_name_list, or with entries of other name types only, is
  // no_sni.
  [[nodiscard]] bool sni_is_present() const noexcept { return status == ClientHelloStatus::ok; }
};

// Parses the handshake message at the start of `msg` (RFC 8446 §4:
// msg_type(1) length(3) body). Bytes after the first message are ignored.
// need_more when `msg` holds less than the whole first message (an empty
// `msg` included); not_client_hello as soon as the first byte is not 1.
[[nodiscard]] ClientHelloResult parse_client_hello(Bytes msg) noexcept;

// What the assembler has decided so far.
enum class AssemblerState : std::uint8_t {
  need_more = 0, // feed more bytes
  done,          // the first handshake message is complete (or is not a ClientHello)
  not_tls,       // the first record is not a TLS 1.x handshake record
  too_large,     // the first handshake message is longer than kMaxHandshakeMessage
  malformed,     // a later record header is not a handshake record or lies
  count_
};

[[nodiscard]] std::string_view assembler_state_name(AssemblerState s) noexcept;

// Joins the first handshake message out of the TLS record layer (RFC 8446
// §5.1, RFC 5246 §6.2.1):
//
//   struct { ContentType type;                 // 22 = handshake
//            ProtocolVersion legacy_record_version; // 0x0301..0x0303 in practice
//            uint16 length;                    // <= 2^14 (+256 tolerated)
//            opaque fragment[length]; } TLSPlaintext;
//
// A handshake message may span several records, and a record may arrive in
// many TCP segments. Feed the client's first payload bytes in sequence order;
// the caller handles gaps (a gap means no SNI). Once the state leaves
// need_more it never changes until reset(); later feeds are ignored.
class ClientHelloAssembler {
public:
  ClientHelloAssembler();

  // Consumes `piece`; returns the state after it.
  AssemblerState feed(Bytes piece) noexcept;

  [[nodiscard]] AssemblerState state() const noexcept { return state_; }

  // The joined handshake bytes so far (the whole first message when done;
  // for a first message that is not a ClientHello possibly just its type).
  [[nodiscard]] Bytes message() const noexcept { return {buf_.get(), have_}; }

  // parse_client_hello(message()) when done; otherwise the state as a
  // status (need_more, not_tls, too_large, bad_record).
  [[nodiscard]] ClientHelloResult result() const noexcept;

  // Forgets everything, keeping the buffer (allocated once, at the first
  // handshake byte ever fed): ready for another flow.
  void reset() noexcept;

private:
  AssemblerState take_header_byte(std::byte b) noexcept;
  void take_fragment(Bytes fragment) noexcept;

  std::unique_ptr<std::byte[]> buf_;  // kMaxHandshakeMessage bytes, from the first use
  std::size_t have_ = 0;              // handshake bytes joined in buf_
  std::size_t want_ = 0;              // 4 + the message's length, once known
  std::array<std::byte, 5> header_{}; // the record header being read
  std::size_t header_have_ = 0;
  std::size_t record_left_ = 0; // fragment bytes of the current record still to come
  bool first_record_ = true;
  AssemblerState state_ = AssemblerState::need_more;
};

} // namespace ta::tls
