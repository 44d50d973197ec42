#include "handshake.hpp"

namespace ta::cql::detail {

namespace {

// The ERROR answer in `body` as an Error of `kind` (auth for
// bad_credentials), its message after `prefix`.
Error error_from(const Connection &c, Bytes body, ErrorKind kind, std::string_view prefix) {
  ErrorResponse er;
  if (const CodecError e = er.decode(body); e != CodecError::ok) {
    return make_error(ErrorKind::protocol, c.label(),
                      std::string("protocol error: ERROR body: ") + std::string(to_string(e)));
  }
  const bool auth =
      kind == ErrorKind::auth || static_cast<ServerError>(er.code) == ServerError::bad_credentials;
  return make_error(auth ? ErrorKind::auth : kind, c.label(),
                    std::string(prefix) + describe_server_error(er.code, er.message), er.code);
}

bool authenticate(Connection &c, Bytes body, const StartupSettings &s, Clock::time_point deadline,
                  Error &error) {
  AuthenticateResponse a;
  (void)a.decode(body);
  if (s.username.empty()) {
    error = make_error(ErrorKind::auth, c.label(),
                       "server requires authentication (" + a.authenticator +
                           ") but no username is configured");
    return false;
  }
  c.set_compression(s.lz4);
  const auto token = AuthResponseRequest::plain_token(s.username, s.password);
  Opcode op{};
  for (int round = 0;; ++round) {
    if (round > 8) {
      error = make_error(ErrorKind::auth, c.label(), "authentication did not finish");
      return false;
    }
    if (!c.roundtrip(AuthResponseRequest{token}, deadline, op, body, error)) {
      return false;
    }
    if (op == Opcode::auth_success) {
      return true;
    }
    if (op == Opcode::error) {
      error = error_from(c, body, ErrorKind::auth, "authentication failed: ");
      return false;
    }
    if (op != Opcode::auth_challenge) {
      error = make_error(ErrorKind::protocol, c.label(),
                         "protocol error: unexpected " + std::string(opcode_name(op)) +
                             " during authentication");
      return false;
    }
    // SASL PLAIN has no challenge step; answer with the same token.
  }
}

} // namespace

bool handshake(Connection &c, const HostPort &hp, TlsContext *tls, const StartupSettings &s,
               std::string_view keyspace, std::size_t max_in_flight, Clock::time_point deadline,
               Error &error) {
  c.reset(max_in_flight);
  std::string err;
  if (!c.transport().connect(hp.host, hp.port, tls, deadline, err)) {
    error = make_error(ErrorKind::connect, c.label(), "connect failed: " + err);
    return false;
  }
  Opcode op{};
  Bytes body;
  if (!c.roundtrip(StartupRequest{s.lz4}, deadline, op, body, error)) {
    return false;
  }
  if (op == Opcode::authenticate) {
    if (!authenticate(c, body, s, deadline, error)) {
      return false;
    }
  } else if (op == Opcode::error) {
    error = error_from(c, body, ErrorKind::connect, "STARTUP failed: ");
    return false;
  } else if (op != Opcode::ready) {
    error =
        make_error(ErrorKind::protocol, c.label(),
                   "protocol error: unexpected " + std::string(opcode_name(op)) + " after STARTUP");
    return false;
  }
  c.set_compression(s.lz4);
  return keyspace.empty() || use_keyspace(c, keyspace, s.consistency, deadline, error);
}

bool use_keyspace(Connection &c, std::string_view keyspace, Consistency consistency,
                  Clock::time_point deadline, Error &error) {
  Opcode op{};
  Bytes body;
  QueryRequest q;
  const std::string text = "USE " + std::string(keyspace);
  q.query = text;
  q.params.consistency = consistency;
  if (!c.roundtrip(q, deadline, op, body, error)) {
    return false;
  }
  if (op == Opcode::error) {
    ErrorResponse er;
    if (er.decode(body) == CodecError::ok &&
        static_cast<ServerError>(er.code) == ServerError::invalid) {
      return true;
    }
    error = error_from(c, body, ErrorKind::server, text + " failed: ");
    return false;
  }
  return true;
}

} // namespace ta::cql::detail
