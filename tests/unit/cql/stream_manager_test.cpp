// StreamManager: ids handed out and taken back, the in-flight bound, no id
// reused while in flight, orphans kept until their late answer.
#include <set>

#include <gtest/gtest.h>

#include "stream_manager.hpp"

namespace ta::cql::detail {
namespace {

TEST(CqlStreamManager, AcquireAndRelease) {
  StreamManager m(4);
  EXPECT_EQ(m.capacity(), 4U);
  const auto a = m.acquire(10);
  const auto b = m.acquire(11);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, 0);
  EXPECT_EQ(*b, 1);
  EXPECT_EQ(m.in_flight(), 2U);
  EXPECT_EQ(m.release(*b), std::optional<std::uint32_t>(11));
  EXPECT_EQ(m.release(*a), std::optional<std::uint32_t>(10));
  EXPECT_EQ(m.in_flight(), 0U);
  // The id released last is handed out first.
  EXPECT_EQ(m.acquire(12), std::optional<std::int16_t>(0));
}

TEST(CqlStreamManager, BoundAtMaxInFlight) {
  StreamManager m(3);
  for (std::uint32_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(m.acquire(i).has_value());
  }
  EXPECT_FALSE(m.available());
  EXPECT_EQ(m.acquire(3), std::nullopt);
  ASSERT_TRUE(m.release(1).has_value());
  EXPECT_TRUE(m.available());
  EXPECT_EQ(m.acquire(4), std::optional<std::int16_t>(1));
}

TEST(CqlStreamManager, CapacityClampedTo32768) {
  StreamManager m(100000);
  EXPECT_EQ(m.capacity(), StreamManager::kMaxStreams);
  std::set<std::int16_t> seen;
  for (std::uint32_t i = 0; i < StreamManager::kMaxStreams; ++i) {
    const auto s = m.acquire(i);
    ASSERT_TRUE(s.has_value());
    ASSERT_GE(*s, 0);
    EXPECT_TRUE(seen.insert(*s).second) << *s;
  }
  EXPECT_EQ(m.acquire(0), std::nullopt);
  m.reset(0);
  EXPECT_EQ(m.capacity(), 1U);
}

TEST(CqlStreamManager, NoIdReusedWhileInFlight) {
  StreamManager m(8);
  std::set<std::int16_t> out;
  for (std::uint32_t round = 0; round < 100; ++round) {
    const auto s = m.acquire(round);
    if (!s) {
      // Full: answer the lowest id out.
      const std::int16_t first = *out.begin();
      out.erase(out.begin());
      ASSERT_TRUE(m.release(first).has_value());
      continue;
    }
    EXPECT_TRUE(out.insert(*s).second) << "id " << *s << " handed out twice";
  }
}

TEST(CqlStreamManager, UnusedOrOutOfRangeIsNotReleased) {
  StreamManager m(4);
  EXPECT_EQ(m.release(0), std::nullopt);
  EXPECT_EQ(m.release(-1), std::nullopt);
  EXPECT_EQ(m.release(4), std::nullopt);
  const auto s = m.acquire(1);
  ASSERT_TRUE(s);
  EXPECT_TRUE(m.release(*s).has_value());
  EXPECT_EQ(m.release(*s), std::nullopt); // a second answer on the same id
}

TEST(CqlStreamManager, OrphansStayReservedUntilAnswered) {
  StreamManager m(2);
  const auto a = m.acquire(7);
  const auto b = m.acquire(8);
  ASSERT_TRUE(a && b);
  m.orphan(*a);
  EXPECT_EQ(m.orphans(), 1U);
  EXPECT_EQ(m.owners(), std::vector<std::uint32_t>{8});
  EXPECT_FALSE(m.available()); // the orphan still holds its id
  EXPECT_FALSE(m.release_orphan(*b));
  EXPECT_TRUE(m.release_orphan(*a));
  EXPECT_EQ(m.orphans(), 0U);
  EXPECT_EQ(m.in_flight(), 1U);
  m.orphan_all();
  EXPECT_EQ(m.orphans(), 1U);
  EXPECT_TRUE(m.owners().empty());
  EXPECT_EQ(m.release(*b), std::optional<std::uint32_t>(StreamManager::kOrphan));
  EXPECT_EQ(m.in_flight(), 0U);
  EXPECT_EQ(m.orphans(), 0U);
}

TEST(CqlStreamManager, ResetFreesEverything) {
  StreamManager m(2);
  (void)m.acquire(1);
  const auto b = m.acquire(2);
  m.orphan(*b);
  m.reset(2);
  EXPECT_EQ(m.in_flight(), 0U);
  EXPECT_EQ(m.orphans(), 0U);
  EXPECT_EQ(m.acquire(3), std::optional<std::int16_t>(0));
}

} // namespace
} // namespace ta::cql::detail
