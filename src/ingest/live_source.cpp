#include <algorithm>
#include <chrono>
#include <utility>

#include "ta/ingest/sources.hpp"

namespace ta::ingest {

Result<std::unique_ptr<capture::LiveCapture>> open_live_capture(const LiveSourceOptions &options) {
  capture::LiveOptions lo;
  lo.interfaces = options.interfaces.empty() ? std::vector<std::string>{"any"} : options.interfaces;
  lo.filter =
      options.filter.empty() ? capture::LiveCapture::default_filter(options.ports) : options.filter;
  lo.snaplen = options.snaplen;
  lo.buffer_bytes = options.buffer_mib * 1024U * 1024U;
  lo.immediate = options.immediate;
  return capture::LiveCapture::open(lo);
}

LiveSource::LiveSource(std::unique_ptr<capture::LiveCapture> capture)
    : capture_(std::move(capture)) {
  for (std::size_t i = 0; i < capture_->interface_count(); ++i) {
    links_.push_back(static_cast<decode::LinkType>(capture_->link_type(i)));
    name_ += (name_.empty() ? "" : "+") + capture_->interface_name(i);
  }
}

Status LiveSource::begin(Engine &engine) {
  return engine.begin_live(name_);
}

Result<Step> LiveSource::step(Engine &engine, StopToken /*stop*/, Clock::time_point wake_by) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wake_by - Clock::now());
  const int n =
      capture_->poll_once(static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000)),
                          [&](std::size_t iface, const capture::Frame &f) {
                            engine.on_live_frame(links_[iface], f.ts_us, f.data);
                          });
  if (n < 0) {
    return Status::io_error(capture_->error());
  }
  return Step::more;
}

void LiveSource::after_flush(Engine &engine) {
  if (auto *m = engine.metrics()) {
    for (const auto &s : capture_->stats()) {
      m->set_capture_stats(s.name, s.received, s.dropped, s.if_dropped);
    }
  }
}

void LiveSource::end(Engine &engine) {
  after_flush(engine);
  engine.end_live();
}

} // namespace ta::ingest
