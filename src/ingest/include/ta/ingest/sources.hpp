// ingest/sources: the four Sources the runner drives: capture files, a
// watched directory of rotated captures (inotify), live interfaces (through
// ta_capture) and generated traffic paced in real time (ta_generate). Links
// what engine.hpp links, plus ta_generate privately. Never prints: what the
// caller shows comes through each source's observer.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ta/capture/live.hpp"
#include "ta/common/status.hpp"
#include "ta/ingest/engine.hpp"
#include "ta/ingest/runner.hpp"

namespace ta::ingest {

// Told of every file read, as it is done (also of the failed and stopped
// ones), and of notes that do not stop the run (a file that cannot be
// deleted, a spool that did not settle in time, a file a directory source
// skipped and why).
struct FileObserver {
  std::function<void(const std::string &path, const FileResult &result)> file_done;
  std::function<void(const Status &note)> note;
};

// Capture files, one per step, in the order given; each resumes past its
// ledger position.
class FileSource final : public Source {
public:
  FileSource(std::vector<std::string> paths, FileObserver observer, Engine::Progress progress = {});
  [[nodiscard]] Result<Step> step(Engine &engine, StopToken stop,
                                  Clock::time_point wake_by) override;

private:
  std::vector<std::string> paths_;
  std::size_t next_ = 0;
  FileObserver observer_;
  Engine::Progress progress_;
};

// A directory that rotated captures are closed into (tcpdump -G, `capture
// --out`). Which files: regular files whose names neither start with '.' nor
// end in .tmp or .part (writers' temporary names), announced by inotify
// CLOSE_WRITE (a writer closing a file) or MOVED_TO (a writer renaming into
// place), plus the files already there at start, in name order. A file
// modified less than `settle_seconds` ago at start may still be being
// written: it waits for its close event, or until it has been quiet that
// long. When the kernel's event queue overflows, the directory is listed
// again; the ledger makes re-reading what was already ingested harmless.
//
// Restart safety is the store's ledger: each capture resumes past the frames
// already stored, so a restart (even after kill -9 mid-file) neither loses
// nor double-counts a packet. `delete_after` removes a file only after its
// records are durable.
//
// Symbolic links are not followed unless `follow_symlinks`: whoever can write
// into the directory must not make the reader open a file elsewhere (a
// private file, a device). Each name must be a regular file by lstat(2),
// and again by fstat(2) once opened with O_NOFOLLOW and O_NONBLOCK (a FIFO
// cannot block the open); anything else is skipped, counted by SkipReason
// and told through the observer's note, and never deleted. The capture
// reader then opens the name again with the same refusals and checks the
// descriptor it reads, so a name swapped in between is refused too.
//
// A store that cannot start a file's ledger entry now (FileOutcome::
// deferred: a cluster with too few live nodes) does not end the run: the
// file waits, and is tried again after 1 s, then 2, 4, ... up to 30 s, until
// the store answers; one note says so per outage. Files are read in order:
// while one waits, newer names stay queued behind it untouched, so the
// waiting list is that one file (bounded) and the store is not asked once
// per queued file. With `once`, the source is finished only when the files
// there at start were all read (or a stop request ends the run).
struct DirectoryOptions {
  std::string directory;
  bool delete_after = false;
  bool once = false; // the files there now (none put off for settling), then finished
  double settle_seconds = 2.0;
  bool follow_symlinks = false;
  // A file the store cannot start now is tried again after `retry_first`,
  // the wait doubling up to `retry_last`.
  std::chrono::milliseconds retry_first{1000};
  std::chrono::milliseconds retry_last{30000};
};

// Why a directory source did not read a name. Stable snake_case names
// (skip_reason_name) label traffic_ingest_files_skipped_total{reason}.
enum class SkipReason : std::uint8_t {
  symlink,          // a symbolic link, and links are not followed
  not_regular_file, // a FIFO, socket, device or directory (after a followed link too)
  unreadable,       // open(2) or fstat(2) failed (permissions, ...)
  count_,
};
[[nodiscard]] const char *skip_reason_name(SkipReason reason);

class DirectoryWatch;

class DirectorySource final : public Source {
public:
  // Fails (not_found) when `directory` is not a directory, (io_error) when
  // it cannot be watched. The watch starts here, before the directory is
  // listed, so no file can be closed in between unseen.
  [[nodiscard]] static Result<std::unique_ptr<DirectorySource>>
  open(const DirectoryOptions &options, FileObserver observer);
  ~DirectorySource() override;
  DirectorySource(const DirectorySource &) = delete;
  DirectorySource &operator=(const DirectorySource &) = delete;

  [[nodiscard]] Result<Step> step(Engine &engine, StopToken stop,
                                  Clock::time_point wake_by) override;

  // Names skipped so far, by reason.
  [[nodiscard]] std::uint64_t skipped(SkipReason reason) const {
    return skipped_.at(static_cast<std::size_t>(reason));
  }
  // The file waiting for the store (see above), if any; how many times a
  // file was put off (first tries and retries).
  [[nodiscard]] const std::optional<std::string> &waiting() const { return waiting_; }
  [[nodiscard]] std::uint64_t deferrals() const { return deferrals_; }

private:
  DirectorySource(DirectoryOptions options, FileObserver observer,
                  std::unique_ptr<DirectoryWatch> watch);
  // False when the file was deferred (it is then waiting_).
  bool ingest(Engine &engine, StopToken stop, const std::string &name);
  void defer(Engine &engine, const std::string &name, const std::string &path, const Status &why);
  void resumed(Engine &engine);
  void skip(Engine &engine, const std::string &path, SkipReason reason, const std::string &why);
  DirectoryOptions options_;
  FileObserver observer_;
  std::unique_ptr<DirectoryWatch> watch_;
  std::array<std::uint64_t, static_cast<std::size_t>(SkipReason::count_)> skipped_{};
  std::optional<std::string> waiting_;
  Clock::time_point retry_at_{};
  Clock::duration backoff_{};
  std::uint64_t deferrals_ = 0;
};

// Live capture on interfaces.
struct LiveSourceOptions {
  std::vector<std::string> interfaces; // empty: "any"
  // BPF filter; empty: capture::LiveCapture::default_filter(ports).
  std::string filter;
  std::vector<std::uint16_t> ports;
  std::uint32_t snaplen = 262144;
  std::uint32_t buffer_mib = 4;
  bool immediate = false;
};

// Opens the interfaces of `options` (all or nothing); the error names the
// interface. Also what a capture-to-files command opens.
[[nodiscard]] Result<std::unique_ptr<capture::LiveCapture>>
open_live_capture(const LiveSourceOptions &options);

class LiveSource final : public Source {
public:
  explicit LiveSource(std::unique_ptr<capture::LiveCapture> capture);

  // How the source is named in the ledger: its interfaces joined by '+'
  // ("live:eth0+eth1"), a new entry per run.
  [[nodiscard]] const std::string &name() const { return name_; }
  // For wake() from a signal handler and the capture counters.
  [[nodiscard]] capture::LiveCapture &capture() { return *capture_; }

  [[nodiscard]] Status begin(Engine &engine) override;
  [[nodiscard]] Result<Step> step(Engine &engine, StopToken stop,
                                  Clock::time_point wake_by) override;
  // Capture counters -> metrics.
  void after_flush(Engine &engine) override;
  void end(Engine &engine) override;

private:
  std::unique_ptr<capture::LiveCapture> capture_;
  std::vector<decode::LinkType> links_;
  std::string name_;
};

// The deterministic generator's traffic (one client, see ta/generate)
// played in real time: `rate` frames per second, each stamped with the wall
// clock at emission (never going backwards), as the live source "demo".
struct GeneratorOptions {
  double rate = 200;
  std::uint32_t endpoints = 25;
  std::uint64_t seed = 1;
};

class GeneratorSource final : public Source {
public:
  explicit GeneratorSource(const GeneratorOptions &options);
  ~GeneratorSource() override;
  GeneratorSource(const GeneratorSource &) = delete;
  GeneratorSource &operator=(const GeneratorSource &) = delete;

  [[nodiscard]] std::uint64_t emitted() const { return emitted_; }

  [[nodiscard]] Status begin(Engine &engine) override;
  [[nodiscard]] Result<Step> step(Engine &engine, StopToken stop,
                                  Clock::time_point wake_by) override;
  void end(Engine &engine) override;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint64_t emitted_ = 0;
};

} // namespace ta::ingest
