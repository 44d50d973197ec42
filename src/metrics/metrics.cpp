// Creation and lifetime of the registry: option checks, the HTTP server and
// its shutdown, the throughput tick thread, and the exposition text.
#include "ta/metrics/metrics.hpp"

#include <civetweb.h>

#include <exception>
#include <iterator>
#include <utility>

#include <prometheus/text_serializer.h>

#include "impl.hpp"

namespace ta::metrics {
namespace {

constexpr unsigned kIpv6Feature = 8; // mg_check_feature: IPv6 built in

} // namespace

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

// Stops the HTTP server without civetweb's up-to-2 s wait (see
// poke_listener): poke until the server has stopped.
void Metrics::Impl::stop_exposer() {
  if (!exposer) {
    return;
  }
  std::mutex waker_mu;
  std::condition_variable waker_cv;
  bool stopped = false;
  std::thread waker([&] {
    std::unique_lock lock(waker_mu);
    do {
      poke_listener(*listen, port);
    } while (!waker_cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return stopped; }));
  });
  exposer.reset();
  {
    const std::lock_guard lock(waker_mu);
    stopped = true;
  }
  waker_cv.notify_all();
  waker.join();
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
    if (listen->ipv6 && mg_check_feature(kIpv6Feature) == 0) {
      return Status::unsupported(
          "metrics: cannot listen on " + options.listen +
          ": this build's HTTP server (civetweb) has no IPv6; use an IPv4 address such as "
          "0.0.0.0:" +
          std::to_string(listen->port));
    }
  }

  auto impl = std::make_unique<Impl>(options);
  if (listen) {
    try {
      impl->exposer = std::make_unique<prometheus::Exposer>(listen->with_port(listen->port));
    } catch (const std::exception &) {
      // civetweb only says "null context"; find out why ourselves.
      return diagnose_listen_failure(*listen);
    }
    const std::vector<int> ports = impl->exposer->GetListeningPorts();
    if (ports.empty()) {
      return Status::failure("metrics: the HTTP server listens on no port for " + options.listen);
    }
    impl->listen = listen;
    impl->port = static_cast<std::uint16_t>(ports.front());
    impl->bound = listen->with_port(impl->port);
    impl->exposer->RegisterCollectable(impl->registry);
    impl->exposer->RegisterCollectable(impl->backend);
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
  impl_->stop_exposer();
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
  auto families = impl_->registry->Collect();
  auto backend = impl_->backend->Collect();
  families.insert(families.end(), std::make_move_iterator(backend.begin()),
                  std::make_move_iterator(backend.end()));
  return prometheus::TextSerializer().Serialize(families);
}

} // namespace ta::metrics
