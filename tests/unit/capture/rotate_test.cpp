#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "ta/capture/capture.hpp"
#include "ta/capture/rotate.hpp"

#include "test_util.hpp"

namespace ta::capture {
namespace {

namespace fs = std::filesystem;
using test::is_ok;
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

// The writer, or nullptr after a test failure that carries the message.
std::unique_ptr<RotatingWriter> open_writer(const RotateOptions &o, Clock::time_point now) {
  auto opened = RotatingWriter::open(o, now);
  if (!opened) {
    ADD_FAILURE() << opened.status().message();
    return nullptr;
  }
  return std::move(opened).value();
}

std::vector<std::byte> payload(std::size_t n, std::uint8_t seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::byte>((seed + i) & 0xffU);
  }
  return v;
}

TEST_F(RotatingWriterTest, RotatesOnTheWallClockUnderTemporaryNames) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
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
    ASSERT_TRUE(is_ok(w->write(f)));
  }
  ASSERT_TRUE(is_ok(w->tick(kT0 + 999ms)));
  EXPECT_EQ(listing(), std::vector<std::string>{part(kName0)});

  ASSERT_TRUE(is_ok(w->tick(kT0 + 1s)));
  EXPECT_EQ(listing(), (std::vector<std::string>{part(kName1), kName0}));
  // A rotation with no frame in between: an empty file still closes.
  ASSERT_TRUE(is_ok(w->tick(kT0 + 2s + 150ms)));
  EXPECT_EQ(listing(), (std::vector<std::string>{part(kName2), kName0, kName1}));
  ASSERT_TRUE(is_ok(w->close(kT0 + 2s + 500ms)));
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

  auto opened = FileReader::open(path(kName0));
  ASSERT_TRUE(is_ok(opened.status()));
  const std::unique_ptr<FileReader> r = std::move(opened).value();
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
    auto opened_empty = FileReader::open(path(empty));
    ASSERT_TRUE(is_ok(opened_empty.status()));
    const std::unique_ptr<FileReader> e = std::move(opened_empty).value();
    EXPECT_EQ(e->link_type(), 276U);
    EXPECT_EQ(e->next(f), ReadStatus::end);
  }
}

TEST_F(RotatingWriterTest, TakenNamesGetNumbered) {
  { std::ofstream(path(kName0)) << "keep"; }
  auto w1 = open_writer(options(), kT0);
  ASSERT_NE(w1, nullptr);
  auto w2 = open_writer(options(), kT0 + 300ms);
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w1->current_path(), path(part("2024_05_01_12_00_00-dump-1.pcap")));
  EXPECT_EQ(w2->current_path(), path(part("2024_05_01_12_00_00-dump-2.pcap")));
  ASSERT_TRUE(is_ok(w1->close()));
  ASSERT_TRUE(is_ok(w2->close()));
  EXPECT_EQ(listing(), (std::vector<std::string>{"2024_05_01_12_00_00-dump-1.pcap",
                                                 "2024_05_01_12_00_00-dump-2.pcap", kName0}));
  std::ifstream in(path(kName0));
  std::string content;
  in >> content;
  EXPECT_EQ(content, "keep");
}

TEST_F(RotatingWriterTest, NameTakenWhileWritingIsNotOverwritten) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  { std::ofstream(path(kName0)) << "other"; }
  ASSERT_TRUE(is_ok(w->close()));
  const auto closed = w->take_closed();
  ASSERT_EQ(closed.size(), 1U);
  EXPECT_EQ(closed[0].path, path("2024_05_01_12_00_00-dump-1.pcap"));
  EXPECT_EQ(fs::file_size(path(kName0)), 5U);
  EXPECT_EQ(fs::file_size(closed[0].path), 24U);
}

TEST_F(RotatingWriterTest, MissedDeadlinesAreSkippedNotFilledWithEmptyFiles) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(is_ok(w->tick(kT0 + 5s + 500ms)));
  EXPECT_EQ(w->take_closed().size(), 1U);
  EXPECT_EQ(w->current_path(), path(part("2024_05_01_12_00_05-dump.pcap")));
  EXPECT_EQ(w->next_rotation(), kT0 + 6s); // still on the start + k * interval grid
  ASSERT_TRUE(is_ok(w->tick(kT0 + 5s + 900ms)));
  EXPECT_TRUE(w->take_closed().empty());
  ASSERT_TRUE(is_ok(w->tick(kT0 + 6s)));
  EXPECT_EQ(w->take_closed().size(), 1U);
}

TEST_F(RotatingWriterTest, ClockSteppingBackReanchorsTheDeadline) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(is_ok(w->tick(kT0 - 1h)));
  EXPECT_TRUE(w->take_closed().empty());
  EXPECT_EQ(w->next_rotation(), kT0 - 1h + 1s);
  ASSERT_TRUE(is_ok(w->tick(kT0 - 1h + 1s)));
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
  auto w = open_writer(o, kT0);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(is_ok(w->tick(kT0 + 1s)));
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].path, path(kName0));
  EXPECT_TRUE(fs::exists(seen[0].path)); // already under its final name
  EXPECT_TRUE(w->take_closed().empty());
}

TEST_F(RotatingWriterTest, DestructorFinishesTheFile) {
  {
    auto w = open_writer(options(), kT0);
    ASSERT_NE(w, nullptr);
  }
  EXPECT_EQ(listing(), std::vector<std::string>{kName0});
}

TEST_F(RotatingWriterTest, WritesAfterCloseAreRefused) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(is_ok(w->close()));
  const auto data = payload(10, 1);
  Frame f;
  f.data = Bytes(data);
  const Status refused = w->write(f);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find(dir_), std::string::npos) << refused.message();
  EXPECT_TRUE(is_ok(w->tick(kT0 + 10s)));
  EXPECT_EQ(listing(), std::vector<std::string>{kName0});
}

TEST_F(RotatingWriterTest, BadDirectoriesAndOptionsAreNamedInOneLine) {
  RotateOptions o = options();
  o.directory = dir_ + "/missing";
  auto opened = RotatingWriter::open(o, kT0);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::not_found);
  EXPECT_EQ(opened.status().message(), dir_ + "/missing: no such directory (create it first)");

  { std::ofstream(path("plain")) << "x"; }
  o.directory = path("plain");
  opened = RotatingWriter::open(o, kT0);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(opened.status().message(), path("plain") + ": not a directory");

  o = options();
  o.interval = 0s;
  opened = RotatingWriter::open(o, kT0);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::invalid_argument);
  EXPECT_TRUE(one_line(opened.status().message())) << opened.status().message();

  o = options();
  o.link_type = 65000; // no pcap file can carry it
  opened = RotatingWriter::open(o, kT0);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::unsupported);
  EXPECT_TRUE(one_line(opened.status().message())) << opened.status().message();
  EXPECT_NE(opened.status().message().find("65000"), std::string::npos)
      << opened.status().message();

  o = options();
  o.pattern = "sub/%s.pcap";
  opened = RotatingWriter::open(o, kT0);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::invalid_argument);
  EXPECT_TRUE(one_line(opened.status().message())) << opened.status().message();
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
  auto opened = RotatingWriter::open(o, kT0);
  if (!opened) {
    fail(opened.status().message());
  }
  const std::unique_ptr<RotatingWriter> w = std::move(opened).value();
  const std::string temp = w->current_path();
  const auto data = payload(1000, 7);
  Frame f;
  f.ts_us = 1714564800'000'000;
  f.data = Bytes(data);
  int written = 0;
  Status st;
  while ((st = w->write(f)).ok()) {
    if (++written > 10'000) {
      fail("writes never failed");
    }
  }
  if (st.code() != StatusCode::io_error || st.message().rfind(temp + ": write failed: ", 0) != 0) {
    fail("bad error: " + st.message());
  }
  if (w->write(f).ok()) {
    fail("write accepted after a failure");
  }
  // The rotation keeps the damaged file (reporting the error) and starts a
  // fresh one that takes frames again.
  if (w->tick(kT0 + 1s).ok()) {
    fail("rotation did not report the write error");
  }
  if (st = w->write(f); !st) {
    fail("no recovery: " + st.message());
  }
  if (st = w->close(); !st) {
    fail(st.message());
  }
  const auto closed = w->take_closed();
  if (closed.size() != 2 || closed[1].frames != 1) {
    fail("closed files");
  }
  if (const auto r = FileReader::open(closed[0].path); !r) {
    fail(r.status().message());
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

// ---- FileReader and fingerprint_file ----------------------------------------

TEST_F(RotatingWriterTest, FingerprintIsEmptyForACaptureWithoutFrames) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(is_ok(w->close(kT0 + 1s)));
  const auto fp = fingerprint_file(path(kName0));
  ASSERT_TRUE(is_ok(fp.status()));
  EXPECT_EQ(*fp, "");
}

TEST_F(RotatingWriterTest, FingerprintDependsOnTheFirstFrameOnly) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  const auto data = payload(60, 3);
  Frame f;
  f.ts_us = 1714564800'000'000;
  f.data = Bytes(data);
  ASSERT_TRUE(is_ok(w->write(f)));
  ASSERT_TRUE(is_ok(w->tick(kT0 + 1s)));
  ASSERT_TRUE(is_ok(w->write(f)));
  f.ts_us += 1;
  ASSERT_TRUE(is_ok(w->write(f)));
  ASSERT_TRUE(is_ok(w->close(kT0 + 2s)));
  const auto one = fingerprint_file(path(kName0));
  const auto two = fingerprint_file(path(kName1));
  ASSERT_TRUE(is_ok(one.status()));
  ASSERT_TRUE(is_ok(two.status()));
  EXPECT_EQ(one->size(), 16U);
  EXPECT_EQ(*one, *two);
}

TEST_F(RotatingWriterTest, FingerprintOfTheFirstFrameReadIsTheFilesFingerprint) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  const auto data = payload(60, 7);
  Frame f;
  f.ts_us = 1714564800'000'000;
  f.data = Bytes(data);
  ASSERT_TRUE(is_ok(w->write(f)));
  ASSERT_TRUE(is_ok(w->close(kT0 + 1s)));
  const auto from_file = fingerprint_file(path(kName0));
  ASSERT_TRUE(is_ok(from_file.status()));
  auto opened = FileReader::open(path(kName0));
  ASSERT_TRUE(is_ok(opened.status()));
  const std::unique_ptr<FileReader> r = std::move(opened).value();
  Frame first;
  ASSERT_EQ(r->next(first), ReadStatus::frame);
  EXPECT_EQ(fingerprint_first_frame(r->link_type(), first), *from_file);
}

// Captures hold private traffic: 0640 however permissive the umask.
TEST_F(RotatingWriterTest, CaptureFilesAreNotWorldReadable) {
  const mode_t old = ::umask(0);
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(is_ok(w->close(kT0 + 1s)));
  auto pw = PcapWriter::open(path("plain.pcap"), 1, 65535);
  ASSERT_TRUE(is_ok(pw.status()));
  ASSERT_TRUE(is_ok((*pw)->close()));
  ::umask(old);
  for (const std::string &name : {std::string(kName0), std::string("plain.pcap")}) {
    const auto perms = fs::status(path(name)).permissions();
    EXPECT_EQ(perms, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read)
        << name;
  }
}

TEST_F(RotatingWriterTest, UnreadableCapturesAreNamedInOneLine) {
  { std::ofstream(path("text.pcap")) << "not a capture\n"; }
  for (const std::string &p : {path("text.pcap"), path("missing.pcap")}) {
    const auto opened = FileReader::open(p);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::invalid_argument);
    EXPECT_EQ(opened.status().message().rfind(p + ": not a readable capture file (", 0), 0U)
        << opened.status().message();
    EXPECT_TRUE(one_line(opened.status().message())) << opened.status().message();
    const auto fp = fingerprint_file(p);
    ASSERT_FALSE(fp.ok());
    EXPECT_EQ(fp.status().message(), opened.status().message());
  }
}

TEST_F(RotatingWriterTest, DamagedCaptureIsCorruptAndNamesTheFrame) {
  auto w = open_writer(options(), kT0);
  ASSERT_NE(w, nullptr);
  const auto data = payload(60, 5);
  Frame f;
  f.ts_us = 1714564800'000'000;
  f.data = Bytes(data);
  ASSERT_TRUE(is_ok(w->write(f)));
  ASSERT_TRUE(is_ok(w->write(f)));
  ASSERT_TRUE(is_ok(w->close(kT0 + 1s)));
  // Cut the second record in half.
  fs::resize_file(path(kName0), 24U + (16U + 60U) + 30U);
  auto opened = FileReader::open(path(kName0));
  ASSERT_TRUE(is_ok(opened.status()));
  const std::unique_ptr<FileReader> r = std::move(opened).value();
  Frame out;
  ASSERT_EQ(r->next(out), ReadStatus::frame);
  EXPECT_TRUE(r->status().ok());
  ASSERT_EQ(r->next(out), ReadStatus::error);
  EXPECT_EQ(r->status().code(), StatusCode::corrupt);
  EXPECT_EQ(r->status().message().rfind(path(kName0) + ": capture damaged after frame 1 (", 0), 0U)
      << r->status().message();
  EXPECT_TRUE(one_line(r->status().message())) << r->status().message();
}

} // namespace
} // namespace ta::capture
