// cql/transport (private): one non-blocking TCP connection, optionally TLS.
//
// TLS runs over memory BIOs: OpenSSL never touches the socket, we move the
// ciphertext with recv/send(MSG_NOSIGNAL) ourselves, so a peer that goes
// away cannot raise SIGPIPE in the host process and the socket stays
// non-blocking after the handshake.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ta/common/byte_cursor.hpp"

using SSL_CTX = struct ssl_ctx_st;
using SSL = struct ssl_st;
using BIO = struct bio_st;

namespace ta::cql::detail {

using Clock = std::chrono::steady_clock;

// An SSL_CTX for clients: TLS_client_method, TLS 1.2 at least, the CA file
// or the system default paths, SSL_VERIFY_PEER when verify. With verify a
// connection checks the chain and that the certificate names the contact
// point (Transport::connect); without, it checks nothing. No client
// certificate is sent.
class TlsContext {
public:
  static std::unique_ptr<TlsContext> create(const std::string &ca_file, bool verify,
                                            std::string &error);
  ~TlsContext();
  TlsContext(const TlsContext &) = delete;
  TlsContext &operator=(const TlsContext &) = delete;
  [[nodiscard]] SSL_CTX *get() const noexcept { return ctx_; }

private:
  explicit TlsContext(SSL_CTX *ctx) : ctx_(ctx) {}
  SSL_CTX *ctx_;
};

enum class Io : std::uint8_t { ok, would_block, closed, error };

class Transport {
public:
  Transport() = default;
  ~Transport() { close(); }
  Transport(const Transport &) = delete;
  Transport &operator=(const Transport &) = delete;

  // Resolves host (getaddrinfo, IPv4 and IPv6), connects to the first
  // address that accepts before the deadline and, with tls, completes the
  // handshake. On failure `error` says why ("connection refused", ...).
  bool connect(const std::string &host, std::uint16_t port, TlsContext *tls,
               Clock::time_point deadline, std::string &error);
  void close() noexcept;
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int fd() const noexcept { return fd_; }

  // Reads what is there, up to dst.size(); n = bytes read. ok with n > 0,
  // would_block, closed (orderly EOF) or error (`error` set).
  Io read(std::span<std::byte> dst, std::size_t &n, std::string &error);
  // Writes a prefix of src; n = bytes of src consumed (TLS: encrypted and
  // queued, maybe not yet on the wire).
  Io write(Bytes src, std::size_t &n, std::string &error);
  // TLS ciphertext still waiting for the socket: poll for POLLOUT.
  [[nodiscard]] bool has_pending_output() const noexcept { return cipher_off_ < cipher_.size(); }
  // Pushes pending ciphertext; false on a socket error.
  bool flush_pending(std::string &error);

private:
  bool handshake(Clock::time_point deadline, std::string &error);
  void drain_wbio();
  Io recv_cipher(std::string &error);

  int fd_ = -1;
  SSL *ssl_ = nullptr;
  BIO *rbio_ = nullptr;           // network -> OpenSSL (owned by ssl_)
  BIO *wbio_ = nullptr;           // OpenSSL -> network (owned by ssl_)
  std::vector<std::byte> cipher_; // ciphertext not yet sent
  std::size_t cipher_off_ = 0;
  std::vector<std::byte> scratch_;
};

} // namespace ta::cql::detail
