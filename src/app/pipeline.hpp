// app/pipeline: what every ingesting command shares: one store, its writer
// thread, one analyzer, and (for long-running modes) the metrics registry.
//
// Threads: the calling thread owns the analyzer (on_frame, flush, ingest);
// the writer thread owns the store; metrics are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ta/attribute/analyzer.hpp"
#include "ta/metrics/metrics.hpp"
#include "ta/store/store.hpp"
#include "ta/store/writer.hpp"

#include "store_open.hpp"

namespace ta::app {

struct PipelineArgs {
  std::string store = "traffic.db";
  std::vector<std::string> local_nets;
  std::string ports;
  std::size_t dns_table_size = 1U << 20U;
  CassandraArgs cassandra;
  // At exit, how long to wait for a backend's spool to reach its database.
  double spool_wait_seconds = 600;
  // Metrics (long-running modes only).
  std::string metrics_listen = "0.0.0.0:9100";
  bool legacy_metric_names = false;
  std::size_t max_endpoints = 1000;
};

void add_pipeline_options(CLI::App *cmd, PipelineArgs &args, bool with_metrics);
// The Cassandra store's options (--store cassandra://...): `writing` adds
// those that only matter when records are written (schema, spool).
void add_cassandra_options(CLI::App *cmd, CassandraArgs &options, bool writing);

// Set by SIGINT/SIGTERM; long-running loops poll it.
extern std::atomic<bool> g_stop;
void install_stop_handlers(void (*also)(int) = nullptr);

class Pipeline {
public:
  // nullptr after a one-line error on stderr (bad option values, store
  // unopenable). Metrics that cannot bind are one line on stderr too, and
  // left off: the pipeline goes on without them.
  [[nodiscard]] static std::unique_ptr<Pipeline> open(const PipelineArgs &args, bool with_metrics);
  ~Pipeline();
  Pipeline(const Pipeline &) = delete;
  Pipeline &operator=(const Pipeline &) = delete;

  enum class FileStatus { ok, empty, not_capture, damaged, store_failed, stopped };
  // Reads a whole capture file into the store (resuming past its ledger
  // position). `message` says what went wrong for every status but ok/empty.
  FileStatus ingest_file(const std::string &path, bool progress, std::string &message);

  // A live source: a new ledger entry per run and interface set.
  [[nodiscard]] bool begin_live(const std::string &name, std::string &error);
  void on_live_frame(decode::LinkType link, TimeUs ts, Bytes frame) noexcept {
    analyzer_->on_frame(link, live_index_++, ts, frame);
  }
  void flush() { analyzer_->flush(); }
  void end_live() { analyzer_->end_source(true); }

  // Pipeline stats -> metrics (call periodically from the analyzer's thread).
  void publish();
  // Waits until everything submitted is durable; false (after one line on
  // stderr saying why) if the store failed.
  [[nodiscard]] bool drain();
  // The one line about a failed store write.
  void report_store_failure() const;

  [[nodiscard]] attribute::Analyzer &analyzer() { return *analyzer_; }
  [[nodiscard]] store::Writer &writer() { return *writer_; }
  [[nodiscard]] store::Store &store() { return *store_; }
  [[nodiscard]] metrics::Metrics *metrics() { return metrics_.get(); }
  [[nodiscard]] const std::string &store_spec() const { return spec_; }

  void print_summary(double seconds) const;

private:
  Pipeline() = default;
  [[nodiscard]] static std::unique_ptr<Pipeline>
  open_quietly(const PipelineArgs &args, bool with_metrics, std::string &error);
  std::string spec_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<store::Writer> writer_;
  std::unique_ptr<attribute::Analyzer> analyzer_;
  std::uint64_t live_index_ = 0;
  std::chrono::milliseconds spool_wait_{600000};
};

} // namespace ta::app
