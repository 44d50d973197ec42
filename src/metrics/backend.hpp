// metrics/backend: the store backend's own metric families (Cassandra: the
// spool, the client per node, the node's view of our tables) as a
// prometheus-cpp Collectable, converted at scrape time.
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "ta/store/store.hpp"

namespace ta::metrics {

// The backend's callback reads caches only, so a scrape never waits on the
// network. Thread-safe: set() may race with scrapes.
class BackendCollectable final : public prometheus::Collectable {
public:
  using Source = std::function<void(std::vector<store::BackendFamily> &)>;

  // Replaces an earlier source; an empty one collects nothing.
  void set(Source fn);

  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override;

private:
  mutable std::mutex mu_;
  Source fn_;
};

} // namespace ta::metrics
