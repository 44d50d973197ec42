// store/sqlite/write: the source ledger and batch writes (one transaction
// per batch; roll-ups from the packet rows actually inserted).
#include <algorithm>
#include <string>

#include "sqlite_store.hpp"

namespace ta::store::detail::sqlite {

// ---- sources ---------------------------------------------------------------

Status SqliteStore::begin_source(const SourceInfo &info, SourceState &state) {
  try {
    const std::lock_guard lock(mu_);
    if (info.fingerprint.empty()) {
      return Status::failure(plain_error("begin_source: empty fingerprint"));
    }
    {
      sqlite3_stmt *s = insert_source_.get();
      ResetOnExit reset(s);
      const TimeUs now = now_us();
      if ((bind_text(s, 1, info.fingerprint) | bind_text(s, 2, info.path) |
           sqlite3_bind_int64(s, 3, now)) != SQLITE_OK ||
          sqlite3_step(s) != SQLITE_DONE) {
        return fail("registering source " + info.fingerprint);
      }
    }
    sqlite3_stmt *s = select_source_.get();
    ResetOnExit reset(s);
    if (bind_text(s, 1, info.fingerprint) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
      return fail("reading source " + info.fingerprint);
    }
    const std::int64_t id = sqlite3_column_int64(s, 0);
    const std::int64_t done = sqlite3_column_int64(s, 1);
    if (id <= 0 || id >= kSourceLimit || done < 0) {
      return Status::failure(
          plain_error("source " + info.fingerprint + " has an out-of-range ledger row (id " +
                      std::to_string(id) + ", frames_done " + std::to_string(done) + ")"));
    }
    state.id = id;
    state.frames_done = static_cast<std::uint64_t>(done);
    state.complete = sqlite3_column_int64(s, 2) != 0;
    return Status::success();
  } catch (...) {
    return Status::failure(plain_error("begin_source: out of memory"));
  }
}

// ---- write -----------------------------------------------------------------

Status SqliteStore::validate(const Batch &batch) {
  if (batch.source_id <= 0 || batch.source_id >= kSourceLimit) {
    return Status::invalid_argument(
        plain_error("write: source id " + std::to_string(batch.source_id) + " out of range"));
  }
  if (batch.frames_through > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return Status::invalid_argument(plain_error(
        "write: frames_through " + std::to_string(batch.frames_through) + " out of range"));
  }
  const std::size_t names = batch.endpoints.size();
  frames_ascending_ = true;
  std::uint64_t previous = 0;
  sent_.clear();
  if (batch.packets.size() > std::numeric_limits<std::uint32_t>::max()) {
    return Status::invalid_argument(plain_error("write: too many packets in one batch"));
  }
  for (std::size_t i = 0; i < batch.packets.size(); ++i) {
    const PacketRecord &p = batch.packets[i];
    if (p.direction == Direction::sent) {
      if (!sent_.empty() && p.frame <= previous) {
        frames_ascending_ = false;
      }
      previous = p.frame;
      sent_.push_back(static_cast<std::uint32_t>(i));
    } else if (p.direction != Direction::received) {
      return Status::invalid_argument(
          plain_error("write: frame " + std::to_string(p.frame) + " has an unknown direction"));
    }
    if (p.source >= NameSource::count_) {
      return Status::invalid_argument(
          plain_error("write: frame " + std::to_string(p.frame) + " has an unknown name source"));
    }
    if (p.flow != kNoFlow && p.flow >= batch.flows.size()) {
      return Status::invalid_argument(plain_error("write: frame " + std::to_string(p.frame) +
                                                  " refers to flow #" + std::to_string(p.flow) +
                                                  " of " + std::to_string(batch.flows.size())));
    }
    if (p.frame >= kFrameLimit) {
      return Status::invalid_argument(plain_error("write: frame " + std::to_string(p.frame) +
                                                  " exceeds the 2^40 frames a source may have"));
    }
    if (p.endpoint >= names) {
      return Status::invalid_argument(
          plain_error("write: frame " + std::to_string(p.frame) + " refers to endpoint #" +
                      std::to_string(p.endpoint) + " of " + std::to_string(names)));
    }
    if (!p.dst.valid()) {
      return Status::invalid_argument(
          plain_error("write: frame " + std::to_string(p.frame) + " has no destination address"));
    }
  }
  for (const FlowRecord &f : batch.flows) {
    if (f.name >= names) {
      return Status::invalid_argument(plain_error("write: flow refers to name #" +
                                                  std::to_string(f.name) + " of " +
                                                  std::to_string(names)));
    }
    if (!f.client.valid() || !f.endpoint_address.valid()) {
      return Status::invalid_argument(plain_error("write: flow without an address"));
    }
    if (f.source >= NameSource::count_) {
      return Status::invalid_argument(plain_error("write: flow with an unknown name source"));
    }
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (f.first_frame > kMax || f.sent_packets > kMax || f.sent_bytes > kMax ||
        f.received_packets > kMax || f.received_bytes > kMax) {
      return Status::invalid_argument(plain_error("write: flow counter out of range"));
    }
  }
  for (const LearntAddress &l : batch.learnt) {
    if (l.name >= names) {
      return Status::invalid_argument(plain_error("write: learnt address refers to name #" +
                                                  std::to_string(l.name) + " of " +
                                                  std::to_string(names)));
    }
    if (!l.address.valid()) {
      return Status::invalid_argument(plain_error("write: learnt address without an address"));
    }
  }
  return Status::success();
}

Status SqliteStore::endpoint_id(std::string_view name, std::int64_t &id) {
  if (const auto it = endpoint_cache_.find(name); it != endpoint_cache_.end()) {
    id = it->second;
    return Status::success();
  }
  {
    sqlite3_stmt *s = select_endpoint_.get();
    ResetOnExit reset(s);
    if (bind_text(s, 1, name) != SQLITE_OK) {
      return fail("looking up endpoint");
    }
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      id = sqlite3_column_int64(s, 0);
    } else if (rc == SQLITE_DONE) {
      id = 0;
    } else {
      return fail("looking up endpoint");
    }
  }
  if (id == 0) {
    sqlite3_stmt *s = insert_endpoint_.get();
    ResetOnExit reset(s);
    if (bind_text(s, 1, name) != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE) {
      return fail("adding endpoint");
    }
    id = sqlite3_last_insert_rowid(db_.get());
  }
  if (endpoint_cache_.size() >= kEndpointCacheMax) {
    endpoint_cache_.clear();
  }
  endpoint_cache_.emplace(std::string(name), id);
  return Status::success();
}

Status SqliteStore::resolve(const Batch &batch, std::uint32_t index, std::int64_t &eid) {
  std::int64_t &cached = batch_endpoint_ids_[index];
  if (cached == 0) {
    if (Status st = endpoint_id(batch.endpoints[index], cached); !st) {
      return st;
    }
  }
  eid = cached;
  return Status::success();
}

int SqliteStore::bind_packet(sqlite3_stmt *s, int first, const Batch &batch, const PacketRecord &p,
                             std::int64_t eid) noexcept {
  const std::int64_t key = (batch.source_id << kFrameBits) | static_cast<std::int64_t>(p.frame);
  return sqlite3_bind_int64(s, first, key) | sqlite3_bind_int64(s, first + 1, eid) |
         bind_address(s, first + 2, p.dst) | sqlite3_bind_int(s, first + 3, p.dst_port) |
         sqlite3_bind_int(s, first + 4, p.protocol) | sqlite3_bind_int64(s, first + 5, p.bytes) |
         sqlite3_bind_int64(s, first + 6, p.ts_us);
}

// Each row on its own: sqlite3_changes() says whether it was new, and only new
// rows are rolled up.
Status SqliteStore::insert_packets_one_by_one(const Batch &batch, std::size_t begin,
                                              std::size_t end) {
  sqlite3_stmt *ins = insert_packet_.get();
  for (std::size_t i = begin; i < end; ++i) {
    const PacketRecord &p = batch.packets[sent_[i]];
    std::int64_t eid = 0;
    if (Status st = resolve(batch, p.endpoint, eid); !st) {
      return st;
    }
    if (bind_packet(ins, 1, batch, p, eid) != SQLITE_OK || !step_done(ins)) {
      return fail("inserting frame " + std::to_string(p.frame));
    }
    if (sqlite3_changes(db_.get()) == 1) { // 0: stored by an earlier write
      rollups_.add(detail::RollupKey{eid, floor_div(p.ts_us, kUsPerSecond), p.dst}, p.bytes,
                   p.ts_us, p.direction, p.source);
    } else {
      not_new(p);
    }
  }
  return Status::success();
}

// Rows known to be new (see write_in_transaction), kRowsPerInsert per
// statement. Every row must be inserted; if one were not, our reasoning
// would be wrong and the roll-ups would count it, so that fails the batch.
Status SqliteStore::insert_packets_in_bulk(const Batch &batch, std::size_t begin, std::size_t end) {
  std::size_t i = begin;
  sqlite3_stmt *bulk = insert_packets_.get();
  while (i < end) {
    const bool full = end - i >= static_cast<std::size_t>(kRowsPerInsert);
    sqlite3_stmt *s = full ? bulk : insert_packet_.get();
    const std::size_t rows = full ? kRowsPerInsert : 1;
    int brc = SQLITE_OK;
    for (std::size_t r = 0; r < rows; ++r) {
      const PacketRecord &p = batch.packets[sent_[i + r]];
      std::int64_t eid = 0;
      if (Status st = resolve(batch, p.endpoint, eid); !st) {
        return st;
      }
      brc |= bind_packet(s, static_cast<int>(r) * kPacketColumns + 1, batch, p, eid);
      rollups_.add(detail::RollupKey{eid, floor_div(p.ts_us, kUsPerSecond), p.dst}, p.bytes,
                   p.ts_us, p.direction, p.source);
    }
    const std::uint64_t first_frame = batch.packets[sent_[i]].frame;
    const std::uint64_t last_frame = batch.packets[sent_[i + rows - 1]].frame;
    if (brc != SQLITE_OK || !step_done(s)) {
      return fail("inserting frames " + std::to_string(first_frame) + ".." +
                  std::to_string(last_frame));
    }
    if (sqlite3_changes(db_.get()) != static_cast<int>(rows)) {
      return Status::failure(plain_error("write: frames " + std::to_string(first_frame) + ".." +
                                         std::to_string(last_frame) +
                                         " were unexpectedly already stored"));
    }
    i += rows;
  }
  return Status::success();
}

void SqliteStore::not_new(const PacketRecord &p) {
  if (p.flow == kNoFlow) {
    return;
  }
  if (flow_loss_.empty()) {
    flow_loss_.resize(flow_count_);
  }
  FlowLoss &l = flow_loss_[p.flow];
  if (p.direction == Direction::received) {
    l.received_packets += 1;
    l.received_bytes += p.bytes;
  } else {
    l.sent_packets += 1;
    l.sent_bytes += p.bytes;
  }
}

// Received packets have no rows: new iff at or past the ledger's position
// before this batch (sqlite_store.hpp).
Status SqliteStore::count_received(const Batch &batch, std::uint64_t frames_done) {
  if (sent_.size() == batch.packets.size()) {
    return Status::success();
  }
  for (const PacketRecord &p : batch.packets) {
    if (p.direction != Direction::received) {
      continue;
    }
    if (p.frame < frames_done) {
      not_new(p);
      continue;
    }
    std::int64_t eid = 0;
    if (Status st = resolve(batch, p.endpoint, eid); !st) {
      return st;
    }
    rollups_.add(detail::RollupKey{eid, floor_div(p.ts_us, kUsPerSecond), p.dst}, p.bytes, p.ts_us,
                 p.direction, p.source);
  }
  return Status::success();
}

Status SqliteStore::upsert_flows(const Batch &batch) {
  sqlite3_stmt *up = upsert_flow_.get();
  const auto less = [](std::uint64_t a, std::uint64_t b) {
    return static_cast<std::int64_t>(a > b ? a - b : 0);
  };
  for (std::size_t i = 0; i < batch.flows.size(); ++i) {
    const FlowRecord &f = batch.flows[i];
    const FlowLoss loss = flow_loss_.empty() ? FlowLoss{} : flow_loss_[i];
    std::int64_t eid = 0;
    if (Status st = resolve(batch, f.name, eid); !st) {
      return st;
    }
    const int brc =
        sqlite3_bind_int64(up, 1, f.origin_source) |
        sqlite3_bind_int64(up, 2, static_cast<std::int64_t>(f.first_frame)) |
        sqlite3_bind_int(up, 3, f.protocol) | bind_address(up, 4, f.client) |
        sqlite3_bind_int(up, 5, f.client_port) | bind_address(up, 6, f.endpoint_address) |
        sqlite3_bind_int(up, 7, f.endpoint_port) | sqlite3_bind_int64(up, 8, eid) |
        sqlite3_bind_int(up, 9, static_cast<int>(f.source)) |
        sqlite3_bind_int64(up, 10, less(f.sent_packets, loss.sent_packets)) |
        sqlite3_bind_int64(up, 11, less(f.sent_bytes, loss.sent_bytes)) |
        sqlite3_bind_int64(up, 12, less(f.received_packets, loss.received_packets)) |
        sqlite3_bind_int64(up, 13, less(f.received_bytes, loss.received_bytes)) |
        sqlite3_bind_int64(up, 14, f.first_seen) | sqlite3_bind_int64(up, 15, f.last_seen) |
        sqlite3_bind_int(up, 16, f.program.empty() ? 0 : f.pid) | bind_text(up, 17, f.program);
    if (brc != SQLITE_OK || !step_done(up)) {
      return fail("recording flow " + std::to_string(f.origin_source) + "/" +
                  std::to_string(f.first_frame));
    }
  }
  return Status::success();
}

// Adds the batch's roll-ups (new packets only) to the stored ones, in key order.
Status SqliteStore::upsert_rollups() {
  rollups_.sort_by_key();
  sqlite3_stmt *up = upsert_rollup_.get();
  for (const detail::Rollup &r : rollups_.entries()) {
    const int brc =
        sqlite3_bind_int64(up, 1, r.key.endpoint_id) | sqlite3_bind_int64(up, 2, r.key.second) |
        bind_address(up, 3, r.key.address) | sqlite3_bind_int64(up, 4, r.packets) |
        sqlite3_bind_int64(up, 5, r.bytes) | sqlite3_bind_int64(up, 6, r.first_us) |
        sqlite3_bind_int64(up, 7, r.last_us) | sqlite3_bind_int64(up, 8, r.received_packets) |
        sqlite3_bind_int64(up, 9, r.received_bytes) | sqlite3_bind_int64(up, 10, r.names[0]) |
        sqlite3_bind_int64(up, 11, r.names[1]) | sqlite3_bind_int64(up, 12, r.names[2]) |
        sqlite3_bind_int64(up, 13, r.names[3]) | sqlite3_bind_int64(up, 14, r.names[4]);
    if (brc != SQLITE_OK || !step_done(up)) {
      return fail("updating roll-ups");
    }
  }
  return Status::success();
}

Status SqliteStore::upsert_learnt(const Batch &batch) {
  sqlite3_stmt *addr = upsert_address_.get();
  for (const LearntAddress &l : batch.learnt) {
    const int brc = bind_address(addr, 1, l.address) | bind_text(addr, 2, batch.endpoints[l.name]) |
                    sqlite3_bind_int64(addr, 3, l.when);
    if (brc != SQLITE_OK || !step_done(addr)) {
      return fail("recording learnt address " + l.address.to_string());
    }
  }
  return Status::success();
}

Status SqliteStore::write_in_transaction(const Batch &batch) {
  sqlite3 *db = db_.get();

  // The ledger's position before this batch: what makes a received packet new.
  std::uint64_t frames_done = 0;
  {
    sqlite3_stmt *s = select_frames_done_.get();
    ResetOnExit reset(s);
    if (sqlite3_bind_int64(s, 1, batch.source_id) != SQLITE_OK) {
      return fail("reading the source ledger");
    }
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      return Status::invalid_argument(
          plain_error("write: unknown source id " + std::to_string(batch.source_id)));
    }
    if (rc != SQLITE_ROW) {
      return fail("reading the source ledger");
    }
    frames_done = static_cast<std::uint64_t>(std::max<std::int64_t>(0, sqlite3_column_int64(s, 0)));
  }

  // The ledger first: an unknown source fails before any work.
  {
    sqlite3_stmt *s = advance_source_.get();
    ResetOnExit reset(s);
    if ((sqlite3_bind_int64(s, 1, batch.source_id) |
         sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(batch.frames_through)) |
         sqlite3_bind_int(s, 3, batch.source_complete ? 1 : 0) |
         sqlite3_bind_int64(s, 4, now_us())) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_DONE) {
      return fail("advancing the source ledger");
    }
    if (sqlite3_changes(db) != 1) {
      return Status::invalid_argument(
          plain_error("write: unknown source id " + std::to_string(batch.source_id)));
    }
  }

  batch_endpoint_ids_.assign(batch.endpoints.size(), 0);
  rollups_.clear();
  flow_loss_.clear();
  flow_count_ = batch.flows.size();

  // Which packets may already be stored? With strictly ascending frames (the
  // normal case) and nothing stored in the batch's key range, none can be:
  // they all go in bulk. After a crash the batch being retried overlaps what
  // is stored: the packets up to the highest stored key go one by one (each
  // tells whether it was new), the rest in bulk. Anything else (unordered or
  // repeated frames) goes one by one.
  const std::size_t n = sent_.size();
  std::size_t bulk_from = n;
  if (frames_ascending_ && n != 0) {
    const std::int64_t key_base = batch.source_id << kFrameBits;
    sqlite3_stmt *s = max_stored_key_.get();
    ResetOnExit reset(s);
    const auto front = static_cast<std::int64_t>(batch.packets[sent_.front()].frame);
    const auto back = static_cast<std::int64_t>(batch.packets[sent_.back()].frame);
    if ((sqlite3_bind_int64(s, 1, key_base | front) | sqlite3_bind_int64(s, 2, key_base | back)) !=
        SQLITE_OK) {
      return fail("checking for stored frames");
    }
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      bulk_from = 0;
    } else if (rc == SQLITE_ROW) {
      const auto stored = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0) - key_base);
      bulk_from =
          static_cast<std::size_t>(std::upper_bound(sent_.begin(), sent_.end(), stored,
                                                    [&batch](std::uint64_t f, std::uint32_t i) {
                                                      return f < batch.packets[i].frame;
                                                    }) -
                                   sent_.begin());
    } else {
      return fail("checking for stored frames");
    }
  }
  if (Status st = insert_packets_one_by_one(batch, 0, bulk_from); !st) {
    return st;
  }
  if (Status st = insert_packets_in_bulk(batch, bulk_from, n); !st) {
    return st;
  }
  if (Status st = count_received(batch, frames_done); !st) {
    return st;
  }
  if (Status st = upsert_flows(batch); !st) {
    return st;
  }

  if (Status st = upsert_rollups(); !st) {
    return st;
  }
  if (Status st = upsert_learnt(batch); !st) {
    return st;
  }
  {
    sqlite3_stmt *lh = insert_local_host_.get();
    const std::int64_t now = now_us();
    for (const IpAddress &a : batch.local_hosts) {
      if ((bind_address(lh, 1, a) | sqlite3_bind_int64(lh, 2, now)) != SQLITE_OK ||
          !step_done(lh)) {
        return fail("recording local host " + a.to_string());
      }
    }
  }
  if (!step_done(commit_.get())) {
    return fail("commit");
  }
  return Status::success();
}

Status SqliteStore::write(const Batch &batch) {
  try {
    const std::lock_guard lock(mu_);
    if (Status st = validate(batch); !st) {
      return st;
    }
    if (!step_done(begin_write_.get())) {
      Status st = fail("begin transaction");
      rollback();
      return st;
    }
    Status st = write_in_transaction(batch);
    if (!st) {
      rollback();
    }
    return st;
  } catch (...) {
    rollback();
    return Status::failure(plain_error("write: out of memory"));
  }
}

} // namespace ta::store::detail::sqlite
