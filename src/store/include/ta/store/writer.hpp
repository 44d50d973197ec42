// store/writer: moves batches from the pipeline thread to a backend on a
// thread of its own, so parsing and database work use separate cores.
//
// Contract:
// - submit() hands a full batch over and returns an empty one to refill. At
//   most `depth` batches wait; submit() blocks when they do (backpressure:
//   memory stays bounded whatever the input size).
// - Batches are written in submission order, each with one Store::write().
// - After a failed write the writer stops writing; failed() and error() say
//   why, submit() drops batches (the caller checks failed() and stops), and
//   nothing after the failure is acknowledged in the ledger.
// - call() runs a function on the writer thread after every batch submitted
//   before it, and waits for it: the only way other threads touch the store
//   while the writer runs (SQLite connections stay on one thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ta/store/store.hpp"

namespace ta::store {

struct WriterStats {
  std::uint64_t batches = 0;
  std::uint64_t records = 0;
  std::uint64_t failures = 0;
};

class Writer {
public:
  // Called on the writer thread: after each durable write with the batch and
  // how long the write took (metrics count durable writes here), and once
  // with the message when a write fails.
  struct Observer {
    std::function<void(const Batch &, double seconds)> written;
    std::function<void(const std::string &error)> failed;
  };

  explicit Writer(Store &store, std::size_t depth = 2, Observer observer = {});
  ~Writer();
  Writer(const Writer &) = delete;
  Writer &operator=(const Writer &) = delete;

  // Takes `batch` (left empty and ready for reuse on return).
  void submit(Batch &batch);
  void call(const std::function<void(Store &)> &fn);
  // Waits until everything submitted is written.
  void drain();

  [[nodiscard]] bool failed() const;
  [[nodiscard]] std::string error() const;
  [[nodiscard]] WriterStats stats() const;
  // Records submitted and not yet written (or dropped after a failure).
  [[nodiscard]] std::uint64_t pending_records() const;

private:
  void run();

  Store &store_;
  std::size_t depth_;
  Observer observer_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;  // submitted, waiting
  std::vector<Batch> spare_; // written, cleared, ready for reuse
  std::deque<std::function<void(Store &)>> calls_;
  std::uint64_t submitted_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t pending_records_ = 0;
  bool stop_ = false;
  bool failed_ = false;
  std::string error_;
  WriterStats stats_;
  std::thread thread_;
};

} // namespace ta::store
