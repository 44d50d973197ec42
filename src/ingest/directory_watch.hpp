// ingest/directory_watch: which files of a watched directory are ready to
// be read, and when (see DirectorySource in ta/ingest/sources.hpp for the
// rules). inotify and the settle clock only; reading is the caller's.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "ta/common/status.hpp"

namespace ta::ingest {

class DirectoryWatch {
public:
  // Starts the inotify watch, then lists the directory: files quiet for
  // `settle_seconds` (all of them with `defer_recent` false) are ready at
  // once, in name order; the others are deferred.
  [[nodiscard]] static Result<std::unique_ptr<DirectoryWatch>>
  open(const std::string &directory, double settle_seconds, bool defer_recent);
  ~DirectoryWatch();
  DirectoryWatch(const DirectoryWatch &) = delete;
  DirectoryWatch &operator=(const DirectoryWatch &) = delete;

  // The next file name to read, if any.
  [[nodiscard]] std::optional<std::string> next_ready();
  // Waits up to `timeout_ms` for inotify events, takes every one queued,
  // then moves deferred files that have settled to the ready queue.
  void wait(int timeout_ms);
  // One inotify event (mask of IN_* bits, the file name or "").
  void on_event(std::uint32_t mask, std::string_view name);

  // Names ending like a writer's temporary file, or hidden, are never read.
  [[nodiscard]] static bool eligible(const std::string &name);
  // Seconds since `path` was last modified; -1 if it is not a regular file.
  [[nodiscard]] static double quiet_for(const std::string &path);

  [[nodiscard]] const std::deque<std::string> &ready() const { return ready_; }
  [[nodiscard]] const std::set<std::string> &deferred() const { return deferred_; }

private:
  DirectoryWatch(std::string directory, double settle_seconds, int fd);
  void rescan();
  std::string directory_;
  double settle_seconds_;
  int fd_;
  std::deque<std::string> ready_;  // names to read, in order
  std::set<std::string> deferred_; // present at start, maybe still being written
};

} // namespace ta::ingest
