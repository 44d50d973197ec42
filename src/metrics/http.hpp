// metrics/http: the /metrics HTTP(S) server, libmicrohttpd with one epoll
// thread. Idle and slow connections cost a socket and a little memory each,
// never a worker: a connection silent for kConnectionTimeout is closed, and
// connections are bounded in all and per client address (README "Metrics").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ta/common/status.hpp"
#include "ta/metrics/web_config.hpp"

#include "listen.hpp"

struct MHD_Daemon;

namespace ta::metrics {

inline constexpr unsigned kConnectionTimeoutSeconds = 10;
inline constexpr unsigned kMaxConnections = 1024; // at most; fewer under a low fd limit
inline constexpr unsigned kMaxConnectionsPerIp = 64;

// Whether this build's HTTP server can serve HTTPS, and whether `config`'s
// certificate and key are usable (a trial set-up, no socket). Ok without TLS.
[[nodiscard]] Status check_tls(const WebConfig &config);

class HttpServer {
public:
  using Render = std::function<std::string()>;

  // Listens on `address` and serves GET /metrics with `render()`; `web`
  // (may be null) adds TLS and basic auth. Errors as Metrics::open.
  [[nodiscard]] static Result<std::unique_ptr<HttpServer>>
  start(const ListenAddress &address, std::shared_ptr<const WebConfig> web, Render render);
  ~HttpServer(); // stops the thread and closes every connection
  HttpServer(const HttpServer &) = delete;
  HttpServer &operator=(const HttpServer &) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }

  // Not for callers: the request and connection callbacks' view.
  struct State {
    std::shared_ptr<const WebConfig> web;
    Render render;
  };

private:
  HttpServer() = default;
  State state_;
  std::shared_ptr<void> context_; // the callbacks' context; outlives the daemon
  MHD_Daemon *daemon_ = nullptr;
  std::uint16_t port_ = 0;
};

} // namespace ta::metrics
