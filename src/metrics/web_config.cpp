// The web config file: a strict reader for the small subset of YAML the
// exporters' web config uses (README "Securing /metrics" says why not a full
// YAML library), its keys and values, and bcrypt password checks.
#include "ta/metrics/web_config.hpp"

#include <crypt.h>

#include <array>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "http.hpp"

namespace ta::metrics {
namespace {

// One "key: value" line of a block mapping. A key with nothing after the
// colon opens a nested mapping (or is null when nothing is nested).
struct Entry {
  int line = 0;
  std::size_t indent = 0;
  std::string key;
  std::optional<std::string> value;
};

class Reader {
public:
  Reader(std::string name, std::string dir) : name_(std::move(name)), dir_(std::move(dir)) {}

  Status error(int line, const std::string &what) const {
    return Status::invalid_argument("web config " + name_ + ":" + std::to_string(line) + ": " +
                                    what);
  }

  // A scalar: plain, 'single' ('' is a quote) or "double" (\" and \\ only).
  Result<std::string> scalar(std::string_view s, int line) const {
    if (s.empty()) {
      return std::string();
    }
    const char q = s.front();
    if (q == '\'' || q == '"') {
      std::string out;
      std::size_t i = 1;
      for (; i < s.size(); ++i) {
        const char c = s[i];
        if (c == q) {
          if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
            out += '\'';
            ++i;
            continue;
          }
          break;
        }
        if (q == '"' && c == '\\') {
          if (i + 1 >= s.size() || (s[i + 1] != '"' && s[i + 1] != '\\')) {
            return error(line, "only \\\" and \\\\ escapes are supported in quoted values");
          }
          out += s[++i];
          continue;
        }
        out += c;
      }
      if (i >= s.size()) {
        return error(line, "unterminated quoted value");
      }
      if (i + 1 != s.size()) {
        return error(line, "text after a quoted value");
      }
      return out;
    }
    if (std::string_view("[]{}&*!|>%@`").find(q) != std::string_view::npos) {
      return error(line, "only plain or quoted values are supported (no lists, flow "
                         "mappings, anchors, tags or block scalars)");
    }
    if (s == "~" || s == "null") {
      return std::string();
    }
    return std::string(s);
  }

  // Every non-blank, non-comment line as an Entry.
  Result<std::vector<Entry>> entries(std::string_view text) const {
    std::vector<Entry> out;
    int line_no = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
      const auto nl = text.find('\n', pos);
      std::string_view line =
          text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      if (line.find('\0') != std::string_view::npos) {
        return error(line_no, "a NUL byte");
      }
      const auto first = line.find_first_not_of(' ');
      if (first == std::string_view::npos || line[first] == '#') {
        continue;
      }
      if (line.substr(0, first).find('\t') != std::string_view::npos || line[first] == '\t') {
        return error(line_no, "a tab in the indentation");
      }
      if (first == 0 && (line == "---" || line.rfind("--- ", 0) == 0)) {
        if (!out.empty()) {
          return error(line_no, "more than one document");
        }
        continue;
      }
      if (line[first] == '-') {
        return error(line_no, "lists are not supported here");
      }
      std::string_view body = line.substr(first);
      // A comment starts at " #" outside quotes.
      char quote = 0;
      for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (quote != 0) {
          if (c == '\\' && quote == '"') {
            ++i;
          } else if (c == quote) {
            quote = 0;
          }
        } else if (c == '\'' || c == '"') {
          if (i == 0 || body[i - 1] == ' ') {
            quote = c;
          }
        } else if (c == '#' && i > 0 && (body[i - 1] == ' ' || body[i - 1] == '\t')) {
          body = body.substr(0, i);
          break;
        }
      }
      while (!body.empty() && (body.back() == ' ' || body.back() == '\t')) {
        body.remove_suffix(1);
      }
      // The key ends at the first ": " (or a final ':') outside quotes.
      std::size_t colon = std::string_view::npos;
      quote = 0;
      for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (quote != 0) {
          quote = c == quote ? 0 : quote;
        } else if ((c == '\'' || c == '"') && i == 0) {
          quote = c;
        } else if (c == ':' && (i + 1 == body.size() || body[i + 1] == ' ')) {
          colon = i;
          break;
        }
      }
      if (colon == std::string_view::npos) {
        return error(line_no, "expected 'key: value'");
      }
      std::string_view key_text = body.substr(0, colon);
      while (!key_text.empty() && key_text.back() == ' ') {
        key_text.remove_suffix(1);
      }
      auto key = scalar(key_text, line_no);
      if (!key) {
        return key.status();
      }
      if (key.value().empty()) {
        return error(line_no, "an empty key");
      }
      Entry e;
      e.line = line_no;
      e.indent = first;
      e.key = std::move(key).value();
      std::string_view rest = body.substr(colon + 1);
      rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
      if (!rest.empty()) {
        auto v = scalar(rest, line_no);
        if (!v) {
          return v.status();
        }
        e.value = std::move(v).value();
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  Result<std::string> read_file(const std::string &path, int line, const char *key) const {
    const std::string full =
        !path.empty() && path.front() != '/' && !dir_.empty() ? dir_ + "/" + path : path;
    std::ifstream in(full, std::ios::binary);
    std::ostringstream buf;
    if (in) {
      buf << in.rdbuf();
    }
    if (!in || buf.str().empty()) {
      return Status::not_found("web config " + name_ + ":" + std::to_string(line) + ": " + key +
                               " " + full + " cannot be read or is empty");
    }
    return buf.str();
  }

private:
  std::string name_;
  std::string dir_;
};

std::optional<ClientAuth> client_auth_named(std::string_view s) {
  static constexpr std::array<std::pair<std::string_view, ClientAuth>, 5> kNames{{
      {"NoClientCert", ClientAuth::none},
      {"RequestClientCert", ClientAuth::request},
      {"RequireAnyClientCert", ClientAuth::require_any},
      {"VerifyClientCertIfGiven", ClientAuth::verify_if_given},
      {"RequireAndVerifyClientCert", ClientAuth::require_and_verify},
  }};
  if (s.empty()) {
    return ClientAuth::none;
  }
  for (const auto &[name, value] : kNames) {
    if (name == s) {
      return value;
    }
  }
  return std::nullopt;
}

bool looks_like_bcrypt(std::string_view h) {
  return h.size() == 60 && h[0] == '$' && h[1] == '2' &&
         (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') && h[3] == '$' && h[6] == '$';
}

} // namespace

Result<WebConfig> parse_web_config(std::string_view text, const std::string &name,
                                   const std::string &dir) {
  const Reader r(name, dir);
  auto parsed = r.entries(text);
  if (!parsed) {
    return parsed.status();
  }
  const std::vector<Entry> &es = parsed.value();
  WebConfig cfg;
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  int cert_line = 0;
  int key_line = 0;
  int ca_line = 0;
  int auth_line = 0;
  int tls_line = 0;
  std::map<std::string, int, std::less<>> seen_top;
  std::map<std::string, int, std::less<>> seen_tls;
  for (std::size_t i = 0; i < es.size();) {
    const Entry &top = es[i];
    if (top.indent != 0) {
      return r.error(top.line, "unexpected indentation");
    }
    if (!seen_top.emplace(top.key, top.line).second) {
      return r.error(top.line, "'" + top.key + "' appears twice");
    }
    // The nested entries: deeper than the top, all at one indentation.
    std::size_t j = i + 1;
    while (j < es.size() && es[j].indent > 0) {
      if (es[j].indent != es[i + 1].indent) {
        return r.error(es[j].line, "inconsistent indentation");
      }
      if (!es[j].value && j + 1 < es.size() && es[j + 1].indent > es[j].indent) {
        return r.error(es[j + 1].line, "too deeply nested");
      }
      ++j;
    }
    if (top.value && !top.value->empty() && j > i + 1) {
      return r.error(es[i + 1].line, "unexpected indentation");
    }
    if (top.value && !top.value->empty()) {
      return r.error(top.line, "'" + top.key + "' must be a mapping");
    }
    if (top.key == "tls_server_config") {
      tls_line = top.line;
      for (std::size_t k = i + 1; k < j; ++k) {
        const Entry &e = es[k];
        if (!seen_tls.emplace(e.key, e.line).second) {
          return r.error(e.line, "'" + e.key + "' appears twice");
        }
        const std::string v = e.value.value_or("");
        if (e.key == "cert_file") {
          cert_file = v;
          cert_line = e.line;
        } else if (e.key == "key_file") {
          key_file = v;
          key_line = e.line;
        } else if (e.key == "client_ca_file") {
          ca_file = v;
          ca_line = e.line;
        } else if (e.key == "client_auth_type") {
          const auto a = client_auth_named(v);
          if (!a) {
            return r.error(e.line, "client_auth_type '" + v +
                                       "' is not NoClientCert, RequestClientCert, "
                                       "RequireAnyClientCert, VerifyClientCertIfGiven or "
                                       "RequireAndVerifyClientCert");
          }
          cfg.client_auth = *a;
          auth_line = e.line;
        } else if (e.key == "min_version" || e.key == "max_version" || e.key == "cipher_suites" ||
                   e.key == "curve_preferences" || e.key == "prefer_server_cipher_suites" ||
                   e.key == "client_allowed_sans" || e.key == "cert" || e.key == "key") {
          return r.error(e.line, "tls_server_config." + e.key +
                                     " is not supported by this server (only cert_file, "
                                     "key_file, client_ca_file, client_auth_type)");
        } else {
          return r.error(e.line, "unknown key tls_server_config." + e.key);
        }
      }
    } else if (top.key == "basic_auth_users") {
      for (std::size_t k = i + 1; k < j; ++k) {
        const Entry &e = es[k];
        if (cfg.users.count(e.key) != 0) {
          return r.error(e.line, "user '" + e.key + "' appears twice");
        }
        if (e.key.find(':') != std::string::npos) {
          return r.error(e.line, "a user name cannot contain ':'");
        }
        if (!e.value || !looks_like_bcrypt(*e.value)) {
          return r.error(e.line, "the password of '" + e.key +
                                     "' is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)");
        }
        cfg.users.emplace(e.key, *e.value);
      }
    } else if (top.key == "http_server_config") {
      return r.error(top.line, "http_server_config is not supported by this server");
    } else {
      return r.error(top.line, "unknown key '" + top.key +
                                   "' (expected tls_server_config or basic_auth_users)");
    }
    i = j;
  }

  if (!cert_file.empty() || !key_file.empty()) {
    if (cert_file.empty()) {
      return r.error(key_line, "key_file without cert_file");
    }
    if (key_file.empty()) {
      return r.error(cert_line, "cert_file without key_file");
    }
    auto cert = r.read_file(cert_file, cert_line, "cert_file");
    if (!cert) {
      return cert.status();
    }
    auto key = r.read_file(key_file, key_line, "key_file");
    if (!key) {
      return key.status();
    }
    cfg.cert_pem = std::move(cert).value();
    cfg.key_pem = std::move(key).value();
  } else if (tls_line != 0 && (!ca_file.empty() || auth_line != 0)) {
    return r.error(tls_line, "tls_server_config needs cert_file and key_file");
  }
  if (!ca_file.empty()) {
    auto ca = r.read_file(ca_file, ca_line, "client_ca_file");
    if (!ca) {
      return ca.status();
    }
    cfg.client_ca_pem = std::move(ca).value();
  }
  const bool verifies = cfg.client_auth == ClientAuth::verify_if_given ||
                        cfg.client_auth == ClientAuth::require_and_verify;
  if (verifies && cfg.client_ca_pem.empty()) {
    return r.error(auth_line, "client_auth_type verifies client certificates: it needs "
                              "client_ca_file");
  }
  if (!cfg.client_ca_pem.empty() && cfg.client_auth == ClientAuth::none) {
    return r.error(ca_line, "client_ca_file without a client_auth_type that uses it");
  }
  return cfg;
}

Result<WebConfig> load_web_config(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::not_found("web config " + path + ": cannot read it");
  }
  // A bounded read: the file is a few lines, and /dev/zero must not hang.
  constexpr std::size_t kMaxBytes = 1U << 20U;
  std::string text(kMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) { // e.g. a directory
    return Status::not_found("web config " + path + ": cannot read it");
  }
  if (text.size() > kMaxBytes) {
    return Status::invalid_argument("web config " + path + ": larger than 1 MiB");
  }
  const auto slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, slash + 1 == 1 ? 1 : slash);
  auto cfg = parse_web_config(text, path, dir);
  if (!cfg) {
    return cfg;
  }
  if (Status st = check_tls(cfg.value()); !st) {
    return Status::invalid_argument("web config " + path + ": " + st.message());
  }
  return cfg;
}

bool check_password(const std::string &hash, std::string_view password) {
  if (!looks_like_bcrypt(hash) || password.find('\0') != std::string_view::npos) {
    return false;
  }
  auto data = std::make_unique<crypt_data>();
  const std::string pw(password);
  const char *out = crypt_r(pw.c_str(), hash.c_str(), data.get());
  if (out == nullptr || out[0] == '*') {
    return false;
  }
  const std::string_view got(out);
  if (got.size() != hash.size()) {
    return false;
  }
  unsigned char diff = 0; // constant time over the hash's length
  for (std::size_t i = 0; i < got.size(); ++i) {
    diff |= static_cast<unsigned char>(got[i] ^ hash[i]);
  }
  return diff == 0;
}

} // namespace ta::metrics
