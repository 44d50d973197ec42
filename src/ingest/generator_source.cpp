#include <algorithm>
#include <ctime>
#include <thread>

#include "ta/generate/generate.hpp"
#include "ta/ingest/sources.hpp"

namespace ta::ingest {
namespace {

TimeUs wall_now_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimeUs>(ts.tv_sec) * 1'000'000 + static_cast<TimeUs>(ts.tv_nsec / 1000);
}

} // namespace

struct GeneratorSource::Impl {
  GeneratorOptions options;
  generate::Options gopt;
  std::unique_ptr<generate::Generator> generator;
  std::uint64_t seed = 0;
  bool started = false;
  // The schedule: frame k (counted from `schedule_base`) is due at
  // schedule_t0 + k / rate. Behind by more than a second's worth of frames
  // (a stalled terminal, a suspended process), it restarts instead of
  // bursting to catch up.
  Clock::time_point schedule_t0;
  std::uint64_t schedule_base = 0;
  std::uint64_t max_backlog = 1;
  TimeUs last_ts = 0;
};

GeneratorSource::GeneratorSource(const GeneratorOptions &options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->seed = options.seed;
  impl_->max_backlog = static_cast<std::uint64_t>(std::max(1.0, options.rate));
  impl_->gopt.packets = std::uint64_t{1} << 40U; // streams: effectively endless
  impl_->gopt.endpoints = options.endpoints;
  impl_->gopt.seed = options.seed;
  impl_->gopt.packets_per_second = static_cast<std::uint32_t>(std::max(1.0, options.rate));
}

GeneratorSource::~GeneratorSource() = default;

Status GeneratorSource::begin(Engine &engine) {
  return engine.begin_live("demo");
}

Result<Step> GeneratorSource::step(Engine &engine, StopToken /*stop*/, Clock::time_point wake_by) {
  Impl &s = *impl_;
  const double rate = s.options.rate;
  auto now = Clock::now();
  if (!s.started) {
    s.started = true;
    s.schedule_t0 = now;
    s.gopt.start_us = wall_now_us();
    s.generator = std::make_unique<generate::Generator>(s.gopt);
  }
  const double elapsed = std::chrono::duration<double>(now - s.schedule_t0).count();
  auto due = s.schedule_base + static_cast<std::uint64_t>(elapsed * rate);
  if (due > emitted_ + s.max_backlog) {
    s.schedule_base = emitted_;
    s.schedule_t0 = now;
    due = emitted_ + 1;
  }
  while (emitted_ < due) {
    TimeUs gen_ts = 0;
    Bytes frame;
    if (!s.generator->next(gen_ts, frame)) {
      // Not reached in practice (2^40 frames); a fresh capture continues.
      s.gopt.seed = ++s.seed;
      s.gopt.start_us = wall_now_us();
      s.generator = std::make_unique<generate::Generator>(s.gopt);
      continue;
    }
    // The real time of emission, never going backwards.
    s.last_ts = std::max(s.last_ts, wall_now_us());
    engine.on_live_frame(decode::LinkType::ethernet, s.last_ts, frame);
    ++emitted_;
  }
  // Sleep until the next frame is due, or the runner's next timer.
  const auto next_frame =
      s.schedule_t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                          static_cast<double>(emitted_ + 1 - s.schedule_base) / rate));
  const auto wake = std::min(next_frame, wake_by);
  now = Clock::now();
  if (wake > now) {
    std::this_thread::sleep_for(wake - now);
  }
  return Step::more;
}

void GeneratorSource::end(Engine &engine) {
  engine.end_live();
}

} // namespace ta::ingest
