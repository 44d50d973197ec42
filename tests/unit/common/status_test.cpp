#include <string>

#include <gtest/gtest.h>

#include "ta/common/status.hpp"

namespace ta {
namespace {

TEST(Status, DefaultIsOkAndNamedConstructorsCarryCodeAndMessage) {
  const Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(ok.code(), StatusCode::ok);

  const Status nf = Status::not_found("no such file: x.pcap");
  EXPECT_FALSE(nf);
  EXPECT_TRUE(nf.is_not_found());
  EXPECT_EQ(nf.message(), "no such file: x.pcap");
  EXPECT_EQ(status_code_name(nf.code()), "not_found");

  const Status se = Status::server_error("127.0.0.1:9042: write_timeout", 0x1100);
  EXPECT_EQ(se.code(), StatusCode::server_error);
  EXPECT_EQ(se.detail(), 0x1100);
}

TEST(Status, PrefixedKeepsCodeAndDetail) {
  const Status s = Status::server_error("boom", 7).prefixed("creating keyspace");
  EXPECT_EQ(s.message(), "creating keyspace: boom");
  EXPECT_EQ(s.detail(), 7);
  EXPECT_TRUE(Status::success().prefixed("x").ok());
}

TEST(Status, EveryCodeHasAStableName) {
  for (int c = 0; c <= static_cast<int>(StatusCode::failed); ++c) {
    EXPECT_NE(status_code_name(static_cast<StatusCode>(c)), "unknown") << c;
  }
}

TEST(Result, HoldsAValueOrAFailure) {
  Result<std::string> v(std::string("abc"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "abc");
  EXPECT_EQ(v->size(), 3U);

  Result<int> e(Status::invalid_argument("bad port"));
  EXPECT_FALSE(e.ok());
  EXPECT_TRUE(e.status().is_invalid_argument());

  // An ok Status cannot make a Result without a value.
  Result<int> odd{Status::success()};
  EXPECT_FALSE(odd.ok());
}

} // namespace
} // namespace ta
