// The record layer around the first handshake message; see tls.hpp.
//
// Record header (RFC 8446 §5.1; RFC 5246 §6.2.1):
//   byte 0     ContentType   22 = handshake
//   bytes 1-2  legacy_record_version  0x03 0x0X (0x0301 is common in a first
//              ClientHello record, for middleboxes; RFC 8446 §5.1 and App. D)
//   bytes 3-4  uint16 length of the fragment that follows
// RFC 8446 §5.1 caps a plaintext fragment at 2^14 bytes and forbids
// zero-length handshake fragments; 256 more bytes are tolerated (the
// TLSCiphertext bound of §5.2) since being strict here only loses names.
// Handshake messages may be split across records and several may share one
// (RFC 8446 §5.1); only the first message is joined.
#include <algorithm>
#include <cstring>
#include <new>

#include "ta/tls/tls.hpp"

namespace ta::tls {
namespace {

constexpr std::byte kContentHandshake{22};
constexpr std::byte kVersionMajor{3};
constexpr std::byte kClientHelloType{1};
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kHandshakeHeader = 4;
constexpr std::size_t kMaxRecordFragment = (std::size_t{1} << 14U) + 256;

} // namespace

std::string_view assembler_state_name(AssemblerState s) noexcept {
  switch (s) {
  case AssemblerState::need_more:
    return "need_more";
  case AssemblerState::done:
    return "done";
  case AssemblerState::not_tls:
    return "not_tls";
  case AssemblerState::too_large:
    return "too_large";
  case AssemblerState::malformed:
    return "malformed";
  case AssemblerState::count_:
    break;
  }
  return "unknown";
}

// The buffer comes with the first handshake byte, not with the assembler: a
// flow table keeps one assembler per waiting flow, and most waiting flows (a
// SYN and nothing yet, a port scan) never send one. Not zero-filled, so only
// the pages a ClientHello writes are ever touched.
ClientHelloAssembler::ClientHelloAssembler() = default;

void ClientHelloAssembler::reset() noexcept {
  have_ = 0;
  want_ = 0;
  header_have_ = 0;
  record_left_ = 0;
  first_record_ = true;
  state_ = AssemblerState::need_more;
}

AssemblerState ClientHelloAssembler::feed(Bytes piece) noexcept {
  std::size_t i = 0;
  while (i < piece.size() && state_ == AssemblerState::need_more) {
    if (record_left_ == 0) {
      state_ = take_header_byte(piece[i]);
      ++i;
      continue;
    }
    const std::size_t n = std::min(record_left_, piece.size() - i);
    take_fragment(piece.subspan(i, n));
    record_left_ -= n;
    i += n;
  }
  return state_;
}

AssemblerState ClientHelloAssembler::take_header_byte(std::byte b) noexcept {
  // Only the first record's header decides "is this TLS at all"; once a
  // handshake record was seen, a bad header is a damaged TLS stream.
  const AssemblerState bad = first_record_ ? AssemblerState::not_tls : AssemblerState::malformed;
  header_[header_have_++] = b;
  if (header_have_ == 1 && b != kContentHandshake) {
    return bad;
  }
  if (header_have_ == 2 && b != kVersionMajor) {
    return bad;
  }
  if (header_have_ < kRecordHeader) {
    return AssemblerState::need_more;
  }
  const std::size_t len =
      (std::to_integer<std::size_t>(header_[3]) << 8U) | std::to_integer<std::size_t>(header_[4]);
  if (len == 0 || len > kMaxRecordFragment) {
    return AssemblerState::malformed;
  }
  header_have_ = 0;
  record_left_ = len;
  first_record_ = false;
  return AssemblerState::need_more;
}

void ClientHelloAssembler::take_fragment(Bytes fragment) noexcept {
  if (!buf_) {
    buf_.reset(new (std::nothrow) std::byte[kMaxHandshakeMessage]);
    if (!buf_) {
      state_ = AssemblerState::malformed; // no memory: no name, never a crash
      return;
    }
  }
  std::size_t i = 0;
  while (i < fragment.size() && state_ == AssemblerState::need_more) {
    if (want_ == 0) {
      // The handshake header, byte by byte: its type decides early, its
      // length bounds the join.
      buf_[have_++] = fragment[i++];
      if (have_ == 1 && buf_[0] != kClientHelloType) {
        state_ = AssemblerState::done; // parse_client_hello says not_client_hello
        return;
      }
      if (have_ == kHandshakeHeader) {
        const std::size_t len = (std::to_integer<std::size_t>(buf_[1]) << 16U) |
                                (std::to_integer<std::size_t>(buf_[2]) << 8U) |
                                std::to_integer<std::size_t>(buf_[3]);
        if (len > kMaxHandshakeMessage - kHandshakeHeader) {
          state_ = AssemblerState::too_large;
          return;
        }
        want_ = kHandshakeHeader + len;
        if (have_ == want_) {
          state_ = AssemblerState::done;
        }
      }
      continue;
    }
    const std::size_t n = std::min(want_ - have_, fragment.size() - i);
    std::memcpy(buf_.get() + have_, fragment.data() + i, n);
    have_ += n;
    i += n;
    if (have_ == want_) {
      state_ = AssemblerState::done;
    }
  }
}

ClientHelloResult ClientHelloAssembler::result() const noexcept {
  switch (state_) {
  case AssemblerState::done:
    return parse_client_hello(message());
  case AssemblerState::not_tls:
    return {ClientHelloStatus::not_tls, {}};
  case AssemblerState::too_large:
    return {ClientHelloStatus::too_large, {}};
  case AssemblerState::malformed:
    return {ClientHelloStatus::bad_record, {}};
  case AssemblerState::need_more:
  case AssemblerState::count_:
    break;
  }
  return {ClientHelloStatus::need_more, {}};
}

} // namespace ta::tls
