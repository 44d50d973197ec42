// metrics: Prometheus metrics of the pipeline, served over HTTP at /metrics.
// ta_metrics is the only library that links prometheus-cpp (its registry and
// text format) and the HTTP server (libmicrohttpd, GnuTLS for HTTPS), all
// privately: this header exposes none of them. It links
// ta_attribute and ta_store publicly for the Stats and Batch it reads.
//
// Per-endpoint write counts and a one-minute write rate, with the endpoint as
// a label (`legacy_names` also exports one metric name per host, the names
// older dashboards use: README "Metrics"), plus the health of every stage
// (outcomes, DNS errors, capture drops, store latency).
//
// Per-endpoint series:
//   traffic_endpoint_writes_total{endpoint}      records durably written
//   traffic_endpoint_write_throughput{endpoint}  writes/s, Dropwizard OneMinuteRate
//   traffic_endpoint_packets_total{endpoint}     records in sealed batches
//   traffic_endpoint_bytes_total{endpoint}       their IP bytes
// Label values: "" -> "(unresolved)"; once `max_endpoints` distinct names
// have a series, further names count under "(other)". With Group::domain the
// series are per registrable domain instead (ta_domain's Grouper: hosts of
// one domain summed under it; unresolved, IP literals and other names without
// a registrable domain stay as they are); the label name is still `endpoint`
// and `max_endpoints` bounds the domains. Names are arbitrary
// bytes: bytes that are not valid UTF-8, and NUL, appear as the text "\xNN".
// A name whose label would read "(unresolved)" or "(other)" has its "("
// written as "\x28".
//
// Thread safety: every member function may be called from any thread,
// concurrently with the others, with the tick thread and with scrapes.
// Per-record work happens outside the shared lock: each batch is first summed
// per endpoint index, then one increment per endpoint. on_batch_sealed and
// on_batch_written each reuse one scratch buffer, so concurrent calls of the
// same function serialise (the pipeline and writer threads each call one).
// Counters never decrease: publish() and set_capture_stats() take cumulative
// values and add the increase since the previous call; a value lower than
// the previous one is taken as a restart (the new value is added in full).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ta/attribute/analyzer.hpp"
#include "ta/common/status.hpp"
#include "ta/metrics/web_config.hpp"
#include "ta/store/store.hpp"

namespace ta::metrics {

// What one per-endpoint series stands for.
enum class Group : std::uint8_t {
  host,   // the endpoint's name as the pipeline gave it
  domain, // its registrable domain (eTLD+1, Public Suffix List)
};

struct Options {
  // ADDR:PORT with an IPv4 literal, or [IPv6]:PORT; port 0 picks a free port
  // (see bound_address()). "" = no HTTP server (render() still works).
  std::string listen = "0.0.0.0:9100";
  std::size_t max_endpoints = 1000; // hostnames with their own series
  bool legacy_names = false;        // also <host>_writes_total / <host>_write_throughput
  Group group = Group::host;        // domain: legacy names are per domain too
  std::chrono::seconds tick = std::chrono::seconds(5); // throughput EWMA tick, > 0
  bool tick_thread = true; // false: the rate moves only on tick_now() (tests)
  // TLS and basic auth of the HTTP server (load_web_config); null: plain
  // HTTP, no auth.
  std::shared_ptr<const WebConfig> web;
};

class Metrics {
public:
  // The registry, its tick thread, and the HTTP server unless options.listen
  // is "". Fails with one line starting "metrics: " and the code:
  //   invalid_argument   options.listen is not ADDR:PORT or [ADDR]:PORT with
  //                      a numeric address (or options.tick is not positive)
  //   unavailable        the address is already in use
  //   permission_denied  no permission to listen there (ports below 1024)
  //   not_found          the host is not an address of this machine
  //   io_error           the listener could not bind for another reason
  //   unsupported        Group::domain, and libpsl has no built-in list
  // e.g. unavailable "metrics: 0.0.0.0:9100 is already in use".
  [[nodiscard]] static Result<std::unique_ptr<Metrics>> open(const Options &options);
  // Stops the tick thread (promptly, whatever `tick`) and the HTTP server.
  ~Metrics();
  Metrics(const Metrics &) = delete;
  Metrics &operator=(const Metrics &) = delete;

  // "host:port" actually listening (the chosen port when asked for 0);
  // "" without an HTTP server.
  [[nodiscard]] std::string bound_address() const;

  // Once per sealed batch (pipeline thread): per-endpoint packets and bytes.
  void on_batch_sealed(const store::Batch &batch);
  // After a batch is durably written (writer thread): per-endpoint writes and
  // their rate, and the write's duration.
  void on_batch_written(const store::Batch &batch, double seconds);
  void on_store_error();
  void set_records_pending(std::uint64_t records);

  // The analyzer's cumulative stats, periodically and at exit.
  void publish(const attribute::Stats &stats, std::size_t dns_table_size,
               std::uint64_t dns_evictions);
  // Cumulative libpcap counters of one interface (pcap_stats: ps_recv,
  // ps_drop, ps_ifdrop). Callers widen pcap's 32-bit counters across wraps.
  void set_capture_stats(const std::string &interface, std::uint64_t received,
                         std::uint64_t dropped, std::uint64_t if_dropped);
  // Flows of this machine by whether the program owning them was found
  // (traffic_process_flows_total{outcome}; outcome names from
  // ta/process/mapper.hpp): cumulative per outcome. The family appears at the
  // first call: live modes that map programs call it at start with zeros.
  void set_process_flows(std::string_view outcome, std::uint64_t flows);
  void on_file_ingested();
  // A name in a watched directory that was not read; `reason` is one of the
  // ingest library's stable skip reason names ("symlink", ...).
  void on_file_skipped(const std::string &reason);
  // A file of a watched directory put off because the store could not start
  // its ledger entry (once per file and outage), and how many files wait.
  void on_file_deferred();
  void set_files_deferred(std::uint64_t waiting);
  // The store backend's own families, collected at every scrape (the
  // callback must not block on I/O). Replaces an earlier one.
  void set_backend(std::function<void(std::vector<store::BackendFamily> &)> fn);

  // One EWMA tick now: what the tick thread does every `tick` (with the
  // thread running, extra ticks skew the rate; meant for tick_thread=false).
  void tick_now();

  // The exposition text of this registry: exactly what /metrics serves.
  [[nodiscard]] std::string render() const;

private:
  struct Impl;
  explicit Metrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::metrics
