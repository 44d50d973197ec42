#include "backend.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "labels.hpp"

namespace ta::metrics {

void BackendCollectable::set(Source fn) {
  const std::lock_guard lock(mu_);
  fn_ = std::move(fn);
}

std::vector<prometheus::MetricFamily> BackendCollectable::Collect() const {
  std::vector<store::BackendFamily> families;
  {
    const std::lock_guard lock(mu_);
    if (!fn_) {
      return {};
    }
    fn_(families);
  }
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families.size());
  for (const store::BackendFamily &f : families) {
    prometheus::MetricFamily m;
    m.name = f.name;
    m.help = f.help;
    m.type = f.type == store::BackendFamily::Type::counter ? prometheus::MetricType::Counter
             : f.type == store::BackendFamily::Type::gauge ? prometheus::MetricType::Gauge
                                                           : prometheus::MetricType::Histogram;
    for (const store::BackendSample &s : f.samples) {
      prometheus::ClientMetric c;
      for (const auto &[k, v] : s.labels) {
        c.label.push_back({k, utf8_label(v)});
      }
      switch (m.type) {
      case prometheus::MetricType::Counter:
        c.counter.value = s.value;
        break;
      case prometheus::MetricType::Gauge:
        c.gauge.value = s.value;
        break;
      default: {
        // buckets are cumulative, one per bound plus +Inf.
        const std::size_t n = std::min(s.bucket_bounds.size() + 1, s.buckets.size());
        for (std::size_t i = 0; i < n; ++i) {
          prometheus::ClientMetric::Bucket b;
          b.upper_bound = i < s.bucket_bounds.size() ? s.bucket_bounds[i]
                                                     : std::numeric_limits<double>::infinity();
          b.cumulative_count = s.buckets[i];
          c.histogram.bucket.push_back(b);
        }
        c.histogram.sample_count = s.buckets.empty() ? 0 : s.buckets.back();
        c.histogram.sample_sum = s.sum;
        break;
      }
      }
      m.metric.push_back(std::move(c));
    }
    out.push_back(std::move(m));
  }
  return out;
}

} // namespace ta::metrics
