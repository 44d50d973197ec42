// capture/rotate: rotated capture files (part of ta_capture, the only library
// that links libpcap). The interceptor mode's capture files: frames go to a
// pcap file in one directory, and a new file starts every `interval` of
// wall-clock time.
//
// Contract:
// - A file is written as `.<final>.part` and appears under its final name
//   only when complete (flushed, fsync'ed, renamed in the same directory,
//   directory fsync'ed). Readers that watch the directory must skip names
//   starting with '.'.
// - The final name is the file's start time in UTC through strftime with
//   `pattern` (default `%Y_%m_%d_%H_%M_%S-dump.pcap`, the names the README's
//   `capture` mode documents); when that name is taken, "-1", "-2", ... goes
//   before ".pcap". Existing files are never overwritten.
// - Rotation happens only in tick(): call it from the poll loop at least
//   every 200 ms, also when no frame arrives, so that files close on time.
//   Deadlines are start + k * interval (no drift); deadlines missed while
//   tick() was not called are skipped, not turned into empty files. If the
//   clock steps back before the current file's start, the deadline is
//   re-anchored to now + interval.
// - Nothing throws. Failures return a Status with a one-line message naming
//   the path. After a write error (disk full) frames for the current file
//   are refused until the next rotation, which keeps what was written and
//   tries a fresh file.
// Not thread-safe: one thread writes, ticks and closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ta/capture/capture.hpp"

namespace ta::capture {

struct RotatedFile {
  std::string path;             // final path (directory + "/" + name)
  TimeUs started_us = 0;        // wall clock at the start (the name's time)
  TimeUs closed_us = 0;         // wall clock when it was closed
  std::uint64_t frames = 0;     // frames written
  std::uint64_t bytes = 0;      // captured bytes of those frames
  std::uint64_t file_bytes = 0; // size of the file (pcap headers included)
};

struct RotateOptions {
  std::string directory;             // must exist and be writable
  std::uint32_t link_type = 1;       // LINKTYPE_ of every frame written
  std::uint32_t snaplen = 262144;    // recorded in each file's header
  std::chrono::seconds interval{60}; // >= 1 s
  std::string pattern = "%Y_%m_%d_%H_%M_%S-dump.pcap";
  // Called for each file once it has its final name. When empty, finished
  // files are collected for take_closed() instead.
  std::function<void(const RotatedFile &)> on_closed;
};

class RotatingWriter {
public:
  using Clock = std::chrono::system_clock;

  // Checks the directory and starts the first file at `now`. Fails with
  // invalid_argument (interval, pattern, not a directory), not_found (no such
  // directory), permission_denied, unsupported (link type) or io_error; the
  // one-line message names the path.
  [[nodiscard]] static Result<std::unique_ptr<RotatingWriter>> open(const RotateOptions &options,
                                                                    Clock::time_point now);
  // Finishes the current file (errors are lost: call close() to see them).
  ~RotatingWriter();
  RotatingWriter(const RotatingWriter &) = delete;
  RotatingWriter &operator=(const RotatingWriter &) = delete;

  // Appends a frame (Frame::wire_length 0 means the captured length) to the
  // current file. io_error when it could not be written, unavailable while no
  // file is open (starting one failed), failed after close(). Does not
  // allocate when it succeeds.
  [[nodiscard]] Status write(const Frame &frame) noexcept;

  // Rotates when `now` has reached the current file's deadline: finishes the
  // current file and starts the next one at `now`. Not ok when finishing or
  // starting failed (both messages, "; "-joined, when both did); a file that
  // could not be started is tried again at the next deadline (frames are
  // refused in between).
  [[nodiscard]] Status tick(Clock::time_point now) noexcept;

  // Finishes the current file and starts none; later writes are refused.
  // `now` is recorded as the file's end (defaults to the system clock).
  [[nodiscard]] Status close(Clock::time_point now = Clock::now()) noexcept;

  // Temporary path of the file being written; empty when none is open.
  [[nodiscard]] const std::string &current_path() const noexcept;
  // When the current file will be closed by tick().
  [[nodiscard]] Clock::time_point next_rotation() const noexcept;

  // Finished files since the last call (only when on_closed is not set).
  [[nodiscard]] std::vector<RotatedFile> take_closed();

private:
  RotatingWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::capture
