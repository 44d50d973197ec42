// cql/handshake (private): bringing a new connection to the steady state.
//
//   connect (TCP, TLS) -> STARTUP {CQL_VERSION, COMPRESSION?}
//     -> READY, or AUTHENTICATE -> AUTH_RESPONSE (SASL PLAIN)
//        -> AUTH_SUCCESS (AUTH_CHALLENGE: answered again, a few rounds)
//   -> USE <keyspace> when one is configured
//
// All of it blocking on the one socket, until one deadline.
#pragma once

#include <string>
#include <string_view>

#include "ta/cql/types.hpp"

#include "connection.hpp"

namespace ta::cql::detail {

struct StartupSettings {
  bool lz4 = false;
  std::string_view username; // empty: no authentication expected
  std::string_view password;
  Consistency consistency = Consistency::local_quorum; // of the USE query
};

// Resets `c`, connects it to `hp` and runs STARTUP, authentication and, if
// `keyspace` is not empty, USE. On false `error` says why.
bool handshake(Connection &c, const HostPort &hp, TlsContext *tls, const StartupSettings &s,
               std::string_view keyspace, std::size_t max_in_flight, Clock::time_point deadline,
               Error &error);

// "USE <keyspace>"; a keyspace that does not exist yet (invalid) is not an
// error: the caller may be about to create it.
bool use_keyspace(Connection &c, std::string_view keyspace, Consistency consistency,
                  Clock::time_point deadline, Error &error);

} // namespace ta::cql::detail
