#include "ta/store/writer.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace ta::store {

Writer::Writer(Store &store, std::size_t depth, Observer observer)
    : store_(store), depth_(depth == 0 ? 1 : depth), observer_(std::move(observer)),
      thread_([this] { run(); }) {}

Writer::~Writer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Writer::submit(Batch &batch) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return queue_.size() < depth_ || failed_; });
  if (failed_) {
    batch.clear();
    return;
  }
  Batch reuse;
  if (!spare_.empty()) {
    reuse = std::move(spare_.back());
    spare_.pop_back();
  }
  pending_records_ += batch.packets.size();
  queue_.push_back(std::move(batch));
  batch = std::move(reuse);
  batch.clear();
  ++submitted_;
  lock.unlock();
  cv_.notify_all();
}

void Writer::call(const std::function<void(Store &)> &fn) {
  std::unique_lock lock(mu_);
  bool done = false;
  calls_.emplace_back([&fn, &done, this](Store &s) {
    fn(s);
    std::lock_guard inner(mu_);
    done = true;
  });
  cv_.notify_all();
  cv_.wait(lock, [&done] { return done; });
}

void Writer::drain() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = submitted_;
  cv_.wait(lock, [this, target] { return completed_ >= target || failed_; });
}

bool Writer::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

std::string Writer::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

std::uint64_t Writer::pending_records() const {
  std::lock_guard lock(mu_);
  return pending_records_;
}

WriterStats Writer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Writer::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty() || !calls_.empty(); });
    // Batches submitted before a call() run first: calls wait for the queue.
    if (!queue_.empty()) {
      Batch batch = std::move(queue_.front());
      queue_.pop_front();
      const bool skip = failed_;
      lock.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      Status st = skip ? Status::failure("writer stopped") : store_.write(batch);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (st.ok() && observer_.written) {
        observer_.written(batch, secs);
      }
      if (!st.ok() && !skip && observer_.failed) {
        observer_.failed(st.message());
      }
      lock.lock();
      pending_records_ -= std::min<std::uint64_t>(pending_records_, batch.packets.size());
      if (!st.ok() && !failed_) {
        failed_ = true;
        error_ = st.message();
        ++stats_.failures;
      } else if (st.ok()) {
        ++stats_.batches;
        stats_.records += batch.packets.size();
      }
      batch.clear();
      spare_.push_back(std::move(batch));
      ++completed_;
      cv_.notify_all();
      continue;
    }
    if (!calls_.empty()) {
      auto fn = std::move(calls_.front());
      calls_.pop_front();
      lock.unlock();
      fn(store_);
      lock.lock();
      cv_.notify_all();
      continue;
    }
    if (stop_) {
      return;
    }
  }
}

} // namespace ta::store
