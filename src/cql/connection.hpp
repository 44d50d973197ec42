// cql/connection (private): one socket to one node, its framing and its
// stream ids. Knows nothing of tasks, retries or other nodes.
//
// Steady state (the session's poll loop): requests are appended as frames
// to `out` and flushed when the socket takes them; responses are read into
// the frame decoder in big chunks and opened (LZ4, envelope) one by one.
// Blocking exchanges (the start-up handshake in handshake.cpp, re-PREPARE)
// use roundtrip(), which waits for one answer until a deadline and drops
// late answers to orphaned streams on the way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ta/cql/frame.hpp"
#include "ta/cql/messages.hpp"
#include "ta/cql/types.hpp"

#include "stream_manager.hpp"
#include "transport.hpp"

namespace ta::cql::detail {

// A failure inside the library: the kind (metrics label, retry decision),
// the CQL code of a server error and the one-line message users read.
struct Error {
  ErrorKind kind = ErrorKind::none;
  std::int32_t code = 0;
  std::string message;
  [[nodiscard]] bool ok() const noexcept { return kind == ErrorKind::none; }
  [[nodiscard]] Status status() const { return make_status(kind, message, code); }
};
// "HOST:PORT: what" (just `what` without a host).
[[nodiscard]] Error make_error(ErrorKind kind, const std::string &host, std::string_view what,
                               std::int32_t code = 0);
// "server error 0x1001 (overloaded): <message>"
[[nodiscard]] std::string describe_server_error(std::int32_t code, std::string_view message);

inline constexpr std::size_t kReadChunk = std::size_t{256} * 1024;

class Connection {
public:
  explicit Connection(std::string label) : label_(std::move(label)) {}

  [[nodiscard]] const std::string &label() const noexcept { return label_; }
  Transport &transport() noexcept { return transport_; }
  StreamManager &streams() noexcept { return streams_; }
  [[nodiscard]] const StreamManager &streams() const noexcept { return streams_; }
  FrameDecoder &decoder() noexcept { return decoder_; }

  // Closes the socket and forgets everything: buffers, stream ids (sized
  // for max_in_flight), compression.
  void reset(std::size_t max_in_flight);
  // After STARTUP: compress request bodies with LZ4 from now on.
  void set_compression(bool on) noexcept { compress_ = on; }

  // Appends one request frame, compressed when negotiated (never an empty
  // body).
  template <class Req> void append(const Req &req, std::int16_t stream) {
    if (!compress_) {
      encode_frame(req, stream, out_);
      return;
    }
    scratch_.clear();
    req.encode(scratch_);
    append_compressed(Req::kOpcode, stream);
  }
  [[nodiscard]] bool has_output() const noexcept {
    return out_off_ < out_.size() || transport_.has_pending_output();
  }
  // Writes what the socket takes now; false (error set) if the write failed.
  bool flush(std::string &error);
  // Reads one chunk into the decoder; `got` bytes.
  Io read_some(std::size_t &got, std::string &error);
  // Decompresses (if flagged) and removes the envelope of a response frame;
  // `message` is the opcode's body. On failure `what` names the step.
  CodecError open(const Frame &f, Bytes &message, std::string_view &what);
  // Server pushes (stream -1, after REGISTER): an EVENT frame's body is kept
  // (at most kMaxEvents; false when one was dropped or undecodable) until
  // the session takes them; other pushes are ignored.
  static constexpr std::size_t kMaxEvents = 256;
  bool stash_event(const Frame &f);
  std::vector<std::vector<std::byte>> &events() noexcept { return events_; }

  // Blocking: writes all output before the deadline.
  bool sync_flush(Clock::time_point deadline, Error &error);
  // Blocking: sends `req` and waits for its answer before the deadline.
  // On true, the answer's opcode and body (envelope removed) are returned.
  template <class Req>
  bool roundtrip(const Req &req, Clock::time_point deadline, Opcode &opcode, Bytes &body,
                 Error &error) {
    const auto stream = streams_.acquire(0);
    if (!stream) {
      error = make_error(ErrorKind::protocol, label_, "no free stream id");
      return false;
    }
    append(req, *stream);
    const bool flushed = sync_flush(deadline, error);
    (void)streams_.release(*stream);
    return flushed && await(*stream, deadline, opcode, body, error);
  }

private:
  void append_compressed(Opcode opcode, std::int16_t stream);
  bool await(std::int16_t stream, Clock::time_point deadline, Opcode &opcode, Bytes &body,
             Error &error);

  std::string label_; // "HOST:PORT"
  Transport transport_;
  FrameDecoder decoder_{Direction::response};
  StreamManager streams_;
  std::vector<std::byte> out_; // frames not yet written
  std::size_t out_off_ = 0;
  bool compress_ = false;
  std::vector<std::byte> scratch_;      // uncompressed request body
  std::vector<std::byte> decompressed_; // a response body
  std::vector<std::byte> sync_body_;    // roundtrip()'s answer
  ResponseEnvelope envelope_;
  std::vector<std::vector<std::byte>> events_;
};

} // namespace ta::cql::detail
