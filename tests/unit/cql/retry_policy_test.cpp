// RetryPolicy decisions and backoff, and the error vocabulary of types.hpp
// it builds on (names, Status codes, what is transient).
#include <set>

#include <gtest/gtest.h>

#include "ta/cql/types.hpp"

#include "retry_policy.hpp"

namespace ta::cql::detail {
namespace {

using std::chrono::milliseconds;

constexpr auto code(ServerError e) {
  return static_cast<std::int32_t>(e);
}

RetryPolicy policy() {
  return {3, milliseconds(10), milliseconds(35)};
}

TEST(CqlRetryPolicy, RetryableServerCodesGoToTheNextNode) {
  for (const ServerError e :
       {ServerError::unavailable, ServerError::overloaded, ServerError::is_bootstrapping,
        ServerError::write_timeout, ServerError::read_timeout}) {
    const RetryDecision d = policy().decide(ErrorKind::server, code(e), 0);
    EXPECT_EQ(d.action, RetryAction::retry_next_node) << server_error_name(e);
    EXPECT_EQ(d.delay, milliseconds(10));
    EXPECT_FALSE(d.gave_up);
  }
}

TEST(CqlRetryPolicy, OtherServerCodesFail) {
  for (const ServerError e :
       {ServerError::server_error, ServerError::read_failure, ServerError::write_failure,
        ServerError::syntax_error, ServerError::invalid, ServerError::bad_credentials,
        ServerError::already_exists, ServerError::truncate_error}) {
    const RetryDecision d = policy().decide(ErrorKind::server, code(e), 0);
    EXPECT_EQ(d.action, RetryAction::error) << server_error_name(e);
    EXPECT_FALSE(d.gave_up);
  }
  EXPECT_EQ(policy().decide(ErrorKind::server, 0x7777, 0).action, RetryAction::error);
}

TEST(CqlRetryPolicy, ClientSideKinds) {
  for (const ErrorKind k :
       {ErrorKind::timeout, ErrorKind::closed, ErrorKind::no_host, ErrorKind::connect}) {
    EXPECT_EQ(policy().decide(k, 0, 1).action, RetryAction::retry_next_node) << error_kind_name(k);
  }
  for (const ErrorKind k : {ErrorKind::protocol, ErrorKind::auth, ErrorKind::bad_request}) {
    const RetryDecision d = policy().decide(k, 0, 0);
    EXPECT_EQ(d.action, RetryAction::error) << error_kind_name(k);
    EXPECT_FALSE(d.gave_up);
  }
}

TEST(CqlRetryPolicy, UnpreparedRetriesAtOnceOnTheSameNode) {
  const RetryDecision d = policy().decide(ErrorKind::server, code(ServerError::unprepared), 2);
  EXPECT_EQ(d.action, RetryAction::retry_same_node);
  EXPECT_EQ(d.delay, milliseconds(0));
  const RetryDecision last = policy().decide(ErrorKind::server, code(ServerError::unprepared), 3);
  EXPECT_EQ(last.action, RetryAction::error);
  EXPECT_TRUE(last.gave_up);
}

TEST(CqlRetryPolicy, GivesUpAfterMaxRetries) {
  EXPECT_EQ(policy().decide(ErrorKind::timeout, 0, 2).action, RetryAction::retry_next_node);
  const RetryDecision d = policy().decide(ErrorKind::timeout, 0, 3);
  EXPECT_EQ(d.action, RetryAction::error);
  EXPECT_TRUE(d.gave_up);
  const RetryPolicy none(0, milliseconds(10), milliseconds(35));
  EXPECT_TRUE(none.decide(ErrorKind::closed, 0, 0).gave_up);
}

TEST(CqlRetryPolicy, ExponentialBackoffCapped) {
  const RetryPolicy p = policy();
  EXPECT_EQ(p.backoff(1), milliseconds(10));
  EXPECT_EQ(p.backoff(2), milliseconds(20));
  EXPECT_EQ(p.backoff(3), milliseconds(35));
  EXPECT_EQ(p.backoff(30), milliseconds(35));
  EXPECT_EQ(p.decide(ErrorKind::timeout, 0, 1).delay, milliseconds(20));
  EXPECT_EQ(p.node_backoff(milliseconds(0)), milliseconds(10));
  EXPECT_EQ(p.node_backoff(milliseconds(10)), milliseconds(20));
  EXPECT_EQ(p.node_backoff(milliseconds(20)), milliseconds(35));
  // A max below the base: the base wins.
  const RetryPolicy odd(3, milliseconds(50), milliseconds(20));
  EXPECT_EQ(odd.backoff(1), milliseconds(20));
  EXPECT_EQ(odd.node_backoff(milliseconds(50)), milliseconds(50));
}

TEST(CqlErrors, StatusCodesAndTransience) {
  EXPECT_EQ(status_code(ErrorKind::connect), StatusCode::unavailable);
  EXPECT_EQ(status_code(ErrorKind::no_host), StatusCode::unavailable);
  EXPECT_EQ(status_code(ErrorKind::closed), StatusCode::connection_closed);
  EXPECT_EQ(status_code(ErrorKind::protocol), StatusCode::protocol_error);
  EXPECT_EQ(status_code(ErrorKind::timeout), StatusCode::timeout);
  EXPECT_EQ(status_code(ErrorKind::server), StatusCode::server_error);
  EXPECT_EQ(status_code(ErrorKind::auth), StatusCode::unauthenticated);
  EXPECT_EQ(status_code(ErrorKind::bad_request), StatusCode::invalid_argument);

  const Status wt = make_status(ErrorKind::server, "h:1: x", code(ServerError::write_timeout));
  EXPECT_EQ(wt.detail(), 0x1100);
  EXPECT_EQ(wt.message(), "h:1: x");
  EXPECT_TRUE(is_transient(wt));
  for (const ServerError e :
       {ServerError::server_error, ServerError::unavailable, ServerError::overloaded,
        ServerError::is_bootstrapping, ServerError::write_timeout, ServerError::read_timeout,
        ServerError::read_failure, ServerError::write_failure}) {
    EXPECT_TRUE(is_transient(make_status(ErrorKind::server, "", code(e)))) << server_error_name(e);
  }
  for (const ServerError e :
       {ServerError::syntax_error, ServerError::invalid, ServerError::unauthorized,
        ServerError::unprepared, ServerError::already_exists, ServerError::function_failure}) {
    EXPECT_FALSE(is_transient(make_status(ErrorKind::server, "", code(e)))) << server_error_name(e);
  }
  for (const ErrorKind k : {ErrorKind::connect, ErrorKind::closed, ErrorKind::timeout,
                            ErrorKind::no_host, ErrorKind::protocol}) {
    EXPECT_TRUE(is_transient(make_status(k, "x"))) << error_kind_name(k);
  }
  EXPECT_FALSE(is_transient(make_status(ErrorKind::auth, "x", 0x0100)));
  EXPECT_FALSE(is_transient(make_status(ErrorKind::bad_request, "x")));
  EXPECT_FALSE(is_transient(Status{}));
}

TEST(CqlErrors, EveryServerCodeNamedOnce) {
  std::set<std::string_view> names;
  for (const std::int32_t c :
       {0x0000, 0x000A, 0x0100, 0x1000, 0x1001, 0x1002, 0x1003, 0x1100, 0x1200, 0x1300,
        0x1400, 0x1500, 0x1600, 0x1700, 0x2000, 0x2100, 0x2200, 0x2300, 0x2400, 0x2500}) {
    const auto n = server_error_name(c);
    EXPECT_NE(n, "unknown") << c;
    EXPECT_TRUE(names.insert(n).second) << n;
  }
}

} // namespace
} // namespace ta::cql::detail
