#include "connection.hpp"

#include <poll.h>

#include <array>
#include <cstdio>

namespace ta::cql::detail {

Error make_error(ErrorKind kind, const std::string &host, std::string_view what,
                 std::int32_t code) {
  Error e;
  e.kind = kind;
  e.code = code;
  e.message = host.empty() ? std::string(what) : host + ": " + std::string(what);
  return e;
}

std::string describe_server_error(std::int32_t code, std::string_view message) {
  std::array<char, 16> hex{};
  std::snprintf(hex.data(), hex.size(), "0x%04X", static_cast<unsigned>(code));
  std::string s = "server error " + std::string(hex.data()) + " (";
  s += server_error_name(code);
  s += "): ";
  s += message;
  return s;
}

void Connection::reset(std::size_t max_in_flight) {
  transport_.close();
  decoder_.reset();
  out_.clear();
  out_off_ = 0;
  streams_.reset(max_in_flight);
  compress_ = false;
  events_.clear();
}

bool Connection::stash_event(const Frame &f) {
  if (f.header.opcode != Opcode::event) {
    return true;
  }
  Bytes message;
  std::string_view what;
  if (events_.size() >= kMaxEvents || open(f, message, what) != CodecError::ok) {
    return false;
  }
  events_.emplace_back(message.begin(), message.end());
  return true;
}

void Connection::append_compressed(Opcode opcode, std::int16_t stream) {
  FrameHeader h;
  h.stream = stream;
  h.opcode = opcode;
  const std::size_t at = out_.size();
  encode_header(h, out_);
  if (scratch_.empty()) {
    return;
  }
  lz4_compress(scratch_, out_);
  h.flags = kFlagCompression;
  h.length = static_cast<std::uint32_t>(out_.size() - at - kHeaderSize);
  encode_header(h, std::span<std::byte, kHeaderSize>(out_.data() + at, kHeaderSize));
}

bool Connection::flush(std::string &error) {
  while (out_off_ < out_.size()) {
    std::size_t put = 0;
    const Io io = transport_.write(Bytes(out_).subspan(out_off_), put, error);
    if (io == Io::error || io == Io::closed) {
      return false;
    }
    out_off_ += put;
    if (io == Io::would_block || put == 0) {
      return true;
    }
  }
  if (transport_.has_pending_output() && !transport_.flush_pending(error)) {
    return false;
  }
  out_.clear();
  out_off_ = 0;
  return true;
}

Io Connection::read_some(std::size_t &got, std::string &error) {
  got = 0;
  const Io io = transport_.read(decoder_.prepare(kReadChunk), got, error);
  if (io == Io::ok) {
    decoder_.commit(got);
  }
  return io;
}

CodecError Connection::open(const Frame &f, Bytes &message, std::string_view &what) {
  Bytes b = f.body;
  if ((f.header.flags & kFlagCompression) != 0) {
    if (const CodecError e = lz4_decompress(b, decompressed_); e != CodecError::ok) {
      what = "compressed body";
      return e;
    }
    b = decompressed_;
  }
  if (const CodecError e = envelope_.decode(f.header.flags, b); e != CodecError::ok) {
    what = "frame envelope";
    return e;
  }
  message = envelope_.message;
  return CodecError::ok;
}

bool Connection::sync_flush(Clock::time_point deadline, Error &error) {
  std::string err;
  while (out_off_ < out_.size() || transport_.has_pending_output()) {
    std::size_t put = 0;
    const Io io = out_off_ < out_.size()
                      ? transport_.write(Bytes(out_).subspan(out_off_), put, err)
                      : (transport_.flush_pending(err) ? Io::would_block : Io::error);
    if (io == Io::error || io == Io::closed) {
      error = make_error(ErrorKind::closed, label_, "write failed: " + err);
      return false;
    }
    out_off_ += put;
    if (io == Io::would_block || put == 0) {
      pollfd p{transport_.fd(), POLLOUT, 0};
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (ms.count() <= 0 || ::poll(&p, 1, static_cast<int>(ms.count())) == 0) {
        error = make_error(ErrorKind::timeout, label_, "write timed out");
        return false;
      }
    }
  }
  out_.clear();
  out_off_ = 0;
  return true;
}

bool Connection::await(std::int16_t stream, Clock::time_point deadline, Opcode &opcode, Bytes &body,
                       Error &error) {
  std::string err;
  for (;;) {
    Frame f;
    while (decoder_.next(f)) {
      if (f.header.stream < 0) {
        (void)stash_event(f); // a lost event only delays what a refresh finds
        continue;
      }
      if (f.header.stream != stream) {
        // A late answer to an abandoned request frees its id; others are
        // not ours to take.
        (void)streams_.release_orphan(f.header.stream);
        continue;
      }
      Bytes message;
      std::string_view what;
      if (const CodecError e = open(f, message, what); e != CodecError::ok) {
        error =
            make_error(ErrorKind::protocol, label_,
                       "protocol error: " + std::string(what) + ": " + std::string(to_string(e)));
        return false;
      }
      sync_body_.assign(message.begin(), message.end());
      body = sync_body_;
      opcode = f.header.opcode;
      return true;
    }
    if (decoder_.error() != CodecError::ok) {
      error = make_error(ErrorKind::protocol, label_,
                         "protocol error: bad frame: " + std::string(to_string(decoder_.error())));
      return false;
    }
    std::size_t got = 0;
    const Io io = read_some(got, err);
    if (io == Io::ok) {
      continue;
    }
    if (io == Io::closed || io == Io::error) {
      error = make_error(ErrorKind::closed, label_,
                         io == Io::closed ? "connection closed by peer during setup"
                                          : "read failed: " + err);
      return false;
    }
    pollfd p{transport_.fd(), POLLIN, 0};
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (ms.count() <= 0 || ::poll(&p, 1, static_cast<int>(ms.count())) == 0) {
      error = make_error(ErrorKind::timeout, label_, "no answer before the connect timeout");
      return false;
    }
  }
}

} // namespace ta::cql::detail
