// app/prometheus_child: the private Prometheus that `demo` starts when one
// is installed: a temporary directory (config scraping our /metrics every
// second, TSDB, log), 127.0.0.1 only, its own process group (a terminal's
// Ctrl-C reaches only us; we stop it in order), and SIGTERM if we die first.
// Kept beside the command rather than in ta_metrics: it is process
// supervision for one command, and it reads PATH and TMPDIR, which
// libraries do not.
#pragma once

#include <cstdint>
#include <string>

#include <sys/types.h>

namespace ta::app {

// The executable `name` in $PATH, or "".
[[nodiscard]] std::string find_on_path(const std::string &name);

class PrometheusChild {
public:
  PrometheusChild() = default;
  PrometheusChild(const PrometheusChild &) = delete;
  PrometheusChild &operator=(const PrometheusChild &) = delete;
  ~PrometheusChild() { stop(); }

  // Starts `binary` scraping `target` (host:port), serving on
  // 127.0.0.1:`port`; false and a one-line `error` when it cannot.
  bool start(const std::string &binary, const std::string &target, std::uint16_t port,
             std::string &error);
  // If it has exited (e.g. its port was taken): true once, with the last line
  // of its log.
  bool exited(std::string &why);
  // SIGTERM (SIGKILL after 15 s), then the temporary directory goes.
  void stop();
  [[nodiscard]] bool running() const { return pid_ > 0; }

private:
  [[nodiscard]] std::string last_log_line() const;

  pid_t pid_ = 0;
  std::string dir_;
  std::string log_;
};

} // namespace ta::app
