// store/cassandra/cql_errors: what a failure of the CQL client means to the
// store. The client already reports a ta::Status (the CQL error code in
// detail()); the store only words it. Whether a failure is worth waiting out
// is the client's cql::is_transient (the one list of such codes).
#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {

Status cql_failure(const Status &s, std::string message) {
  const StatusCode code = s.ok() ? StatusCode::failed : s.code();
  return {code, std::move(message), s.detail()};
}

Status from_cql(const Status &s, std::string_view doing) {
  return cql_failure(s, "cassandra: " + std::string(doing) + ": " + s.message());
}

Status ledger_failure(const Status &s) {
  if (cql::is_transient(s)) {
    return {StatusCode::unavailable, s.message(), s.detail()};
  }
  return s;
}

} // namespace ta::store::detail::cassandra
