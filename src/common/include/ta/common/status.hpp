// common/status: the one error convention of every library in this tree.
//
// A Status is ok, or a code from one closed enum plus a one-line message
// that names what failed (a path, a host, a key) and never a command-line
// flag: turning a Status into what a user reads, and into an exit status, is
// the command line's job (src/app/). A Result<T> is a value or a failed
// Status. Neither throws, and neither is meant for the per-packet path, where
// failures are counted under the closed per-stage enums instead (decode, dns).
//
// `detail` carries a protocol's own numeric code where a caller must branch
// on it (the CQL server error code, 0x1100 write_timeout, ...); 0 otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ta {

// Stable snake_case names (status_code_name); append only.
enum class StatusCode : std::uint8_t {
  ok,
  invalid_argument,  // the caller's input is malformed (a spec, a value, a file's content)
  not_found,         // a path, a table, a name that is not there
  permission_denied, // the OS or a server refused access
  io_error,          // read, write, open or sync failed
  corrupt,           // stored data cannot be decoded (a damaged file or entry)
  unsupported,       // well-formed but not something this build handles
  unavailable,       // no peer reachable now; retrying later may succeed
  timeout,           // a bounded wait ran out
  connection_closed, // the peer closed a connection
  protocol_error,    // a peer sent what the protocol does not allow
  server_error,      // a peer answered with an error (see detail)
  unauthenticated,   // credentials refused
  cancelled,         // a stop was requested
  failed,            // anything else that failed: the message says what
};

[[nodiscard]] constexpr std::string_view status_code_name(StatusCode code) noexcept {
  switch (code) {
  case StatusCode::ok:
    return "ok";
  case StatusCode::invalid_argument:
    return "invalid_argument";
  case StatusCode::not_found:
    return "not_found";
  case StatusCode::permission_denied:
    return "permission_denied";
  case StatusCode::io_error:
    return "io_error";
  case StatusCode::corrupt:
    return "corrupt";
  case StatusCode::unsupported:
    return "unsupported";
  case StatusCode::unavailable:
    return "unavailable";
  case StatusCode::timeout:
    return "timeout";
  case StatusCode::connection_closed:
    return "connection_closed";
  case StatusCode::protocol_error:
    return "protocol_error";
  case StatusCode::server_error:
    return "server_error";
  case StatusCode::unauthenticated:
    return "unauthenticated";
  case StatusCode::cancelled:
    return "cancelled";
  case StatusCode::failed:
    return "failed";
  }
  return "unknown";
}

class [[nodiscard]] Status {
public:
  Status() = default; // ok
  Status(StatusCode code, std::string message, std::int32_t detail = 0)
      : code_(code), detail_(detail), message_(std::move(message)) {}

  // Named constructors, one per code.
  static Status success() { return {}; }
  static Status invalid_argument(std::string m) {
    return {StatusCode::invalid_argument, std::move(m)};
  }
  static Status not_found(std::string m) { return {StatusCode::not_found, std::move(m)}; }
  static Status permission_denied(std::string m) {
    return {StatusCode::permission_denied, std::move(m)};
  }
  static Status io_error(std::string m) { return {StatusCode::io_error, std::move(m)}; }
  static Status corrupt(std::string m) { return {StatusCode::corrupt, std::move(m)}; }
  static Status unsupported(std::string m) { return {StatusCode::unsupported, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::unavailable, std::move(m)}; }
  static Status timeout(std::string m) { return {StatusCode::timeout, std::move(m)}; }
  static Status connection_closed(std::string m) {
    return {StatusCode::connection_closed, std::move(m)};
  }
  static Status protocol_error(std::string m) { return {StatusCode::protocol_error, std::move(m)}; }
  static Status server_error(std::string m, std::int32_t detail) {
    return {StatusCode::server_error, std::move(m), detail};
  }
  static Status unauthenticated(std::string m) {
    return {StatusCode::unauthenticated, std::move(m)};
  }
  static Status cancelled(std::string m) { return {StatusCode::cancelled, std::move(m)}; }
  static Status failure(std::string m) { return {StatusCode::failed, std::move(m)}; }

  [[nodiscard]] bool ok() const noexcept { return code_ == StatusCode::ok; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] StatusCode code() const noexcept { return code_; }
  [[nodiscard]] std::int32_t detail() const noexcept { return detail_; }
  [[nodiscard]] const std::string &message() const noexcept { return message_; }

  [[nodiscard]] bool is(StatusCode c) const noexcept { return code_ == c; }
  [[nodiscard]] bool is_invalid_argument() const noexcept {
    return is(StatusCode::invalid_argument);
  }
  [[nodiscard]] bool is_not_found() const noexcept { return is(StatusCode::not_found); }
  [[nodiscard]] bool is_unavailable() const noexcept { return is(StatusCode::unavailable); }
  [[nodiscard]] bool is_cancelled() const noexcept { return is(StatusCode::cancelled); }

  // The same failure with context in front: "opening X: <message>".
  [[nodiscard]] Status prefixed(std::string_view context) const {
    if (ok()) {
      return {};
    }
    std::string m(context);
    m += ": ";
    m += message_;
    return {code_, std::move(m), detail_};
  }

private:
  StatusCode code_ = StatusCode::ok;
  std::int32_t detail_ = 0;
  std::string message_;
};

// A value, or the Status saying why there is none. Built from either.
template <class T> class [[nodiscard]] Result {
public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) { // NOLINT(google-explicit-constructor)
    if (status_.ok()) {
      status_ = Status::failure("no value");
    }
  }

  [[nodiscard]] bool ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] const Status &status() const noexcept { return status_; }
  [[nodiscard]] T &value() & { return *value_; }
  [[nodiscard]] const T &value() const & { return *value_; }
  [[nodiscard]] T &&value() && { return std::move(*value_); }
  T &operator*() & { return *value_; }
  const T &operator*() const & { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }

private:
  std::optional<T> value_;
  Status status_;
};

} // namespace ta
