// `run` (live capture -> store) and `capture` (live capture -> rotated pcap
// files, the original interceptor).
#include "ta/capture/live.hpp"

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "ta/capture/rotate.hpp"

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

std::unique_ptr<capture::LiveCapture> open_live(const std::vector<std::string> &interfaces,
                                                const std::string &filter,
                                                const std::string &ports_text,
                                                std::uint32_t snaplen, std::uint32_t buffer_mib,
                                                bool immediate, std::string &error) {
  capture::LiveOptions lo;
  lo.interfaces = interfaces.empty() ? std::vector<std::string>{"any"} : interfaces;
  if (!filter.empty()) {
    lo.filter = filter;
  } else {
    std::vector<std::uint16_t> ports;
    if (!ports_text.empty() && !parse_ports(ports_text, ports, error)) {
      return nullptr;
    }
    lo.filter = capture::LiveCapture::default_filter(ports);
  }
  lo.snaplen = snaplen;
  lo.buffer_bytes = buffer_mib * 1024U * 1024U;
  lo.immediate = immediate;
  return capture::LiveCapture::open(lo, error);
}

void report_interfaces(capture::LiveCapture &live, metrics::Metrics *m, bool print) {
  for (const auto &s : live.stats()) {
    if (m != nullptr) {
      m->set_capture_stats(s.name, s.received, s.dropped, s.if_dropped);
    }
    if (print) {
      std::fprintf(stderr,
                   "%s: %llu packets received, %llu dropped by the kernel, %llu by the interface\n",
                   s.name.c_str(), static_cast<unsigned long long>(s.received),
                   static_cast<unsigned long long>(s.dropped),
                   static_cast<unsigned long long>(s.if_dropped));
    }
  }
}

} // namespace

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
}

int run_run(const LiveArgs &args) {
  std::string err;
  auto live = open_live(args.interfaces, args.filter, args.pipeline.ports, args.snaplen,
                        args.buffer_mib, args.immediate, err);
  if (!live) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    return kExitBadInput;
  }
  for (const auto &w : live->warnings()) {
    std::fprintf(stderr, "traffic-analyzer: warning: %s\n", w.c_str());
  }
  if (!args.user.empty() && !capture::drop_privileges(args.user, err)) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    return kExitBadInput;
  }
  auto pipeline = Pipeline::open(args.pipeline, true);
  if (!pipeline) {
    return kExitBadInput;
  }
  std::vector<decode::LinkType> links;
  std::string names;
  for (std::size_t i = 0; i < live->interface_count(); ++i) {
    links.push_back(static_cast<decode::LinkType>(live->link_type(i)));
    names += (names.empty() ? "" : "+") + live->interface_name(i);
  }
  if (!pipeline->begin_live(names, err)) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    return kExitFailure;
  }
  g_live = live.get();
  install_stop_handlers(wake_live);
  if (auto *m = pipeline->metrics()) {
    std::fprintf(stderr, "traffic-analyzer: capturing on %s; metrics at http://%s/metrics\n",
                 names.c_str(), m->bound_address().c_str());
  } else {
    std::fprintf(stderr, "traffic-analyzer: capturing on %s\n", names.c_str());
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto last_flush = t0;
  const auto flush_every = std::chrono::duration<double>(args.flush_seconds);
  int exit_code = kExitOk;
  while (!g_stop.load()) {
    const int n = live->poll_once(100, [&](std::size_t iface, const capture::Frame &f) {
      pipeline->on_live_frame(links[iface], f.ts_us, f.data);
    });
    if (n < 0) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", live->error().c_str());
      exit_code = kExitFailure;
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_flush >= flush_every) {
      last_flush = now;
      pipeline->flush();
      pipeline->publish();
      report_interfaces(*live, pipeline->metrics(), false);
    }
    if (pipeline->writer().failed()) {
      pipeline->report_store_failure();
      return kExitFailure;
    }
  }
  pipeline->end_live();
  const bool ok = pipeline->drain();
  report_interfaces(*live, pipeline->metrics(), true);
  g_live = nullptr;
  if (!ok) {
    return kExitFailure;
  }
  pipeline->print_summary(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return exit_code;
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
  std::string err;
  auto live = open_live(args.interfaces, args.filter, args.ports, args.snaplen, args.buffer_mib,
                        false, err);
  if (!live) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
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
  if (!args.user.empty() && !capture::drop_privileges(args.user, err)) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    return kExitBadInput;
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
  auto writer = capture::RotatingWriter::open(ro, capture::RotatingWriter::Clock::now(), err);
  if (!writer) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    return kExitBadInput;
  }
  g_live = live.get();
  install_stop_handlers(wake_live);
  int exit_code = kExitOk;
  while (!g_stop.load()) {
    bool write_failed = false;
    const int n = live->poll_once(200, [&](std::size_t, const capture::Frame &f) {
      if (!writer->write(f, err)) {
        write_failed = true;
      }
    });
    if (n < 0) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", live->error().c_str());
      exit_code = kExitFailure;
      break;
    }
    if (write_failed) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    }
    if (!writer->tick(capture::RotatingWriter::Clock::now(), err)) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    }
  }
  if (!writer->close(err)) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    exit_code = kExitFailure;
  }
  report_interfaces(*live, nullptr, true);
  g_live = nullptr;
  return exit_code;
}

} // namespace ta::app
