// store/spool: the Cassandra backend's durable queue and its local ledger
// (private to ta_store_cassandra). One SQLite file per agent:
//
//   meta     owner: keyspace and agent the spool belongs to. A spool is
//            never replayed into another keyspace or under another agent.
//   ledger   fingerprint -> (source id, path, frames_done, complete): how far
//            each capture is accounted for (spooled or stored). The agent's
//            authority for begin_source(); Cassandra's `sources` table is
//            consulted for captures this file does not know.
//   queue    seq (ascending = write order), spooled_us, records, payload (a
//            batch in batch_codec format). A row is deleted only after the
//            batch is acknowledged by Cassandra.
//   damaged  rows whose payload did not decode, kept for inspection.
//
// append() stores a batch and advances the ledger in one fsync'd
// transaction, so after a crash the ledger never claims a frame the queue
// does not hold (or Cassandra did not acknowledge). Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ta/store/store.hpp"

struct sqlite3;

namespace ta::store::detail {

struct SpoolDepth {
  std::uint64_t batches = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
};

struct SpoolEntry {
  std::int64_t seq = 0;
  TimeUs spooled_us = 0;
  std::vector<std::byte> payload;
};

class Spool {
public:
  // Opens or creates the file; refuses one owned by another keyspace/agent.
  // A file owned by another target fails with detail() kSpoolOwnedElsewhere.
  [[nodiscard]] static Result<std::unique_ptr<Spool>> open(const std::string &path,
                                                           const std::string &owner);
  ~Spool();
  Spool(const Spool &) = delete;
  Spool &operator=(const Spool &) = delete;

  [[nodiscard]] const std::string &path() const { return path_; }
  // Closes the spool and removes its files when this open created the file
  // and nothing was ever queued in it: a command that failed before it could
  // spool anything leaves no empty spool behind. Otherwise only closes.
  static void close_discarding_if_new(std::unique_ptr<Spool> spool);

  [[nodiscard]] Status find_source(const std::string &fingerprint, std::optional<SourceState> &out);
  [[nodiscard]] Status max_source_id(std::int64_t &out);
  // Inserts the source, or raises frames_done/complete of an existing one.
  [[nodiscard]] Status put_source(const std::string &fingerprint, const std::string &path,
                                  const SourceState &state);
  [[nodiscard]] Status source_fingerprint(std::int64_t id, std::string &fingerprint,
                                          std::string &path);

  [[nodiscard]] Status append(const Batch &batch, TimeUs now);
  // The oldest queued entry, if any.
  [[nodiscard]] Status oldest(std::optional<SpoolEntry> &out);
  [[nodiscard]] Status remove(std::int64_t seq);
  [[nodiscard]] Status quarantine(std::int64_t seq, const std::string &why);
  [[nodiscard]] SpoolDepth depth() const;

private:
  Spool() = default;
  Status exec(const char *sql);
  Status fail(const std::string &what) const;

  std::string path_;
  bool created_ = false; // the file did not exist before open()
  sqlite3 *db_ = nullptr;
  mutable std::mutex mu_;
  SpoolDepth depth_;
  std::vector<std::byte> scratch_;
};

} // namespace ta::store::detail
