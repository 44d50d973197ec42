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

// How FileReader::open treats the path.
enum class FileOpen : std::uint8_t {
  any,               // whatever libpcap opens: a file, a FIFO, "-" (stdin), links followed
  regular,           // a regular file only (checked on the open descriptor), links followed
  regular_no_follow, // a regular file only, and the last component must not be a link
};

// Reads pcap and pcapng files (whatever libpcap reads).
class FileReader {
public:
  // Fails with invalid_argument when the file cannot be opened or is not a
  // capture, and with not_found / unsupported when `how` refuses it; the
  // one-line message names the file. With `regular*` the file is opened once,
  // checked on its descriptor, and that descriptor is what libpcap reads, so
  // a name swapped for a link or a FIFO after a caller's own check is caught.
  [[nodiscard]] static Result<std::unique_ptr<FileReader>> open(const std::string &path,
                                                                FileOpen how = FileOpen::any);
  ~FileReader();
  FileReader(const FileReader &) = delete;
  FileReader &operator=(const FileReader &) = delete;

  // pcap LINKTYPE_* value of the file (see decode::LinkType).
  [[nodiscard]] std::uint32_t link_type() const noexcept;
  [[nodiscard]] std::uint32_t snaplen() const noexcept;

  // Next frame. On `error` (a truncated or corrupt file), status() is
  // corrupt and names the file, the frame number and the byte offset; frames
  // before it were good. status() is ok until then.
  [[nodiscard]] ReadStatus next(Frame &out) noexcept;
  [[nodiscard]] const Status &status() const noexcept { return status_; }
  [[nodiscard]] std::uint64_t frames_read() const noexcept { return frames_; }

private:
  FileReader() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
  Status status_;
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
// An empty string (ok) when the capture has no frame yet; FileReader's
// failures (invalid_argument, corrupt) when it cannot be read.
[[nodiscard]] Result<std::string> fingerprint_file(const std::string &path);

// The same identity from the first frame a FileReader already returned, so
// a stream (`-`, a FIFO) is read once: its identity is its first frame's,
// exactly as if it had been saved to a file first.
[[nodiscard]] std::string fingerprint_first_frame(std::uint32_t link_type, const Frame &first);

} // namespace ta::capture
