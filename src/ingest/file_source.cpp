#include <utility>

#include "ta/ingest/sources.hpp"

namespace ta::ingest {

FileSource::FileSource(std::vector<std::string> paths, FileObserver observer,
                       Engine::Progress progress)
    : paths_(std::move(paths)), observer_(std::move(observer)), progress_(std::move(progress)) {}

Result<Step> FileSource::step(Engine &engine, StopToken stop, Clock::time_point /*wake_by*/) {
  if (next_ >= paths_.size()) {
    return Step::finished;
  }
  const std::string &path = paths_[next_++];
  const FileResult result = engine.ingest_file(path, stop, progress_);
  if (observer_.file_done) {
    observer_.file_done(path, result);
  }
  if (result.outcome == FileOutcome::deferred) {
    // A list of files is read once, in order: a file the store cannot
    // start now ends the run (the files after it keep their order for a
    // rerun), rather than being left out silently.
    return result.status;
  }
  return next_ < paths_.size() ? Step::more : Step::finished;
}

} // namespace ta::ingest
