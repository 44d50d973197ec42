// cql/retry_policy (private): what the session does after a request failed.
//
// Retried with exponential backoff (base delay, doubling, capped at the max
// delay), up to max_retries per request, on another node when one is up:
// the retryable server codes (is_retryable in types.hpp), a request timeout,
// a connection lost under the request, and no node being up. UNPREPARED is
// retried at once on the same node once the statement is prepared there
// again. Everything else (protocol errors, authentication, other server
// codes, the caller's mistakes) fails the request.
#pragma once

#include <chrono>
#include <cstdint>

#include "ta/cql/types.hpp"

namespace ta::cql::detail {

enum class RetryAction : std::uint8_t {
  error,           // fail the request with the error as it is
  retry_same_node, // repair the node (re-PREPARE), then send again at once
  retry_next_node, // send again after `delay`, to whichever node is picked
};

struct RetryDecision {
  RetryAction action = RetryAction::error;
  std::chrono::milliseconds delay{0};
  bool gave_up = false; // error because the retries are used up
};

class RetryPolicy {
public:
  RetryPolicy() = default;
  RetryPolicy(int max_retries, std::chrono::milliseconds base_delay,
              std::chrono::milliseconds max_delay)
      : max_retries_(max_retries), base_delay_(base_delay), max_delay_(max_delay) {}

  // `server_code` counts only with ErrorKind::server; `attempts` is the
  // number of retries this request already had.
  [[nodiscard]] RetryDecision decide(ErrorKind kind, std::int32_t server_code, int attempts) const;
  // Delay before retry number `attempt` (1 = the first retry).
  [[nodiscard]] std::chrono::milliseconds backoff(int attempt) const;
  // How long a node that failed to connect is left alone after `previous`
  // (zero after a success): base delay first, then doubling up to the max.
  [[nodiscard]] std::chrono::milliseconds node_backoff(std::chrono::milliseconds previous) const;

private:
  int max_retries_ = 5;
  std::chrono::milliseconds base_delay_{50};
  std::chrono::milliseconds max_delay_{2000};
};

} // namespace ta::cql::detail
