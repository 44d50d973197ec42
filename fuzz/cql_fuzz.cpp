// libFuzzer target for the cql codecs:
//   1. the input as a response byte stream, cut at an offset chosen by the
//      first octet, through a FrameDecoder with a small limit; every frame
//      goes through the envelope, LZ4 (when flagged) and the response
//      decoder of its opcode;
//   2. the input as one RESULT, ERROR, SUPPORTED and EVENT body directly;
//   3. the input as an LZ4 body.
// Checked invariants (abort on violation): errors have names, decoded rows
// hold exactly rows x columns cells, decompression stays within its limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ta/cql/frame.hpp"
#include "ta/cql/messages.hpp"

#include "cluster_rows.hpp"

namespace {

using ta::Bytes;
using namespace ta::cql;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void check_error(CodecError e) {
  check(e < CodecError::count_);
  check(to_string(e) != "unknown");
}

void decode_body(Opcode op, Bytes body) {
  switch (op) {
  case Opcode::error: {
    ErrorResponse m;
    check_error(m.decode(body));
    (void)server_error_name(m.code);
    break;
  }
  case Opcode::ready: {
    ReadyResponse m;
    check_error(m.decode(body));
    break;
  }
  case Opcode::authenticate: {
    AuthenticateResponse m;
    check_error(m.decode(body));
    break;
  }
  case Opcode::supported: {
    SupportedResponse m;
    check_error(m.decode(body));
    break;
  }
  case Opcode::result: {
    ResultResponse m;
    const CodecError e = m.decode(body);
    check_error(e);
    if (e == CodecError::ok && m.kind == ResultResponse::Kind::rows) {
      const auto cols = static_cast<std::size_t>(m.metadata.column_count);
      check(m.cells.size() == cols * static_cast<std::size_t>(m.row_count));
      for (std::size_t r = 0; r < static_cast<std::size_t>(m.row_count); ++r) {
        for (const auto &cell : m.row(r)) {
          (void)as_int(cell);
          (void)as_text(cell);
          (void)as_inet(cell);
        }
        // The cluster's description read from the same rows (discovery).
        for (const auto table :
             {detail::NodeTable::local, detail::NodeTable::peers_v2, detail::NodeTable::peers}) {
          detail::NodeRow node;
          const std::string why = detail::read_node_row(m, r, table, 9042, node);
          check(!why.empty() || table == detail::NodeTable::local || node.address.has_value());
        }
      }
    }
    break;
  }
  case Opcode::event: {
    EventResponse m;
    check_error(m.decode(body));
    break;
  }
  case Opcode::auth_challenge: {
    AuthChallengeResponse m;
    check_error(m.decode(body));
    break;
  }
  case Opcode::auth_success: {
    AuthSuccessResponse m;
    check_error(m.decode(body));
    break;
  }
  default:
    check(false); // the frame decoder lets only response opcodes through
  }
}

constexpr std::uint32_t kLimit = 1U << 20U;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte *>(data), size);

  // 1. As a stream of response frames, delivered in two pieces.
  FrameDecoder dec(Direction::response, kLimit);
  const std::size_t cut = size == 0 ? 0 : std::to_integer<std::size_t>(in[0]) % (size + 1);
  std::vector<std::byte> plain;
  ResponseEnvelope env;
  for (const Bytes piece : {in.first(cut), in.subspan(cut)}) {
    dec.feed(piece);
    Frame f;
    while (dec.next(f)) {
      check(f.body.size() == f.header.length && f.header.length <= kLimit);
      Bytes body = f.body;
      if ((f.header.flags & kFlagCompression) != 0) {
        const CodecError e = lz4_decompress(body, plain, kLimit);
        check_error(e);
        if (e != CodecError::ok) {
          continue;
        }
        body = plain;
      }
      const CodecError e = env.decode(f.header.flags, body);
      check_error(e);
      if (e == CodecError::ok) {
        decode_body(f.header.opcode, env.message);
      }
    }
    check_error(dec.error());
  }

  // 2. Directly as bodies.
  decode_body(Opcode::result, in);
  decode_body(Opcode::error, in);
  decode_body(Opcode::supported, in);
  decode_body(Opcode::event, in);

  // 3. As an LZ4 body.
  std::vector<std::byte> out;
  const CodecError e = lz4_decompress(in, out, kLimit);
  check_error(e);
  check(e != CodecError::ok || out.size() <= kLimit);
  return 0;
}
