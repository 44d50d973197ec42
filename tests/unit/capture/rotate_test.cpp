#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "ta/capture/capture.hpp"
#include "ta/capture/rotate.hpp"

#include "test_util.hpp"

namespace ta::capture {
namespace {

namespace fs = std::filesystem;
using test::one_line;
using namespace std::chrono_literals;
using Clock = RotatingWriter::Clock;

// 2024-05-01T12:00:00Z
const Clock::time_point kT0{std::chrono::seconds{1714564800}};

constexpr const char *kName0 = "2024_05_01_12_00_00-dump.pcap";
constexpr const char *kName1 = "2024_05_01_12_00_01-dump.pcap";
constexpr const char *kName2 = "2024_05_01_12_00_02-dump.pcap";

std::string part(const std::string &name) {
  return "." + name + ".part";
}

class RotatingWriterTest : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }

  [[nodiscard]] std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto &e : fs::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  [[nodiscard]] RotateOptions options() const {
    RotateOptions o;
    o.directory = dir_;
    o.link_type = 276;
    o.interval = 1s;
    return o;
  }

  [[nodiscard]] std::string path(const std::string &name) const { return dir_ + "/" + name; }

  test::TempDir tmp_{"ta-rotate"};
  const std::string dir_ = tmp_.path();
};

std::vector<std::byte> payload(std::size_t n, std::uint8_t seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::byte>((seed + i) & 0xffU);
  }
  return v;
}

TEST_F(RotatingWriterTest, RotatesOnTheWallClockUnderTemporaryNames) {
  std::string error;
  auto w = RotatingWriter::open(options(), kT0, error);
  ASSERT_NE(w, nullptr) << error;
  EXPECT_EQ(listing(), std::vector<std::string>{part(kName0)});
  EXPECT_EQ(w->current_path(), path(part(kName0)));
  EXPECT_EQ(w->next_rotation(), kT0 + 1s);

  std::vector<std::vector<std::byte>> data;
  for (std::uint8_t i = 0; i < 3; ++i) {
    data.push_back(payload(60, i));
    Frame f;
    f.ts_us = 1714564800'000'000 + TimeUs{i} * 1000;
    f.wire_length = i == 2 ? 1500 : 0;
    f.data = Bytes(data.back());
    ASSERT_TRUE(w->write(f, error)) << error;
  }
  ASSERT_TRUE(w->tick(kT0 + 999ms, error)) << error;
  EXPECT_EQ(listing(), std::vector<std::string>{part(kName0)});

  ASSERT_TRUE(w->tick(kT0 + 1s, error)) << error;
  EXPECT_EQ(listing(), (std::vector<std::string>{part(kName1), kName0}));
  // A rotation with no frame in between: an empty file still closes.
  ASSERT_TRUE(w->tick(kT0 + 2s + 150ms, error)) << error;
  EXPECT_EQ(listing(), (std::vector<std::string>{part(kName2), kName0, kName1}));
  ASSERT_TRUE(w->close(error, kT0 + 2s + 500ms)) << error;
  EXPECT_EQ(listing(), (std::vector<std::string>{kName0, kName1, kName2}));
  EXPECT_TRUE(w->current_path().empty());

  const auto closed = w->take_closed();
  ASSERT_EQ(closed.size(), 3U);
  EXPECT_EQ(closed[0].path, path(kName0));
  EXPECT_EQ(closed[0].frames, 3U);
  EXPECT_EQ(closed[0].bytes, 180U);
  EXPECT_EQ(closed[0].file_bytes, fs::file_size(path(kName0)));
  EXPECT_EQ(closed[0].file_bytes, 24U + 3U * (16U + 60U));
  EXPECT_EQ(closed[0].started_us, 1714564800'000'000);
  EXPECT_EQ(closed[0].closed_us, 1714564801'000'000);
  EXPECT_EQ(closed[1].frames, 0U);
  EXPECT_EQ(closed[1].file_bytes, 24U);
  EXPECT_EQ(closed[2].path, path(kName2));
  EXPECT_EQ(closed[2].started_us, 1714564802'150'000);
  EXPECT_TRUE(w->take_closed().empty());

  auto r = FileReader::open(path(kName0), error);
  ASSERT_NE(r, nullptr) << error;
  EXPECT_EQ(r->link_type(), 276U);
  Frame f;
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(r->next(f), ReadStatus::frame) << i;
    EXPECT_EQ(f.ts_us, 1714564800'000'000 + static_cast<TimeUs>(i) * 1000);
    EXPECT_EQ(f.wire_length, i == 2 ? 1500U : 60U);
    ASSERT_EQ(f.data.size(), 60U);
    EXPECT_TRUE(std::equal(f.data.begin(), f.data.end(), data[i].begin()));
  }
  EXPECT_EQ(r->next(f), ReadStatus::end);

  for (const char *empty : {kName1, kName2}) {
    auto e = FileReader::open(path(empty), error);
    ASSERT_NE(e, nullptr) << error;
    EXPECT_EQ(e->link_type(), 276U);
    EXPECT_EQ(e->next(f), ReadStatus::end);
  }
}

TEST_F(RotatingWriterTest, TakenNamesGetNumbered) {
  { std::ofstream(path(kName0)) << "keep"; }
  std::string error;
  auto w1 = RotatingWriter::open(options(), kT0, error);
  ASSERT_NE(w1, nullptr) << error;
  auto w2 = RotatingWriter::open(options(), kT0 + 300ms, error);
  ASSERT_NE(w2, nullptr) << error;
  EXPECT_EQ(w1->current_path(), path(part("2024_05_01_12_00_00-dump-1.pcap")));
  EXPECT_EQ(w2->current_path(), path(part("2024_05_01_12_00_00-dump-2.pcap")));
  ASSERT_TRUE(w1->close(error)) << error;
  ASSERT_TRUE(w2->close(error)) << error;
  EXPECT_EQ(listing(), (std::vector<std::string>{"2024_05_01_12_00_00-dump-1.pcap",
                                                 "2024_05_01_12_00_00-dump-2.pcap", kName0}));
  std::ifstream in(path(kName0));
  std::string content;
  in >> content;
  EXPECT_EQ(content, "keep");
}

TEST_F(RotatingWriterTest, NameTakenWhileWritingIsNotOverwritten) {
  std::string error;
  auto w = RotatingWriter::open(options(), kT0, error);
  ASSERT_NE(w, nullptr) << error;
  { std::ofstream(path(kName0)) << "other"; }
  ASSERT_TRUE(w->close(error)) << error;
  const auto closed = w->take_closed();
  ASSERT_EQ(closed.size(), 1U);
  EXPECT_EQ(closed[0].path, path("2024_05_01_12_00_00-dump-1.pcap"));
  EXPECT_EQ(fs::file_size(path(kName0)), 5U);
  EXPECT_EQ(fs::file_size(closed[0].path), 24U);
}

TEST_F(RotatingWriterTest, MissedDeadlinesAreSkippedNotFilledWithEmptyFiles) {
  std::string error;
  auto w = RotatingWriter::open(options(), kT0, error);
  ASSERT_NE(w, nullptr) << error;
  ASSERT_TRUE(w->tick(kT0 + 5s + 500ms, error)) << error;
  EXPECT_EQ(w->take_closed().size(), 1U);
  EXPECT_EQ(w->current_path(), path(part("2024_05_01_12_00_05-dump.pcap")));
  EXPECT_EQ(w->next_rotation(), kT0 + 6s); // still on the start + k * interval grid
  ASSERT_TRUE(w->tick(kT0 + 5s + 900ms, error)) << error;
  EXPECT_TRUE(w->take_closed().empty());
  ASSERT_TRUE(w->tick(kT0 + 6s, error)) << error;
  EXPECT_EQ(w->take_closed().size(), 1U);
}

TEST_F(RotatingWriterTest, ClockSteppingBackReanchorsTheDeadline) {
  std::string error;
  auto w = RotatingWriter::open(options(), kT0, error);
  ASSERT_NE(w, nullptr) << error;
  ASSERT_TRUE(w->tick(kT0 - 1h, error)) << error;
  EXPECT_TRUE(w->take_closed().empty());
  EXPECT_EQ(w->next_rotation(), kT0 - 1h + 1s);
  ASSERT_TRUE(w->tick(kT0 - 1h + 1s, error)) << error;
  const auto closed = w->take_closed();
  ASSERT_EQ(closed.size(), 1U);
  EXPECT_EQ(closed[0].path, path(kName0));
  EXPECT_EQ(closed[0].started_us, 1714564800'000'000); // still the name's time
  EXPECT_EQ(w->current_path(), path(part("2024_05_01_11_00_01-dump.pcap")));
}

TEST_F(RotatingWriterTest, CallbackReceivesFinishedFiles) {
  std::vector<RotatedFile> seen;
  RotateOptions o = options();
  o.on_closed = [&seen](const RotatedFile &f) { seen.push_back(f); };
  std::string error;
  auto w = RotatingWriter::open(o, kT0, error);
  ASSERT_NE(w, nullptr) << error;
  ASSERT_TRUE(w->tick(kT0 + 1s, error)) << error;
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].path, path(kName0));
  EXPECT_TRUE(fs::exists(seen[0].path)); // already under its final name
  EXPECT_TRUE(w->take_closed().empty());
}

TEST_F(RotatingWriterTest, DestructorFinishesTheFile) {
  {
    std::string error;
    auto w = RotatingWriter::open(options(), kT0, error);
    ASSERT_NE(w, nullptr) << error;
  }
  EXPECT_EQ(listing(), std::vector<std::string>{kName0});
}

TEST_F(RotatingWriterTest, WritesAfterCloseAreRefused) {
  std::string error;
  auto w = RotatingWriter::open(options(), kT0, error);
  ASSERT_NE(w, nullptr) << error;
  ASSERT_TRUE(w->close(error)) << error;
  const auto data = payload(10, 1);
  Frame f;
  f.data = Bytes(data);
  EXPECT_FALSE(w->write(f, error));
  EXPECT_NE(error.find(dir_), std::string::npos) << error;
  EXPECT_TRUE(w->tick(kT0 + 10s, error));
  EXPECT_EQ(listing(), std::vector<std::string>{kName0});
}

TEST_F(RotatingWriterTest, BadDirectoriesAndOptionsAreNamedInOneLine) {
  std::string error;
  RotateOptions o = options();
  o.directory = dir_ + "/missing";
  EXPECT_EQ(RotatingWriter::open(o, kT0, error), nullptr);
  EXPECT_EQ(error, dir_ + "/missing: no such directory (create it first)");

  { std::ofstream(path("plain")) << "x"; }
  o.directory = path("plain");
  EXPECT_EQ(RotatingWriter::open(o, kT0, error), nullptr);
  EXPECT_EQ(error, path("plain") + ": not a directory");

  o = options();
  o.interval = 0s;
  EXPECT_EQ(RotatingWriter::open(o, kT0, error), nullptr);
  EXPECT_TRUE(one_line(error)) << error;

  o = options();
  o.link_type = 65000; // no pcap file can carry it
  EXPECT_EQ(RotatingWriter::open(o, kT0, error), nullptr);
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("65000"), std::string::npos) << error;

  o = options();
  o.pattern = "sub/%s.pcap";
  EXPECT_EQ(RotatingWriter::open(o, kT0, error), nullptr);
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_EQ(listing(), std::vector<std::string>{"plain"});
}

// In a forked child: RLIMIT_FSIZE makes writes fail like a full disk.
[[noreturn]] void fill_then_rotate(const std::string &dir) {
  auto fail = [](const std::string &why) {
    std::fprintf(stderr, "FAIL: %s\n", why.c_str());
    std::_Exit(1);
  };
  ::signal(SIGXFSZ, SIG_IGN);
  constexpr rlim_t kLimit = rlim_t{64} * 1024;
  const rlimit limit{kLimit, kLimit};
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
    fail("setrlimit");
  }
  RotateOptions o;
  o.directory = dir;
  o.link_type = 1;
  o.interval = 1s;
  std::string error;
  auto w = RotatingWriter::open(o, kT0, error);
  if (w == nullptr) {
    fail(error);
  }
  const std::string temp = w->current_path();
  const auto data = payload(1000, 7);
  Frame f;
  f.ts_us = 1714564800'000'000;
  f.data = Bytes(data);
  int written = 0;
  while (w->write(f, error)) {
    if (++written > 10'000) {
      fail("writes never failed");
    }
  }
  if (error.rfind(temp + ": write failed: ", 0) != 0) {
    fail("bad error: " + error);
  }
  if (w->write(f, error)) {
    fail("write accepted after a failure");
  }
  // The rotation keeps the damaged file (reporting the error) and starts a
  // fresh one that takes frames again.
  if (w->tick(kT0 + 1s, error)) {
    fail("rotation did not report the write error");
  }
  if (!w->write(f, error)) {
    fail("no recovery: " + error);
  }
  if (!w->close(error)) {
    fail(error);
  }
  const auto closed = w->take_closed();
  if (closed.size() != 2 || closed[1].frames != 1) {
    fail("closed files");
  }
  auto r = FileReader::open(closed[0].path, error);
  if (r == nullptr) {
    fail(error);
  }
  std::fprintf(stderr, "recovered after %d frames\n", written);
  std::_Exit(0);
}

TEST_F(RotatingWriterTest, WriteErrorsNameTheFileAndRotationRecovers) {
  // "fast" forks without re-running the test, so the child uses this dir_.
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(fill_then_rotate(dir_), ::testing::ExitedWithCode(0), "recovered after");
  for (const auto &name : listing()) {
    EXPECT_NE(name[0], '.') << name;
  }
  EXPECT_EQ(listing().size(), 2U);
}

} // namespace
} // namespace ta::capture
