#include "pipeline.hpp"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "ta/capture/capture.hpp"

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
                  "Most addresses the learnt DNS table holds (least recently learnt evicted)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 26U));
  if (with_metrics) {
    cmd->add_option("--metrics-listen", args.metrics_listen,
                    "Serve Prometheus /metrics on ADDR:PORT (\"\" = off); 0.0.0.0 is every "
                    "IPv4 interface, 127.0.0.1 this machine only")
        ->capture_default_str();
    cmd->add_flag("--legacy-metric-names", args.legacy_metric_names,
                  "Also export the original <host>_writes_total / <host>_write_throughput");
    cmd->add_option("--max-endpoints", args.max_endpoints,
                    "Endpoints with their own metric series; the rest count as (other)")
        ->capture_default_str();
  }
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

std::unique_ptr<Pipeline> Pipeline::open(const PipelineArgs &args, bool with_metrics) {
  std::string error;
  auto p = open_quietly(args, with_metrics, error);
  if (!p) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", error.c_str());
  }
  return p;
}

std::unique_ptr<Pipeline> Pipeline::open_quietly(const PipelineArgs &args, bool with_metrics,
                                                 std::string &error) {
  attribute::Options opt;
  opt.dns_table_capacity = args.dns_table_size;
  for (const auto &text : args.local_nets) {
    auto p = IpPrefix::parse(text);
    if (!p) {
      error = "--local-net '" + text + "' is not a CIDR (e.g. 10.0.0.0/8)";
      return nullptr;
    }
    opt.local_nets.push_back(*p);
  }
  if (!args.ports.empty() && !parse_ports(args.ports, opt.ports, error)) {
    return nullptr;
  }
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->spec_ = args.store;
  p->spool_wait_ = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::min(args.spool_wait_seconds, 1e9) * 1000));
  auto opened = open_store(args.store, args.cassandra);
  if (!opened) {
    error = opened.status().message();
    return nullptr;
  }
  p->store_ = std::move(opened).value();
  if (with_metrics && !args.metrics_listen.empty()) {
    metrics::Options mo;
    mo.listen = args.metrics_listen;
    mo.legacy_names = args.legacy_metric_names;
    mo.max_endpoints = args.max_endpoints;
    std::string merr;
    p->metrics_ = metrics::Metrics::create(mo, merr);
    if (!p->metrics_) {
      std::fprintf(stderr, "traffic-analyzer: %s (going on without /metrics)\n", merr.c_str());
    } else {
      store::Store *s = p->store_.get();
      p->metrics_->set_backend(
          [s](std::vector<store::BackendFamily> &out) { s->backend_metrics(out); });
    }
  }
  metrics::Metrics *m = p->metrics_.get();
  store::Writer::Observer obs;
  if (m != nullptr) {
    obs.written = [m](const store::Batch &b, double secs) { m->on_batch_written(b, secs); };
    obs.failed = [m](const std::string &) { m->on_store_error(); };
  }
  p->writer_ = std::make_unique<store::Writer>(*p->store_, 2, obs);
  store::Writer *w = p->writer_.get();
  p->analyzer_ = std::make_unique<attribute::Analyzer>(opt, [w, m](store::Batch &b) {
    if (m != nullptr) {
      m->on_batch_sealed(b);
    }
    w->submit(b);
  });
  // What DNS taught in earlier runs, and who was local.
  store::Status st;
  attribute::Analyzer &an = *p->analyzer_;
  p->writer_->call([&](store::Store &s) {
    st = s.load_addresses([&](const IpAddress &a, std::string_view name, TimeUs, TimeUs last) {
      an.preload_address(a, name, last);
    });
    if (st) {
      st = s.load_local_hosts([&](const IpAddress &a) { an.preload_local_host(a); });
    }
  });
  if (!st) {
    error = st.message();
    return nullptr;
  }
  return p;
}

Pipeline::~Pipeline() {
  // The analyzer's sink refers to the writer; the writer to the store.
  analyzer_.reset();
  writer_.reset();
}

Pipeline::FileStatus Pipeline::ingest_file(const std::string &path, bool progress,
                                           std::string &message) {
  std::string err;
  auto reader = capture::FileReader::open(path, err);
  if (!reader) {
    message = err;
    return FileStatus::not_capture;
  }
  const auto link = static_cast<decode::LinkType>(reader->link_type());
  if (!decode::is_supported(link)) {
    message = path + ": unsupported link type " + std::to_string(reader->link_type());
    return FileStatus::not_capture;
  }
  const std::string fp = capture::fingerprint_file(path, err);
  if (fp.empty()) {
    message = err;
    return err.empty() ? FileStatus::empty : FileStatus::damaged;
  }
  store::SourceState state;
  store::Status st;
  writer_->call([&](store::Store &s) { st = s.begin_source({fp, path}, state); });
  if (!st) {
    message = st.message();
    return FileStatus::store_failed;
  }
  // A capture seen before is read again from the start (DNS answers and local
  // hosts are learnt from every frame), but only frames past the ledger
  // position produce records: re-reading never counts twice, and an
  // interrupted or grown capture continues where it stopped.
  analyzer_->begin_source(state.id, state.frames_done);
  capture::Frame frame;
  std::uint64_t index = 0;
  auto last_report = std::chrono::steady_clock::now();
  capture::ReadStatus rs = capture::ReadStatus::end;
  bool stopped = false;
  while ((rs = reader->next(frame)) == capture::ReadStatus::frame) {
    analyzer_->on_frame(link, index++, frame.ts_us, frame.data);
    if ((index & 0xFFFFU) == 0) {
      if (writer_->failed()) {
        break;
      }
      if (g_stop.load()) {
        stopped = true;
        break;
      }
      if (progress) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_report > std::chrono::milliseconds(500)) {
          last_report = now;
          std::fprintf(stderr, "\r%s: %llu frames", path.c_str(),
                       static_cast<unsigned long long>(index));
        }
      }
    }
  }
  if (progress) {
    std::fprintf(stderr, "\r\033[K");
  }
  // A damaged file ends here too: nothing more can be read from it now. The
  // ledger keeps its position, so if it grows (it was still being written)
  // the rest is read next time.
  analyzer_->end_source(rs != capture::ReadStatus::frame);
  if (writer_->failed()) {
    message = "store write failed: " + writer_->error();
    return FileStatus::store_failed;
  }
  if (stopped) {
    message = path + ": stopped after frame " + std::to_string(index);
    return FileStatus::stopped;
  }
  if (rs == capture::ReadStatus::error) {
    message = reader->error();
    return FileStatus::damaged;
  }
  return FileStatus::ok;
}

bool Pipeline::begin_live(const std::string &name, std::string &error) {
  // A live capture is its own source: its identity is what was captured,
  // where, and when this run started.
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string fp = fmt::format("live:{}:{}:{}", name, now, getpid());
  store::SourceState state;
  store::Status st;
  writer_->call([&](store::Store &s) { st = s.begin_source({fp, "live:" + name}, state); });
  if (!st) {
    error = st.message();
    return false;
  }
  live_index_ = 0;
  analyzer_->begin_source(state.id, 0);
  return true;
}

void Pipeline::publish() {
  if (metrics_) {
    metrics_->publish(analyzer_->stats(), analyzer_->table().size(),
                      analyzer_->table().stats().evictions);
    metrics_->set_records_pending(writer_->pending_records());
  }
}

bool Pipeline::drain() {
  writer_->drain();
  publish();
  if (writer_->failed()) {
    report_store_failure();
    return false;
  }
  // A backend with a spool (Cassandra) has the records durably; wait for
  // them to reach the database too, so a finished command means stored.
  if (const store::Status st = store_->settle(spool_wait_); !st) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", st.message().c_str());
    return false;
  }
  return true;
}

void Pipeline::report_store_failure() const {
  std::fprintf(stderr, "traffic-analyzer: store write failed: %s\n", writer_->error().c_str());
}

void Pipeline::print_summary(double seconds) const {
  const auto &st = analyzer_->stats();
  std::printf("%-40s %12s %12s  %-27s  %-27s\n", "ENDPOINT", "PACKETS", "BYTES", "FIRST SEEN",
              "LAST SEEN");
  for (const auto &[name, r] : analyzer_->run_summary()) {
    std::printf("%-40s %12llu %12llu  %-27s  %-27s\n", name.empty() ? "(unresolved)" : name.c_str(),
                static_cast<unsigned long long>(r.packets),
                static_cast<unsigned long long>(r.bytes), format_rfc3339_us(r.first_seen).c_str(),
                format_rfc3339_us(r.last_seen).c_str());
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
  std::printf("skipped:%s\n", skipped.empty() ? " none" : skipped.c_str());
  std::printf("dns: %llu responses, %llu answers learnt, table %zu addresses (%llu evicted)%s%s\n",
              static_cast<unsigned long long>(st.dns_responses),
              static_cast<unsigned long long>(st.dns_answers_learnt), analyzer_->table().size(),
              static_cast<unsigned long long>(analyzer_->table().stats().evictions),
              dns_errors.empty() ? "" : ", malformed:", dns_errors.c_str());
}

} // namespace ta::app
