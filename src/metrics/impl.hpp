// metrics/impl: the state behind Metrics, shared by the files that fill it:
//   families.cpp  registers every exported family (names, help, buckets)
//   endpoints.cpp per-endpoint series: label values, the bound, legacy names
//   health.cpp    pipeline health: outcomes, DNS, capture, store counters
//   metrics.cpp   creation, the tick thread, the HTTP server, render()
//   http.cpp      the HTTP(S) server itself; web_config.cpp its access rules
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "ta/domain/registrable.hpp"
#include "ta/metrics/metrics.hpp"

#include "backend.hpp"
#include "ewma.hpp"
#include "http.hpp"
#include "listen.hpp"

namespace ta::metrics {

inline constexpr std::string_view kUnresolved = "(unresolved)";
inline constexpr std::string_view kOther = "(other)";
inline constexpr std::chrono::seconds kRateWindow{60}; // OneMinuteRate

inline double as_double(std::uint64_t v) {
  return static_cast<double>(v);
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// The legacy per-host pair of metrics (legacy_names).
struct Legacy {
  prometheus::Counter *writes = nullptr;
  prometheus::Gauge *throughput = nullptr;
  Ewma meter;
};

struct Endpoint {
  prometheus::Counter *writes = nullptr;
  prometheus::Counter *packets = nullptr;
  prometheus::Counter *bytes = nullptr;
  prometheus::Counter *received_packets = nullptr;
  prometheus::Counter *received_bytes = nullptr;
  prometheus::Gauge *throughput = nullptr;
  Ewma meter;
  Legacy *legacy = nullptr; // null without legacy_names, or when its name is unusable
};

struct Interface {
  prometheus::Counter *received = nullptr;
  prometheus::Counter *dropped = nullptr;
  prometheus::Counter *if_dropped = nullptr;
  std::uint64_t last_received = 0;
  std::uint64_t last_dropped = 0;
  std::uint64_t last_if_dropped = 0;
};

struct Sums {
  std::uint64_t packets = 0; // sent: the records a store keeps as rows
  std::uint64_t bytes = 0;
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
};

// Per-call scratch of on_batch_sealed / on_batch_written, reused.
struct Scratch {
  std::mutex mu;
  std::vector<Sums> sums;
  std::vector<Endpoint *> endpoints;
};

struct Metrics::Impl {
  explicit Impl(const Options &o); // families.cpp

  // endpoints.cpp. Under mu: the endpoint `name` counts for; never null.
  Endpoint *resolve(std::string_view name);
  Endpoint *special(Endpoint *&slot, std::string_view label, std::string_view legacy_name);
  Endpoint *make_endpoint(const std::string &label, const std::string &legacy_name);
  Legacy *legacy_for(const std::string &host);
  // Sums `batch` per endpoint index into s.sums and resolves the endpoints
  // with at least one record into s.endpoints (null for the others).
  void sum_batch(const store::Batch &batch, Scratch &s);

  // metrics.cpp
  void tick();
  void run_ticks();
  [[nodiscard]] std::string render() const;

  const Options options;
  const double alpha;
  const double interval_seconds;

  std::shared_ptr<BackendCollectable> backend = std::make_shared<BackendCollectable>();
  // Families are owned by the registry; references stay valid while it lives.
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Gauge> &build_info;
  prometheus::Family<prometheus::Counter> &endpoint_writes;
  prometheus::Family<prometheus::Gauge> &endpoint_throughput;
  prometheus::Family<prometheus::Counter> &endpoint_packets;
  prometheus::Family<prometheus::Counter> &endpoint_bytes;
  prometheus::Family<prometheus::Counter> &packets;
  prometheus::Counter &frames;
  prometheus::Counter &dns_responses;
  prometheus::Counter &dns_answers_learnt;
  prometheus::Family<prometheus::Counter> &dns_errors;
  prometheus::Gauge &dns_table_addresses;
  prometheus::Counter &dns_table_evictions;
  prometheus::Counter &unresolved;
  prometheus::Counter &local_hosts_learnt;
  prometheus::Counter &local_host_evictions;
  prometheus::Gauge &local_hosts;
  prometheus::Family<prometheus::Counter> &capture_received;
  prometheus::Family<prometheus::Counter> &capture_dropped;
  prometheus::Family<prometheus::Counter> &capture_if_dropped;
  prometheus::Counter &files_ingested;
  prometheus::Family<prometheus::Counter> &files_skipped;
  prometheus::Gauge &files_deferred;
  prometheus::Counter &file_deferrals;
  prometheus::Histogram &store_batch_seconds;
  prometheus::Counter &store_errors;
  prometheus::Gauge &records_pending;
  prometheus::Family<prometheus::Counter> &endpoint_received_packets;
  prometheus::Family<prometheus::Counter> &endpoint_received_bytes;
  prometheus::Family<prometheus::Counter> &names;
  prometheus::Gauge &flows_active;
  prometheus::Counter &flow_evictions;
  prometheus::Family<prometheus::Counter> &encrypted_dns_flows;
  prometheus::Family<prometheus::Counter> &naming_outcomes;
  prometheus::Family<prometheus::Counter> &quic_packet_errors;
  std::array<prometheus::Counter *, static_cast<std::size_t>(store::NameSource::count_)>
      name_counters{};
  std::array<prometheus::Counter *, static_cast<std::size_t>(flow::NamingOutcome::count_)>
      naming_outcome_counters{};
  std::array<prometheus::Counter *, flow::kQuicPacketErrors> quic_error_counters{};
  std::array<prometheus::Counter *, static_cast<std::size_t>(attribute::EncryptedDns::count_)>
      encrypted_dns_counters{};
  std::array<prometheus::Counter *, static_cast<std::size_t>(attribute::Outcome::count_)>
      outcome_counters{};
  std::array<prometheus::Counter *, static_cast<std::size_t>(dns::DnsError::count_)>
      dns_error_counters{};

  // Endpoints: created under mu, never removed (deque: stable addresses), so
  // their metrics are used without mu once resolved.
  std::mutex mu;
  std::deque<Endpoint> endpoints;
  std::deque<Legacy> legacies;
  StringMap<Endpoint *> by_name; // hostname bytes -> endpoint (cache)
  // Group::domain only: hostname -> registrable domain (not thread-safe:
  // used under mu, like the maps).
  std::optional<domain::Grouper> grouper;
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
  // set_process_flows(): registered at its first call.
  prometheus::Family<prometheus::Counter> *process_flows = nullptr;
  std::map<std::string, std::pair<prometheus::Counter *, std::uint64_t>, std::less<>>
      process_flow_counters;

  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool stop = false;
  std::thread ticker;

  // Last: destroyed first, so no scrape outlives what it reads.
  std::string bound;
  std::unique_ptr<HttpServer> server;
};

} // namespace ta::metrics
