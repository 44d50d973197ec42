// `run` (live capture -> store) and `capture` (live capture -> rotated pcap
// files, as the original interceptor did: see the README, "The system this
// replaces").
#include "ta/capture/live.hpp"

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "ta/capture/rotate.hpp"
#include "ta/ingest/sources.hpp"

#include "commands.hpp"
#include "pipeline.hpp"

namespace ta::app {
namespace {

capture::LiveCapture *g_live = nullptr;
void wake_live(int /*sig*/) {
  if (g_live != nullptr) {
    g_live->wake();
  }
}

void add_live_options(CLI::App *cmd, std::vector<std::string> &interfaces, std::string &filter,
                      std::uint32_t &snaplen, std::uint32_t &buffer_mib, std::string &user) {
  cmd->add_option("-i,--interface", interfaces,
                  "Interface to capture on (repeatable; `any` = all, with packet direction)");
  cmd->add_option("--filter", filter,
                  "BPF capture filter (default: outbound traffic to --ports, inbound DNS)");
  cmd->add_option("--snaplen", snaplen, "Bytes captured per packet")
      ->capture_default_str()
      ->check(CLI::Range(64U, 262144U));
  cmd->add_option("--buffer-mib", buffer_mib, "Kernel capture buffer per interface, MiB")
      ->capture_default_str()
      ->check(CLI::Range(1U, 4096U));
  cmd->add_option("--user", user, "Drop privileges to this user once the capture is open");
}

void report_interfaces(capture::LiveCapture &live) {
  for (const auto &s : live.stats()) {
    std::fprintf(
        stderr, "%s: %llu packets received, %llu dropped by the kernel, %llu by the interface\n",
        s.name.c_str(), static_cast<unsigned long long>(s.received),
        static_cast<unsigned long long>(s.dropped), static_cast<unsigned long long>(s.if_dropped));
  }
}

} // namespace

// The interfaces of `run`, `capture` and `top`; nullptr after one line on stderr.
std::unique_ptr<capture::LiveCapture> open_live(const std::vector<std::string> &interfaces,
                                                const std::string &filter,
                                                const std::string &ports_text,
                                                std::uint32_t snaplen, std::uint32_t buffer_mib,
                                                bool immediate) {
  ingest::LiveSourceOptions lo;
  lo.interfaces = interfaces;
  lo.filter = filter;
  std::string error;
  if (filter.empty() && !ports_text.empty() && !parse_ports(ports_text, lo.ports, error)) {
    print_error(Status::invalid_argument(error));
    return nullptr;
  }
  lo.snaplen = snaplen;
  lo.buffer_mib = buffer_mib;
  lo.immediate = immediate;
  auto live = ingest::open_live_capture(lo);
  if (!live) {
    print_error(live.status());
    return nullptr;
  }
  return std::move(live).value();
}

std::int64_t parse_duration_seconds(const std::string &text) {
  if (text.empty()) {
    return 0;
  }
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (...) {
    return 0;
  }
  const std::string unit = text.substr(used);
  std::int64_t mult = 0;
  if (unit.empty() || unit == "s") {
    mult = 1;
  } else if (unit == "m") {
    mult = 60;
  } else if (unit == "h") {
    mult = 3600;
  }
  return v > 0 ? v * mult : 0;
}

void add_run(CLI::App &app, LiveArgs &args) {
  auto *cmd = app.add_subcommand("run", "Capture live traffic and analyze it into the store");
  add_live_options(cmd, args.interfaces, args.filter, args.snaplen, args.buffer_mib, args.user);
  cmd->add_flag(
      "--immediate", args.immediate,
      "Deliver each packet at once (needs a larger --buffer-mib; default: 100 ms batches)");
  cmd->add_option("--flush-seconds", args.flush_seconds,
                  "Most time a record waits before it is written")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 60.0));
  add_pipeline_options(cmd, args.pipeline, true);
  add_process_option(cmd, args.pipeline);
}

int run_run(const LiveArgs &args) {
  auto live = open_live(args.interfaces, args.filter, args.pipeline.ports, args.snaplen,
                        args.buffer_mib, args.immediate);
  if (!live) {
    return kExitBadInput;
  }
  for (const auto &w : live->warnings()) {
    std::fprintf(stderr, "traffic-analyzer: warning: %s\n", w.c_str());
  }
  if (!args.user.empty()) {
    if (Status st = capture::drop_privileges(args.user); !st) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", st.message().c_str());
      return kExitBadInput;
    }
  }
  auto engine = open_engine(args.pipeline, true);
  if (!engine) {
    return kExitBadInput;
  }
  ingest::LiveSource source(std::move(live));
  if (Status st = source.begin(*engine); !st) {
    print_error(st);
    return kExitFailure;
  }
  g_live = &source.capture();
  install_stop_handlers(wake_live);
  if (auto *m = engine->metrics()) {
    std::fprintf(stderr, "traffic-analyzer: capturing on %s; metrics at http://%s/metrics\n",
                 source.name().c_str(), m->bound_address().c_str());
  } else {
    std::fprintf(stderr, "traffic-analyzer: capturing on %s\n", source.name().c_str());
  }
  const auto t0 = std::chrono::steady_clock::now();
  ingest::RunOptions run;
  run.flush_every = std::chrono::duration_cast<ingest::Clock::duration>(
      std::chrono::duration<double>(args.flush_seconds));
  run.max_wait = std::chrono::milliseconds(100);
  const ingest::RunResult result = ingest::run(*engine, source, stop_token(), run);
  if (!result.store.ok()) {
    // A failed write ends the command at once.
    print_error(result.store);
    g_live = nullptr;
    return kExitFailure;
  }
  if (!result.source.ok()) {
    print_error(result.source);
  }
  if (!result.drain.ok()) {
    print_error(result.drain);
  }
  report_interfaces(source.capture());
  g_live = nullptr;
  if (!result.drain.ok()) {
    return kExitFailure;
  }
  print_summary(engine->analyzer(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return result.source.ok() ? kExitOk : kExitFailure;
}

void add_capture(CLI::App &app, CaptureArgs &args) {
  auto *cmd = app.add_subcommand(
      "capture", "Write live traffic to rotated pcap files (the interceptor; see `watch`)");
  add_live_options(cmd, args.interfaces, args.filter, args.snaplen, args.buffer_mib, args.user);
  cmd->add_option("--ports", args.ports,
                  "Capture outbound traffic to these ports (plus inbound DNS), e.g. 80,443");
  cmd->add_option("--rotate", args.rotate, "Start a new file every DURATION (10s, 5m, 1h)")
      ->capture_default_str();
  cmd->add_option("--out", args.out, "Directory the files are written to")->required();
}

int run_capture(const CaptureArgs &args) {
  const std::int64_t every = parse_duration_seconds(args.rotate);
  if (every <= 0) {
    std::fprintf(stderr, "traffic-analyzer: --rotate '%s' is not a duration (e.g. 10s, 5m, 1h)\n",
                 args.rotate.c_str());
    return kExitBadInput;
  }
  auto live =
      open_live(args.interfaces, args.filter, args.ports, args.snaplen, args.buffer_mib, false);
  if (!live) {
    return kExitBadInput;
  }
  const std::uint32_t link = live->link_type(0);
  for (std::size_t i = 1; i < live->interface_count(); ++i) {
    if (live->link_type(i) != link) {
      std::fprintf(stderr,
                   "traffic-analyzer: %s and %s have different link types; capture them with "
                   "two `capture` processes, or use -i any\n",
                   live->interface_name(0).c_str(), live->interface_name(i).c_str());
      return kExitBadInput;
    }
  }
  if (!args.user.empty()) {
    if (Status st = capture::drop_privileges(args.user); !st) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", st.message().c_str());
      return kExitBadInput;
    }
  }
  capture::RotateOptions ro;
  ro.directory = args.out;
  ro.link_type = link;
  ro.snaplen = live->snaplen();
  ro.interval = std::chrono::seconds(every);
  ro.on_closed = [](const capture::RotatedFile &f) {
    std::fprintf(stderr, "traffic-analyzer: wrote %s (%llu packets)\n", f.path.c_str(),
                 static_cast<unsigned long long>(f.frames));
  };
  auto opened = capture::RotatingWriter::open(ro, capture::RotatingWriter::Clock::now());
  if (!opened) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", opened.status().message().c_str());
    return kExitBadInput;
  }
  const std::unique_ptr<capture::RotatingWriter> writer = std::move(opened).value();
  g_live = live.get();
  install_stop_handlers(wake_live);
  int exit_code = kExitOk;
  // A failed write (disk full) is refused again for every later frame of the
  // file and reported once more when the file is finished: one line each.
  std::string last_reported;
  const auto report = [&last_reported](const Status &st) {
    if (st.message() != last_reported) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", st.message().c_str());
      last_reported = st.message();
    }
  };
  while (!g_stop.load()) {
    Status write_error; // the last failed write of this poll
    const int n = live->poll_once(200, [&](std::size_t, const capture::Frame &f) {
      if (Status st = writer->write(f); !st) {
        write_error = std::move(st);
      }
    });
    if (n < 0) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", live->error().c_str());
      exit_code = kExitFailure;
      break;
    }
    if (!write_error.ok()) {
      report(write_error);
    }
    if (Status st = writer->tick(capture::RotatingWriter::Clock::now()); !st) {
      report(st);
    }
  }
  if (Status st = writer->close(); !st) {
    report(st);
    exit_code = kExitFailure;
  }
  report_interfaces(*live);
  g_live = nullptr;
  return exit_code;
}

} // namespace ta::app
