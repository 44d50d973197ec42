// capture: frames in and out of capture files through libpcap (see also
// live.hpp for interfaces and rotate.hpp for rotated files). ta_capture
// links libpcap, privately, and ta_common; nothing else in the project links
// libpcap, and everything downstream sees spans of bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ta/common/byte_cursor.hpp"
#include "ta/common/status.hpp"
#include "ta/common/time.hpp"

namespace ta::capture {

struct Frame {
  TimeUs ts_us = 0;              // µs since the epoch (ns captures are truncated)
  std::uint32_t wire_length = 0; // original length on the wire
  Bytes data;                    // captured bytes; valid until the next read
};

enum class ReadStatus : std::uint8_t { frame, end, error };

// Reads pcap and pcapng files (whatever libpcap reads).
class FileReader {
public:
  // nullptr and a one-line `error` naming the file when it cannot be opened
  // or is not a capture.
  [[nodiscard]] static std::unique_ptr<FileReader> open(const std::string &path,
                                                        std::string &error);
  ~FileReader();
  FileReader(const FileReader &) = delete;
  FileReader &operator=(const FileReader &) = delete;

  // pcap LINKTYPE_* value of the file (see decode::LinkType).
  [[nodiscard]] std::uint32_t link_type() const noexcept;
  [[nodiscard]] std::uint32_t snaplen() const noexcept;

  // Next frame. On `error` (a truncated or corrupt file), error() names the
  // file, the frame number and the byte offset; frames before it were good.
  [[nodiscard]] ReadStatus next(Frame &out) noexcept;
  [[nodiscard]] const std::string &error() const noexcept { return error_; }
  [[nodiscard]] std::uint64_t frames_read() const noexcept { return frames_; }

private:
  FileReader() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
  std::string error_;
  std::uint64_t frames_ = 0;
};

// Writes classic pcap files (µs timestamps).
class PcapWriter {
public:
  // Creates (or truncates) `path`. Fails with unsupported when libpcap has no
  // such link type, io_error when the file cannot be written; the message
  // names the path.
  [[nodiscard]] static Result<std::unique_ptr<PcapWriter>>
  open(const std::string &path, std::uint32_t link_type, std::uint32_t snaplen);
  ~PcapWriter();
  PcapWriter(const PcapWriter &) = delete;
  PcapWriter &operator=(const PcapWriter &) = delete;

  // wire_length 0 means "the captured length".
  void write(TimeUs ts_us, Bytes data, std::uint32_t wire_length = 0) noexcept;
  // Flushes and closes; io_error if the data did not reach the file.
  [[nodiscard]] Status close();

private:
  PcapWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The identity of a capture for the ingest ledger: 16 hex digits over its
// link type and its first frame (timestamp, lengths, bytes). It does not
// depend on the file's name, size or tail, so a capture that is still being
// written (a rotating tcpdump, a half-copied file) keeps its identity as it
// grows, and the ledger resumes it where the last ingest stopped. Two
// captures that begin with the same frame at the same microsecond are taken
// for the same capture.
// Returns "" with `error` empty when the capture has no frame yet, and ""
// with `error` set when it cannot be read.
[[nodiscard]] std::string fingerprint_file(const std::string &path, std::string &error);

} // namespace ta::capture
