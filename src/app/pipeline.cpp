#include "pipeline.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ta/common/escape.hpp"
#include "ta/ingest/process_annotator.hpp"
#include "ta/metrics/web_config.hpp"

#include "commands.hpp"

namespace ta::app {

std::atomic<bool> g_stop{false};

namespace {

void (*g_also)(int) = nullptr;

extern "C" void on_stop_signal(int sig) {
  g_stop.store(true);
  if (g_also != nullptr) {
    g_also(sig);
  }
}

std::string human_bytes(std::uint64_t b) {
  const char *units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

} // namespace

void install_stop_handlers(void (*also)(int)) {
  g_also = also;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void add_pipeline_options(CLI::App *cmd, PipelineArgs &args, bool with_metrics) {
  cmd->add_option("--store", args.store,
                  "Where records go: sqlite:PATH, a bare PATH (SQLite), none, or "
                  "cassandra://[USER@]HOST[:PORT][,HOST[:PORT]]...[/KEYSPACE]")
      ->capture_default_str();
  add_cassandra_options(cmd, args.cassandra, true);
  // One-shot commands wait for their records to be stored; long-running ones
  // are being stopped, and what is left is sent on their next start.
  args.spool_wait_seconds = with_metrics ? 10 : 600;
  cmd->add_option("--spool-wait", args.spool_wait_seconds,
                  "Cassandra: seconds to wait at exit for the spool to drain (what is left is "
                  "sent on the next start)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9))
      ->group("Cassandra");
  cmd->add_option("--local-net", args.local_nets,
                  "CIDR of local hosts (repeatable); default: hosts that received DNS responses");
  cmd->add_option("--ports", args.ports,
                  "Count only these destination ports, e.g. 80,443,8000-8100 (default: all)");
  cmd->add_option("--dns-table-size", args.dns_table_size,
                  "Most addresses the learnt DNS table holds (least recently learnt evicted); "
                  "flow naming's per-client answers hold 4 client/address pairs per address "
                  "(at most 262,144)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 26U));
  cmd->add_option("--max-local-hosts", args.max_local_hosts,
                  "Most local hosts learnt from DNS responses (without --local-net); the least "
                  "recently active is forgotten")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24U));
  cmd->add_option("--summary-size", args.summary_size,
                  "Most endpoints the run summary keeps; the least busy of the rest are folded "
                  "into one (other) line")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24U));
  cmd->add_option("--naming", args.naming,
                  "flow: name each flow by its TLS SNI, QUIC SNI or HTTP Host, else DNS, and count "
                  "both directions; dns: DNS-only naming of outbound packets")
      ->check(CLI::IsMember({"flow", "dns"}))
      ->capture_default_str();
  cmd->add_option("--flow-idle-timeout", args.flow_idle_timeout_seconds,
                  "Seconds without a packet after which a flow ends")
      ->check(CLI::Range(0.001, 1e7))
      ->capture_default_str();
  cmd->add_option("--max-flows", args.max_flows,
                  "Most flows tracked at once (the least recently active is evicted)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 26U))
      ->capture_default_str();
  cmd->add_option("--doh-names", args.doh_names_file,
                  "File of DNS-over-HTTPS service hostnames, one per line (# comments), instead of "
                  "the built-in list");
  if (with_metrics) {
    cmd->add_option("--metrics-listen", args.metrics_listen,
                    "Serve Prometheus /metrics on ADDR:PORT (\"\" = off); 0.0.0.0 is every "
                    "IPv4 interface, 127.0.0.1 this machine only")
        ->capture_default_str();
    cmd->add_option("--web-config", args.web_config,
                    "YAML file of TLS and basic auth for /metrics, as the Prometheus exporters' "
                    "--web.config.file (README \"Securing /metrics\")");
    cmd->add_flag("--legacy-metric-names", args.legacy_metric_names,
                  "Also export the original <host>_writes_total / <host>_write_throughput");
    cmd->add_option("--max-endpoints", args.max_endpoints,
                    "Endpoints with their own metric series; the rest count as (other)")
        ->capture_default_str();
  }
}

void add_process_option(CLI::App *cmd, PipelineArgs &args) {
  args.processes = true;
  cmd->add_flag_callback(
      "--no-processes", [&args] { args.processes = false; },
      "Do not look up which program owns each flow of this machine (README \"Which "
      "program\")");
}

void add_cassandra_options(CLI::App *cmd, CassandraArgs &o, bool writing) {
  const char *group = "Cassandra";
  cmd->add_option("--cassandra-password-file", o.password_file,
                  "File whose first line is the password (default: the environment variable "
                  "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD)")
      ->group(group);
  cmd->add_option("--agent-id", o.agent_id,
                  "This agent's name in every key (default: the host name)")
      ->group(group);
  cmd->add_option("--consistency", o.consistency, "CQL consistency of reads and writes")
      ->capture_default_str()
      ->group(group);
  cmd->add_flag("--cassandra-lz4", o.lz4, "Compress CQL frames with LZ4")->group(group);
  cmd->add_flag("--cassandra-tls", o.tls, "Connect with TLS")->group(group);
  cmd->add_option("--cassandra-tls-ca", o.tls_ca_file,
                  "PEM file of the CA (or self-signed certificate) to trust; implies TLS")
      ->group(group)
      ->each([&o](const std::string &) { o.tls = true; });
  if (!writing) {
    return;
  }
  cmd->add_option("--spool", o.spool_path,
                  "Durable spool file: batches wait here until Cassandra acknowledges them")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--spool-max-mb", o.spool_max_mb,
                  "Spool size (MiB) at which ingest waits for Cassandra (backpressure)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 30U))
      ->group(group);
  cmd->add_option("--replication", o.replication,
                  "Replication map of a keyspace created here, e.g. \"{'class': "
                  "'NetworkTopologyStrategy', 'dc1': 3}\"")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--ttl", o.ttl_seconds,
                  "default_time_to_live (seconds) of packet and roll-up tables created here")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{630720000}))
      ->group(group);
  cmd->add_flag("--twcs", o.twcs,
                "Create packet and roll-up tables with TimeWindowCompactionStrategy (1 day)")
      ->group(group);
}

namespace {

// One lower-cased hostname per line; blank lines and # comments skipped.
Result<std::vector<std::string>> read_name_list(const std::string &path) {
  std::ifstream in(path);
  if (!in) {
    return Status::not_found("--doh-names " + path + ": cannot read it");
  }
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) {
      line.erase(hash);
    }
    const auto b = line.find_first_not_of(" \t\r");
    const auto e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos) {
      continue;
    }
    std::string name = line.substr(b, e - b + 1);
    for (char &c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!name.empty() && name.back() == '.') {
      name.pop_back();
    }
    names.push_back(std::move(name));
  }
  return names;
}

// The metrics library's failure, worded with the flag that chooses the address.
std::string metrics_failure_line(const Status &st, const std::string &listen) {
  switch (st.code()) {
  case StatusCode::invalid_argument: // the listen text (the tick is never ours to get wrong)
    return "metrics: --metrics-listen wants ADDR:PORT or [ADDR]:PORT with a numeric address "
           "(e.g. 0.0.0.0:9100), not '" +
           listen + "'";
  case StatusCode::unavailable:
  case StatusCode::permission_denied:
  case StatusCode::not_found:
  case StatusCode::io_error: // the listener could not bind
    return st.message() + "; choose another with --metrics-listen";
  default:
    break;
  }
  return st.message();
}

// The process annotator as the first batch observer: it fills in the flows'
// programs, publishes its counts and says once what permission is missing.
// `metrics` is set once the engine is open, before any batch is sealed.
struct ProcessHook {
  ingest::ProcessAnnotator annotator;
  metrics::Metrics *metrics = nullptr;

  void publish() const {
    if (metrics == nullptr) {
      return;
    }
    for (const process::Outcome o : ingest::kProcessFlowOutcomes) {
      metrics->set_process_flows(process::outcome_name(o), annotator.flows(o));
    }
  }
  void operator()(store::Batch &batch) {
    annotator.annotate(batch);
    publish();
    if (auto warning = annotator.take_permission_warning()) {
      std::fprintf(stderr, "traffic-analyzer: warning: %s; going on without them\n",
                   warning->message().c_str());
    }
  }
};

} // namespace

std::unique_ptr<ingest::Engine> open_engine(const PipelineArgs &args, bool with_metrics,
                                            std::function<void(store::Batch &)> observer) {
  ingest::Options opt;
  std::shared_ptr<ProcessHook> processes;
  if (args.processes) {
    processes = std::make_shared<ProcessHook>();
    opt.batch_observer = [processes, then = std::move(observer)](store::Batch &batch) {
      (*processes)(batch);
      if (then) {
        then(batch);
      }
    };
  } else {
    opt.batch_observer = std::move(observer);
  }
  if (with_metrics && !args.web_config.empty()) { // checked before anything starts
    auto web = metrics::load_web_config(args.web_config);
    if (!web) {
      print_error(web.status());
      return nullptr;
    }
    opt.metrics.web = std::make_shared<const metrics::WebConfig>(std::move(web).value());
  }
  opt.dns_table_size = args.dns_table_size;
  opt.summary_size = args.summary_size;
  opt.naming = args.naming == "dns" ? attribute::Naming::dns : attribute::Naming::flow;
  opt.max_flows = args.max_flows;
  opt.max_local_hosts = args.max_local_hosts;
  opt.flow_idle_timeout_us = static_cast<TimeUs>(args.flow_idle_timeout_seconds * 1e6);
  if (!args.doh_names_file.empty()) {
    auto names = read_name_list(args.doh_names_file);
    if (!names) {
      print_error(names.status());
      return nullptr;
    }
    opt.doh_names = std::move(names).value();
  }
  for (const auto &text : args.local_nets) {
    auto p = IpPrefix::parse(text);
    if (!p) {
      print_error(
          Status::invalid_argument("--local-net '" + text + "' is not a CIDR (e.g. 10.0.0.0/8)"));
      return nullptr;
    }
    opt.local_nets.push_back(*p);
  }
  std::string error;
  if (!args.ports.empty() && !parse_ports(args.ports, opt.ports, error)) {
    print_error(Status::invalid_argument(error));
    return nullptr;
  }
  opt.spool_wait = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::min(args.spool_wait_seconds, 1e9) * 1000));
  opt.with_metrics = with_metrics;
  opt.metrics.listen = args.metrics_listen;
  opt.metrics.legacy_names = args.legacy_metric_names;
  opt.metrics.max_endpoints = args.max_endpoints;
  auto store = open_store(args.store, args.cassandra);
  if (!store) {
    print_error(store.status());
    return nullptr;
  }
  auto engine = ingest::Engine::open(std::move(store).value(), opt, [&](const Status &warning) {
    std::fprintf(stderr, "traffic-analyzer: %s (going on without /metrics)\n",
                 metrics_failure_line(warning, args.metrics_listen).c_str());
  });
  if (!engine) {
    print_error(engine.status());
    return nullptr;
  }
  if (processes) {
    processes->metrics = engine.value()->metrics();
    processes->publish(); // every outcome present from the start
  }
  return std::move(engine).value();
}

void print_error(const Status &status) {
  std::fprintf(stderr, "traffic-analyzer: %s\n", status.message().c_str());
}

bool print_run_failures(const ingest::RunResult &result) {
  for (const Status *st : {&result.source, &result.store, &result.drain}) {
    if (!st->ok()) {
      print_error(*st);
    }
  }
  return !result.ok();
}

void print_summary(const attribute::Analyzer &analyzer, double seconds, std::size_t top) {
  const auto &st = analyzer.stats();
  const bool flows = analyzer.naming() == attribute::Naming::flow;
  if (flows) {
    std::printf("%-40s %12s %12s %12s %12s  %-27s  %-27s\n", "ENDPOINT", "PACKETS", "BYTES",
                "RECV PACKETS", "RECV BYTES", "FIRST SEEN", "LAST SEEN");
  } else {
    std::printf("%-40s %12s %12s  %-27s  %-27s\n", "ENDPOINT", "PACKETS", "BYTES", "FIRST SEEN",
                "LAST SEEN");
  }
  // The top endpoints by packets sent, then received (a flood of names
  // must not print a line each), one line for the rest of the kept ones,
  // and the (other) row: what the bounded summary folded out.
  using Entry = std::pair<const std::string, attribute::EndpointRun>;
  std::vector<const Entry *> rows;
  rows.reserve(analyzer.run_summary().size());
  for (const Entry &e : analyzer.run_summary()) {
    rows.push_back(&e);
  }
  const std::size_t shown_rows = top == 0 ? rows.size() : std::min(top, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(shown_rows),
                    rows.end(), [](const Entry *a, const Entry *b) {
                      if (a->second.packets != b->second.packets) {
                        return a->second.packets > b->second.packets;
                      }
                      if (a->second.received_packets != b->second.received_packets) {
                        return a->second.received_packets > b->second.received_packets;
                      }
                      return a->first < b->first;
                    });
  std::vector<std::pair<std::string, const attribute::EndpointRun *>> printed;
  printed.reserve(shown_rows + 1);
  for (std::size_t i = 0; i < shown_rows; ++i) {
    const auto &[name, r] = *rows[i];
    // Names come off the wire: escaped as the query table does.
    printed.emplace_back(name.empty() ? "(unresolved)" : escape_name(name), &r);
  }
  if (analyzer.run_summary_folded() != 0) {
    printed.emplace_back("(other)", &analyzer.run_summary_rest());
  }
  for (const auto &[shown_name, run] : printed) {
    const char *shown = shown_name.c_str();
    const attribute::EndpointRun &r = *run;
    if (flows) {
      std::printf("%-40s %12llu %12llu %12llu %12llu  %-27s  %-27s\n", shown,
                  static_cast<unsigned long long>(r.packets),
                  static_cast<unsigned long long>(r.bytes),
                  static_cast<unsigned long long>(r.received_packets),
                  static_cast<unsigned long long>(r.received_bytes),
                  format_rfc3339_us(r.first_seen).c_str(), format_rfc3339_us(r.last_seen).c_str());
    } else {
      std::printf("%-40s %12llu %12llu  %-27s  %-27s\n", shown,
                  static_cast<unsigned long long>(r.packets),
                  static_cast<unsigned long long>(r.bytes), format_rfc3339_us(r.first_seen).c_str(),
                  format_rfc3339_us(r.last_seen).c_str());
    }
  }
  if (shown_rows < rows.size()) {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    for (std::size_t i = shown_rows; i < rows.size(); ++i) {
      packets += rows[i]->second.packets;
      bytes += rows[i]->second.bytes;
    }
    std::printf("... and %zu more endpoints (%llu packets, %s sent; all of them: query endpoints, "
                "or --top 0)\n",
                rows.size() - shown_rows, static_cast<unsigned long long>(packets),
                human_bytes(bytes).c_str());
  }
  std::string skipped;
  for (std::size_t i = 1; i < st.outcomes.size(); ++i) {
    if (st.outcomes[i] != 0) {
      skipped += fmt::format(" {}={}", attribute::to_string(static_cast<attribute::Outcome>(i)),
                             st.outcomes[i]);
    }
  }
  std::string dns_errors;
  for (std::size_t i = 1; i < st.dns_errors.size(); ++i) {
    if (st.dns_errors[i] != 0) {
      dns_errors +=
          fmt::format(" {}={}", dns::to_string(static_cast<dns::DnsError>(i)), st.dns_errors[i]);
    }
  }
  std::printf("\nframes %llu, counted %llu (%s), unresolved %llu, %.2f s (%.0f frames/s)\n",
              static_cast<unsigned long long>(st.frames),
              static_cast<unsigned long long>(st.outcome(attribute::Outcome::counted)),
              human_bytes(st.bytes_counted).c_str(), static_cast<unsigned long long>(st.unresolved),
              seconds, seconds > 0 ? static_cast<double>(st.frames) / seconds : 0.0);
  if (analyzer.run_summary_folded() != 0) {
    std::printf("summary: the %zu busiest endpoints; (other) adds up %llu folded out of it "
                "(--summary-size)\n",
                analyzer.run_summary().size(),
                static_cast<unsigned long long>(analyzer.run_summary_folded()));
  }
  std::printf("skipped:%s\n", skipped.empty() ? " none" : skipped.c_str());
  std::printf("dns: %llu responses, %llu answers learnt, table %zu addresses (%llu evicted)%s%s\n",
              static_cast<unsigned long long>(st.dns_responses),
              static_cast<unsigned long long>(st.dns_answers_learnt), analyzer.table().size(),
              static_cast<unsigned long long>(analyzer.table().stats().evictions),
              dns_errors.empty() ? "" : ", malformed:", dns_errors.c_str());
  if (!flows) {
    return;
  }
  std::uint64_t named = 0;
  for (const std::uint64_t n : st.names) {
    named += n;
  }
  std::string shares;
  // In the order names are tried.
  for (const store::NameSource src :
       {store::NameSource::sni, store::NameSource::quic, store::NameSource::http,
        store::NameSource::dns, store::NameSource::none}) {
    const std::uint64_t n = st.names[static_cast<std::size_t>(src)];
    shares +=
        fmt::format("{} {} {:.1f}%", shares.empty() ? "" : ",", store::name_source_name(src),
                    named == 0 ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(named));
  }
  std::printf("names (share of %llu counted packets):%s\n", static_cast<unsigned long long>(named),
              shares.c_str());
  std::printf("flows: %llu, %llu evicted; received %llu packets (%s)\n",
              static_cast<unsigned long long>(st.flows_created),
              static_cast<unsigned long long>(st.flows_evicted),
              static_cast<unsigned long long>(st.received_packets),
              human_bytes(st.received_bytes).c_str());
  std::uint64_t encrypted = 0;
  for (const std::uint64_t n : st.encrypted_dns_flows) {
    encrypted += n;
  }
  if (encrypted != 0) {
    const auto kind = [&](attribute::EncryptedDns k) {
      return static_cast<unsigned long long>(st.encrypted_dns_flows[static_cast<std::size_t>(k)]);
    };
    std::printf("encrypted dns: %llu flows (dot %llu, doq %llu, doh %llu) from %zu client(s): "
                "their DNS is not visible, so DNS names less of their traffic\n",
                static_cast<unsigned long long>(encrypted), kind(attribute::EncryptedDns::dot),
                kind(attribute::EncryptedDns::doq), kind(attribute::EncryptedDns::doh),
                analyzer.encrypted_dns_clients());
  }
}

} // namespace ta::app
