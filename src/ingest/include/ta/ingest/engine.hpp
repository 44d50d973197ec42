// ingest/engine: what every ingesting command shares: one opened store, its
// writer thread, one analyzer, and (for long-running modes) the metrics
// registry wired to both. Links ta_attribute, ta_capture (capture files),
// ta_store (the Store interface and Writer, never a backend) and
// ta_metrics. Never prints, never reads the environment.
//
// Threads: the calling thread owns the analyzer (ingest_file, live frames,
// flush); the writer thread owns the store; metrics are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ta/attribute/analyzer.hpp"
#include "ta/capture/capture.hpp"
#include "ta/common/address.hpp"
#include "ta/common/status.hpp"
#include "ta/metrics/metrics.hpp"
#include "ta/store/store.hpp"
#include "ta/store/writer.hpp"

namespace ta::ingest {

// A stop request the caller owns (a signal handler sets the flag); long
// loops poll it. A default token never asks to stop.
class StopToken {
public:
  StopToken() = default;
  explicit StopToken(const std::atomic<bool> &flag) : flag_(&flag) {}
  [[nodiscard]] bool requested() const noexcept { return flag_ != nullptr && flag_->load(); }

private:
  const std::atomic<bool> *flag_ = nullptr;
};

struct Options {
  std::vector<IpPrefix> local_nets; // empty: learn local hosts from DNS
  std::vector<std::uint16_t> ports; // empty: every destination port counts
  std::size_t dns_table_size = 1U << 20U;
  std::size_t max_local_hosts = 4096; // learnt local hosts (see attribute::Options)
  // Naming (see attribute::Options).
  attribute::Naming naming = attribute::Naming::flow;
  std::size_t max_flows = 65536;
  TimeUs flow_idle_timeout_us = 300'000'000;
  std::vector<std::string> doh_names; // empty: the built-in list
  std::size_t summary_size = 1000;    // endpoints the run summary keeps (the rest folded)
  // At the end-of-run drain, how long to wait for a backend's spool to reach
  // its database.
  std::chrono::milliseconds spool_wait{600000};
  // Metrics: off unless `with_metrics`; an empty listen address keeps them
  // off too.
  bool with_metrics = false;
  metrics::Options metrics;
  // Sees every sealed batch on the analyzer's thread before metrics and the
  // store do, and may fill in what the analyzer cannot know (the program of
  // a flow). Empty: none.
  std::function<void(store::Batch &)> batch_observer;
};

// How ingesting one capture file ended.
enum class FileOutcome : std::uint8_t {
  ok,
  empty,        // no frame yet
  not_capture,  // not a capture file, or an unsupported link type
  damaged,      // frames up to the damage were ingested
  store_failed, // see Engine::store_status()
  stopped,      // the stop token was set mid-file
  // The store could not start the file's ledger entry now (begin_source
  // said `unavailable`): nothing of the file was read or counted, the
  // engine is not failed, and the same file may be given again later.
  deferred,
};

struct FileResult {
  FileOutcome outcome = FileOutcome::ok;
  Status status;             // what went wrong, for every outcome but ok/empty
  std::uint64_t counted = 0; // records this file added
};

class Engine {
public:
  // Called now and then while a file is read (at most every 500 ms) with the
  // frames read so far.
  using Progress = std::function<void(const std::string &path, std::uint64_t frames)>;

  // Takes the opened store. Reloads what DNS taught in earlier runs and the
  // local hosts; failure when that fails. Metrics that cannot start are no
  // failure: `warning` hears why, and the engine goes on without them.
  [[nodiscard]] static Result<std::unique_ptr<Engine>>
  open(std::unique_ptr<store::Store> store, const Options &options,
       const std::function<void(const Status &)> &warning = {});
  ~Engine();
  Engine(const Engine &) = delete;
  Engine &operator=(const Engine &) = delete;

  // Reads a whole capture file into the store, resuming past its ledger
  // position: a capture seen before is read again from the start (DNS
  // answers and local hosts are learnt from every frame), but only frames
  // past the ledger position produce records.
  // `how` is passed to the capture reader (a directory source asks for a
  // regular file, links refused unless it follows them).
  FileResult ingest_file(const std::string &path, StopToken stop, const Progress &progress = {},
                         capture::FileOpen how = capture::FileOpen::any);

  // A live source: a new ledger entry per run, named "live:<name>".
  [[nodiscard]] Status begin_live(const std::string &name);
  void on_live_frame(decode::LinkType link, TimeUs ts, Bytes frame) noexcept {
    analyzer_->on_frame(link, live_index_++, ts, frame);
  }
  void flush() { analyzer_->flush(); }
  void end_live() { analyzer_->end_source(true); }

  // Pipeline stats -> metrics (from the analyzer's thread).
  void publish();
  // ok, or the first store failure (a failed write, or a ledger entry that
  // could not be started for good); once failed, the engine stays failed.
  // A ledger entry the store cannot start only now is no failure (see
  // FileOutcome::deferred).
  [[nodiscard]] Status store_status() const;
  // Waits until everything submitted is durable, then (a backend with a
  // spool) until it reached its database or the spool wait ran out.
  [[nodiscard]] Status drain();

  [[nodiscard]] attribute::Analyzer &analyzer() { return *analyzer_; }
  [[nodiscard]] const attribute::Analyzer &analyzer() const { return *analyzer_; }
  [[nodiscard]] metrics::Metrics *metrics() { return metrics_.get(); }

private:
  Engine() = default;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<store::Writer> writer_;
  std::unique_ptr<attribute::Analyzer> analyzer_;
  std::uint64_t live_index_ = 0;
  std::chrono::milliseconds spool_wait_{600000};
  Status store_failure_; // a ledger entry that could not be started
};

} // namespace ta::ingest
