#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "ta/ingest/sources.hpp"

#include "directory_watch.hpp"

namespace ta::ingest {

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
  if (DirectoryWatch::quiet_for(path) < 0) {
    return; // gone (deleted, or renamed away) before we got to it
  }
  const FileResult result = engine.ingest_file(path, stop);
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

} // namespace ta::ingest
