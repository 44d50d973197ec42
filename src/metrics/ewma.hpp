// metrics/ewma: Dropwizard's EWMA (com.codahale.metrics.EWMA), the
// OneMinuteRate of Cassandra's WriteLatency meter, which dashboards read as
// write_throughput (README "Metrics"). Every tick: instant = events since the
// last tick / interval; the first tick sets rate = instant, later ticks rate +=
// alpha * (instant - rate), alpha = 1 - exp(-interval / window).
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace ta::metrics {

class Ewma {
public:
  [[nodiscard]] static double alpha(std::chrono::duration<double> interval,
                                    std::chrono::duration<double> window) {
    return 1.0 - std::exp(-interval.count() / window.count());
  }

  // Any thread.
  void mark(std::uint64_t events) noexcept {
    uncounted_.fetch_add(events, std::memory_order_relaxed);
  }

  // One thread at a time (the caller serialises ticks). Returns events/s.
  double tick(double alpha, double interval_seconds) noexcept {
    const auto events = uncounted_.exchange(0, std::memory_order_relaxed);
    const double instant = static_cast<double>(events) / interval_seconds;
    if (initialized_) {
      rate_ += alpha * (instant - rate_);
    } else {
      rate_ = instant;
      initialized_ = true;
    }
    return rate_;
  }

  [[nodiscard]] double rate() const noexcept { return rate_; }

private:
  std::atomic<std::uint64_t> uncounted_{0};
  double rate_ = 0.0;
  bool initialized_ = false;
};

} // namespace ta::metrics
