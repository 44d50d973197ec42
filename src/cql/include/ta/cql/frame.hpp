// cql/frame: the v4 frame header, the incremental frame decoder and the LZ4
// body codec (spec sections 2 and 5).
//
//   0         8        16        24        32         40
//   | version |  flags  |      stream       | opcode  |
//   |                length                 |
//   ... body (length bytes) ...
//
// Contract: decoding never throws, never reads out of bounds and reports
// every failure as a CodecError with a stable snake_case name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ta/common/byte_cursor.hpp"

namespace ta::cql {

inline constexpr std::uint8_t kProtocolVersion = 0x04;
inline constexpr std::uint8_t kResponseBit = 0x80;
inline constexpr std::size_t kHeaderSize = 9;
// "currently a frame is limited to 256MB in length" (section 2.5).
inline constexpr std::uint32_t kMaxFrameBody = 256U * 1024U * 1024U;

// Header flags (section 2.2). Unknown bits are "unused and ignored".
inline constexpr std::uint8_t kFlagCompression = 0x01;
inline constexpr std::uint8_t kFlagTracing = 0x02;
inline constexpr std::uint8_t kFlagCustomPayload = 0x04;
inline constexpr std::uint8_t kFlagWarning = 0x08;

enum class Opcode : std::uint8_t {
  error = 0x00,
  startup = 0x01,
  ready = 0x02,
  authenticate = 0x03,
  options = 0x05,
  supported = 0x06,
  query = 0x07,
  result = 0x08,
  prepare = 0x09,
  execute = 0x0A,
  register_ = 0x0B,
  event = 0x0C,
  batch = 0x0D,
  auth_challenge = 0x0E,
  auth_response = 0x0F,
  auth_success = 0x10,
};
[[nodiscard]] std::string_view opcode_name(Opcode op);
// True for opcodes a server sends (ERROR, READY, ...), false for requests.
[[nodiscard]] bool is_response_opcode(Opcode op);
[[nodiscard]] bool is_known_opcode(std::uint8_t op);

// Every way decoding can fail. Closed: names are stable (metrics, logs).
enum class CodecError : std::uint8_t {
  ok,
  truncated,       // fewer bytes than a length or a fixed field announced
  bad_length,      // a negative or impossible length ([bytes] < -2, counts)
  bad_version,     // version byte is not 4
  bad_direction,   // request bit where a response was expected or vice versa
  bad_opcode,      // unknown opcode, or one of the wrong direction
  too_large,       // body length over the decoder's limit
  bad_result_kind, // RESULT kind not in 1..5
  bad_type,        // unknown [option] type id
  too_deep,        // nested collection/UDT/tuple types beyond our limit
  bad_inet,        // [inet] size other than 4 or 16
  bad_compression, // LZ4 body does not decompress to its announced length
  unexpected,      // a valid message that is not an answer to what we sent
  count_,
};
[[nodiscard]] std::string_view to_string(CodecError e);

struct FrameHeader {
  std::uint8_t version = kProtocolVersion; // with kResponseBit for responses
  std::uint8_t flags = 0;
  std::int16_t stream = 0;
  Opcode opcode = Opcode::error;
  std::uint32_t length = 0; // body bytes; the wire's [int] is never negative
};

enum class Direction : std::uint8_t { request, response };

// Appends the 9 header bytes.
void encode_header(const FrameHeader &h, std::vector<std::byte> &out);
// Writes the 9 header bytes at `out` (which must hold 9).
void encode_header(const FrameHeader &h, std::span<std::byte, kHeaderSize> out);
// Decodes and validates a header from the first 9 bytes of `data`.
[[nodiscard]] CodecError decode_header(Bytes data, Direction expect, std::uint32_t max_body,
                                       FrameHeader &out);

// A whole frame: header plus a view of its (still compressed, if flagged)
// body. The view points into the decoder's buffer.
struct Frame {
  FrameHeader header;
  Bytes body;
};

// Reassembles frames from a byte stream that arrives in arbitrary pieces.
// Errors are sticky: after a bad header the stream has lost its framing.
class FrameDecoder {
public:
  explicit FrameDecoder(Direction expect = Direction::response,
                        std::uint32_t max_body = kMaxFrameBody)
      : expect_(expect), max_body_(max_body) {}

  // Room for at least `n` more bytes: read into it, then commit(). The span
  // is invalidated by the next prepare()/next().
  [[nodiscard]] std::span<std::byte> prepare(std::size_t n);
  void commit(std::size_t n) noexcept { end_ += n; }
  void feed(Bytes data); // copy convenience: prepare + memcpy + commit

  // True with a frame whose body stays valid until the next call to
  // prepare/feed/next/reset. False when more bytes are needed or on error.
  [[nodiscard]] bool next(Frame &out);
  [[nodiscard]] CodecError error() const noexcept { return error_; }
  // Bytes buffered but not yet returned as frames (a partial frame).
  [[nodiscard]] std::size_t buffered() const noexcept { return end_ - start_; }
  void reset() noexcept;

private:
  std::vector<std::byte> buf_;
  std::size_t start_ = 0; // first byte not yet returned
  std::size_t end_ = 0;   // one past the last byte read
  Direction expect_;
  std::uint32_t max_body_;
  CodecError error_ = CodecError::ok;
};

// LZ4 as the v4 protocol frames it: [int] uncompressed length (big-endian)
// followed by one LZ4 block. Appends to `out`.
void lz4_compress(Bytes in, std::vector<std::byte> &out);
// Replaces `out` with the decompressed body; `bad_compression` when the
// block is corrupt or does not fill exactly the announced length,
// `too_large` when the announced length exceeds max_size, `bad_length` when
// it is negative.
[[nodiscard]] CodecError lz4_decompress(Bytes in, std::vector<std::byte> &out,
                                        std::uint32_t max_size = kMaxFrameBody);

} // namespace ta::cql
