#include <cstdio>

#include "commands.hpp"
#include "config.hpp"

int main(int argc, char **argv) {
  using namespace ta::app;
  CLI::App app{"traffic-analyzer: which hosts a machine talks to, how much and when"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(TA_VERSION));

  AnalyzeArgs analyze;
  add_analyze(app, analyze);
  QueryArgs query;
  CLI::App *q_endpoints = nullptr;
  CLI::App *q_packets = nullptr;
  CLI::App *q_addresses = nullptr;
  CLI::App *q_flows = nullptr;
  add_query(app, query, q_endpoints, q_packets, q_addresses, q_flows);
  GenerateArgs generate;
  add_generate(app, generate);
  LiveArgs run;
  add_run(app, run);
  CaptureArgs capture;
  add_capture(app, capture);
  WatchArgs watch;
  add_watch(app, watch);
  DemoArgs demo;
  add_demo(app, demo);
  TopArgs top;
  add_top(app, top);
  // Every option of every subcommand can also come from a TOML file:
  // top-level keys, or a [run] / [capture] / [watch] section; flags given on
  // the command line override it (deploy/traffic-analyzer.toml). The file is
  // read and checked here, before CLI11 parses (config.hpp).
  app.set_config("--config", "", "Read options from a TOML file (flags override it)");
  if (const std::string error = load_config(app, find_config(argc, argv)); !error.empty()) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", error.c_str());
    return kExitBadInput;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::FileError &e) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", e.what());
    return kExitBadInput;
  } catch (const CLI::ParseError &e) {
    std::fprintf(stderr, "traffic-analyzer: %s (see --help)\n", e.what());
    return kExitBadInput;
  }

  if (app.got_subcommand("analyze")) {
    return run_analyze(analyze);
  }
  if (app.got_subcommand("run")) {
    return run_run(run);
  }
  if (app.got_subcommand("capture")) {
    return run_capture(capture);
  }
  if (app.got_subcommand("watch")) {
    return run_watch(watch);
  }
  if (app.got_subcommand("demo")) {
    return run_demo(demo);
  }
  if (app.got_subcommand("top")) {
    return run_top(top);
  }
  if (app.got_subcommand("generate")) {
    return run_generate(generate);
  }
  if (q_endpoints->parsed()) {
    return run_query_endpoints(query);
  }
  if (q_packets->parsed()) {
    return run_query_packets(query);
  }
  if (q_addresses->parsed()) {
    return run_query_addresses(query);
  }
  if (q_flows->parsed()) {
    return run_query_flows(query);
  }
  return kExitBadInput;
}
