// ingest/runner: the one ingest loop. A Source feeds an Engine in bounded
// steps; the runner owns the stop token, the flush and publish timers, the
// reaction to a failed store write, and the end-of-run drain. Links what
// engine.hpp links. Never prints: the caller hears of files, notes and the
// run's end through observers and the returned RunResult.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "ta/common/status.hpp"
#include "ta/ingest/engine.hpp"

namespace ta::ingest {

using Clock = std::chrono::steady_clock;

enum class Step : std::uint8_t { more, finished };

// Where frames come from. The caller calls begin() once, before run(); the
// runner then calls step() until it returns finished, fails, the stop token
// is set or the deadline passes, then end() once (also after a failure).
class Source {
public:
  virtual ~Source() = default;
  // Before run() (a live source starts its ledger entry here); a failure
  // means there is nothing to run.
  [[nodiscard]] virtual Status begin(Engine & /*engine*/) { return {}; }
  // Does a bounded amount of work, waiting for input at most until
  // `wake_by`. A failed Result ends the run (RunResult::source); a store
  // failure is seen by the runner through Engine::store_status().
  [[nodiscard]] virtual Result<Step> step(Engine &engine, StopToken stop,
                                          Clock::time_point wake_by) = 0;
  // After each timed flush (live sources: capture counters -> metrics).
  virtual void after_flush(Engine & /*engine*/) {}
  // Once, after the last step: seals what is still open.
  virtual void end(Engine & /*engine*/) {}
};

struct RunOptions {
  // Seal the open batch this often (live sources; files seal their own).
  // Zero: never. Each flush also publishes.
  Clock::duration flush_every{};
  // Publish the pipeline's stats to metrics this often. Zero: only with
  // flushes and at the end.
  Clock::duration publish_every{};
  // Stop stepping at this time (a run of fixed length).
  Clock::time_point deadline = Clock::time_point::max();
  // The caller's own periodic work on the loop's thread (a table on screen,
  // watching a helper process): `tick` is called every `tick_every` (zero:
  // never), `after_flush` after each timed flush.
  Clock::duration tick_every{};
  std::function<void()> tick;
  std::function<void()> after_flush;
  // Longest wait inside one step, so a stop request is seen promptly.
  Clock::duration max_wait = std::chrono::milliseconds(200);
};

struct RunResult {
  // Why the source ended early (ok when it finished, was stopped or ran
  // to the deadline). The end-of-run drain still happened.
  Status source;
  // A store failure while running (a failed write, a ledger entry that could
  // not be started): the run stopped at once; nothing was settled.
  Status store;
  // The end-of-run drain failed (not tried after a store failure).
  Status drain;
  [[nodiscard]] bool ok() const { return source.ok() && store.ok() && drain.ok(); }
};

[[nodiscard]] RunResult run(Engine &engine, Source &source, StopToken stop,
                            const RunOptions &options = {});

} // namespace ta::ingest
