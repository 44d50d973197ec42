#include "ta/ingest/runner.hpp"

#include <algorithm>

namespace ta::ingest {
namespace {

Clock::time_point first_due(Clock::time_point t0, Clock::duration every) {
  return every > Clock::duration::zero() ? t0 + every : Clock::time_point::max();
}

} // namespace

RunResult run(Engine &engine, Source &source, StopToken stop, const RunOptions &options) {
  RunResult result;
  const auto t0 = Clock::now();
  auto next_flush = first_due(t0, options.flush_every);
  auto next_publish = first_due(t0, options.publish_every);
  auto next_tick = options.tick ? first_due(t0, options.tick_every) : Clock::time_point::max();
  while (!stop.requested()) {
    auto now = Clock::now();
    if (now >= options.deadline) {
      break;
    }
    const auto wake_by =
        std::min({next_flush, next_publish, next_tick, options.deadline, now + options.max_wait});
    auto step = source.step(engine, stop, wake_by);
    if (!step) {
      result.source = step.status();
      break;
    }
    now = Clock::now();
    if (now >= next_flush) {
      next_flush = now + options.flush_every;
      engine.flush();
      engine.publish();
      source.after_flush(engine);
      if (options.after_flush) {
        options.after_flush();
      }
    }
    if (now >= next_publish) {
      next_publish = now + options.publish_every;
      engine.publish();
    }
    // A failed write stops everything at once: nothing after it can be
    // acknowledged in the ledger, so reading on would only be read again.
    if (Status st = engine.store_status(); !st) {
      result.store = std::move(st);
      break;
    }
    if (now >= next_tick) {
      next_tick = now + options.tick_every;
      options.tick();
    }
    if (*step == Step::finished) {
      break;
    }
  }
  source.end(engine);
  if (!result.store.ok()) {
    (void)engine.drain(); // the same failure again
    return result;
  }
  result.drain = engine.drain();
  return result;
}

} // namespace ta::ingest
