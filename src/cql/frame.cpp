#include "ta/cql/frame.hpp"

#include <array>
#include <cstring>

#include <lz4.h>

namespace ta::cql {

std::string_view opcode_name(Opcode op) {
  switch (op) {
  case Opcode::error:
    return "ERROR";
  case Opcode::startup:
    return "STARTUP";
  case Opcode::ready:
    return "READY";
  case Opcode::authenticate:
    return "AUTHENTICATE";
  case Opcode::options:
    return "OPTIONS";
  case Opcode::supported:
    return "SUPPORTED";
  case Opcode::query:
    return "QUERY";
  case Opcode::result:
    return "RESULT";
  case Opcode::prepare:
    return "PREPARE";
  case Opcode::execute:
    return "EXECUTE";
  case Opcode::register_:
    return "REGISTER";
  case Opcode::event:
    return "EVENT";
  case Opcode::batch:
    return "BATCH";
  case Opcode::auth_challenge:
    return "AUTH_CHALLENGE";
  case Opcode::auth_response:
    return "AUTH_RESPONSE";
  case Opcode::auth_success:
    return "AUTH_SUCCESS";
  }
  return "unknown";
}

bool is_known_opcode(std::uint8_t op) {
  return op <= 0x10 && op != 0x04;
}

bool is_response_opcode(Opcode op) {
  switch (op) {
  case Opcode::error:
  case Opcode::ready:
  case Opcode::authenticate:
  case Opcode::supported:
  case Opcode::result:
  case Opcode::event:
  case Opcode::auth_challenge:
  case Opcode::auth_success:
    return true;
  default:
    return false;
  }
}

std::string_view to_string(CodecError e) {
  switch (e) {
  case CodecError::ok:
    return "ok";
  case CodecError::truncated:
    return "truncated";
  case CodecError::bad_length:
    return "bad_length";
  case CodecError::bad_version:
    return "bad_version";
  case CodecError::bad_direction:
    return "bad_direction";
  case CodecError::bad_opcode:
    return "bad_opcode";
  case CodecError::too_large:
    return "too_large";
  case CodecError::bad_result_kind:
    return "bad_result_kind";
  case CodecError::bad_type:
    return "bad_type";
  case CodecError::too_deep:
    return "too_deep";
  case CodecError::bad_inet:
    return "bad_inet";
  case CodecError::bad_compression:
    return "bad_compression";
  case CodecError::unexpected:
    return "unexpected";
  case CodecError::count_:
    break;
  }
  return "unknown";
}

void encode_header(const FrameHeader &h, std::span<std::byte, kHeaderSize> out) {
  const auto stream = static_cast<std::uint16_t>(h.stream);
  out[0] = std::byte{h.version};
  out[1] = std::byte{h.flags};
  out[2] = static_cast<std::byte>(stream >> 8U);
  out[3] = static_cast<std::byte>(stream & 0xFFU);
  out[4] = static_cast<std::byte>(h.opcode);
  out[5] = static_cast<std::byte>(h.length >> 24U);
  out[6] = static_cast<std::byte>((h.length >> 16U) & 0xFFU);
  out[7] = static_cast<std::byte>((h.length >> 8U) & 0xFFU);
  out[8] = static_cast<std::byte>(h.length & 0xFFU);
}

void encode_header(const FrameHeader &h, std::vector<std::byte> &out) {
  const std::size_t at = out.size();
  out.resize(at + kHeaderSize);
  encode_header(h, std::span<std::byte, kHeaderSize>(out.data() + at, kHeaderSize));
}

CodecError decode_header(Bytes data, Direction expect, std::uint32_t max_body, FrameHeader &out) {
  ByteCursor c(data);
  std::uint8_t version = 0;
  std::uint8_t flags = 0;
  std::uint16_t stream = 0;
  std::uint8_t opcode = 0;
  std::uint32_t length = 0;
  if (!c.read_u8(version) || !c.read_u8(flags) || !c.read_u16(stream) || !c.read_u8(opcode) ||
      !c.read_u32(length)) {
    return CodecError::truncated;
  }
  if ((version & 0x7FU) != kProtocolVersion) {
    return CodecError::bad_version;
  }
  const bool is_response = (version & kResponseBit) != 0;
  if (is_response != (expect == Direction::response)) {
    return CodecError::bad_direction;
  }
  if (!is_known_opcode(opcode) || is_response_opcode(static_cast<Opcode>(opcode)) != is_response) {
    return CodecError::bad_opcode;
  }
  // length is an [int]: the top bit set means a negative length.
  if ((length & 0x80000000U) != 0) {
    return CodecError::bad_length;
  }
  if (length > max_body) {
    return CodecError::too_large;
  }
  out.version = version;
  out.flags = flags;
  out.stream = static_cast<std::int16_t>(stream);
  out.opcode = static_cast<Opcode>(opcode);
  out.length = length;
  return CodecError::ok;
}

std::span<std::byte> FrameDecoder::prepare(std::size_t n) {
  // Slide the partial frame to the front once the consumed prefix dominates,
  // so the buffer does not grow with the stream.
  if (start_ > 0 && (start_ == end_ || start_ >= buf_.size() / 2)) {
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buf_.size() - end_ < n) {
    buf_.resize(end_ + n);
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void FrameDecoder::feed(Bytes data) {
  if (data.empty()) {
    return;
  }
  auto room = prepare(data.size());
  std::memcpy(room.data(), data.data(), data.size());
  commit(data.size());
}

bool FrameDecoder::next(Frame &out) {
  if (error_ != CodecError::ok) {
    return false;
  }
  const std::size_t have = end_ - start_;
  if (have < kHeaderSize) {
    return false;
  }
  const Bytes pending(buf_.data() + start_, have);
  FrameHeader h;
  error_ = decode_header(pending, expect_, max_body_, h);
  if (error_ != CodecError::ok) {
    return false;
  }
  if (have - kHeaderSize < h.length) {
    return false;
  }
  out.header = h;
  out.body = pending.subspan(kHeaderSize, h.length);
  start_ += kHeaderSize + h.length;
  return true;
}

void FrameDecoder::reset() noexcept {
  start_ = 0;
  end_ = 0;
  error_ = CodecError::ok;
}

void lz4_compress(Bytes in, std::vector<std::byte> &out) {
  const auto n = static_cast<std::uint32_t>(in.size());
  const std::size_t at = out.size();
  const int bound = LZ4_compressBound(static_cast<int>(n));
  out.resize(at + 4 + static_cast<std::size_t>(bound));
  out[at] = static_cast<std::byte>(n >> 24U);
  out[at + 1] = static_cast<std::byte>((n >> 16U) & 0xFFU);
  out[at + 2] = static_cast<std::byte>((n >> 8U) & 0xFFU);
  out[at + 3] = static_cast<std::byte>(n & 0xFFU);
  const int written = LZ4_compress_default(reinterpret_cast<const char *>(in.data()),
                                           reinterpret_cast<char *>(out.data() + at + 4),
                                           static_cast<int>(n), bound);
  out.resize(at + 4 + static_cast<std::size_t>(written > 0 ? written : 0));
}

CodecError lz4_decompress(Bytes in, std::vector<std::byte> &out, std::uint32_t max_size) {
  ByteCursor c(in);
  std::uint32_t n = 0;
  if (!c.read_u32(n)) {
    return CodecError::truncated;
  }
  if ((n & 0x80000000U) != 0) {
    return CodecError::bad_length;
  }
  if (n > max_size) {
    return CodecError::too_large;
  }
  out.resize(n);
  const Bytes block = c.rest();
  if (block.size() > 0x7FFFFFFFU) {
    return CodecError::bad_length;
  }
  if (n == 0) {
    // An empty body compresses to a single zero token; accept only that.
    out.clear();
    return block.size() == 1 && block[0] == std::byte{0} ? CodecError::ok
                                                         : CodecError::bad_compression;
  }
  const int got = LZ4_decompress_safe(reinterpret_cast<const char *>(block.data()),
                                      reinterpret_cast<char *>(out.data()),
                                      static_cast<int>(block.size()), static_cast<int>(n));
  if (got < 0 || static_cast<std::uint32_t>(got) != n) {
    out.clear();
    return CodecError::bad_compression;
  }
  return CodecError::ok;
}

} // namespace ta::cql
