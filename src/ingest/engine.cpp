#include "ta/ingest/engine.hpp"

#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

#include "ta/capture/capture.hpp"

namespace ta::ingest {

Result<std::unique_ptr<Engine>> Engine::open(std::unique_ptr<store::Store> store,
                                             const Options &options,
                                             const std::function<void(const Status &)> &warning) {
  if (!store) {
    return Status::invalid_argument("no store");
  }
  attribute::Options opt;
  opt.dns_table_capacity = options.dns_table_size;
  opt.local_nets = options.local_nets;
  opt.ports = options.ports;
  opt.naming = options.naming;
  opt.max_flows = options.max_flows;
  opt.local_hosts_capacity = options.max_local_hosts;
  opt.flow_idle_timeout_us = options.flow_idle_timeout_us;
  opt.doh_names = options.doh_names;
  opt.summary_capacity = options.summary_size;
  std::unique_ptr<Engine> e(new Engine());
  e->spool_wait_ = options.spool_wait;
  e->store_ = std::move(store);
  if (options.with_metrics && !options.metrics.listen.empty()) {
    auto opened = metrics::Metrics::open(options.metrics);
    if (!opened) {
      if (warning) {
        warning(opened.status());
      }
    } else {
      e->metrics_ = std::move(opened).value();
      store::Store *s = e->store_.get();
      e->metrics_->set_backend(
          [s](std::vector<store::BackendFamily> &out) { s->backend_metrics(out); });
    }
  }
  metrics::Metrics *m = e->metrics_.get();
  store::Writer::Observer obs;
  if (m != nullptr) {
    obs.written = [m](const store::Batch &b, double secs) { m->on_batch_written(b, secs); };
    obs.failed = [m](const std::string &) { m->on_store_error(); };
  }
  e->writer_ = std::make_unique<store::Writer>(*e->store_, 2, obs);
  store::Writer *w = e->writer_.get();
  e->analyzer_ = std::make_unique<attribute::Analyzer>(
      opt, [w, m, observe = options.batch_observer](store::Batch &b) {
        if (observe) {
          observe(b);
        }
        if (m != nullptr) {
          m->on_batch_sealed(b);
        }
        w->submit(b);
      });
  // What DNS taught in earlier runs, and who was local.
  Status st;
  attribute::Analyzer &an = *e->analyzer_;
  e->writer_->call([&](store::Store &s) {
    st = s.load_addresses([&](const IpAddress &a, std::string_view name, TimeUs, TimeUs last) {
      an.preload_address(a, name, last);
    });
    if (st) {
      st = s.load_local_hosts([&](const IpAddress &a) { an.preload_local_host(a); });
    }
  });
  if (!st) {
    return st;
  }
  return e;
}

Engine::~Engine() {
  // The analyzer's sink refers to the writer; the writer to the store.
  analyzer_.reset();
  writer_.reset();
}

FileResult Engine::ingest_file(const std::string &path, StopToken stop, const Progress &progress,
                               capture::FileOpen how) {
  FileResult result;
  const auto counted_before = analyzer_->stats().outcome(attribute::Outcome::counted);
  auto finish = [&](FileOutcome outcome, Status status) {
    result.outcome = outcome;
    result.status = std::move(status);
    result.counted = analyzer_->stats().outcome(attribute::Outcome::counted) - counted_before;
    return result;
  };
  auto opened = capture::FileReader::open(path, how);
  if (!opened) {
    return finish(FileOutcome::not_capture, opened.status());
  }
  const std::unique_ptr<capture::FileReader> reader = std::move(opened).value();
  const auto link = static_cast<decode::LinkType>(reader->link_type());
  if (!decode::is_supported(link)) {
    return finish(FileOutcome::not_capture,
                  Status::unsupported(path + ": unsupported link type " +
                                      std::to_string(reader->link_type())));
  }
  // The identity comes from the first frame of this one reader: a pipe or a
  // FIFO cannot be opened a second time.
  capture::Frame frame;
  capture::ReadStatus rs = reader->next(frame);
  if (rs == capture::ReadStatus::end) {
    return finish(FileOutcome::empty, Status());
  }
  if (rs == capture::ReadStatus::error) {
    return finish(FileOutcome::damaged, reader->status());
  }
  const std::string fp = capture::fingerprint_first_frame(reader->link_type(), frame);
  store::SourceState state;
  Status st;
  writer_->call([&](store::Store &s) { st = s.begin_source({fp, path}, state); });
  if (st.is_unavailable()) {
    return finish(FileOutcome::deferred, st); // the analyzer has not seen a frame
  }
  if (!st) {
    if (store_failure_.ok()) {
      store_failure_ = st;
    }
    return finish(FileOutcome::store_failed, st);
  }
  // Frames below the ledger position only teach (see the header): re-reading
  // never counts twice, and an interrupted or grown capture continues where
  // it stopped.
  analyzer_->begin_source(state.id, state.frames_done);
  std::uint64_t index = 0;
  auto last_report = std::chrono::steady_clock::now();
  bool stopped = false;
  for (; rs == capture::ReadStatus::frame; rs = reader->next(frame)) {
    analyzer_->on_frame(link, index++, frame.ts_us, frame.data);
    if ((index & 0xFFFFU) == 0) {
      if (writer_->failed()) {
        break;
      }
      if (stop.requested()) {
        stopped = true;
        break;
      }
      if (progress) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_report > std::chrono::milliseconds(500)) {
          last_report = now;
          progress(path, index);
        }
      }
    }
  }
  // A damaged file ends here too: nothing more can be read from it now. The
  // ledger keeps its position, so if it grows (it was still being written)
  // the rest is read next time.
  analyzer_->end_source(rs != capture::ReadStatus::frame);
  if (writer_->failed()) {
    return finish(FileOutcome::store_failed, store_status());
  }
  if (stopped) {
    return finish(FileOutcome::stopped,
                  Status::cancelled(path + ": stopped after frame " + std::to_string(index)));
  }
  if (rs == capture::ReadStatus::error) {
    return finish(FileOutcome::damaged, reader->status());
  }
  return finish(FileOutcome::ok, Status());
}

Status Engine::begin_live(const std::string &name) {
  // A live capture is its own source: its identity is what was captured,
  // where, and when this run started.
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string fp = fmt::format("live:{}:{}:{}", name, now, getpid());
  store::SourceState state;
  Status st;
  writer_->call([&](store::Store &s) { st = s.begin_source({fp, "live:" + name}, state); });
  if (!st) {
    return st;
  }
  live_index_ = 0;
  analyzer_->begin_source(state.id, 0);
  return {};
}

void Engine::publish() {
  if (metrics_) {
    metrics_->publish(analyzer_->stats(), analyzer_->table().size(),
                      analyzer_->table().stats().evictions);
    metrics_->set_records_pending(writer_->pending_records());
  }
}

Status Engine::store_status() const {
  if (writer_->failed()) {
    return Status::io_error("store write failed: " + writer_->error());
  }
  return store_failure_;
}

Status Engine::drain() {
  writer_->drain();
  publish();
  if (writer_->failed()) {
    return store_status();
  }
  // A backend with a spool (Cassandra) has the records durably; wait for
  // them to reach the database too, so a finished command means stored.
  return store_->settle(spool_wait_);
}

} // namespace ta::ingest
