// `analyze FILE...`: offline captures -> store, with a per-endpoint summary.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "ta/attribute/analyzer.hpp"
#include "ta/capture/capture.hpp"
#include "ta/common/time.hpp"
#include "ta/store/open.hpp"
#include "ta/store/writer.hpp"

#include "commands.hpp"

namespace ta::app {

void add_analyze(CLI::App &app, AnalyzeArgs &args) {
  auto *cmd = app.add_subcommand("analyze", "Analyze capture files (pcap, pcapng) into the store");
  cmd->add_option("--store", args.store,
                  "Where records go: sqlite:PATH, a bare PATH (SQLite), or none")
      ->capture_default_str();
  cmd->add_option("--local-net", args.local_nets,
                  "CIDR of local hosts (repeatable); default: hosts that received DNS responses");
  cmd->add_option("--ports", args.ports,
                  "Count only these destination ports, e.g. 80,443,8000-8100 (default: all)");
  cmd->add_option("--dns-table-size", args.dns_table_size,
                  "Most addresses the learnt DNS table holds (least recently learnt evicted)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 26U));
  cmd->add_flag("-q,--quiet", args.quiet, "No progress and no summary");
  cmd->add_option("FILE", args.files, "Capture files")->required();
}

namespace {

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

void print_summary(const attribute::Analyzer &analyzer, double seconds) {
  const auto &st = analyzer.stats();
  std::printf("%-40s %12s %12s  %-27s  %-27s\n", "ENDPOINT", "PACKETS", "BYTES", "FIRST SEEN",
              "LAST SEEN");
  for (const auto &[name, r] : analyzer.run_summary()) {
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
              static_cast<unsigned long long>(st.dns_answers_learnt), analyzer.table().size(),
              static_cast<unsigned long long>(analyzer.table().stats().evictions),
              dns_errors.empty() ? "" : ", malformed:", dns_errors.c_str());
}

} // namespace

int run_analyze(const AnalyzeArgs &args) {
  attribute::Options opt;
  opt.dns_table_capacity = args.dns_table_size;
  for (const auto &text : args.local_nets) {
    auto p = IpPrefix::parse(text);
    if (!p) {
      std::fprintf(stderr, "traffic-analyzer: --local-net '%s' is not a CIDR (e.g. 10.0.0.0/8)\n",
                   text.c_str());
      return kExitBadInput;
    }
    opt.local_nets.push_back(*p);
  }
  if (!args.ports.empty()) {
    std::string err;
    if (!parse_ports(args.ports, opt.ports, err)) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
      return kExitBadInput;
    }
  }

  std::string err;
  auto store = store::open_store(args.store, err);
  if (!store) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
    return kExitBadInput;
  }
  store::Writer writer(*store);
  attribute::Analyzer analyzer(opt, [&writer](store::Batch &b) { writer.submit(b); });

  // What DNS taught in earlier runs.
  store::Status st;
  writer.call([&](store::Store &s) {
    st = s.load_addresses([&](const IpAddress &a, std::string_view name, TimeUs, TimeUs last) {
      analyzer.preload_address(a, name, last);
    });
  });
  if (!st) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", st.message.c_str());
    return kExitFailure;
  }

  const bool progress = !args.quiet && isatty(STDERR_FILENO) == 1;
  const auto t0 = std::chrono::steady_clock::now();
  int exit_code = kExitOk;
  for (const auto &path : args.files) {
    auto reader = capture::FileReader::open(path, err);
    if (!reader) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
      exit_code = kExitBadInput;
      continue;
    }
    const auto link = static_cast<decode::LinkType>(reader->link_type());
    if (!decode::is_supported(link)) {
      std::fprintf(stderr, "traffic-analyzer: %s: unsupported link type %u\n", path.c_str(),
                   reader->link_type());
      exit_code = kExitBadInput;
      continue;
    }
    const std::string fp = capture::fingerprint_file(path, err);
    if (fp.empty()) {
      if (!err.empty()) {
        std::fprintf(stderr, "traffic-analyzer: %s\n", err.c_str());
        exit_code = kExitBadInput;
      }
      continue; // no frame at all: nothing to analyze
    }
    store::SourceState state;
    writer.call([&](store::Store &s) { st = s.begin_source({fp, path}, state); });
    if (!st) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", st.message.c_str());
      return kExitFailure;
    }
    // A capture seen before is read again from the start (DNS answers and
    // local hosts are learnt from every frame), but only frames past the
    // ledger position produce records: re-analysis never counts twice, and
    // an interrupted or grown capture continues where it stopped.
    if (!args.quiet && state.frames_done > 0) {
      std::fprintf(stderr,
                   "traffic-analyzer: %s: %llu frames already stored (capture %s); continuing "
                   "after them\n",
                   path.c_str(), static_cast<unsigned long long>(state.frames_done), fp.c_str());
    }
    analyzer.begin_source(state.id, state.frames_done);
    capture::Frame frame;
    std::uint64_t index = 0;
    auto last_report = std::chrono::steady_clock::now();
    capture::ReadStatus rs;
    while ((rs = reader->next(frame)) == capture::ReadStatus::frame) {
      analyzer.on_frame(link, index++, frame.ts_us, frame.data);
      if (progress && (index & 0xFFFFU) == 0) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_report > std::chrono::milliseconds(500)) {
          last_report = now;
          std::fprintf(stderr, "\r%s: %llu frames", path.c_str(),
                       static_cast<unsigned long long>(index));
        }
      }
      if ((index & 0xFFFFU) == 0 && writer.failed()) {
        break;
      }
    }
    if (progress) {
      std::fprintf(stderr, "\r\033[K");
    }
    if (rs == capture::ReadStatus::error) {
      std::fprintf(stderr, "traffic-analyzer: %s\n", reader->error().c_str());
      exit_code = kExitBadInput;
    }
    // A damaged file is complete too: nothing more can be read from it, and
    // the same bytes give the same fingerprint.
    analyzer.end_source(rs != capture::ReadStatus::frame);
    if (writer.failed()) {
      break;
    }
  }
  writer.drain();
  if (writer.failed()) {
    std::fprintf(stderr, "traffic-analyzer: store write failed: %s\n", writer.error().c_str());
    return kExitFailure;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!args.quiet) {
    print_summary(analyzer, secs);
  }
  return exit_code;
}

} // namespace ta::app
