// `demo`: the one-command demonstration. The deterministic generator plays
// one client's traffic in real time (frames stamped with the wall clock, so
// first/last seen and Prometheus look live) through the same pipeline as
// `run`: store, writer thread, /metrics. Every --table-seconds a per-endpoint
// table goes to stdout (redrawn in place on a terminal). With
// `--prometheus auto` and a `prometheus` binary on PATH, a private Prometheus
// (temporary config and TSDB, 127.0.0.1 only) scrapes /metrics every second.
//
// Works with no network access: nothing is fetched, Prometheus only talks to
// this process over loopback.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ta/ingest/sources.hpp"

#include "commands.hpp"
#include "pipeline.hpp"
#include "prometheus_child.hpp"

namespace ta::app {
namespace {

using Clock = std::chrono::steady_clock;

// What Prometheus should scrape for a listener bound to `bound` (host:port):
// the wildcard addresses become loopback.
std::string scrape_target(const std::string &bound) {
  const std::size_t colon = bound.rfind(':');
  if (colon == std::string::npos) {
    return bound;
  }
  std::string host = bound.substr(0, colon);
  if (host == "0.0.0.0" || host.empty()) {
    host = "127.0.0.1";
  } else if (host == "[::]") {
    host = "[::1]";
  }
  return host + bound.substr(colon);
}

std::string url_encode(const std::string &text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((std::isalnum(u) != 0) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string human_count(double v) {
  if (v >= 1e9) {
    return fmt::format("{:.1f} G", v / 1e9);
  }
  if (v >= 1e6) {
    return fmt::format("{:.1f} M", v / 1e6);
  }
  if (v >= 1e4) {
    return fmt::format("{:.1f} k", v / 1e3);
  }
  return fmt::format("{:.0f}", v);
}

// The live per-endpoint table: packets and bytes so far, and records per
// second over the last interval.
class Table {
public:
  explicit Table(bool tty) : tty_(tty) {}

  void print(const std::string &header, const std::map<std::string, attribute::EndpointRun> &runs,
             double interval_seconds) {
    rows_.clear();
    std::uint64_t total_packets = 0;
    std::uint64_t total_bytes = 0;
    double total_rate = 0;
    // Only the endpoints shown now are remembered: the summary is bounded, and
    // so is this.
    std::map<std::string, std::uint64_t> now;
    for (const auto &[name, r] : runs) {
      const auto it = previous_.find(name);
      const std::uint64_t prev = it != previous_.end() && it->second <= r.packets ? it->second : 0;
      const double rate =
          interval_seconds > 0 ? static_cast<double>(r.packets - prev) / interval_seconds : 0.0;
      now.emplace(name, r.packets);
      rows_.push_back({&name, &r, rate});
      total_packets += r.packets;
      total_bytes += r.bytes;
      total_rate += rate;
    }
    previous_.swap(now);
    std::sort(rows_.begin(), rows_.end(), [](const Row &a, const Row &b) {
      return a.run->packets != b.run->packets ? a.run->packets > b.run->packets : *a.name < *b.name;
    });
    std::string out;
    if (tty_) {
      out += "\033[H\033[2J"; // home, clear screen
    }
    out += header;
    out += fmt::format("{:<40} {:>12} {:>12} {:>10}\n", "ENDPOINT", "PACKETS", "BYTES", "WRITES/S");
    for (const Row &row : rows_) {
      out += fmt::format("{:<40} {:>12} {:>12} {:>10.1f}\n",
                         row.name->empty() ? "(unresolved)" : *row.name, row.run->packets,
                         row.run->bytes, row.rate);
    }
    out += fmt::format("{:<40} {:>12} {:>12} {:>10.1f}\n\n", "total", total_packets, total_bytes,
                       total_rate);
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  }

private:
  struct Row {
    const std::string *name;
    const attribute::EndpointRun *run;
    double rate;
  };
  bool tty_;
  std::vector<Row> rows_;
  std::map<std::string, std::uint64_t> previous_;
};

} // namespace

void add_demo(CLI::App &app, DemoArgs &args) {
  auto *cmd = app.add_subcommand(
      "demo", "Play synthetic traffic in real time into the store, /metrics and Prometheus");
  args.pipeline.store = "sqlite:traffic.db";
  cmd->add_option("--rate", args.rate, "Frames per second (one client is ~200)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 1e7));
  cmd->add_option("--endpoints", args.endpoints, "Distinct hostnames the client resolves")
      ->capture_default_str()
      ->check(CLI::Range(1U, 30'000U));
  cmd->add_option("--seed", args.seed, "Generator seed (same seed, same traffic)")
      ->capture_default_str();
  cmd->add_option("--duration", args.duration_seconds, "Seconds to run (0 = until Ctrl-C)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--prometheus", args.prometheus,
                  "auto: start a private Prometheus (if installed) scraping /metrics; off: don't")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "off"}));
  cmd->add_option("--prometheus-port", args.prometheus_port, "Port of that Prometheus on 127.0.0.1")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--table-seconds", args.table_seconds, "Seconds between per-endpoint tables")
      ->capture_default_str()
      ->check(CLI::Range(0.2, 86400.0));
  add_pipeline_options(cmd, args.pipeline, true);
}

int run_demo(const DemoArgs &args) {
  auto engine = open_engine(args.pipeline, true);
  if (!engine) {
    return kExitBadInput;
  }
  ingest::GeneratorOptions gopt;
  gopt.rate = args.rate;
  gopt.endpoints = args.endpoints;
  gopt.seed = args.seed;
  ingest::GeneratorSource source(gopt);
  if (Status st = source.begin(*engine); !st) {
    print_error(st);
    return kExitFailure;
  }
  install_stop_handlers();

  metrics::Metrics *metrics = engine->metrics();
  const std::string metrics_at =
      metrics != nullptr ? "http://" + scrape_target(metrics->bound_address()) + "/metrics" : "";
  std::string prometheus_at;
  PrometheusChild prometheus;
  std::string err;
  if (args.prometheus == "auto") {
    const std::string binary = find_on_path("prometheus");
    if (binary.empty()) {
      std::fprintf(stderr, "traffic-analyzer: prometheus is not installed (apt-get install "
                           "prometheus); going on without it\n");
    } else if (metrics == nullptr) {
      std::fprintf(stderr, "traffic-analyzer: not starting prometheus: no /metrics to scrape\n");
    } else if (!prometheus.start(binary, scrape_target(metrics->bound_address()),
                                 args.prometheus_port, err)) {
      std::fprintf(stderr, "traffic-analyzer: %s; going on without prometheus\n", err.c_str());
    } else {
      prometheus_at =
          fmt::format("http://127.0.0.1:{}/graph?g0.expr={}&g0.tab=0&g0.range_input=5m",
                      args.prometheus_port, url_encode("traffic_endpoint_write_throughput"));
      std::fprintf(stderr, "traffic-analyzer: Prometheus at %s\n", prometheus_at.c_str());
    }
  }
  std::fprintf(
      stderr, "traffic-analyzer: demo: %.0f frames/s, %u endpoints, seed %llu, store %s%s%s\n",
      args.rate, args.endpoints, static_cast<unsigned long long>(args.seed),
      args.pipeline.store.c_str(), metrics_at.empty() ? "" : ", metrics at ", metrics_at.c_str());

  const auto t0 = Clock::now();
  auto last_table = t0;
  Table table(isatty(STDOUT_FILENO) != 0);
  ingest::RunOptions run;
  run.flush_every = std::chrono::milliseconds(500);
  run.max_wait = std::chrono::milliseconds(50);
  if (args.duration_seconds > 0) {
    run.deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(args.duration_seconds));
  }
  run.after_flush = [&] {
    std::string why;
    if (prometheus.exited(why)) {
      std::fprintf(stderr, "traffic-analyzer: prometheus exited: %s\n", why.c_str());
      prometheus_at.clear();
    }
  };
  run.tick_every = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(args.table_seconds));
  run.tick = [&] {
    const auto now = Clock::now();
    const double secs = std::chrono::duration<double>(now - t0).count();
    const auto emitted = static_cast<double>(source.emitted());
    std::string header =
        fmt::format("traffic-analyzer demo: {:.0f} s, {} frames ({:.0f}/s), store {}\n", secs,
                    human_count(emitted), emitted / secs, args.pipeline.store);
    if (!metrics_at.empty()) {
      header += "metrics: " + metrics_at + "\n";
    }
    if (!prometheus_at.empty()) {
      header += "Prometheus: " + prometheus_at + "\n";
    }
    header += "\n";
    table.print(header, engine->analyzer().run_summary(),
                std::chrono::duration<double>(now - last_table).count());
    last_table = now;
  };
  const ingest::RunResult result = ingest::run(*engine, source, stop_token(), run);
  prometheus.stop();
  if (print_run_failures(result)) {
    return kExitFailure;
  }
  print_summary(engine->analyzer(), std::chrono::duration<double>(Clock::now() - t0).count());
  return kExitOk;
}

} // namespace ta::app
