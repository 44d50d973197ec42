// The web config (its YAML subset, its keys, its errors), bcrypt checks, and
// the HTTP server's access rules and routing on 127.0.0.1 and ::1.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ta/metrics/metrics.hpp"
#include "ta/metrics/web_config.hpp"

namespace ta::metrics {
namespace {

// Published bcrypt test vectors (the crypt_blowfish package's own tests).
constexpr const char *kHashUU = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
constexpr const char *kHashUUU = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK";

TEST(WebConfig, CheckPasswordAgreesWithPublishedBcryptVectors) {
  EXPECT_TRUE(check_password(kHashUU, "U*U"));
  EXPECT_TRUE(check_password(kHashUUU, "U*U*"));
  EXPECT_FALSE(check_password(kHashUU, "U*U*"));
  EXPECT_FALSE(check_password(kHashUU, ""));
  EXPECT_FALSE(check_password(kHashUU, std::string("U*U\0x", 5)));
  EXPECT_FALSE(check_password("plain", "plain"));
  // $2b$ and $2y$ are the same algorithm with the same output.
  std::string b = kHashUU;
  b[2] = 'b';
  EXPECT_TRUE(check_password(b, "U*U"));
  b[2] = 'y';
  EXPECT_TRUE(check_password(b, "U*U"));
}

Result<WebConfig> parse(const std::string &text) {
  return parse_web_config(text, "w.yml", "/nonexistent");
}

TEST(WebConfig, ReadsUsersWithCommentsAndQuotes) {
  const auto cfg = parse(std::string("---\n# who may scrape\nbasic_auth_users:\n") +
                         "  prometheus: " + kHashUU + "   # the scraper\n" + "  'a b': \"" +
                         kHashUUU + "\"\n\n  \"c#d\": '" + kHashUU + "'\n");
  ASSERT_TRUE(cfg) << cfg.status().message();
  EXPECT_FALSE(cfg.value().tls());
  ASSERT_EQ(cfg.value().users.size(), 3U);
  EXPECT_EQ(cfg.value().users.at("prometheus"), kHashUU);
  EXPECT_EQ(cfg.value().users.at("a b"), kHashUUU);
  EXPECT_EQ(cfg.value().users.at("c#d"), kHashUU);
  const auto empty = parse("# nothing\n\ntls_server_config:\nbasic_auth_users:\n");
  ASSERT_TRUE(empty) << empty.status().message();
  EXPECT_TRUE(empty.value().users.empty());
  EXPECT_FALSE(empty.value().tls());
}

TEST(WebConfig, RejectsWhatItDoesNotUnderstandWithTheLine) {
  const std::string ok_user = std::string("  u: ") + kHashUU + "\n";
  const std::pair<std::string, std::string> cases[] = {
      {"basic_auth_user:\n" + ok_user, "w.yml:1: unknown key 'basic_auth_user'"},
      {"tls_server_config:\n  cert_fil: a\n", "w.yml:2: unknown key tls_server_config.cert_fil"},
      {"tls_server_config:\n  min_version: TLS13\n",
       "w.yml:2: tls_server_config.min_version is not supported"},
      {"http_server_config:\n  http2: false\n", "w.yml:1: http_server_config is not supported"},
      {"basic_auth_users:\n" + ok_user + ok_user, "w.yml:3: user 'u' appears twice"},
      {"basic_auth_users:\n" + ok_user + "basic_auth_users:\n",
       "w.yml:3: 'basic_auth_users' appears twice"},
      {"basic_auth_users:\n  u: secret\n", "w.yml:2: the password of 'u' is not a bcrypt hash"},
      {"basic_auth_users:\n  u:\n", "w.yml:2: the password of 'u' is not a bcrypt hash"},
      {"basic_auth_users:\n\t" + ok_user, "w.yml:2: a tab in the indentation"},
      {"basic_auth_users:\n  - u\n", "w.yml:2: lists are not supported"},
      {"basic_auth_users: {u: x}\n", "w.yml:1: only plain or quoted values"},
      {"basic_auth_users: x\n", "w.yml:1: 'basic_auth_users' must be a mapping"},
      {"basic_auth_users:\n  u: \"abc\n", "w.yml:2: unterminated quoted value"},
      {"basic_auth_users:\n  u\n", "w.yml:2: expected 'key: value'"},
      {"  basic_auth_users:\n", "w.yml:1: unexpected indentation"},
      {"basic_auth_users:\n" + ok_user + "   v: x\n", "w.yml:3: inconsistent indentation"},
      {"tls_server_config:\n  cert_file: a.crt\n", "w.yml:2: cert_file without key_file"},
      {"tls_server_config:\n  key_file: a.key\n", "w.yml:2: key_file without cert_file"},
      {"tls_server_config:\n  client_auth_type: Always\n",
       "w.yml:2: client_auth_type 'Always' is not"},
      {"tls_server_config:\n  client_auth_type: RequireAnyClientCert\n",
       "w.yml:1: tls_server_config needs cert_file and key_file"},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n",
       "w.yml:2: cert_file /nonexistent/a.crt cannot be read"},
  };
  for (const auto &[text, want] : cases) {
    const auto cfg = parse(text);
    ASSERT_FALSE(cfg) << text;
    const std::string &msg = cfg.status().message();
    EXPECT_EQ(msg.rfind("web config " + want, 0), 0U) << "got: " << msg << "\nwant: " << want;
    EXPECT_EQ(msg.find("--"), std::string::npos) << msg; // no flag names
  }
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "web_test_XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  void write(const std::string &name, const std::string &text) const {
    std::ofstream(path / name, std::ios::binary) << text;
  }
};

TEST(WebConfig, LoadReadsRelativePathsBesideTheFileAndChecksThePair) {
  const TempDir dir;
  dir.write("w.yml", "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n");
  dir.write("c.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
  dir.write("k.pem", "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n");
  const std::string file = (dir.path / "w.yml").string();
  const auto cfg = load_web_config(file);
  ASSERT_FALSE(cfg);
  EXPECT_TRUE(cfg.status().is_invalid_argument());
  EXPECT_EQ(cfg.status().message().rfind("web config " + file +
                                             ": cert_file and key_file are "
                                             "not a usable PEM certificate and its key",
                                         0),
            0U)
      << cfg.status().message();

  const auto missing = load_web_config((dir.path / "nope.yml").string());
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.status().is_not_found()) << missing.status().message();

  const auto dev_zero = load_web_config("/dev/zero"); // bounded read, no hang
  ASSERT_FALSE(dev_zero);
  EXPECT_EQ(dev_zero.status().message(), "web config /dev/zero: larger than 1 MiB");
  const auto folder = load_web_config(dir.path.string());
  ASSERT_FALSE(folder);
  EXPECT_TRUE(folder.status().is_not_found()) << folder.status().message();
}

// A request over TCP to ::1 or 127.0.0.1; the whole response.
std::string request(bool ipv6, std::uint16_t port, const std::string &head) {
  const int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int rc = -1;
  if (ipv6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    sa.sin6_addr = in6addr_loopback;
    rc = connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
  }
  std::string response;
  const std::string req = head + "Host: localhost\r\nConnection: close\r\n\r\n";
  if (rc == 0 && send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
    char buf[4096];
    ssize_t n = 0;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
      response.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return response;
}

std::uint16_t port_of(const std::string &bound) {
  return static_cast<std::uint16_t>(std::stoi(bound.substr(bound.rfind(':') + 1)));
}

std::string status_line(const std::string &response) {
  return response.substr(0, response.find("\r\n"));
}

std::string body_of(const std::string &response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

TEST(WebServer, ServesExactlyTheRenderedTextOverIpv6) {
  Options o;
  o.listen = "[::1]:0";
  o.tick_thread = false;
  auto m = Metrics::open(o);
  ASSERT_TRUE(m) << m.status().message();
  const std::string bound = m.value()->bound_address();
  ASSERT_EQ(bound.rfind("[::1]:", 0), 0U) << bound;
  const std::string r = request(true, port_of(bound), "GET /metrics HTTP/1.1\r\n");
  EXPECT_EQ(status_line(r), "HTTP/1.1 200 OK") << r.substr(0, 300);
  EXPECT_NE(r.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
  EXPECT_EQ(body_of(r), m.value()->render()); // nothing added or lost
  EXPECT_EQ(status_line(request(true, port_of(bound), "GET / HTTP/1.1\r\n")),
            "HTTP/1.1 404 Not Found");
  EXPECT_EQ(status_line(request(true, port_of(bound), "GET /metricsx HTTP/1.1\r\n")),
            "HTTP/1.1 404 Not Found");
  EXPECT_EQ(status_line(request(true, port_of(bound), "POST /metrics HTTP/1.1\r\n")),
            "HTTP/1.1 405 Method Not Allowed");
}

TEST(WebServer, BasicAuthAnswers401WithAChallengeUnlessRight) {
  Options o;
  o.listen = "127.0.0.1:0";
  o.tick_thread = false;
  auto web = std::make_shared<WebConfig>();
  web->users.emplace("prom", kHashUU); // password U*U
  o.web = web;
  auto m = Metrics::open(o);
  ASSERT_TRUE(m) << m.status().message();
  const std::uint16_t port = port_of(m.value()->bound_address());
  // Base64 of prom:U*U, prom:U*U*, other:U*U (computed with base64(1)).
  const std::string right = "Authorization: Basic cHJvbTpVKlU=\r\n";
  const std::string wrong = "Authorization: Basic cHJvbTpVKlUq\r\n";
  const std::string stranger = "Authorization: Basic b3RoZXI6VSpV\r\n";
  for (const std::string &auth : {std::string(), wrong, stranger}) {
    const std::string r = request(false, port, "GET /metrics HTTP/1.1\r\n" + auth);
    EXPECT_EQ(status_line(r), "HTTP/1.1 401 Unauthorized") << auth;
    EXPECT_NE(r.find("WWW-Authenticate: Basic realm=\"traffic-analyzer\""), std::string::npos) << r;
    EXPECT_EQ(r.find("traffic_"), std::string::npos);
  }
  for (int i = 0; i < 2; ++i) { // the second from the cache of checked credentials
    const std::string r = request(false, port, "GET /metrics HTTP/1.1\r\n" + right);
    EXPECT_EQ(status_line(r), "HTTP/1.1 200 OK");
    EXPECT_EQ(body_of(r), m.value()->render());
  }
  EXPECT_EQ(status_line(request(false, port, "GET / HTTP/1.1\r\n")), "HTTP/1.1 401 Unauthorized");
}

} // namespace
} // namespace ta::metrics
