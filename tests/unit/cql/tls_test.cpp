// TlsContext (the client SSL_CTX) and Transport's TLS handshake against an
// in-process TLS server on 127.0.0.1. The certificates are throwaway ones
// made here with the openssl command line: a test CA, a server certificate
// it signs for IP 127.0.0.1, one it signs for the name other.test only, and
// a second CA that signs nothing we trust.
#include <poll.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "transport.hpp"

namespace ta::cql::detail {
namespace {

namespace fs = std::filesystem;

struct Certs {
  fs::path dir;
  bool ok = false;
  Certs() = default;
  Certs(Certs &&) = default;
  Certs(const Certs &) = delete;
  Certs &operator=(const Certs &) = delete;
  Certs &operator=(Certs &&) = delete;
  ~Certs() {
    std::error_code ec;
    if (!dir.empty()) {
      fs::remove_all(dir, ec);
    }
  }
};

int sh(const std::string &cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()); // NOLINT(cert-env33-c)
}

bool write_file(const std::string &file, const std::string &text) {
  std::ofstream out(file);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

// Made once per test binary run: CA, server (127.0.0.1), server for
// other.test, and an unrelated CA.
const Certs &certs() {
  static const Certs c = [] {
    Certs out;
    std::array<char, 64> tmpl{};
    const std::string pattern = (fs::temp_directory_path() / "cql-tls-XXXXXX").string();
    std::copy(pattern.begin(), pattern.end(), tmpl.begin());
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return out;
    }
    out.dir = tmpl.data();
    const std::string d = out.dir.string();
    const auto ca = [&](const std::string &name) {
      return sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name +
                " -keyout " + d + "/" + name + ".key -out " + d + "/" + name + ".pem");
    };
    const auto leaf = [&](const std::string &name, const std::string &san) {
      return sh("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + d + "/" +
                name + ".key -out " + d + "/" + name + ".csr") == 0 &&
             write_file(d + "/" + name + ".ext", "subjectAltName=" + san + "\n") &&
             sh("openssl x509 -req -days 2 -in " + d + "/" + name + ".csr -CA " + d +
                "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -extfile " + d + "/" + name +
                ".ext -out " + d + "/" + name + ".pem") == 0;
    };
    out.ok = ca("ca") == 0 && ca("other-ca") == 0 && leaf("server", "IP:127.0.0.1") &&
             leaf("named", "DNS:other.test");
    return out;
  }();
  return c;
}

std::string path(const std::string &name) {
  return (certs().dir / name).string();
}

// Accepts one connection and runs the server side of the TLS handshake with
// `cert`/`key`, then reads until the client closes. handshake_ok says
// whether the server saw the handshake complete.
class TlsServer {
public:
  TlsServer(const std::string &cert, const std::string &key) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()), 1) << cert;
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM), 1) << key;
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof a;
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsServer() {
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  TlsServer(const TlsServer &) = delete;
  TlsServer &operator=(const TlsServer &) = delete;
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Waits for the server thread (the client must have closed first).
  bool handshake_ok() {
    thread_.join();
    return handshake_ok_;
  }

private:
  void serve() {
    // Bounded: a client that never connects leaves after 10 s.
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) {
      return;
    }
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) {
      return;
    }
    SSL *ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) == 1) {
      handshake_ok_ = true;
      std::array<char, 256> buf{};
      while (SSL_read(ssl, buf.data(), static_cast<int>(buf.size())) > 0) {
      }
    }
    SSL_free(ssl);
    ::close(c);
  }
  SSL_CTX *ctx_ = nullptr;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  bool handshake_ok_ = false;
  std::thread thread_;
};

// Connects a Transport to a TlsServer presenting `server` with a context
// trusting `ca`; returns the connect result and leaves the error in `error`.
bool connect_to(const std::string &server, const std::string &ca, bool verify, std::string &error,
                bool &server_saw_handshake, const std::string &host = "127.0.0.1") {
  std::string ctx_error;
  auto ctx = TlsContext::create(path(ca), verify, ctx_error);
  EXPECT_NE(ctx, nullptr) << ctx_error;
  if (!ctx) {
    return false;
  }
  TlsServer srv(path(server + ".pem"), path(server + ".key"));
  Transport t;
  const bool ok =
      t.connect(host, srv.port(), ctx.get(), Clock::now() + std::chrono::seconds(10), error);
  t.close();
  server_saw_handshake = srv.handshake_ok();
  return ok;
}

class TlsTest : public ::testing::Test {
protected:
  void SetUp() override {
    // The test server writes through a plain fd (session tickets after the
    // handshake) to a client that may have closed: EPIPE, not a signal.
    std::signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(certs().ok) << "openssl could not make test certificates";
  }
};

TEST_F(TlsTest, LoadsACaFileAndVerifiesPeers) {
  std::string error;
  auto ctx = TlsContext::create(path("ca.pem"), true, error);
  ASSERT_NE(ctx, nullptr) << error;
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->get()), SSL_VERIFY_PEER);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx->get()), TLS1_2_VERSION);
  // The CA is in the context's store: exactly one certificate, ours.
  X509_STORE *store = SSL_CTX_get_cert_store(ctx->get());
  STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
  ASSERT_EQ(sk_X509_OBJECT_num(objs), 1);
  X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, 0));
  std::array<char, 128> cn{};
  X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn.data(),
                            static_cast<int>(cn.size()));
  EXPECT_STREQ(cn.data(), "ca");
}

TEST_F(TlsTest, MissingOrBadCaFileIsAnErrorNamingIt) {
  std::string error;
  const std::string missing = (certs().dir / "no-such.pem").string();
  EXPECT_EQ(TlsContext::create(missing, true, error), nullptr);
  EXPECT_NE(error.find("loading CA " + missing), std::string::npos) << error;

  const std::string bad = (certs().dir / "garbage.pem").string();
  std::ofstream(bad)
      << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
  error.clear();
  EXPECT_EQ(TlsContext::create(bad, true, error), nullptr);
  EXPECT_NE(error.find("loading CA " + bad), std::string::npos) << error;

  // A private key is not a CA certificate.
  error.clear();
  EXPECT_EQ(TlsContext::create(path("ca.key"), true, error), nullptr);
  EXPECT_NE(error.find("loading CA"), std::string::npos) << error;
}

TEST_F(TlsTest, WithoutVerifyTheCaFileDoesNotMatter) {
  std::string error;
  auto ctx = TlsContext::create((certs().dir / "no-such.pem").string(), false, error);
  ASSERT_NE(ctx, nullptr) << error;
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->get()), SSL_VERIFY_NONE);
}

TEST_F(TlsTest, ConnectsToAServerTheCaSignedForThisAddress) {
  std::string error;
  bool server_ok = false;
  EXPECT_TRUE(connect_to("server", "ca.pem", true, error, server_ok)) << error;
  EXPECT_TRUE(server_ok);
}

TEST_F(TlsTest, RefusesAServerSignedByAnotherCa) {
  std::string error;
  bool server_ok = true;
  EXPECT_FALSE(connect_to("server", "other-ca.pem", true, error, server_ok));
  EXPECT_FALSE(server_ok);
  EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
  EXPECT_NE(error.find("unable to get local issuer certificate"), std::string::npos) << error;
}

TEST_F(TlsTest, RefusesACertificateForAnotherName) {
  // Signed by the trusted CA, but for other.test, not 127.0.0.1.
  std::string error;
  bool server_ok = true;
  EXPECT_FALSE(connect_to("named", "ca.pem", true, error, server_ok));
  EXPECT_FALSE(server_ok);
  EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
  EXPECT_NE(error.find("IP address mismatch"), std::string::npos) << error;
}

TEST_F(TlsTest, RefusesAnAddressCertificateForAName) {
  // The certificate names 127.0.0.1 only; "localhost" resolves there but is
  // not in it.
  std::string error;
  bool server_ok = true;
  EXPECT_FALSE(connect_to("server", "ca.pem", true, error, server_ok, "localhost"));
  EXPECT_FALSE(server_ok);
  EXPECT_NE(error.find("hostname mismatch"), std::string::npos) << error;
}

TEST_F(TlsTest, WithoutVerifyAnyCertificateIsAccepted) {
  std::string error;
  bool server_ok = false;
  EXPECT_TRUE(connect_to("named", "other-ca.pem", false, error, server_ok)) << error;
  EXPECT_TRUE(server_ok);
}

} // namespace
} // namespace ta::cql::detail
