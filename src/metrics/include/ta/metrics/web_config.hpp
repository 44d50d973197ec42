// metrics/web_config: who may read /metrics and over what, in the format of
// the Prometheus exporters' `--web.config.file` (README "Securing /metrics"):
//
//   tls_server_config:
//     cert_file: server.crt        # PEM; paths are relative to the file's folder
//     key_file: server.key
//     client_ca_file: ca.crt       # optional: CAs that sign client certificates
//     client_auth_type: RequireAndVerifyClientCert
//   basic_auth_users:
//     prometheus: $2y$10$...       # bcrypt hash of the password
//
// The file is a small strict subset of YAML: block mappings of plain or
// quoted scalars, comments. Anything else (lists, flow style, anchors,
// multi-line scalars), an unknown or repeated key, a missing file or a bad
// value is an error naming the file and line.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "ta/common/status.hpp"

namespace ta::metrics {

// tls_server_config.client_auth_type, with the exporters' names.
enum class ClientAuth : std::uint8_t {
  none,               // NoClientCert (the default)
  request,            // RequestClientCert: asked for, neither required nor verified
  require_any,        // RequireAnyClientCert: required, not verified
  verify_if_given,    // VerifyClientCertIfGiven: optional, verified when sent
  require_and_verify, // RequireAndVerifyClientCert
};

struct WebConfig {
  std::string cert_pem; // non-empty: serve HTTPS
  std::string key_pem;
  std::string client_ca_pem; // trusted CAs of client certificates
  ClientAuth client_auth = ClientAuth::none;
  std::map<std::string, std::string, std::less<>> users; // name -> bcrypt hash; empty: no auth

  [[nodiscard]] bool tls() const { return !cert_pem.empty(); }
};

// Parses `text` (the contents of the file `name`); relative paths in it are
// read from `dir`. Errors are invalid_argument (not_found for an unreadable
// file it names) and read "web config NAME:LINE: what".
[[nodiscard]] Result<WebConfig> parse_web_config(std::string_view text, const std::string &name,
                                                 const std::string &dir);

// Reads and parses the file at `path`, then checks what only the TLS library
// can: that the certificate and key are PEM and belong together, and that
// this build's HTTP server has TLS. The same error wording as above.
[[nodiscard]] Result<WebConfig> load_web_config(const std::string &path);

// True if `password` matches the bcrypt `hash` ($2a$, $2b$ or $2y$).
[[nodiscard]] bool check_password(const std::string &hash, std::string_view password);

} // namespace ta::metrics
