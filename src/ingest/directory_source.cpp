#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include <sys/stat.h>

#include "ta/ingest/sources.hpp"

#include "directory_watch.hpp"

namespace ta::ingest {

const char *skip_reason_name(SkipReason reason) {
  switch (reason) {
  case SkipReason::symlink:
    return "symlink";
  case SkipReason::not_regular_file:
    return "not_regular_file";
  case SkipReason::unreadable:
    return "unreadable";
  case SkipReason::count_:
    break;
  }
  return "unknown";
}

namespace {

// What checking a name of the directory found.
enum class Check : std::uint8_t { regular, gone, skipped };

const char *not_regular(mode_t mode) {
  return S_ISDIR(mode)    ? "a directory"
         : S_ISFIFO(mode) ? "a FIFO, not a regular file"
         : S_ISSOCK(mode) ? "a socket, not a regular file"
                          : "a device, not a regular file";
}

Check cannot(const char *what, int err, SkipReason &reason, std::string &why) {
  if (err == ENOENT) {
    return Check::gone; // deleted or renamed away (or a link to nothing)
  }
  if (err == ELOOP) { // O_NOFOLLOW met a link
    reason = SkipReason::symlink;
    why = "a symbolic link, not followed";
    return Check::skipped;
  }
  reason = SkipReason::unreadable;
  why = std::string("cannot ") + what + " (" + std::strerror(err) + ")";
  return Check::skipped;
}

// Whether `path` is a regular file a hostile directory cannot abuse. First
// lstat(2) (stat(2) when links are followed), so that a link, FIFO or
// device is never even opened; then, against a swap in between, the open
// itself refuses a link (O_NOFOLLOW unless links are followed) and cannot
// block on a FIFO (O_NONBLOCK), and fstat(2) checks what was opened.
// `reason`/`why` say why a name is skipped.
Check check_file(const std::string &path, bool follow_symlinks, SkipReason &reason,
                 std::string &why) {
  struct stat st {};
  if ((follow_symlinks ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) {
    return cannot("stat", errno, reason, why);
  }
  if (S_ISLNK(st.st_mode)) {
    reason = SkipReason::symlink;
    why = "a symbolic link, not followed";
    return Check::skipped;
  }
  if (!S_ISREG(st.st_mode)) {
    reason = SkipReason::not_regular_file;
    why = not_regular(st.st_mode);
    return Check::skipped;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                                          (follow_symlinks ? 0 : O_NOFOLLOW));
  if (fd < 0) {
    return cannot("open", errno, reason, why);
  }
  const bool stat_ok = fstat(fd, &st) == 0;
  const int err = errno;
  close(fd);
  if (!stat_ok) {
    return cannot("stat", err, reason, why);
  }
  if (!S_ISREG(st.st_mode)) {
    reason = SkipReason::not_regular_file;
    why = not_regular(st.st_mode);
    return Check::skipped;
  }
  return Check::regular;
}

} // namespace

Result<std::unique_ptr<DirectorySource>> DirectorySource::open(const DirectoryOptions &options,
                                                               FileObserver observer) {
  auto watch = DirectoryWatch::open(options.directory, options.settle_seconds, !options.once);
  if (!watch) {
    return watch.status();
  }
  return std::unique_ptr<DirectorySource>(
      new DirectorySource(options, std::move(observer), std::move(watch).value()));
}

DirectorySource::DirectorySource(DirectoryOptions options, FileObserver observer,
                                 std::unique_ptr<DirectoryWatch> watch)
    : options_(std::move(options)), observer_(std::move(observer)), watch_(std::move(watch)) {}

DirectorySource::~DirectorySource() = default;

Result<Step> DirectorySource::step(Engine &engine, StopToken stop, Clock::time_point wake_by) {
  while (!stop.requested() && engine.store_status().ok()) {
    std::optional<std::string> name;
    if (waiting_) {
      if (Clock::now() < retry_at_) {
        break; // newer files stay queued behind it
      }
      name = waiting_;
    } else {
      name = watch_->next_ready();
    }
    if (!name) {
      break;
    }
    if (!ingest(engine, stop, *name)) {
      break;
    }
  }
  if (waiting_) {
    if (auto *m = engine.metrics()) {
      m->set_files_deferred(1 + watch_->ready().size());
    }
  }
  const bool finished = options_.once && !waiting_;
  if (finished || stop.requested() || !engine.store_status().ok()) {
    return finished ? Step::finished : Step::more;
  }
  const auto until = waiting_ ? std::min(wake_by, retry_at_) : wake_by;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  const auto ms = std::clamp<std::int64_t>(left.count(), 0, 60'000);
  if (options_.once) {
    // No watching in this mode (only the files there at start are read):
    // a short sleep, so that a stop request is seen soon.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<std::int64_t>(ms, 200)));
  } else {
    watch_->wait(static_cast<int>(ms));
  }
  return Step::more;
}

bool DirectorySource::ingest(Engine &engine, StopToken stop, const std::string &name) {
  const std::string path = options_.directory + "/" + name;
  SkipReason reason = SkipReason::count_;
  std::string why;
  switch (check_file(path, options_.follow_symlinks, reason, why)) {
  case Check::gone:
    resumed(engine);
    return true; // gone (deleted, or renamed away) before we got to it
  case Check::skipped:
    resumed(engine);
    skip(engine, path, reason, why);
    return true;
  case Check::regular:
    break;
  }
  // The reader opens the path again, with the same refusals, and checks what
  // it opened: a name swapped for a link or a FIFO since the check is refused.
  const FileResult result = engine.ingest_file(
      path, stop, {},
      options_.follow_symlinks ? capture::FileOpen::regular : capture::FileOpen::regular_no_follow);
  if (result.outcome == FileOutcome::deferred) {
    defer(engine, name, path, result.status);
    return false;
  }
  resumed(engine);
  if (auto *m = engine.metrics()) {
    m->on_file_ingested();
  }
  if (observer_.file_done) {
    observer_.file_done(path, result);
  }
  if (!options_.delete_after ||
      (result.outcome != FileOutcome::ok && result.outcome != FileOutcome::empty)) {
    return true;
  }
  if (Status st = engine.drain(); !st) {
    // Not durable: the file stays. A failed write ends the run (the runner
    // sees it); a spool that did not settle in time is only a note.
    if (engine.store_status().ok() && observer_.note) {
      observer_.note(st);
    }
    return true;
  }
  if (unlink(path.c_str()) != 0 && observer_.note) {
    observer_.note(Status::io_error(path + ": cannot delete (" + std::strerror(errno) + ")"));
  }
  return true;
}

void DirectorySource::defer(Engine &engine, const std::string &name, const std::string &path,
                            const Status &why) {
  if (!waiting_) {
    // A new outage (or a new file caught by it): one note and one count,
    // then quiet retries.
    waiting_ = name;
    backoff_ = options_.retry_first;
    if (auto *m = engine.metrics()) {
      m->on_file_deferred();
    }
    if (observer_.note) {
      observer_.note(Status(StatusCode::unavailable,
                            path + " waits: the store cannot start its ledger entry now (" +
                                why.message() + "); retrying",
                            why.detail()));
    }
  } else {
    backoff_ = std::min<Clock::duration>(backoff_ * 2, options_.retry_last);
  }
  ++deferrals_;
  retry_at_ = Clock::now() + backoff_;
}

void DirectorySource::resumed(Engine &engine) {
  if (!waiting_) {
    return;
  }
  waiting_.reset();
  if (auto *m = engine.metrics()) {
    m->set_files_deferred(0);
  }
}

void DirectorySource::skip(Engine &engine, const std::string &path, SkipReason reason,
                           const std::string &why) {
  ++skipped_.at(static_cast<std::size_t>(reason));
  if (auto *m = engine.metrics()) {
    m->on_file_skipped(skip_reason_name(reason));
  }
  if (observer_.note) {
    observer_.note(Status::invalid_argument(path + ": skipped: " + why));
  }
}

} // namespace ta::ingest
