#include "ta/metrics/metrics.hpp"

#include <civetweb.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include <prometheus/check_names.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "ewma.hpp"
#include "labels.hpp"
#include "listen.hpp"

#ifndef TA_VERSION
#define TA_VERSION "unknown"
#endif

namespace ta::metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;

constexpr std::string_view kUnresolved = "(unresolved)";
constexpr std::string_view kOther = "(other)";
constexpr std::chrono::seconds kRateWindow{60}; // OneMinuteRate
constexpr unsigned kIpv6Feature = 8;            // mg_check_feature: IPv6 built in

double as_double(std::uint64_t v) {
  return static_cast<double>(v);
}

// Adds the increase of a cumulative value since `last` (all of it after a
// restart) and remembers the new value.
void add_delta(Counter &counter, std::uint64_t &last, std::uint64_t now) {
  counter.Increment(as_double(now >= last ? now - last : now));
  last = now;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// The seed's per-host pair of metrics (legacy_names).
struct Legacy {
  Counter *writes = nullptr;
  Gauge *throughput = nullptr;
  Ewma meter;
};

struct Endpoint {
  Counter *writes = nullptr;
  Counter *packets = nullptr;
  Counter *bytes = nullptr;
  Gauge *throughput = nullptr;
  Ewma meter;
  Legacy *legacy = nullptr; // null without legacy_names, or when its name is unusable
};

struct Interface {
  Counter *received = nullptr;
  Counter *dropped = nullptr;
  Counter *if_dropped = nullptr;
  std::uint64_t last_received = 0;
  std::uint64_t last_dropped = 0;
  std::uint64_t last_if_dropped = 0;
};

struct Sums {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// Per-call scratch of on_batch_sealed / on_batch_written, reused.
struct Scratch {
  std::mutex mu;
  std::vector<Sums> sums;
  std::vector<Endpoint *> endpoints;
};

// The store backend's own families (Cassandra: spool, client per node, the
// node's view of our tables), converted at scrape time. The backend's
// callback reads caches only, so a scrape never waits on the network.
class BackendCollectable final : public prometheus::Collectable {
public:
  void set(std::function<void(std::vector<store::BackendFamily> &)> fn) {
    const std::lock_guard lock(mu_);
    fn_ = std::move(fn);
  }

  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override {
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

private:
  mutable std::mutex mu_;
  std::function<void(std::vector<store::BackendFamily> &)> fn_;
};

} // namespace

struct Metrics::Impl {
  explicit Impl(const Options &o)
      : options(o), alpha(Ewma::alpha(o.tick, kRateWindow)),
        interval_seconds(std::chrono::duration<double>(o.tick).count()),
        registry(std::make_shared<prometheus::Registry>()),
        build_info(prometheus::BuildGauge()
                       .Name("traffic_analyzer_build_info")
                       .Help("Always 1; the version of the traffic-analyzer binary")
                       .Register(*registry)),
        endpoint_writes(prometheus::BuildCounter()
                            .Name("traffic_endpoint_writes_total")
                            .Help("Packet records of the endpoint durably written to the store")
                            .Register(*registry)),
        endpoint_throughput(
            prometheus::BuildGauge()
                .Name("traffic_endpoint_write_throughput")
                .Help("Store writes per second of the endpoint, one-minute EWMA (Dropwizard "
                      "OneMinuteRate)")
                .Register(*registry)),
        endpoint_packets(prometheus::BuildCounter()
                             .Name("traffic_endpoint_packets_total")
                             .Help("Outbound packets attributed to the endpoint")
                             .Register(*registry)),
        endpoint_bytes(prometheus::BuildCounter()
                           .Name("traffic_endpoint_bytes_total")
                           .Help("IP bytes of the outbound packets attributed to the endpoint")
                           .Register(*registry)),
        packets(prometheus::BuildCounter()
                    .Name("traffic_packets_total")
                    .Help("Frames by outcome: counted, or the reason they were skipped")
                    .Register(*registry)),
        frames(prometheus::BuildCounter()
                   .Name("traffic_frames_total")
                   .Help("Frames read from every source")
                   .Register(*registry)
                   .Add({})),
        dns_responses(prometheus::BuildCounter()
                          .Name("traffic_dns_responses_total")
                          .Help("DNS responses parsed whole (any RCODE)")
                          .Register(*registry)
                          .Add({})),
        dns_answers_learnt(prometheus::BuildCounter()
                               .Name("traffic_dns_answers_learnt_total")
                               .Help("A/AAAA answers applied to the address table")
                               .Register(*registry)
                               .Add({})),
        dns_errors(prometheus::BuildCounter()
                       .Name("traffic_dns_errors_total")
                       .Help("DNS messages from port 53 rejected, by reason")
                       .Register(*registry)),
        dns_table_addresses(prometheus::BuildGauge()
                                .Name("traffic_dns_table_addresses")
                                .Help("Addresses in the address-to-hostname table")
                                .Register(*registry)
                                .Add({})),
        dns_table_evictions(prometheus::BuildCounter()
                                .Name("traffic_dns_table_evictions_total")
                                .Help("Addresses evicted from the full address-to-hostname table")
                                .Register(*registry)
                                .Add({})),
        unresolved(prometheus::BuildCounter()
                       .Name("traffic_unresolved_packets_total")
                       .Help("Counted packets to addresses no DNS answer named")
                       .Register(*registry)
                       .Add({})),
        local_hosts_learnt(prometheus::BuildCounter()
                               .Name("traffic_local_hosts_learnt_total")
                               .Help("Local hosts learnt from DNS responses they received")
                               .Register(*registry)
                               .Add({})),
        capture_received(prometheus::BuildCounter()
                             .Name("traffic_capture_received_total")
                             .Help("Packets received by the capture (libpcap ps_recv)")
                             .Register(*registry)),
        capture_dropped(prometheus::BuildCounter()
                            .Name("traffic_capture_dropped_total")
                            .Help("Packets dropped by the kernel: buffer full (libpcap ps_drop)")
                            .Register(*registry)),
        capture_if_dropped(prometheus::BuildCounter()
                               .Name("traffic_capture_interface_dropped_total")
                               .Help("Packets dropped by the interface (libpcap ps_ifdrop)")
                               .Register(*registry)),
        files_ingested(prometheus::BuildCounter()
                           .Name("traffic_capture_files_ingested_total")
                           .Help("Capture files read to their end")
                           .Register(*registry)
                           .Add({})),
        store_batch_seconds(
            prometheus::BuildHistogram()
                .Name("traffic_store_batch_seconds")
                .Help("Time to write one batch durably to the store")
                .Register(*registry)
                .Add({},
                     prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
        store_errors(prometheus::BuildCounter()
                         .Name("traffic_store_errors_total")
                         .Help("Failed store writes")
                         .Register(*registry)
                         .Add({})),
        records_pending(prometheus::BuildGauge()
                            .Name("traffic_store_records_pending")
                            .Help("Records sealed but not yet written to the store")
                            .Register(*registry)
                            .Add({})) {
    build_info.Add({{"version", TA_VERSION}}).Set(1);
    for (std::size_t i = 0; i < outcome_counters.size(); ++i) {
      outcome_counters[i] =
          &packets.Add({{"outcome", std::string(to_string(static_cast<attribute::Outcome>(i)))}});
    }
    // dns_errors[0] is `ok`: not an error.
    for (std::size_t i = 1; i < dns_error_counters.size(); ++i) {
      dns_error_counters[i] =
          &dns_errors.Add({{"reason", std::string(to_string(static_cast<dns::DnsError>(i)))}});
    }
  }

  // Under mu. The endpoint `name` counts for; never null.
  Endpoint *resolve(std::string_view name) {
    if (name.empty()) {
      return special(unresolved_endpoint, kUnresolved, "unresolved");
    }
    if (const auto it = by_name.find(name); it != by_name.end()) {
      return it->second;
    }
    std::string label = utf8_label(name);
    if (label == kUnresolved || label == kOther) {
      label.replace(0, 1, "\\x28");
    }
    Endpoint *e = nullptr;
    if (const auto it = by_label.find(label); it != by_label.end()) {
      e = it->second; // another name with the same label value
    } else if (by_label.size() < options.max_endpoints) {
      e = make_endpoint(label, legacy_host(name));
      by_label.emplace(std::move(label), e);
    } else {
      return special(other_endpoint, kOther, "other");
    }
    // Names seen again skip the label work; bounded like the labels.
    if (by_name.size() < 2 * options.max_endpoints) {
      by_name.emplace(std::string(name), e);
    }
    return e;
  }

  Endpoint *special(Endpoint *&slot, std::string_view label, std::string_view legacy_name) {
    if (slot == nullptr) {
      slot = make_endpoint(std::string(label), std::string(legacy_name));
    }
    return slot;
  }

  Endpoint *make_endpoint(const std::string &label, const std::string &legacy_name) {
    Endpoint &e = endpoints.emplace_back();
    const prometheus::Labels labels{{"endpoint", label}};
    e.writes = &endpoint_writes.Add(labels);
    e.packets = &endpoint_packets.Add(labels);
    e.bytes = &endpoint_bytes.Add(labels);
    e.throughput = &endpoint_throughput.Add(labels);
    if (options.legacy_names) {
      e.legacy = legacy_for(legacy_name);
    }
    return &e;
  }

  // Hosts that sanitise alike share one pair. None for a name Prometheus
  // reserves ("__" prefix) or one of our own families (host "traffic_endpoint").
  Legacy *legacy_for(const std::string &host) {
    if (const auto it = legacy_by_name.find(host); it != legacy_by_name.end()) {
      return it->second;
    }
    Legacy *result = nullptr;
    const std::string writes_name = host + "_writes_total";
    const std::string throughput_name = host + "_write_throughput";
    if (prometheus::CheckMetricName(writes_name) && prometheus::CheckMetricName(throughput_name) &&
        host != "traffic_endpoint") {
      Legacy &l = legacies.emplace_back();
      l.writes = &prometheus::BuildCounter()
                      .Name(writes_name)
                      .Help("Records of endpoint " + host + " written (seed exporter's name)")
                      .Register(*registry)
                      .Add({});
      l.throughput =
          &prometheus::BuildGauge()
               .Name(throughput_name)
               .Help("Writes/s of endpoint " + host + ", one-minute EWMA (seed exporter's name)")
               .Register(*registry)
               .Add({});
      result = &l;
    }
    legacy_by_name.emplace(host, result);
    return result;
  }

  // Sums `batch` per endpoint index into s.sums and resolves the endpoints
  // with at least one record into s.endpoints (null for the others).
  void sum_batch(const store::Batch &batch, Scratch &s) {
    s.sums.assign(batch.endpoints.size(), Sums{});
    for (const store::PacketRecord &r : batch.packets) {
      if (r.endpoint < s.sums.size()) { // out of range: a producer bug; not counted
        Sums &sum = s.sums[r.endpoint];
        ++sum.packets;
        sum.bytes += r.bytes;
      }
    }
    s.endpoints.assign(batch.endpoints.size(), nullptr);
    const std::lock_guard lock(mu);
    for (std::size_t i = 0; i < s.sums.size(); ++i) {
      if (s.sums[i].packets != 0) {
        s.endpoints[i] = resolve(batch.endpoints[i]);
      }
    }
  }

  void tick() {
    const std::lock_guard lock(mu);
    for (Endpoint &e : endpoints) {
      e.throughput->Set(e.meter.tick(alpha, interval_seconds));
    }
    for (Legacy &l : legacies) {
      l.throughput->Set(l.meter.tick(alpha, interval_seconds));
    }
  }

  void run_ticks() {
    std::unique_lock lock(tick_mu);
    auto next = std::chrono::steady_clock::now() + options.tick;
    while (!tick_cv.wait_until(lock, next, [this] { return stop; })) {
      lock.unlock();
      tick();
      lock.lock();
      next += options.tick;
      if (const auto now = std::chrono::steady_clock::now(); next < now) {
        next = now + options.tick; // after a stall: no burst of catch-up ticks
      }
    }
  }

  const Options options;
  const double alpha;
  const double interval_seconds;

  std::shared_ptr<BackendCollectable> backend = std::make_shared<BackendCollectable>();
  // Families are owned by the registry; references stay valid while it lives.
  std::shared_ptr<prometheus::Registry> registry;
  Family<Gauge> &build_info;
  Family<Counter> &endpoint_writes;
  Family<Gauge> &endpoint_throughput;
  Family<Counter> &endpoint_packets;
  Family<Counter> &endpoint_bytes;
  Family<Counter> &packets;
  Counter &frames;
  Counter &dns_responses;
  Counter &dns_answers_learnt;
  Family<Counter> &dns_errors;
  Gauge &dns_table_addresses;
  Counter &dns_table_evictions;
  Counter &unresolved;
  Counter &local_hosts_learnt;
  Family<Counter> &capture_received;
  Family<Counter> &capture_dropped;
  Family<Counter> &capture_if_dropped;
  Counter &files_ingested;
  prometheus::Histogram &store_batch_seconds;
  Counter &store_errors;
  Gauge &records_pending;
  std::array<Counter *, static_cast<std::size_t>(attribute::Outcome::count_)> outcome_counters{};
  std::array<Counter *, static_cast<std::size_t>(dns::DnsError::count_)> dns_error_counters{};

  // Endpoints: created under mu, never removed (deque: stable addresses), so
  // their metrics are used without mu once resolved.
  std::mutex mu;
  std::deque<Endpoint> endpoints;
  std::deque<Legacy> legacies;
  StringMap<Endpoint *> by_name;  // hostname bytes -> endpoint (cache)
  StringMap<Endpoint *> by_label; // label value -> endpoint: the bounded set
  std::map<std::string, Legacy *> legacy_by_name;
  Endpoint *unresolved_endpoint = nullptr;
  Endpoint *other_endpoint = nullptr;

  Scratch sealed;
  Scratch written;

  // publish() and set_capture_stats(): the previous cumulative values.
  std::mutex stats_mu;
  attribute::Stats last_stats;
  std::uint64_t last_evictions = 0;
  std::map<std::string, Interface, std::less<>> interfaces;

  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool stop = false;
  std::thread ticker;

  // Last: destroyed first, so no scrape outlives what it reads.
  std::optional<ListenAddress> listen;
  std::uint16_t port = 0;
  std::string bound;
  std::unique_ptr<prometheus::Exposer> exposer;

  // Stops the HTTP server without civetweb's up-to-2 s wait (see
  // poke_listener): poke until the server has stopped.
  void stop_exposer() {
    if (!exposer) {
      return;
    }
    std::mutex waker_mu;
    std::condition_variable waker_cv;
    bool stopped = false;
    std::thread waker([&] {
      std::unique_lock lock(waker_mu);
      do {
        poke_listener(*listen, port);
      } while (!waker_cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return stopped; }));
    });
    exposer.reset();
    {
      const std::lock_guard lock(waker_mu);
      stopped = true;
    }
    waker_cv.notify_all();
    waker.join();
  }
};

std::unique_ptr<Metrics> Metrics::create(const Options &options, std::string &error) {
  if (options.tick.count() <= 0) {
    error = "metrics: the throughput tick must be positive";
    return nullptr;
  }
  std::optional<ListenAddress> listen;
  if (!options.listen.empty()) {
    listen = parse_listen(options.listen);
    if (!listen) {
      error = "metrics: --metrics-listen wants ADDR:PORT or [ADDR]:PORT with a numeric address "
              "(e.g. 0.0.0.0:9100), not '" +
              options.listen + "'";
      return nullptr;
    }
    if (listen->ipv6 && mg_check_feature(kIpv6Feature) == 0) {
      error = "metrics: cannot listen on " + options.listen +
              ": this build's HTTP server (civetweb) has no IPv6; use an IPv4 address such as "
              "0.0.0.0:" +
              std::to_string(listen->port);
      return nullptr;
    }
  }

  auto impl = std::make_unique<Impl>(options);
  if (listen) {
    try {
      impl->exposer = std::make_unique<prometheus::Exposer>(listen->with_port(listen->port));
    } catch (const std::exception &) {
      // civetweb only says "null context"; find out why ourselves.
      error = diagnose_listen_failure(*listen);
      return nullptr;
    }
    const std::vector<int> ports = impl->exposer->GetListeningPorts();
    if (ports.empty()) {
      error = "metrics: the HTTP server listens on no port for " + options.listen;
      return nullptr;
    }
    impl->listen = listen;
    impl->port = static_cast<std::uint16_t>(ports.front());
    impl->bound = listen->with_port(impl->port);
    impl->exposer->RegisterCollectable(impl->registry);
    impl->exposer->RegisterCollectable(impl->backend);
  }
  if (options.tick_thread) {
    Impl *raw = impl.get();
    impl->ticker = std::thread([raw] { raw->run_ticks(); });
  }
  return std::unique_ptr<Metrics>(new Metrics(std::move(impl)));
}

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Metrics::~Metrics() {
  {
    const std::lock_guard lock(impl_->tick_mu);
    impl_->stop = true;
  }
  impl_->tick_cv.notify_all();
  if (impl_->ticker.joinable()) {
    impl_->ticker.join();
  }
  impl_->stop_exposer();
}

std::string Metrics::bound_address() const {
  return impl_->bound;
}

void Metrics::on_batch_sealed(const store::Batch &batch) {
  Scratch &s = impl_->sealed;
  const std::lock_guard lock(s.mu);
  impl_->sum_batch(batch, s);
  for (std::size_t i = 0; i < s.endpoints.size(); ++i) {
    if (Endpoint *e = s.endpoints[i]) {
      e->packets->Increment(as_double(s.sums[i].packets));
      e->bytes->Increment(as_double(s.sums[i].bytes));
    }
  }
}

void Metrics::on_batch_written(const store::Batch &batch, double seconds) {
  impl_->store_batch_seconds.Observe(seconds);
  Scratch &s = impl_->written;
  const std::lock_guard lock(s.mu);
  impl_->sum_batch(batch, s);
  for (std::size_t i = 0; i < s.endpoints.size(); ++i) {
    if (Endpoint *e = s.endpoints[i]) {
      const std::uint64_t n = s.sums[i].packets;
      e->writes->Increment(as_double(n));
      e->meter.mark(n);
      if (e->legacy != nullptr) {
        e->legacy->writes->Increment(as_double(n));
        e->legacy->meter.mark(n);
      }
    }
  }
}

void Metrics::on_store_error() {
  impl_->store_errors.Increment();
}

void Metrics::set_records_pending(std::uint64_t records) {
  impl_->records_pending.Set(as_double(records));
}

void Metrics::publish(const attribute::Stats &stats, std::size_t dns_table_size,
                      std::uint64_t dns_evictions) {
  Impl &m = *impl_;
  const std::lock_guard lock(m.stats_mu);
  attribute::Stats &last = m.last_stats;
  add_delta(m.frames, last.frames, stats.frames);
  for (std::size_t i = 0; i < stats.outcomes.size(); ++i) {
    add_delta(*m.outcome_counters[i], last.outcomes[i], stats.outcomes[i]);
  }
  add_delta(m.dns_responses, last.dns_responses, stats.dns_responses);
  add_delta(m.dns_answers_learnt, last.dns_answers_learnt, stats.dns_answers_learnt);
  for (std::size_t i = 1; i < stats.dns_errors.size(); ++i) {
    add_delta(*m.dns_error_counters[i], last.dns_errors[i], stats.dns_errors[i]);
  }
  add_delta(m.unresolved, last.unresolved, stats.unresolved);
  add_delta(m.local_hosts_learnt, last.local_hosts_learnt, stats.local_hosts_learnt);
  add_delta(m.dns_table_evictions, m.last_evictions, dns_evictions);
  m.dns_table_addresses.Set(static_cast<double>(dns_table_size));
}

void Metrics::set_capture_stats(const std::string &interface, std::uint64_t received,
                                std::uint64_t dropped, std::uint64_t if_dropped) {
  Impl &m = *impl_;
  const std::lock_guard lock(m.stats_mu);
  auto it = m.interfaces.find(interface);
  if (it == m.interfaces.end()) {
    const prometheus::Labels labels{{"interface", utf8_label(interface)}};
    Interface fresh;
    fresh.received = &m.capture_received.Add(labels);
    fresh.dropped = &m.capture_dropped.Add(labels);
    fresh.if_dropped = &m.capture_if_dropped.Add(labels);
    it = m.interfaces.emplace(interface, fresh).first;
  }
  Interface &i = it->second;
  add_delta(*i.received, i.last_received, received);
  add_delta(*i.dropped, i.last_dropped, dropped);
  add_delta(*i.if_dropped, i.last_if_dropped, if_dropped);
}

void Metrics::on_file_ingested() {
  impl_->files_ingested.Increment();
}

void Metrics::tick_now() {
  impl_->tick();
}

void Metrics::set_backend(std::function<void(std::vector<store::BackendFamily> &)> fn) {
  impl_->backend->set(std::move(fn));
}

std::string Metrics::render() const {
  auto families = impl_->registry->Collect();
  auto backend = impl_->backend->Collect();
  families.insert(families.end(), std::make_move_iterator(backend.begin()),
                  std::make_move_iterator(backend.end()));
  return prometheus::TextSerializer().Serialize(families);
}

} // namespace ta::metrics
