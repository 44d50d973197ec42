// The /metrics server on libmicrohttpd: options, the request handler (basic
// auth, routing), client-certificate policy per TLS session, start and stop.
#include "http.hpp"

#include <microhttpd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <sys/resource.h>

namespace ta::metrics {
namespace {

constexpr const char *kRealm = "traffic-analyzer";
constexpr const char *kContentType = "text/plain; charset=utf-8";

// libmicrohttpd's messages: kept while starting (to explain a failure),
// dropped afterwards (a library does not print).
struct Log {
  std::atomic<bool> capture{true};
  std::mutex mu;
  std::string text;
};

void log_message(void *cls, const char *fmt, va_list ap) {
  auto *log = static_cast<Log *>(cls);
  if (!log->capture.load()) {
    return;
  }
  std::array<char, 512> buf{};
  (void)std::vsnprintf(buf.data(), buf.size(), fmt, ap);
  std::string line(buf.data());
  while (!line.empty() && (line.back() == '\n' || line.back() == '.')) {
    line.pop_back();
  }
  const std::lock_guard lock(log->mu);
  if (!line.empty()) {
    log->text += log->text.empty() ? line : "; " + line;
  }
}

// Remembers credentials bcrypt has already judged (as user + SHA-256 of the
// password), so a scrape every second costs one hash, not one bcrypt run.
class AuthCache {
public:
  std::optional<bool> find(const std::string &key) {
    const std::lock_guard lock(mu_);
    if (good_.count(key) != 0) {
      return true;
    }
    if (bad_.count(key) != 0) {
      return false;
    }
    return std::nullopt;
  }
  void put(const std::string &key, bool ok) {
    const std::lock_guard lock(mu_);
    auto &set = ok ? good_ : bad_;
    if (set.size() >= kMax) {
      set.clear(); // bounded; the next check runs bcrypt again
    }
    set.insert(key);
  }

private:
  static constexpr std::size_t kMax = 256;
  std::mutex mu_;
  std::set<std::string> good_;
  std::set<std::string> bad_;
};

struct ServerContext {
  HttpServer::State *state = nullptr;
  Log log;
  AuthCache auth;
};

bool authorised(ServerContext &ctx, MHD_Connection *c) {
  const WebConfig *web = ctx.state->web.get();
  if (web == nullptr || web->users.empty()) {
    return true;
  }
  char *password = nullptr;
  char *user = MHD_basic_auth_get_username_password(c, &password);
  bool ok = false;
  if (user != nullptr && password != nullptr) {
    const auto it = web->users.find(std::string_view(user));
    if (it != web->users.end()) {
      std::array<unsigned char, 32> digest{};
      const std::size_t n = std::strlen(password);
      (void)gnutls_hash_fast(GNUTLS_DIG_SHA256, password, n, digest.data());
      const std::string key =
          std::string(user) + '\0' +
          std::string(reinterpret_cast<const char *>(digest.data()), digest.size());
      if (const auto known = ctx.auth.find(key)) {
        ok = *known;
      } else {
        ok = check_password(it->second, std::string_view(password, n));
        ctx.auth.put(key, ok);
      }
    }
  }
  MHD_free(user);
  MHD_free(password);
  return ok;
}

// The client-certificate policy, again at request time: the handshake
// already enforced it (see on_connection); this guards against a session
// that somehow skipped it.
bool client_cert_ok(const WebConfig *web, MHD_Connection *c) {
  if (web == nullptr || !web->tls() || web->client_auth == ClientAuth::none ||
      web->client_auth == ClientAuth::request) {
    return true;
  }
  const MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == nullptr || info->tls_session == nullptr) {
    return false;
  }
  auto *session = static_cast<gnutls_session_t>(info->tls_session);
  unsigned n = 0;
  const bool given = gnutls_certificate_get_peers(session, &n) != nullptr && n > 0;
  if (!given) {
    return web->client_auth == ClientAuth::verify_if_given;
  }
  if (web->client_auth == ClientAuth::require_any) {
    return true;
  }
  unsigned status = 0;
  return gnutls_certificate_verify_peers2(session, &status) == 0 && status == 0;
}

MHD_Result respond(MHD_Connection *c, unsigned code, std::string body, bool www_auth = false) {
  MHD_Response *r =
      MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) {
    return MHD_NO;
  }
  (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, kContentType);
  const MHD_Result ret =
      www_auth ? MHD_queue_basic_auth_fail_response(c, kRealm, r) : MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

MHD_Result on_request(void *cls, MHD_Connection *c, const char *url, const char *method,
                      const char * /*version*/, const char * /*upload_data*/,
                      std::size_t *upload_size, void **request_state) {
  static int first_call_marker = 0;
  if (*request_state == nullptr) { // headers only so far: wait for the body
    *request_state = &first_call_marker;
    return MHD_YES;
  }
  if (*upload_size != 0) { // a request body is read and ignored
    *upload_size = 0;
    return MHD_YES;
  }
  auto &ctx = *static_cast<ServerContext *>(cls);
  if (!client_cert_ok(ctx.state->web.get(), c)) {
    return respond(c, MHD_HTTP_FORBIDDEN, "Forbidden\n");
  }
  if (!authorised(ctx, c)) {
    return respond(c, MHD_HTTP_UNAUTHORIZED, "Unauthorized\n", true);
  }
  if (std::strcmp(url, "/metrics") != 0) {
    return respond(c, MHD_HTTP_NOT_FOUND, "Not Found\n");
  }
  if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n");
  }
  return respond(c, MHD_HTTP_OK, ctx.state->render());
}

// Before a TLS handshake: ask for (or require) a client certificate and
// have GnuTLS verify it against client_ca_file during the handshake.
void on_connection(void *cls, MHD_Connection *c, void ** /*socket_context*/,
                   MHD_ConnectionNotificationCode code) {
  const WebConfig *web = static_cast<ServerContext *>(cls)->state->web.get();
  if (code != MHD_CONNECTION_NOTIFY_STARTED || web == nullptr || !web->tls() ||
      web->client_auth == ClientAuth::none) {
    return;
  }
  const MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == nullptr || info->tls_session == nullptr) {
    return;
  }
  auto *session = static_cast<gnutls_session_t>(info->tls_session);
  const bool required = web->client_auth == ClientAuth::require_any ||
                        web->client_auth == ClientAuth::require_and_verify;
  gnutls_certificate_server_set_request(session,
                                        required ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST);
  if (web->client_auth == ClientAuth::require_and_verify ||
      web->client_auth == ClientAuth::verify_if_given) {
    gnutls_session_set_verify_cert(session, nullptr, 0);
  }
}

// At most kMaxConnections, and fewer than the open-file limit allows.
unsigned connection_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    return kMaxConnections;
  }
  const rlim_t spare = rl.rlim_cur > 256 ? rl.rlim_cur - 128 : rl.rlim_cur / 2;
  return static_cast<unsigned>(std::clamp<rlim_t>(spare, 16, kMaxConnections));
}

void add_tls_options(std::vector<MHD_OptionItem> &o, const WebConfig &web) {
  o.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char *>(web.cert_pem.c_str())});
  o.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char *>(web.key_pem.c_str())});
  if (!web.client_ca_pem.empty()) {
    o.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char *>(web.client_ca_pem.c_str())});
  }
}

} // namespace

Status check_tls(const WebConfig &config) {
  if (!config.tls()) {
    return Status::success();
  }
  if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
    return Status::unsupported("this build's HTTP server (libmicrohttpd) has no TLS");
  }
  if (!config.client_ca_pem.empty() &&
      config.client_ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return Status::invalid_argument("client_ca_file holds no PEM certificate");
  }
  // A daemon without a socket or thread sets up the credentials, and fails
  // as a listening one would on a bad certificate, key or pair.
  Log log;
  std::vector<MHD_OptionItem> o;
  add_tls_options(o, config);
  o.push_back({MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&log_message), &log});
  o.push_back({MHD_OPTION_END, 0, nullptr});
  MHD_Daemon *d =
      MHD_start_daemon(MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, nullptr,
                       nullptr, &on_request, nullptr, MHD_OPTION_ARRAY, o.data(), MHD_OPTION_END);
  if (d == nullptr) {
    const std::lock_guard lock(log.mu);
    return Status::invalid_argument("cert_file and key_file are not a usable PEM certificate "
                                    "and its key" +
                                    (log.text.empty() ? "" : " (" + log.text + ")"));
  }
  MHD_stop_daemon(d);
  return Status::success();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ListenAddress &address,
                                                      std::shared_ptr<const WebConfig> web,
                                                      Render render) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->state_.web = std::move(web);
  s->state_.render = std::move(render);
  auto ctx = std::make_unique<ServerContext>();
  ctx->state = &s->state_;

  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const sockaddr *sa = nullptr;
  if (address.ipv6) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(address.port);
    (void)inet_pton(AF_INET6, address.host.c_str(), &v6.sin6_addr);
    sa = reinterpret_cast<const sockaddr *>(&v6);
  } else {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(address.port);
    (void)inet_pton(AF_INET, address.host.c_str(), &v4.sin_addr);
    sa = reinterpret_cast<const sockaddr *>(&v4);
  }
  const WebConfig *w = s->state_.web.get();
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (address.ipv6) {
    flags |= MHD_USE_IPv6;
  }
  if (w != nullptr && w->tls()) {
    flags |= MHD_USE_TLS;
  }
  std::vector<MHD_OptionItem> o;
  o.push_back({MHD_OPTION_SOCK_ADDR, 0, const_cast<sockaddr *>(sa)});
  o.push_back({MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutSeconds, nullptr});
  o.push_back({MHD_OPTION_CONNECTION_LIMIT, connection_limit(), nullptr});
  o.push_back({MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxConnectionsPerIp, nullptr});
  o.push_back({MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&log_message), &ctx->log});
  o.push_back(
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&on_connection), ctx.get()});
  if (w != nullptr && w->tls()) {
    add_tls_options(o, *w);
  }
  o.push_back({MHD_OPTION_END, 0, nullptr});
  s->daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, ctx.get(),
                                MHD_OPTION_ARRAY, o.data(), MHD_OPTION_END);
  if (s->daemon_ == nullptr) {
    Status why = diagnose_listen_failure(address);
    const std::lock_guard lock(ctx->log.mu);
    if (why.is(StatusCode::io_error) && !ctx->log.text.empty()) {
      return Status::io_error(why.message() + " (" + ctx->log.text + ")");
    }
    return why;
  }
  ctx->log.capture = false;
  const MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  s->port_ = info != nullptr ? info->port : address.port;
  s->context_ = std::move(ctx);
  return s;
}

HttpServer::~HttpServer() {
  if (daemon_ != nullptr) {
    MHD_stop_daemon(daemon_);
  }
}

} // namespace ta::metrics
