#include "transport.hpp"

#include <netdb.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

namespace ta::cql::detail {

namespace {

std::string ssl_error_text() {
  const unsigned long e = ERR_get_error();
  if (e == 0) {
    return "unknown TLS error";
  }
  std::array<char, 256> buf{};
  ERR_error_string_n(e, buf.data(), buf.size());
  ERR_clear_error();
  return buf.data();
}

int ms_until(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int ms = ms_until(deadline);
    const int rc = ::poll(&p, 1, ms);
    if (rc > 0) {
      return true;
    }
    if (rc == 0 && Clock::now() >= deadline) {
      return false;
    }
    if (rc < 0 && errno != EINTR) {
      return false;
    }
  }
}

} // namespace

std::unique_ptr<TlsContext> TlsContext::create(const std::string &ca_file, bool verify,
                                               std::string &error) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    error = "SSL_CTX_new: " + ssl_error_text();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  const int loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                     : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  if (loaded != 1 && verify) {
    error = "loading CA " + (ca_file.empty() ? std::string("default paths") : ca_file) + ": " +
            ssl_error_text();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return std::unique_ptr<TlsContext>(new TlsContext(ctx));
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

void Transport::close() noexcept {
  if (ssl_ != nullptr) {
    SSL_free(ssl_); // frees both BIOs
    ssl_ = nullptr;
    rbio_ = nullptr;
    wbio_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  cipher_.clear();
  cipher_off_ = 0;
}

bool Transport::connect(const std::string &host, std::uint16_t port, TlsContext *tls,
                        Clock::time_point deadline, std::string &error) {
  close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  addrinfo *res = nullptr;
  const std::string service = std::to_string(port);
  const int gai = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) {
    error = std::string("resolve: ") + ::gai_strerror(gai);
    return false;
  }
  error = "no address";
  for (addrinfo *ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (!wait_for(fd, POLLOUT, deadline)) {
        error = "connect timed out";
        ::close(fd);
        continue;
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
      rc = soerr == 0 ? 0 : -1;
      errno = soerr;
    }
    if (rc != 0) {
      error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    fd_ = fd;
    break;
  }
  ::freeaddrinfo(res);
  if (fd_ < 0) {
    return false;
  }
  if (tls == nullptr) {
    return true;
  }
  ssl_ = SSL_new(tls->get());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    error = "TLS setup: " + ssl_error_text();
    close();
    return false;
  }
  // An empty memory BIO means "retry later", not EOF.
  BIO_set_mem_eof_return(rbio_, -1);
  BIO_set_mem_eof_return(wbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_connect_state(ssl_);
  if (!host.empty() && std::isalpha(static_cast<unsigned char>(host.back())) != 0) {
    SSL_set_tlsext_host_name(ssl_, host.c_str()); // SNI for names, not literals
  }
  // Verifying the chain alone would accept any certificate the CA signed
  // (with the system's CAs: anyone's). The certificate must also name the
  // contact point: SSL_set1_host takes an IP literal as an address to match
  // against the iPAddress entries of subjectAltName, a name as a DNS name.
  if ((SSL_CTX_get_verify_mode(tls->get()) & SSL_VERIFY_PEER) != 0 &&
      SSL_set1_host(ssl_, host.c_str()) != 1) {
    error = "TLS setup: cannot verify host name " + host;
    close();
    return false;
  }
  if (!handshake(deadline, error)) {
    close();
    return false;
  }
  return true;
}

void Transport::drain_wbio() {
  if (cipher_off_ == cipher_.size()) {
    cipher_.clear();
    cipher_off_ = 0;
  }
  const auto pending = BIO_ctrl_pending(wbio_);
  if (pending == 0) {
    return;
  }
  const std::size_t at = cipher_.size();
  cipher_.resize(at + pending);
  const int got = BIO_read(wbio_, cipher_.data() + at, static_cast<int>(pending));
  cipher_.resize(at + static_cast<std::size_t>(std::max(got, 0)));
}

bool Transport::flush_pending(std::string &error) {
  while (cipher_off_ < cipher_.size()) {
    const ssize_t n =
        ::send(fd_, cipher_.data() + cipher_off_, cipher_.size() - cipher_off_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return true;
      }
      if (errno == EINTR) {
        continue;
      }
      error = std::strerror(errno);
      return false;
    }
    cipher_off_ += static_cast<std::size_t>(n);
  }
  cipher_.clear();
  cipher_off_ = 0;
  return true;
}

Io Transport::recv_cipher(std::string &error) {
  if (scratch_.size() < std::size_t{64} * 1024) {
    scratch_.resize(std::size_t{64} * 1024);
  }
  for (;;) {
    const ssize_t n = ::recv(fd_, scratch_.data(), scratch_.size(), 0);
    if (n > 0) {
      BIO_write(rbio_, scratch_.data(), static_cast<int>(n));
      return Io::ok;
    }
    if (n == 0) {
      return Io::closed;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return Io::would_block;
    }
    error = std::strerror(errno);
    return Io::error;
  }
}

bool Transport::handshake(Clock::time_point deadline, std::string &error) {
  for (;;) {
    const int rc = SSL_do_handshake(ssl_);
    drain_wbio();
    while (has_pending_output()) {
      if (!flush_pending(error)) {
        return false;
      }
      if (has_pending_output() && !wait_for(fd_, POLLOUT, deadline)) {
        error = "TLS handshake timed out";
        return false;
      }
    }
    if (rc == 1) {
      return true;
    }
    const int e = SSL_get_error(ssl_, rc);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      error = "TLS handshake: " + ssl_error_text();
      // Why the certificate was refused ("self-signed certificate in
      // certificate chain", "hostname mismatch", ...), not only that it was.
      if (const long v = SSL_get_verify_result(ssl_); v != X509_V_OK) {
        error += std::string(" (") + X509_verify_cert_error_string(v) + ")";
      }
      return false;
    }
    if (e == SSL_ERROR_WANT_READ) {
      const Io io = recv_cipher(error);
      if (io == Io::closed) {
        error = "TLS handshake: connection closed";
        return false;
      }
      if (io == Io::error) {
        return false;
      }
      if (io == Io::would_block && !wait_for(fd_, POLLIN, deadline)) {
        error = "TLS handshake timed out";
        return false;
      }
    }
  }
}

Io Transport::read(std::span<std::byte> dst, std::size_t &n, std::string &error) {
  n = 0;
  if (ssl_ == nullptr) {
    for (;;) {
      const ssize_t got = ::recv(fd_, dst.data(), dst.size(), 0);
      if (got > 0) {
        n = static_cast<std::size_t>(got);
        return Io::ok;
      }
      if (got == 0) {
        return Io::closed;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Io::would_block;
      }
      error = std::strerror(errno);
      return Io::error;
    }
  }
  for (;;) {
    std::size_t got = 0;
    const int rc = SSL_read_ex(ssl_, dst.data(), dst.size(), &got);
    drain_wbio(); // post-handshake messages (key updates) to send
    if (rc == 1) {
      n = got;
      return Io::ok;
    }
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_ZERO_RETURN) {
      return Io::closed;
    }
    if (e != SSL_ERROR_WANT_READ) {
      error = "TLS read: " + ssl_error_text();
      return Io::error;
    }
    const Io io = recv_cipher(error);
    if (io != Io::ok) {
      return io;
    }
  }
}

Io Transport::write(Bytes src, std::size_t &n, std::string &error) {
  n = 0;
  if (ssl_ == nullptr) {
    for (;;) {
      const ssize_t put = ::send(fd_, src.data(), src.size(), MSG_NOSIGNAL);
      if (put >= 0) {
        n = static_cast<std::size_t>(put);
        return Io::ok;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Io::would_block;
      }
      error = std::strerror(errno);
      return Io::error;
    }
  }
  // Encrypt only when the previous ciphertext left, so memory stays bounded.
  if (!flush_pending(error)) {
    return Io::error;
  }
  if (has_pending_output()) {
    return Io::would_block;
  }
  const std::size_t chunk = std::min<std::size_t>(src.size(), std::size_t{256} * 1024);
  std::size_t put = 0;
  const int rc = SSL_write_ex(ssl_, src.data(), chunk, &put);
  drain_wbio();
  if (rc != 1) {
    error = "TLS write: " + ssl_error_text();
    return Io::error;
  }
  n = put;
  if (!flush_pending(error)) {
    return Io::error;
  }
  return Io::ok;
}

} // namespace ta::cql::detail
