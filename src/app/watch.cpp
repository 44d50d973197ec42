// `watch DIR`: ingest rotated captures as they are closed (what the original
// loader did with inotifywait, tshark and cqlsh: see the README, "The system
// this replaces"; here restart-safe). Which files, when,
// and why a restart neither loses nor double-counts a packet: see
// DirectorySource in ta/ingest/sources.hpp.
#include <chrono>
#include <cstdio>

#include "ta/ingest/sources.hpp"

#include "commands.hpp"
#include "pipeline.hpp"

namespace ta::app {

void add_watch(CLI::App &app, WatchArgs &args) {
  auto *cmd = app.add_subcommand(
      "watch", "Ingest rotated capture files from a directory as they are closed");
  cmd->add_option("DIR", args.directory, "Directory to watch")->required();
  cmd->add_flag("--delete-after", args.delete_after,
                "Remove each file once its records are durably stored");
  cmd->add_flag("--once", args.once, "Ingest the files there now, then exit");
  cmd->add_option("--settle", args.settle_seconds,
                  "At start, a file modified more recently than this (seconds) waits for its "
                  "close event")
      ->capture_default_str();
  cmd->add_flag("--follow-symlinks", args.follow_symlinks,
                "Read symbolic links in DIR too (by default they are skipped and counted)");
  add_pipeline_options(cmd, args.pipeline, true);
}

int run_watch(const WatchArgs &args) {
  ingest::FileObserver observer;
  observer.file_done = [](const std::string &path, const ingest::FileResult &r) {
    switch (r.outcome) {
    case ingest::FileOutcome::ok:
    case ingest::FileOutcome::empty:
      std::fprintf(stderr, "traffic-analyzer: ingested %s (%llu new records)\n", path.c_str(),
                   static_cast<unsigned long long>(r.counted));
      break;
    case ingest::FileOutcome::not_capture:
    case ingest::FileOutcome::damaged:
      // Everything readable was ingested; the file stays for a person to see.
      std::fprintf(stderr, "traffic-analyzer: %s (%llu records ingested before it)\n",
                   r.status.message().c_str(), static_cast<unsigned long long>(r.counted));
      break;
    case ingest::FileOutcome::stopped:
    case ingest::FileOutcome::store_failed: // the run's result says it
    case ingest::FileOutcome::deferred:     // the source's note says it, and retries
      break;
    }
  };
  observer.note = print_error;
  ingest::DirectoryOptions options;
  options.directory = args.directory;
  options.delete_after = args.delete_after;
  options.once = args.once;
  options.settle_seconds = args.settle_seconds;
  options.follow_symlinks = args.follow_symlinks;
  auto source = ingest::DirectorySource::open(options, observer);
  if (!source) {
    if (source.status().is_not_found()) {
      std::fprintf(stderr,
                   "traffic-analyzer: %s: no such directory (create it, or point `capture --out` "
                   "at an existing one)\n",
                   args.directory.c_str());
    } else {
      print_error(source.status());
    }
    return kExitBadInput;
  }
  auto engine = open_engine(args.pipeline, !args.once);
  if (!engine) {
    return kExitBadInput;
  }
  install_stop_handlers();
  ingest::RunOptions run;
  run.publish_every = std::chrono::seconds(1);
  run.max_wait = std::chrono::milliseconds(200);
  if (print_run_failures(ingest::run(*engine, **source, stop_token(), run))) {
    return kExitFailure;
  }
  return kExitOk;
}

} // namespace ta::app
