#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
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
    auto name = watch_->next_ready();
    if (!name) {
      break;
    }
    ingest(engine, stop, *name);
  }
  if (options_.once) {
    return Step::finished;
  }
  if (stop.requested() || !engine.store_status().ok()) {
    return Step::more;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wake_by - Clock::now());
  watch_->wait(static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000)));
  return Step::more;
}

void DirectorySource::ingest(Engine &engine, StopToken stop, const std::string &name) {
  const std::string path = options_.directory + "/" + name;
  SkipReason reason = SkipReason::count_;
  std::string why;
  switch (check_file(path, options_.follow_symlinks, reason, why)) {
  case Check::gone:
    return; // gone (deleted, or renamed away) before we got to it
  case Check::skipped:
    skip(engine, path, reason, why);
    return;
  case Check::regular:
    break;
  }
  // The reader opens the path again, with the same refusals, and checks what
  // it opened: a name swapped for a link or a FIFO since the check is refused.
  const FileResult result = engine.ingest_file(
      path, stop, {},
      options_.follow_symlinks ? capture::FileOpen::regular : capture::FileOpen::regular_no_follow);
  if (auto *m = engine.metrics()) {
    m->on_file_ingested();
  }
  if (observer_.file_done) {
    observer_.file_done(path, result);
  }
  if (!options_.delete_after ||
      (result.outcome != FileOutcome::ok && result.outcome != FileOutcome::empty)) {
    return;
  }
  if (Status st = engine.drain(); !st) {
    // Not durable: the file stays. A failed write ends the run (the runner
    // sees it); a spool that did not settle in time is only a note.
    if (engine.store_status().ok() && observer_.note) {
      observer_.note(st);
    }
    return;
  }
  if (unlink(path.c_str()) != 0 && observer_.note) {
    observer_.note(Status::io_error(path + ": cannot delete (" + std::strerror(errno) + ")"));
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
