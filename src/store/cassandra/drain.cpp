// store/cassandra/drain: write() into the spool, the drain thread from the
// spool to Cassandra, and settle() at exit.
#include <algorithm>

#include "batch_codec.hpp"
#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {

// ---- write: into the spool -----------------------------------------------------

Status CassandraStore::write(const Batch &batch) {
  if (!spool_) {
    return Status::unsupported("cassandra: opened for queries only");
  }
  for (const PacketRecord &p : batch.packets) {
    if (p.endpoint >= batch.endpoints.size() || !p.dst.valid() ||
        p.direction > Direction::received || p.source >= NameSource::count_ ||
        (p.flow != kNoFlow && p.flow >= batch.flows.size())) {
      return Status::invalid_argument("write: frame " + std::to_string(p.frame) +
                                      " has no valid endpoint, address, direction, source or flow");
    }
  }
  for (const FlowRecord &f : batch.flows) {
    if (f.name >= batch.endpoints.size() || !f.client.valid() || !f.endpoint_address.valid() ||
        f.source >= NameSource::count_) {
      return Status::invalid_argument("write: a flow has no valid name, address or source");
    }
  }
  for (const LearntAddress &l : batch.learnt) {
    if (l.name >= batch.endpoints.size() || !l.address.valid()) {
      return Status::invalid_argument("write: a learnt address has no valid name or address");
    }
  }
  {
    // Backpressure: a full spool holds the pipeline until the drain makes room.
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      return failed_ || stop_ || spool_->depth().bytes < (options_.spool_max_mb << 20U);
    });
    if (failed_) {
      return Status::failure(failure_);
    }
  }
  Status st = spool_->append(batch, now_us());
  cv_.notify_all();
  return st;
}

// ---- drain: from the spool to Cassandra -----------------------------------------

void CassandraStore::set_failed(const std::string &message) {
  {
    const std::lock_guard lock(mu_);
    failed_ = true;
    failure_ = message;
  }
  cv_.notify_all();
}

void CassandraStore::note_down(const ta::Status &s) {
  bool report = false;
  {
    const std::lock_guard lock(mu_);
    report = !down_;
    down_ = true;
    last_error_ = s.message();
    send_failures_ += 1;
  }
  if (report) {
    notice("cassandra: " + s.message() + "; " + std::to_string(spool_->depth().records) +
           " records wait in the spool " + spool_->path() + " and are sent when a node answers");
  }
}

void CassandraStore::drain_loop() {
  Batch batch;
  std::string error;
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    {
      const std::lock_guard lock(mu_);
      if (stop_) {
        return;
      }
    }
    if (Clock::now() - views_at_ > std::chrono::seconds(5)) {
      refresh_views();
    }
    std::optional<SpoolEntry> entry;
    if (Status st = spool_->oldest(entry); !st) {
      set_failed(st.message());
      return;
    }
    if (!entry) {
      // Idle: the statistics stay current (refresh_views() queries every 5 s).
      auto stats = drain_ ? drain_->stats() : std::vector<cql::NodeStats>{};
      std::unique_lock lock(mu_);
      if (drain_) {
        node_stats_ = std::move(stats);
      }
      cv_.wait_for(lock, std::chrono::seconds(1),
                   [&] { return stop_ || spool_->depth().batches > 0; });
      continue;
    }
    if (!decode_batch(entry->payload, batch, error)) {
      notice(spool_->path() + ": " + error + " (set aside in its damaged table)");
      {
        const std::lock_guard lock(mu_);
        damaged_ += 1;
      }
      if (Status st = spool_->quarantine(entry->seq, error); !st) {
        set_failed(st.message());
        return;
      }
      continue;
    }
    ta::Status st =
        drain_ ? send(batch, entry->spooled_us) : ta::Status::unavailable("not connected");
    if (drain_) {
      for (const std::string &w : drain_->take_warnings()) {
        notice("cassandra: " + w); // discovery and events: skipped rows, unknown nodes
      }
      const auto stats = drain_->stats();
      const std::lock_guard lock(mu_);
      node_stats_ = stats;
    }
    if (st) {
      if (Status rs = spool_->remove(entry->seq); !rs) {
        set_failed(rs.message());
        return;
      }
      bool was_down = false;
      {
        const std::lock_guard lock(mu_);
        was_down = down_;
        down_ = false;
        batches_sent_ += 1;
        rows_sent_ += batch.packets.size();
      }
      if (was_down) {
        notice("cassandra: reachable again; sending " + std::to_string(spool_->depth().records) +
               " spooled records");
      }
      backoff = std::chrono::milliseconds(100);
      cv_.notify_all();
      continue;
    }
    if (!cql::is_transient(st)) {
      set_failed("cassandra: " + st.message() + " (" + std::to_string(spool_->depth().records) +
                 " records stay spooled in " + spool_->path() + ")");
      return;
    }
    note_down(st);
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, backoff, [&] { return stop_; });
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
    if (!drain_) {
      ta::Status cs;
      drain_ = cql::Session::connect(cql_options_, cs);
      if (drain_) {
        if (cs = prepare_writes(*drain_); !cs) {
          drain_.reset();
        }
      }
    } else {
      drain_->reconnect();
    }
  }
}

Status CassandraStore::settle(std::chrono::milliseconds timeout) {
  if (!spool_) {
    return Status::success();
  }
  std::unique_lock lock(mu_);
  const bool done =
      cv_.wait_for(lock, timeout, [&] { return failed_ || spool_->depth().batches == 0; });
  if (failed_) {
    return Status::failure(failure_);
  }
  if (!done) {
    const auto depth = spool_->depth();
    return Status::timeout(
        "cassandra: " + std::to_string(depth.records) + " records in " +
        std::to_string(depth.batches) + " batches are still spooled in " + spool_->path() +
        " (last error: " + (last_error_.empty() ? std::string("none") : last_error_) +
        "); they are sent on the next start");
  }
  return Status::success();
}

} // namespace ta::store::detail::cassandra
