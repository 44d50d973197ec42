// app: the traffic-analyzer command line. Each subcommand registers its
// options on a CLI11 app and runs after parsing; run functions return the
// process exit status (0 ok, 1 a failure while working, 2 bad input/usage).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ta/capture/live.hpp"

#include "pipeline.hpp"

namespace ta::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

struct AnalyzeArgs {
  PipelineArgs pipeline;
  bool quiet = false;
  std::size_t top = kSummaryTop; // summary rows (0: all)
  std::vector<std::string> files;
};
void add_analyze(CLI::App &app, AnalyzeArgs &args);
int run_analyze(const AnalyzeArgs &args);

struct QueryArgs {
  std::string store = "traffic.db";
  CassandraArgs cassandra;
  std::string since;
  std::string until;
  std::string format = "table";
  std::string endpoint;
  bool endpoint_given = false; // query flows: --endpoint was given (it may be "")
  std::size_t limit = 100;
  std::string group_by = "host"; // query endpoints: host or domain
};
void add_query(CLI::App &app, QueryArgs &args, CLI::App *&endpoints, CLI::App *&packets,
               CLI::App *&addresses, CLI::App *&flows);
int run_query_endpoints(const QueryArgs &args);
int run_query_packets(const QueryArgs &args);
int run_query_addresses(const QueryArgs &args);
int run_query_flows(const QueryArgs &args);

struct GenerateArgs {
  std::string out;
  std::string truth;
  std::uint64_t packets = 10'000;
  std::uint32_t endpoints = 20;
  std::uint64_t seed = 1;
  std::string link = "ethernet";
  bool dns_over_tcp = false;
  bool fragments = false;
  std::uint32_t dns_table_size = 0;
};
void add_generate(CLI::App &app, GenerateArgs &args);
int run_generate(const GenerateArgs &args);

struct LiveArgs {
  PipelineArgs pipeline;
  std::vector<std::string> interfaces;
  std::string filter;
  std::uint32_t snaplen = 262144;
  std::uint32_t buffer_mib = 4;
  bool immediate = false;
  std::string user;
  double flush_seconds = 1.0;
};
void add_run(CLI::App &app, LiveArgs &args);
int run_run(const LiveArgs &args);

struct CaptureArgs {
  std::vector<std::string> interfaces;
  std::string ports;
  std::string filter;
  std::string rotate = "10s";
  std::string out;
  std::uint32_t snaplen = 262144;
  std::uint32_t buffer_mib = 4;
  std::string user;
};
void add_capture(CLI::App &app, CaptureArgs &args);
int run_capture(const CaptureArgs &args);

struct TopArgs {
  PipelineArgs pipeline; // store defaults to none (set by add_top)
  std::vector<std::string> interfaces;
  std::string filter;
  std::uint32_t snaplen = 262144;
  std::uint32_t buffer_mib = 4;
  std::string group_by = "host";
  double interval_seconds = 1;
  bool once = false;
  double duration_seconds = 0; // 0 = until q, SIGINT or SIGTERM (--once: 5 s)
  std::size_t max_rows = 1000;
};
void add_top(CLI::App &app, TopArgs &args);
int run_top(const TopArgs &args);

struct WatchArgs {
  PipelineArgs pipeline;
  std::string directory;
  bool delete_after = false;
  bool once = false;
  double settle_seconds = 2.0;
  bool follow_symlinks = false;
};
void add_watch(CLI::App &app, WatchArgs &args);
int run_watch(const WatchArgs &args);

struct DemoArgs {
  PipelineArgs pipeline; // store defaults to sqlite:traffic.db (set by add_demo)
  double rate = 200;     // frames per second, paced in real time
  std::uint32_t endpoints = 25;
  std::uint64_t seed = 1;
  double duration_seconds = 0; // 0 = until SIGINT/SIGTERM
  std::string prometheus = "auto";
  std::uint16_t prometheus_port = 9090;
  double table_seconds = 5;
};
void add_demo(CLI::App &app, DemoArgs &args);
int run_demo(const DemoArgs &args);

// The live capture of `run`, `capture` and `top` (ports: --ports, used when
// no filter is given); nullptr after one line on stderr.
std::unique_ptr<capture::LiveCapture> open_live(const std::vector<std::string> &interfaces,
                                                const std::string &filter,
                                                const std::string &ports_text,
                                                std::uint32_t snaplen, std::uint32_t buffer_mib,
                                                bool immediate);

// "10s", "5m", "1h", "30" (seconds) -> seconds; 0 on anything else.
std::int64_t parse_duration_seconds(const std::string &text);

// "80,443,8000-8100" -> ports; false and a message on anything else.
bool parse_ports(const std::string &text, std::vector<std::uint16_t> &out, std::string &error);

} // namespace ta::app
