// store/cassandra/cql_errors: the one place that reads the CQL client's
// failure fields (kind, server_code) to decide what a failure means to the
// store: its Status code, and whether the drain waits it out.
#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {
namespace {

StatusCode code_of(const cql::Status &s) {
  switch (s.kind) {
  case cql::ErrorKind::none:
    return StatusCode::ok;
  case cql::ErrorKind::connect:
  case cql::ErrorKind::no_host:
    return StatusCode::unavailable;
  case cql::ErrorKind::closed:
    return StatusCode::connection_closed;
  case cql::ErrorKind::protocol:
    return StatusCode::protocol_error;
  case cql::ErrorKind::timeout:
    return StatusCode::timeout;
  case cql::ErrorKind::server:
    return StatusCode::server_error;
  case cql::ErrorKind::auth:
    return StatusCode::unauthenticated;
  case cql::ErrorKind::bad_request:
    return StatusCode::invalid_argument;
  }
  return StatusCode::failed;
}

} // namespace

Status cql_failure(const cql::Status &s, std::string message) {
  const StatusCode code = code_of(s);
  return {code == StatusCode::ok ? StatusCode::failed : code, std::move(message), s.server_code};
}

Status from_cql(const cql::Status &s, std::string_view doing) {
  return cql_failure(s, "cassandra: " + std::string(doing) + ": " + s.message);
}

// The same list as the CQL client's retry policy: client-side failures of a
// connection, and the server errors of an overloaded or degraded cluster
// (error codes: CQL native protocol v4 specification, section 9).
bool transient(const cql::Status &s) {
  switch (s.kind) {
  case cql::ErrorKind::connect:
  case cql::ErrorKind::closed:
  case cql::ErrorKind::timeout:
  case cql::ErrorKind::no_host:
  case cql::ErrorKind::protocol:
    return true;
  case cql::ErrorKind::server:
    switch (s.server_code) {
    case 0x0000: // server_error
    case 0x1000: // unavailable
    case 0x1001: // overloaded
    case 0x1002: // is_bootstrapping
    case 0x1100: // write_timeout
    case 0x1200: // read_timeout
    case 0x1300: // read_failure
    case 0x1500: // write_failure
      return true;
    default:
      return false;
    }
  default:
    return false;
  }
}

} // namespace ta::store::detail::cassandra
