// app/pipeline: what every ingesting command shares on the command line:
// the store and pipeline options, the stop signals, opening the ingest
// engine (ta_ingest) from them, and the summary printed at the end.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "ta/common/status.hpp"
#include "ta/ingest/engine.hpp"
#include "ta/ingest/runner.hpp"

#include "store_open.hpp"

namespace ta::app {

// `--naming`: "flow" (names from the client's own handshake, then DNS;
// both directions) or "dns" (DNS-only naming of outbound packets).
inline constexpr std::string_view kDefaultNaming = "flow";

struct PipelineArgs {
  std::string store = "traffic.db";
  std::vector<std::string> local_nets;
  std::string ports;
  std::size_t dns_table_size = 1U << 20U;
  std::size_t summary_size = 1000;
  std::string naming = std::string(kDefaultNaming);
  std::size_t max_flows = 65536;
  std::size_t max_local_hosts = 4096;
  double flow_idle_timeout_seconds = 300;
  std::string doh_names_file;
  CassandraArgs cassandra;
  // At exit, how long to wait for a backend's spool to reach its database.
  double spool_wait_seconds = 600;
  // Metrics (long-running modes only).
  std::string metrics_listen = "0.0.0.0:9100";
  bool legacy_metric_names = false;
  std::string web_config; // --web-config: TLS and basic auth of /metrics
  std::size_t max_endpoints = 1000;
  // Which program owns each flow of this machine (README "Which program"):
  // on for live capture (add_process_option), off for everything else.
  bool processes = false;
};

void add_pipeline_options(CLI::App *cmd, PipelineArgs &args, bool with_metrics);
// Live capture of this machine: maps flows to programs unless --no-processes.
void add_process_option(CLI::App *cmd, PipelineArgs &args);
// The Cassandra store's options (--store cassandra://...): `writing` adds
// those that only matter when records are written (schema, spool).
void add_cassandra_options(CLI::App *cmd, CassandraArgs &options, bool writing);

// Set by SIGINT/SIGTERM; handed to the ingest runner as its stop token.
extern std::atomic<bool> g_stop;
void install_stop_handlers(void (*also)(int) = nullptr);
[[nodiscard]] inline ingest::StopToken stop_token() {
  return ingest::StopToken(g_stop);
}

// The store named by --store and the ingest engine over it; nullptr after a
// one-line error on stderr (bad option values, store unopenable). Metrics
// that cannot bind are one line on stderr too, and left off.
// `observer` sees each sealed batch first (see ingest::Options::batch_observer),
// after the flows' programs are filled in when args.processes is set.
[[nodiscard]] std::unique_ptr<ingest::Engine>
open_engine(const PipelineArgs &args, bool with_metrics,
            std::function<void(store::Batch &)> observer = {});

// "traffic-analyzer: <message>" on stderr.
void print_error(const Status &status);
// The failures of a run, one line each (source, store, drain); true if any.
bool print_run_failures(const ingest::RunResult &result);

// The per-endpoint table (the `top` endpoints by packets, 0 = all, then one
// line for the rest) and the frames / skipped / dns lines.
inline constexpr std::size_t kSummaryTop = 20;
void print_summary(const attribute::Analyzer &analyzer, double seconds,
                   std::size_t top = kSummaryTop);

} // namespace ta::app
