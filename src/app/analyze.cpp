// `analyze FILE...`: offline captures -> store, with a per-endpoint summary.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "commands.hpp"
#include "pipeline.hpp"

namespace ta::app {

void add_analyze(CLI::App &app, AnalyzeArgs &args) {
  auto *cmd = app.add_subcommand("analyze", "Analyze capture files (pcap, pcapng) into the store");
  add_pipeline_options(cmd, args.pipeline, false);
  cmd->add_flag("-q,--quiet", args.quiet, "No progress and no summary");
  cmd->add_option("FILE", args.files, "Capture files")->required();
}

int run_analyze(const AnalyzeArgs &args) {
  auto pipeline = Pipeline::open(args.pipeline, false);
  if (!pipeline) {
    return kExitBadInput;
  }
  install_stop_handlers();
  const bool progress = !args.quiet && isatty(STDERR_FILENO) == 1;
  const auto t0 = std::chrono::steady_clock::now();
  int exit_code = kExitOk;
  for (const auto &path : args.files) {
    std::string message;
    switch (pipeline->ingest_file(path, progress, message)) {
    case Pipeline::FileStatus::ok:
    case Pipeline::FileStatus::empty:
      break;
    case Pipeline::FileStatus::not_capture:
    case Pipeline::FileStatus::damaged:
      std::fprintf(stderr, "traffic-analyzer: %s\n", message.c_str());
      exit_code = kExitBadInput;
      break;
    case Pipeline::FileStatus::stopped:
      std::fprintf(stderr, "traffic-analyzer: %s\n", message.c_str());
      exit_code = kExitFailure;
      break;
    case Pipeline::FileStatus::store_failed:
      std::fprintf(stderr, "traffic-analyzer: %s\n", message.c_str());
      (void)pipeline->drain();
      return kExitFailure;
    }
    if (g_stop.load()) {
      break;
    }
  }
  if (!pipeline->drain()) {
    return kExitFailure;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!args.quiet) {
    pipeline->print_summary(secs);
  }
  return exit_code;
}

} // namespace ta::app
