// Creation and lifetime of the registry: option checks, the HTTP server and
// its shutdown, the throughput tick thread, and the exposition text.
#include "ta/metrics/metrics.hpp"

#include <iterator>
#include <utility>

#include <prometheus/text_serializer.h>

#include "impl.hpp"

namespace ta::metrics {
void Metrics::Impl::tick() {
  const std::lock_guard lock(mu);
  for (Endpoint &e : endpoints) {
    e.throughput->Set(e.meter.tick(alpha, interval_seconds));
  }
  for (Legacy &l : legacies) {
    l.throughput->Set(l.meter.tick(alpha, interval_seconds));
  }
}

void Metrics::Impl::run_ticks() {
  std::unique_lock lock(tick_mu);
  auto next = std::chrono::steady_clock::now() + options.tick;
  while (!tick_cv.wait_until(lock, next, [this] { return stop; })) {
    lock.unlock();
    tick();
    lock.lock();
    next += options.tick;
    if (const auto now = std::chrono::steady_clock::now(); next < now) {
      next = now + options.tick; // after a stall: no burst of catch-up ticks
    }
  }
}

Result<std::unique_ptr<Metrics>> Metrics::open(const Options &options) {
  if (options.tick.count() <= 0) {
    return Status::invalid_argument("metrics: the throughput tick must be positive");
  }
  std::optional<ListenAddress> listen;
  if (!options.listen.empty()) {
    listen = parse_listen(options.listen);
    if (!listen) {
      return Status::invalid_argument("metrics: listen address '" + options.listen +
                                      "' is not ADDR:PORT or [ADDR]:PORT with a numeric "
                                      "address (e.g. 0.0.0.0:9100)");
    }
  }

  auto impl = std::make_unique<Impl>(options);
  if (options.group == Group::domain) {
    auto grouper = domain::Grouper::create();
    if (!grouper) {
      return Status::unsupported("metrics: per-domain series need libpsl's built-in list: " +
                                 grouper.status().message());
    }
    impl->grouper.emplace(std::move(grouper).value());
  }
  if (listen) {
    Impl *raw = impl.get();
    auto server = HttpServer::start(*listen, options.web, [raw] { return raw->render(); });
    if (!server) {
      return server.status();
    }
    impl->server = std::move(server).value();
    impl->bound = listen->with_port(impl->server->port());
  }
  if (options.tick_thread) {
    Impl *raw = impl.get();
    impl->ticker = std::thread([raw] { raw->run_ticks(); });
  }
  return std::unique_ptr<Metrics>(new Metrics(std::move(impl)));
}

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Metrics::~Metrics() {
  {
    const std::lock_guard lock(impl_->tick_mu);
    impl_->stop = true;
  }
  impl_->tick_cv.notify_all();
  if (impl_->ticker.joinable()) {
    impl_->ticker.join();
  }
  impl_->server.reset(); // no scrape runs past here
}

std::string Metrics::bound_address() const {
  return impl_->bound;
}

void Metrics::tick_now() {
  impl_->tick();
}

void Metrics::set_backend(std::function<void(std::vector<store::BackendFamily> &)> fn) {
  impl_->backend->set(std::move(fn));
}

std::string Metrics::render() const {
  return impl_->render();
}

std::string Metrics::Impl::render() const {
  auto families = registry->Collect();
  auto theirs = backend->Collect();
  families.insert(families.end(), std::make_move_iterator(theirs.begin()),
                  std::make_move_iterator(theirs.end()));
  return prometheus::TextSerializer().Serialize(families);
}

} // namespace ta::metrics
