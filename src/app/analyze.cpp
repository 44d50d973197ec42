// `analyze FILE...`: offline captures -> store, with a per-endpoint summary.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "ta/ingest/sources.hpp"

#include "commands.hpp"
#include "pipeline.hpp"

namespace ta::app {

void add_analyze(CLI::App &app, AnalyzeArgs &args) {
  auto *cmd = app.add_subcommand("analyze", "Analyze capture files (pcap, pcapng) into the store");
  add_pipeline_options(cmd, args.pipeline, false);
  cmd->add_flag("-q,--quiet", args.quiet, "No progress and no summary");
  cmd->add_option("--top", args.top,
                  "Endpoints listed in the summary, by packets (0: all; the rest is one line)")
      ->capture_default_str();
  cmd->add_option("FILE", args.files, "Capture files (pcap, pcapng); - reads standard input")
      ->required();
}

int run_analyze(const AnalyzeArgs &args) {
  auto engine = open_engine(args.pipeline, false);
  if (!engine) {
    return kExitBadInput;
  }
  install_stop_handlers();
  const bool progress = !args.quiet && isatty(STDERR_FILENO) == 1;
  const auto t0 = std::chrono::steady_clock::now();
  int exit_code = kExitOk;
  ingest::FileObserver observer;
  observer.file_done = [&](const std::string &, const ingest::FileResult &r) {
    if (progress) {
      std::fprintf(stderr, "\r\033[K");
    }
    switch (r.outcome) {
    case ingest::FileOutcome::ok:
    case ingest::FileOutcome::empty:
    case ingest::FileOutcome::store_failed: // the run's result says it
    case ingest::FileOutcome::deferred:     // the same
      break;
    case ingest::FileOutcome::not_capture:
    case ingest::FileOutcome::damaged:
      print_error(r.status);
      exit_code = kExitBadInput;
      break;
    case ingest::FileOutcome::stopped:
      print_error(r.status);
      exit_code = kExitFailure;
      break;
    }
  };
  ingest::Engine::Progress on_progress;
  if (progress) {
    on_progress = [](const std::string &path, std::uint64_t frames) {
      std::fprintf(stderr, "\r%s: %llu frames", path.c_str(),
                   static_cast<unsigned long long>(frames));
    };
  }
  ingest::FileSource source(args.files, observer, on_progress);
  if (print_run_failures(ingest::run(*engine, source, stop_token()))) {
    return kExitFailure;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!args.quiet) {
    print_summary(engine->analyzer(), secs, args.top);
  }
  return exit_code;
}

} // namespace ta::app
