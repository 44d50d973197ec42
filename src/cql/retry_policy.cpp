#include "retry_policy.hpp"

#include <algorithm>

namespace ta::cql::detail {

RetryDecision RetryPolicy::decide(ErrorKind kind, std::int32_t server_code, int attempts) const {
  bool retry = false;
  RetryAction action = RetryAction::retry_next_node;
  switch (kind) {
  case ErrorKind::server:
    if (static_cast<ServerError>(server_code) == ServerError::unprepared) {
      retry = true;
      action = RetryAction::retry_same_node;
    } else {
      retry = is_retryable(static_cast<ServerError>(server_code));
    }
    break;
  case ErrorKind::connect:
  case ErrorKind::closed:
  case ErrorKind::timeout:
  case ErrorKind::no_host:
    retry = true;
    break;
  case ErrorKind::none:
  case ErrorKind::protocol:
  case ErrorKind::auth:
  case ErrorKind::bad_request:
    break;
  }
  if (!retry) {
    return {};
  }
  if (attempts >= max_retries_) {
    return {RetryAction::error, std::chrono::milliseconds{0}, true};
  }
  if (action == RetryAction::retry_same_node) {
    return {action, std::chrono::milliseconds{0}, false};
  }
  return {action, backoff(attempts + 1), false};
}

std::chrono::milliseconds RetryPolicy::backoff(int attempt) const {
  auto d = base_delay_;
  for (int i = 1; i < attempt && d < max_delay_; ++i) {
    d *= 2;
  }
  return std::min(d, max_delay_);
}

std::chrono::milliseconds RetryPolicy::node_backoff(std::chrono::milliseconds previous) const {
  if (previous.count() == 0) {
    return base_delay_;
  }
  return std::min(previous * 2, std::max(max_delay_, base_delay_));
}

} // namespace ta::cql::detail
