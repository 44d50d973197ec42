// app: the traffic-analyzer command line. Each subcommand registers its
// options on a CLI11 app and runs after parsing; run functions return the
// process exit status (0 ok, 1 a failure while working, 2 bad input/usage).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ta::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

struct AnalyzeArgs {
  std::string store = "traffic.db";
  std::vector<std::string> local_nets;
  std::string ports;
  std::size_t dns_table_size = 1U << 20U;
  bool quiet = false;
  std::vector<std::string> files;
};
void add_analyze(CLI::App &app, AnalyzeArgs &args);
int run_analyze(const AnalyzeArgs &args);

struct QueryArgs {
  std::string store = "traffic.db";
  std::string since;
  std::string until;
  std::string format = "table";
  std::string endpoint;
  bool endpoint_given = false;
  std::size_t limit = 100;
};
void add_query(CLI::App &app, QueryArgs &args, CLI::App *&endpoints, CLI::App *&packets,
               CLI::App *&addresses);
int run_query_endpoints(const QueryArgs &args);
int run_query_packets(const QueryArgs &args);
int run_query_addresses(const QueryArgs &args);

struct GenerateArgs {
  std::string out;
  std::string truth;
  std::uint64_t packets = 10'000;
  std::uint32_t endpoints = 20;
  std::uint64_t seed = 1;
};
void add_generate(CLI::App &app, GenerateArgs &args);
int run_generate(const GenerateArgs &args);

// "80,443,8000-8100" -> ports; false and a message on anything else.
bool parse_ports(const std::string &text, std::vector<std::uint16_t> &out, std::string &error);

} // namespace ta::app
