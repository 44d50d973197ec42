// FileReader on classic pcap files written byte by byte here (the layout is
// in the comment at the top of capture.cpp): both byte orders, µs and ns
// times, more data than one read buffer, and the records the reader leaves
// to libpcap (longer than the snapshot length, cut short).
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "ta/capture/capture.hpp"

#include "test_util.hpp"

namespace ta::capture {
namespace {

using test::is_ok;
using test::one_line;

class PcapBytes {
public:
  PcapBytes(bool big_endian, bool nanos, std::uint32_t snaplen) : big_(big_endian) {
    u32(nanos ? 0xa1b23c4dU : 0xa1b2c3d4U);
    u16(2);
    u16(4);
    u32(0); // thiszone
    u32(0); // sigfigs
    u32(snaplen);
    u32(1); // Ethernet
  }

  // One record; `caplen` bytes of data counting up from `first`.
  void record(std::uint32_t sec, std::uint32_t frac, std::uint32_t caplen, std::uint32_t len,
              std::uint8_t first) {
    u32(sec);
    u32(frac);
    u32(caplen);
    u32(len);
    for (std::uint32_t i = 0; i < caplen; ++i) {
      bytes_.push_back(static_cast<char>(static_cast<std::uint8_t>(first + i)));
    }
  }

  void write(const std::string &path, std::size_t cut = 0) const {
    std::ofstream(path, std::ios::binary)
        .write(bytes_.data(), static_cast<std::streamsize>(bytes_.size() - cut));
  }

private:
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      const int shift = big_ ? 24 - 8 * i : 8 * i;
      bytes_.push_back(static_cast<char>((v >> shift) & 0xFFU));
    }
  }
  void u16(std::uint16_t v) {
    bytes_.push_back(static_cast<char>(big_ ? v >> 8U : v & 0xFFU));
    bytes_.push_back(static_cast<char>(big_ ? v & 0xFFU : v >> 8U));
  }

  bool big_;
  std::vector<char> bytes_;
};

std::unique_ptr<FileReader> open_ok(const std::string &path) {
  auto opened = FileReader::open(path);
  EXPECT_TRUE(is_ok(opened.status()));
  return opened.ok() ? std::move(opened).value() : nullptr;
}

void expect_data(const Frame &f, std::size_t size, std::uint8_t first) {
  ASSERT_EQ(f.data.size(), size);
  for (std::size_t i = 0; i < size; ++i) {
    ASSERT_EQ(static_cast<std::uint8_t>(f.data[i]), static_cast<std::uint8_t>(first + i)) << i;
  }
}

TEST(FileReader, ReadsBothByteOrdersAndBothTimeUnits) {
  test::TempDir dir;
  for (const bool big : {false, true}) {
    for (const bool nanos : {false, true}) {
      PcapBytes b(big, nanos, 65535);
      b.record(1'700'000'000, nanos ? 123'456'789 : 123'456, 60, 1514, 7);
      b.record(1'700'000'001, nanos ? 999 : 1, 0, 0, 0);
      b.record(1'700'000'002, 5, 1000, 1000, 200);
      const std::string path = dir / "f.pcap";
      b.write(path);
      const auto r = open_ok(path);
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->link_type(), 1U);
      EXPECT_EQ(r->snaplen(), 65535U);
      Frame f;
      ASSERT_EQ(r->next(f), ReadStatus::frame);
      EXPECT_EQ(f.ts_us, 1'700'000'000'123'456);
      EXPECT_EQ(f.wire_length, 1514U);
      expect_data(f, 60, 7);
      ASSERT_EQ(r->next(f), ReadStatus::frame);
      EXPECT_EQ(f.ts_us, nanos ? 1'700'000'001'000'000 : 1'700'000'001'000'001); // ns truncated
      EXPECT_EQ(f.data.size(), 0U);
      ASSERT_EQ(r->next(f), ReadStatus::frame);
      EXPECT_EQ(f.ts_us, nanos ? 1'700'000'002'000'000 : 1'700'000'002'000'005);
      expect_data(f, 1000, 200);
      EXPECT_EQ(r->next(f), ReadStatus::end);
      EXPECT_EQ(r->frames_read(), 3U);
      EXPECT_TRUE(r->status().ok());
    }
  }
}

TEST(FileReader, ReadsPastManyBuffersInOrder) {
  test::TempDir dir;
  PcapBytes b(false, false, 65535);
  constexpr std::uint32_t kRecords = 20'000; // ~3 MB: several 1 MiB reads
  for (std::uint32_t i = 0; i < kRecords; ++i) {
    b.record(1'000 + i, i % 1'000'000, 60 + i % 131, 60 + i % 131, static_cast<std::uint8_t>(i));
  }
  const std::string path = dir / "many.pcap";
  b.write(path);
  const auto r = open_ok(path);
  ASSERT_NE(r, nullptr);
  Frame f;
  for (std::uint32_t i = 0; i < kRecords; ++i) {
    ASSERT_EQ(r->next(f), ReadStatus::frame) << i;
    ASSERT_EQ(f.ts_us, static_cast<TimeUs>(1'000 + i) * 1'000'000 + i % 1'000'000) << i;
    expect_data(f, 60 + i % 131, static_cast<std::uint8_t>(i));
  }
  EXPECT_EQ(r->next(f), ReadStatus::end);
  EXPECT_EQ(r->frames_read(), kRecords);
}

TEST(FileReader, RecordOverTheSnapshotLengthIsCutToItAndReadingGoesOn) {
  test::TempDir dir;
  PcapBytes b(false, false, 64);
  b.record(1, 0, 40, 40, 1);
  b.record(2, 0, 100, 100, 2); // libpcap keeps the first 64 bytes
  b.record(3, 0, 50, 50, 3);
  const std::string path = dir / "snap.pcap";
  b.write(path);
  const auto r = open_ok(path);
  ASSERT_NE(r, nullptr);
  Frame f;
  ASSERT_EQ(r->next(f), ReadStatus::frame);
  expect_data(f, 40, 1);
  ASSERT_EQ(r->next(f), ReadStatus::frame);
  EXPECT_EQ(f.ts_us, 2'000'000);
  EXPECT_EQ(f.wire_length, 100U);
  expect_data(f, 64, 2);
  ASSERT_EQ(r->next(f), ReadStatus::frame);
  EXPECT_EQ(f.ts_us, 3'000'000);
  expect_data(f, 50, 3);
  EXPECT_EQ(r->next(f), ReadStatus::end);
}

TEST(FileReader, CutRecordAfterManyBuffersIsCorruptAtItsFrame) {
  test::TempDir dir;
  PcapBytes b(true, false, 65535);
  constexpr std::uint32_t kRecords = 12'000;
  for (std::uint32_t i = 0; i < kRecords; ++i) {
    b.record(i, 0, 100, 100, 0);
  }
  const std::string path = dir / "cut.pcap";
  b.write(path, 30); // the last record loses 30 of its 100 bytes
  const auto r = open_ok(path);
  ASSERT_NE(r, nullptr);
  Frame f;
  for (std::uint32_t i = 0; i + 1 < kRecords; ++i) {
    ASSERT_EQ(r->next(f), ReadStatus::frame) << i;
  }
  ASSERT_EQ(r->next(f), ReadStatus::error);
  EXPECT_EQ(r->status().code(), StatusCode::corrupt);
  const std::string want = path + ": capture damaged after frame " + std::to_string(kRecords - 1) +
                           " (byte offset " + std::to_string(24 + kRecords * 116 - 30) + "): ";
  EXPECT_EQ(r->status().message().rfind(want, 0), 0U) << r->status().message();
  EXPECT_TRUE(one_line(r->status().message()));
}

// Times as libpcap gives them: signed 32-bit fields in the file's own byte
// order, unsigned when byte-swapped (tv_sec 0xFFFFC77E: -14,466 s native,
// 4,294,952,830 s swapped).
TEST(FileReader, OutOfRangeTimesComeOutAsLibpcapGivesThem) {
  test::TempDir dir;
  for (const bool big : {false, true}) {
    PcapBytes b(big, false, 65535);
    b.record(0xFFFFC77EU, 898'559, 4, 4, 1);
    const std::string path = dir / "f.pcap";
    b.write(path);
    const auto r = open_ok(path);
    ASSERT_NE(r, nullptr);
    Frame f;
    ASSERT_EQ(r->next(f), ReadStatus::frame);
    const std::int64_t sec = big ? 4'294'952'830LL : -14'466LL;
    EXPECT_EQ(f.ts_us, sec * 1'000'000 + 898'559) << big;
  }
}

// The checked opens: a link or a FIFO in a regular file's place is refused
// (and a FIFO without blocking); a regular file reads as usual.
TEST(FileReader, RegularOpensRefuseLinksAndFifos) {
  test::TempDir dir;
  PcapBytes b(false, false, 65535);
  b.record(1'700'000'000, 1, 4, 4, 1);
  const std::string file = dir / "f.pcap";
  b.write(file);
  const std::string link = dir / "link.pcap";
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  const std::string fifo = dir / "fifo.pcap";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);

  EXPECT_TRUE(FileReader::open(file, FileOpen::regular_no_follow).ok());
  auto refused = FileReader::open(link, FileOpen::regular_no_follow);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::unsupported);
  EXPECT_NE(refused.status().message().find("symbolic link"), std::string::npos);
  auto followed = FileReader::open(link, FileOpen::regular);
  ASSERT_TRUE(followed.ok());
  Frame f;
  EXPECT_EQ((*followed)->next(f), ReadStatus::frame);
  for (const FileOpen how : {FileOpen::regular, FileOpen::regular_no_follow}) {
    auto not_regular = FileReader::open(fifo, how);
    ASSERT_FALSE(not_regular.ok());
    EXPECT_NE(not_regular.status().message().find("not a regular file"), std::string::npos);
  }
  auto missing = FileReader::open(dir / "none.pcap", FileOpen::regular_no_follow);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);
}

} // namespace
} // namespace ta::capture
