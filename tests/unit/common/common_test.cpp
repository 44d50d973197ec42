#include <array>

#include <gtest/gtest.h>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"
#include "ta/common/time.hpp"

namespace ta {
namespace {

TEST(ByteCursor, ReadsBigEndianAndRefusesPastTheEnd) {
  const std::array<std::byte, 7> raw{std::byte{0x12}, std::byte{0x34}, std::byte{0x56},
                                     std::byte{0x78}, std::byte{0x9a}, std::byte{0xbc},
                                     std::byte{0xde}};
  ByteCursor c{Bytes(raw)};
  std::uint16_t a = 0;
  std::uint32_t b = 0;
  ASSERT_TRUE(c.read_u16(a));
  EXPECT_EQ(a, 0x1234);
  ASSERT_TRUE(c.read_u32(b));
  EXPECT_EQ(b, 0x56789abcU);
  EXPECT_EQ(c.remaining(), 1U);
  // A failed read leaves the cursor where it was.
  EXPECT_FALSE(c.read_u16(a));
  EXPECT_EQ(c.offset(), 6U);
  std::uint8_t d = 0;
  EXPECT_TRUE(c.read_u8(d));
  EXPECT_EQ(d, 0xde);
  EXPECT_TRUE(c.empty());
  EXPECT_FALSE(c.skip(1));
  EXPECT_TRUE(c.seek(0));
  EXPECT_FALSE(c.seek(8));
  Bytes taken;
  EXPECT_FALSE(c.take(8, taken));
  EXPECT_TRUE(c.take(7, taken));
  EXPECT_EQ(taken.size(), 7U);
}

TEST(Address, ParsesAndFormatsBothFamilies) {
  auto v4 = IpAddress::parse("192.0.2.7");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, 4);
  EXPECT_EQ(v4->to_string(), "192.0.2.7");
  auto v6 = IpAddress::parse("2001:DB8:0:0::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to_string(), "2001:db8::1");
  EXPECT_FALSE(IpAddress::parse("300.1.1.1"));
  EXPECT_FALSE(IpAddress::parse(""));
  EXPECT_NE(*IpAddress::parse("0.0.0.1"), *IpAddress::parse("::1"));
}

TEST(Prefix, ContainsRespectsLengthAndFamily) {
  auto p = IpPrefix::parse("10.1.0.0/15");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->contains(*IpAddress::parse("10.0.255.255")));
  EXPECT_TRUE(p->contains(*IpAddress::parse("10.1.2.3")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("10.2.0.0")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("::a01:203")));
  auto host = IpPrefix::parse("fd00::2");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length, 128);
  EXPECT_TRUE(IpPrefix::parse("0.0.0.0/0")->contains(*IpAddress::parse("8.8.8.8")));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/33"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/8x"));
}

TEST(Time, FormatsRfc3339WithMicroseconds) {
  EXPECT_EQ(format_rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_rfc3339_us(1'704'067'200'000'001), "2024-01-01T00:00:00.000001Z");
  EXPECT_EQ(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(Time, ParsesRfc3339DatesAndEpochSeconds) {
  EXPECT_EQ(parse_time("2024-01-01T00:00:00Z"), 1'704'067'200'000'000);
  EXPECT_EQ(parse_time("2024-01-01T00:00:00.5Z"), 1'704'067'200'500'000);
  EXPECT_EQ(parse_time("2024-01-01T02:00:00+02:00"), 1'704'067'200'000'000);
  EXPECT_EQ(parse_time("2024-01-01"), 1'704'067'200'000'000);
  EXPECT_EQ(parse_time("1704067200.25"), 1'704'067'200'250'000);
  EXPECT_FALSE(parse_time("2024-01-01T00:00:00"));
  EXPECT_FALSE(parse_time("2024-13-01"));
  EXPECT_FALSE(parse_time("yesterday"));
  EXPECT_FALSE(parse_time(""));
  // Round trip.
  const TimeUs t = 1'363'132'800'123'456;
  EXPECT_EQ(parse_time(format_rfc3339_us(t)), t);
}

} // namespace
} // namespace ta
