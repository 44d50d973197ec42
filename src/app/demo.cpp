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
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "ta/generate/generate.hpp"

#include "commands.hpp"
#include "pipeline.hpp"

namespace ta::app {
namespace {

using Clock = std::chrono::steady_clock;

TimeUs wall_now_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimeUs>(ts.tv_sec) * 1'000'000 + static_cast<TimeUs>(ts.tv_nsec / 1000);
}

// The executable `name` in $PATH, or "".
std::string find_on_path(const std::string &name) {
  const char *path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    std::string candidate = dir;
    candidate += '/';
    candidate += name;
    if (access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

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

// A private Prometheus: temporary directory (config, TSDB, log), its own
// process group (a terminal's Ctrl-C reaches only us; we stop it in order),
// and SIGTERM if we die first.
class PrometheusChild {
public:
  PrometheusChild() = default;
  PrometheusChild(const PrometheusChild &) = delete;
  PrometheusChild &operator=(const PrometheusChild &) = delete;
  ~PrometheusChild() { stop(); }

  bool start(const std::string &binary, const std::string &target, std::uint16_t port,
             std::string &error) {
    const char *tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/traffic-analyzer-prometheus-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      error = fmt::format("cannot create a temporary directory ({})", std::strerror(errno));
      return false;
    }
    dir_ = templ;
    const std::string config = dir_ + "/prometheus.yml";
    {
      std::ofstream f(config);
      f << "# Written by traffic-analyzer demo; removed when it exits.\n"
           "global:\n"
           "  scrape_interval: 1s\n"
           "  evaluation_interval: 1s\n"
           "scrape_configs:\n"
           "  - job_name: traffic-analyzer\n"
           "    static_configs:\n"
           "      - targets: ['"
        << target << "']\n";
      if (!f) {
        error = "cannot write " + config;
        return false;
      }
    }
    log_ = dir_ + "/prometheus.log";
    std::vector<std::string> args{
        binary, "--config.file=" + config, "--storage.tsdb.path=" + dir_ + "/data",
        fmt::format("--web.listen-address=127.0.0.1:{}", port), "--storage.tsdb.retention.time=1d"};
    std::vector<char *> argv;
    argv.reserve(args.size() + 1);
    for (auto &a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const int log_fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      error = fmt::format("cannot create {} ({})", log_, std::strerror(errno));
      return false;
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      error = fmt::format("cannot start prometheus ({})", std::strerror(errno));
      close(log_fd);
      return false;
    }
    if (pid == 0) {
      // Child: async-signal-safe calls only until exec.
      (void)setpgid(0, 0);
      (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) {
        _exit(127);
      }
      const int null_fd = open("/dev/null", O_RDONLY);
      if (null_fd >= 0) {
        (void)dup2(null_fd, STDIN_FILENO);
      }
      (void)dup2(log_fd, STDOUT_FILENO);
      (void)dup2(log_fd, STDERR_FILENO);
      // The parent may have blocked or ignored signals; Prometheus must not
      // inherit that.
      sigset_t none;
      sigemptyset(&none);
      (void)sigprocmask(SIG_SETMASK, &none, nullptr);
      (void)signal(SIGINT, SIG_DFL);
      (void)signal(SIGTERM, SIG_DFL);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    pid_ = pid;
    return true;
  }

  // If it has exited (e.g. its port was taken): true once, with the last line
  // of its log.
  bool exited(std::string &why) {
    if (pid_ <= 0) {
      return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) {
      return false;
    }
    pid_ = 0;
    why = last_log_line();
    return true;
  }

  void stop() {
    if (pid_ > 0) {
      (void)kill(pid_, SIGTERM);
      const auto deadline = Clock::now() + std::chrono::seconds(15);
      int status = 0;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
          (void)kill(pid_, SIGKILL);
          (void)waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      pid_ = 0;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  [[nodiscard]] bool running() const { return pid_ > 0; }

private:
  [[nodiscard]] std::string last_log_line() const {
    std::ifstream f(log_);
    std::string line;
    std::string last;
    while (std::getline(f, line)) {
      if (!line.empty()) {
        last = line;
      }
    }
    return last.empty() ? "no output" : last;
  }

  pid_t pid_ = 0;
  std::string dir_;
  std::string log_;
};

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
    for (const auto &[name, r] : runs) {
      auto &prev = previous_[name];
      const double rate =
          interval_seconds > 0 ? static_cast<double>(r.packets - prev) / interval_seconds : 0.0;
      prev = r.packets;
      rows_.push_back({&name, &r, rate});
      total_packets += r.packets;
      total_bytes += r.bytes;
      total_rate += rate;
    }
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
  std::string err;
  auto pipeline = Pipeline::open(args.pipeline, true);
  if (!pipeline) {
    return kExitBadInput;
  }
  if (!pipeline->begin_live("demo", err)) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    return kExitFailure;
  }
  install_stop_handlers();

  const std::string metrics_at =
      pipeline->metrics() != nullptr
          ? "http://" + scrape_target(pipeline->metrics()->bound_address()) + "/metrics"
          : "";
  std::string prometheus_at;
  PrometheusChild prometheus;
  if (args.prometheus == "auto") {
    const std::string binary = find_on_path("prometheus");
    if (binary.empty()) {
      std::fprintf(stderr, "traffic-analyzer: prometheus is not installed (apt-get install "
                           "prometheus); going on without it\n");
    } else if (pipeline->metrics() == nullptr) {
      std::fprintf(stderr, "traffic-analyzer: not starting prometheus: no /metrics to scrape\n");
    } else if (!prometheus.start(binary, scrape_target(pipeline->metrics()->bound_address()),
                                 args.prometheus_port, err)) {
      std::fprintf(stderr, "traffic-analyzer: %s; going on without prometheus\n", err.c_str());
    } else {
      prometheus_at =
          fmt::format("http://127.0.0.1:{}/graph?g0.expr={}&g0.tab=0&g0.range_input=5m",
                      args.prometheus_port, url_encode("traffic_endpoint_write_throughput"));
      std::fprintf(stderr, "traffic-analyzer: Prometheus at %s\n", prometheus_at.c_str());
    }
  }
  std::fprintf(stderr,
               "traffic-analyzer: demo: %.0f frames/s, %u endpoints, seed %llu, store %s%s%s\n",
               args.rate, args.endpoints, static_cast<unsigned long long>(args.seed),
               pipeline->store_spec().c_str(), metrics_at.empty() ? "" : ", metrics at ",
               metrics_at.c_str());

  generate::Options gopt;
  gopt.packets = std::uint64_t{1} << 40U; // streams: effectively endless
  gopt.endpoints = args.endpoints;
  gopt.seed = args.seed;
  gopt.start_us = wall_now_us();
  gopt.packets_per_second = static_cast<std::uint32_t>(std::max(1.0, args.rate));
  auto generator = std::make_unique<generate::Generator>(gopt);

  const auto t0 = Clock::now();
  const auto flush_every = std::chrono::milliseconds(500);
  const auto table_every = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(args.table_seconds));
  const auto end = args.duration_seconds > 0
                       ? t0 + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(args.duration_seconds))
                       : Clock::time_point::max();
  auto next_flush = t0 + flush_every;
  auto next_table = t0 + table_every;
  auto last_table = t0;
  // Behind by more than this (a stalled terminal, a suspended process), the
  // schedule restarts instead of bursting to catch up.
  const auto max_backlog = static_cast<std::uint64_t>(std::max(1.0, args.rate));
  std::uint64_t emitted = 0;
  std::uint64_t schedule_base = 0; // frames emitted when `schedule_t0` was set
  auto schedule_t0 = t0;
  TimeUs last_ts = 0;
  std::uint64_t seed = args.seed;
  Table table(isatty(STDOUT_FILENO) != 0);
  int exit_code = kExitOk;

  while (!g_stop.load()) {
    auto now = Clock::now();
    if (now >= end) {
      break;
    }
    const double elapsed = std::chrono::duration<double>(now - schedule_t0).count();
    auto due = schedule_base + static_cast<std::uint64_t>(elapsed * args.rate);
    if (due > emitted + max_backlog) {
      schedule_base = emitted;
      schedule_t0 = now;
      due = emitted + 1;
    }
    while (emitted < due) {
      TimeUs gen_ts = 0;
      Bytes frame;
      if (!generator->next(gen_ts, frame)) {
        // Not reached in practice (2^40 frames); a fresh capture continues.
        gopt.seed = ++seed;
        gopt.start_us = wall_now_us();
        generator = std::make_unique<generate::Generator>(gopt);
        continue;
      }
      // The real time of emission, never going backwards.
      last_ts = std::max(last_ts, wall_now_us());
      pipeline->on_live_frame(decode::LinkType::ethernet, last_ts, frame);
      ++emitted;
    }
    if (now >= next_flush) {
      next_flush = now + flush_every;
      pipeline->flush();
      pipeline->publish();
      if (pipeline->writer().failed()) {
        pipeline->report_store_failure();
        exit_code = kExitFailure;
        break;
      }
      std::string why;
      if (prometheus.exited(why)) {
        std::fprintf(stderr, "traffic-analyzer: prometheus exited: %s\n", why.c_str());
        prometheus_at.clear();
      }
    }
    if (now >= next_table) {
      next_table = now + table_every;
      const double secs = std::chrono::duration<double>(now - t0).count();
      std::string header =
          fmt::format("traffic-analyzer demo: {:.0f} s, {} frames ({:.0f}/s), store {}\n", secs,
                      human_count(static_cast<double>(emitted)),
                      static_cast<double>(emitted) / secs, pipeline->store_spec());
      if (!metrics_at.empty()) {
        header += "metrics: " + metrics_at + "\n";
      }
      if (!prometheus_at.empty()) {
        header += "Prometheus: " + prometheus_at + "\n";
      }
      header += "\n";
      table.print(header, pipeline->analyzer().run_summary(),
                  std::chrono::duration<double>(now - last_table).count());
      last_table = now;
    }
    // Sleep until the next frame is due (or the next timer), at most 50 ms
    // so a stop request is seen promptly.
    const auto next_frame =
        schedule_t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                          static_cast<double>(emitted + 1 - schedule_base) / args.rate));
    auto wake =
        std::min({next_frame, next_flush, next_table, end, now + std::chrono::milliseconds(50)});
    now = Clock::now();
    if (wake > now) {
      std::this_thread::sleep_for(wake - now);
    }
  }

  pipeline->end_live();
  const bool ok = pipeline->drain();
  prometheus.stop();
  if (!ok) {
    return kExitFailure;
  }
  pipeline->print_summary(std::chrono::duration<double>(Clock::now() - t0).count());
  return exit_code;
}

} // namespace ta::app
