// store/spec: the text naming where records go -> which backend, and its
// parsed target. Pure parsing (part of ta_store): nothing is opened here;
// src/app/ hands the result to the backend library it names.
//
//   "none"                                   the null store
//   "sqlite:PATH", or any other text (PATH)  SQLite at PATH
//   "cassandra://[USER@]HOST[:PORT][,HOST[:PORT]]...[/KEYSPACE]"
//       Cassandra; IPv6 literals in brackets (cassandra://[::1]:9042). The
//       password is never part of the spec: the Cassandra options carry it.
//
// Errors are invalid_argument, one line naming the spec. A Cassandra spec's
// message starts with the quoted spec ("'cassandra://...': why (expected
// ...)"), so a caller can say which of its inputs held it; one that carries
// a password has detail() kSpecHasPassword and never echoes the password.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ta/common/status.hpp"

namespace ta::store {

enum class Backend : std::uint8_t { none, sqlite, cassandra };

struct CassandraTarget {
  std::string user;
  std::vector<std::pair<std::string, std::uint16_t>> hosts;
  std::string keyspace = "traffic_analyzer";
};

struct StoreSpec {
  Backend backend = Backend::none;
  std::string sqlite_path;   // Backend::sqlite
  CassandraTarget cassandra; // Backend::cassandra
};

// Status::detail() of a Cassandra spec refused because it holds a password.
inline constexpr std::int32_t kSpecHasPassword = 1;

[[nodiscard]] bool is_cassandra_spec(std::string_view text);
// Any spec.
[[nodiscard]] Result<StoreSpec> parse_store_spec(std::string_view text);
// A cassandra:// spec only (anything else is refused).
[[nodiscard]] Result<CassandraTarget> parse_cassandra_spec(std::string_view text);

} // namespace ta::store
