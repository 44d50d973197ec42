// store/spec: see spec.hpp for the grammar.
#include "ta/store/spec.hpp"

#include <algorithm>
#include <cctype>

namespace ta::store {
namespace {

constexpr std::string_view kCassandraScheme = "cassandra://";
constexpr std::string_view kSqlitePrefix = "sqlite:";

// CQL's unquoted identifier: a letter, then letters, digits or '_'; 48 at most.
bool valid_keyspace(std::string_view ks) {
  if (ks.empty() || ks.size() > 48 || std::isalpha(static_cast<unsigned char>(ks[0])) == 0) {
    return false;
  }
  return std::all_of(ks.begin(), ks.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

} // namespace

bool is_cassandra_spec(std::string_view text) {
  return text.starts_with(kCassandraScheme);
}

Result<CassandraTarget> parse_cassandra_spec(std::string_view spec) {
  const std::string whole(spec);
  const auto bad = [&](const std::string &why) {
    return Status::invalid_argument("'" + whole + "': " + why +
                                    " (expected cassandra://[USER@]HOST[:PORT][,HOST[:PORT]]..."
                                    "[/KEYSPACE])");
  };
  if (!is_cassandra_spec(spec)) {
    return bad("not a cassandra:// spec");
  }
  spec.remove_prefix(kCassandraScheme.size());
  CassandraTarget target;
  // The keyspace follows the first '/' (none appears in a host list).
  if (const auto slash = spec.find('/'); slash != std::string_view::npos) {
    target.keyspace = std::string(spec.substr(slash + 1));
    spec = spec.substr(0, slash);
    if (!valid_keyspace(target.keyspace)) {
      return bad("keyspace '" + target.keyspace +
                 "' must be 1-48 letters, digits or _, starting with a letter");
    }
    std::transform(target.keyspace.begin(), target.keyspace.end(), target.keyspace.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  if (const auto at = spec.rfind('@'); at != std::string_view::npos) {
    target.user = std::string(spec.substr(0, at));
    spec = spec.substr(at + 1);
    if (target.user.find(':') != std::string::npos) {
      return Status(StatusCode::invalid_argument, "a password does not belong in the store spec",
                    kSpecHasPassword);
    }
    if (target.user.empty()) {
      return bad("empty user name before '@'");
    }
  }
  while (true) {
    const auto comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    std::string host;
    std::string_view port_text;
    if (item.starts_with('[')) {
      const auto close = item.find(']');
      if (close == std::string_view::npos) {
        return bad("unclosed '[' in host");
      }
      host = std::string(item.substr(1, close - 1));
      const std::string_view rest = item.substr(close + 1);
      if (!rest.empty()) {
        if (!rest.starts_with(':')) {
          return bad("junk after ']'");
        }
        port_text = rest.substr(1);
        if (port_text.empty()) {
          return bad("empty port");
        }
      }
    } else {
      const auto colon = item.find(':');
      host = std::string(item.substr(0, colon));
      if (colon != std::string_view::npos) {
        port_text = item.substr(colon + 1);
        if (port_text.empty()) {
          return bad("empty port");
        }
      }
    }
    if (host.empty()) {
      return bad("empty host");
    }
    std::uint32_t port = 9042;
    if (!port_text.empty()) {
      port = 0;
      for (const char c : port_text) {
        if (c < '0' || c > '9' || port > 65535) {
          return bad("bad port '" + std::string(port_text) + "'");
        }
        port = port * 10 + static_cast<std::uint32_t>(c - '0');
      }
      if (port == 0 || port > 65535) {
        return bad("bad port '" + std::string(port_text) + "'");
      }
    }
    target.hosts.emplace_back(host, static_cast<std::uint16_t>(port));
    if (comma == std::string_view::npos) {
      break;
    }
    spec = spec.substr(comma + 1);
  }
  return target;
}

Result<StoreSpec> parse_store_spec(std::string_view text) {
  StoreSpec spec;
  if (text == "none") {
    spec.backend = Backend::none;
    return spec;
  }
  if (is_cassandra_spec(text)) {
    auto target = parse_cassandra_spec(text);
    if (!target) {
      return target.status();
    }
    spec.backend = Backend::cassandra;
    spec.cassandra = std::move(target).value();
    return spec;
  }
  std::string_view path = text;
  if (path.starts_with(kSqlitePrefix)) {
    path.remove_prefix(kSqlitePrefix.size());
  }
  if (path.empty()) {
    return Status::invalid_argument("store '" + std::string(text) + "': empty database path");
  }
  spec.backend = Backend::sqlite;
  spec.sqlite_path = std::string(path);
  return spec;
}

} // namespace ta::store
