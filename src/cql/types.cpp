// Consistency names, server error codes and kinds, Status mapping, cell
// decoders.
#include "ta/cql/types.hpp"

#include <array>
#include <bit>

namespace ta::cql {

namespace {

struct ConsistencyName {
  Consistency c;
  std::string_view name;
};
constexpr std::array<ConsistencyName, 11> kConsistencies{{
    {Consistency::any, "any"},
    {Consistency::one, "one"},
    {Consistency::two, "two"},
    {Consistency::three, "three"},
    {Consistency::quorum, "quorum"},
    {Consistency::all, "all"},
    {Consistency::local_quorum, "local_quorum"},
    {Consistency::each_quorum, "each_quorum"},
    {Consistency::serial, "serial"},
    {Consistency::local_serial, "local_serial"},
    {Consistency::local_one, "local_one"},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x - 'A' + 'a');
    }
    if (x != b[i]) {
      return false;
    }
  }
  return true;
}

template <class T> std::optional<T> get_be(const Cell &c) {
  if (!c || c->size() != sizeof(T)) {
    return std::nullopt;
  }
  std::make_unsigned_t<T> u = 0;
  for (const std::byte b : *c) {
    u = static_cast<std::make_unsigned_t<T>>((u << 8U) | std::to_integer<std::uint8_t>(b));
  }
  return static_cast<T>(u);
}

} // namespace

std::optional<Consistency> parse_consistency(std::string_view text) {
  for (const auto &e : kConsistencies) {
    if (iequals(text, e.name)) {
      return e.c;
    }
  }
  return std::nullopt;
}

std::string_view consistency_name(Consistency c) {
  for (const auto &e : kConsistencies) {
    if (e.c == c) {
      return e.name;
    }
  }
  return "unknown";
}

std::string_view server_error_name(std::int32_t code) {
  switch (static_cast<ServerError>(code)) {
  case ServerError::server_error:
    return "server_error";
  case ServerError::protocol_error:
    return "protocol_error";
  case ServerError::bad_credentials:
    return "bad_credentials";
  case ServerError::unavailable:
    return "unavailable";
  case ServerError::overloaded:
    return "overloaded";
  case ServerError::is_bootstrapping:
    return "is_bootstrapping";
  case ServerError::truncate_error:
    return "truncate_error";
  case ServerError::write_timeout:
    return "write_timeout";
  case ServerError::read_timeout:
    return "read_timeout";
  case ServerError::read_failure:
    return "read_failure";
  case ServerError::function_failure:
    return "function_failure";
  case ServerError::write_failure:
    return "write_failure";
  case ServerError::cdc_write_failure:
    return "cdc_write_failure";
  case ServerError::cas_write_unknown:
    return "cas_write_unknown";
  case ServerError::syntax_error:
    return "syntax_error";
  case ServerError::unauthorized:
    return "unauthorized";
  case ServerError::invalid:
    return "invalid";
  case ServerError::config_error:
    return "config_error";
  case ServerError::already_exists:
    return "already_exists";
  case ServerError::unprepared:
    return "unprepared";
  }
  return "unknown";
}

bool is_retryable(ServerError code) {
  switch (code) {
  case ServerError::unavailable:
  case ServerError::overloaded:
  case ServerError::is_bootstrapping:
  case ServerError::write_timeout:
  case ServerError::read_timeout:
    return true;
  default:
    return false;
  }
}

bool is_transient(ServerError code) {
  switch (code) {
  case ServerError::server_error:
  case ServerError::read_failure:
  case ServerError::write_failure:
    return true;
  default:
    return is_retryable(code);
  }
}

std::string_view error_kind_name(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::none:
    return "none";
  case ErrorKind::connect:
    return "connect";
  case ErrorKind::closed:
    return "closed";
  case ErrorKind::protocol:
    return "protocol";
  case ErrorKind::timeout:
    return "timeout";
  case ErrorKind::server:
    return "server";
  case ErrorKind::auth:
    return "auth";
  case ErrorKind::no_host:
    return "no_host";
  case ErrorKind::bad_request:
    return "bad_request";
  }
  return "unknown";
}

StatusCode status_code(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::none:
    return StatusCode::ok;
  case ErrorKind::connect:
  case ErrorKind::no_host:
    return StatusCode::unavailable;
  case ErrorKind::closed:
    return StatusCode::connection_closed;
  case ErrorKind::protocol:
    return StatusCode::protocol_error;
  case ErrorKind::timeout:
    return StatusCode::timeout;
  case ErrorKind::server:
    return StatusCode::server_error;
  case ErrorKind::auth:
    return StatusCode::unauthenticated;
  case ErrorKind::bad_request:
    return StatusCode::invalid_argument;
  }
  return StatusCode::failed;
}

Status make_status(ErrorKind kind, std::string message, std::int32_t code) {
  if (kind == ErrorKind::none) {
    return {};
  }
  return {status_code(kind), std::move(message), code};
}

bool is_transient(const Status &status) {
  switch (status.code()) {
  case StatusCode::unavailable:
  case StatusCode::connection_closed:
  case StatusCode::timeout:
  case StatusCode::protocol_error:
    return true;
  case StatusCode::server_error:
    return is_transient(static_cast<ServerError>(status.detail()));
  default:
    return false;
  }
}

std::optional<std::int32_t> as_int(const Cell &c) {
  return get_be<std::int32_t>(c);
}

std::optional<std::int64_t> as_bigint(const Cell &c) {
  return get_be<std::int64_t>(c);
}

std::optional<double> as_double(const Cell &c) {
  const auto bits = get_be<std::int64_t>(c);
  if (!bits) {
    return std::nullopt;
  }
  return std::bit_cast<double>(*bits);
}

std::optional<std::string> as_text(const Cell &c) {
  if (!c) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char *>(c->data()), c->size());
}

std::optional<IpAddress> as_inet(const Cell &c) {
  if (!c) {
    return std::nullopt;
  }
  if (c->size() == 4) {
    return IpAddress::v4(c->data());
  }
  if (c->size() == 16) {
    return IpAddress::v6(c->data());
  }
  return std::nullopt;
}

std::optional<bool> as_boolean(const Cell &c) {
  if (!c || c->size() != 1) {
    return std::nullopt;
  }
  return (*c)[0] != std::byte{0};
}

} // namespace ta::cql
