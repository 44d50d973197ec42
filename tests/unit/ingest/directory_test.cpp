// The watched directory: which files, when (settle time, inotify events),
// and what a queue overflow recovers; then DirectorySource over an engine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "ta/ingest/runner.hpp"
#include "ta/ingest/sources.hpp"

#include "directory_watch.hpp"
#include "test_util.hpp"

namespace ta::ingest {
namespace {

std::vector<std::string> drain_ready(DirectoryWatch &w) {
  std::vector<std::string> names;
  while (auto name = w.next_ready()) {
    names.push_back(*name);
  }
  return names;
}

void touch(const std::string &path) {
  std::ofstream(path) << "x";
}

TEST(DirectoryWatch, MissingDirectoryIsNotFound) {
  test::TempDir dir;
  auto w = DirectoryWatch::open(dir.file("missing"), 2.0, true);
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(w.status().is_not_found());
  EXPECT_EQ(w.status().message(), dir.file("missing") + ": no such directory");
}

TEST(DirectoryWatch, ExistingQuietFilesFirstInNameOrderTemporaryNamesNever) {
  test::TempDir dir;
  for (const char *name : {"b.pcap", "a.pcap", ".hidden.pcap", "c.pcap.tmp", "d.pcap.part"}) {
    touch(dir.file(name));
    test::age_file(dir.file(name), 10);
  }
  std::filesystem::create_directory(dir.file("sub"));
  auto w = DirectoryWatch::open(dir.path(), 2.0, true);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(drain_ready(**w), (std::vector<std::string>{"a.pcap", "b.pcap"}));
}

TEST(DirectoryWatch, AFileStillBeingWrittenWaitsForSettleTime) {
  test::TempDir dir;
  const std::string path = dir.file("busy.pcap");
  touch(path); // modified just now: maybe still being written
  auto w = DirectoryWatch::open(dir.path(), 2.0, true);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(drain_ready(**w).empty());
  EXPECT_EQ((*w)->deferred().count("busy.pcap"), 1U);
  (*w)->wait(0);
  EXPECT_TRUE(drain_ready(**w).empty()) << "read before it settled";
  // Quiet for longer than the settle time now.
  test::age_file(path, 3);
  (*w)->wait(0);
  EXPECT_EQ(drain_ready(**w), (std::vector<std::string>{"busy.pcap"}));
  EXPECT_TRUE((*w)->deferred().empty());
}

TEST(DirectoryWatch, OnceDefersNothing) {
  test::TempDir dir;
  touch(dir.file("busy.pcap"));
  auto w = DirectoryWatch::open(dir.path(), 2.0, false);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(drain_ready(**w), (std::vector<std::string>{"busy.pcap"}));
}

TEST(DirectoryWatch, CloseWriteAndMovedToAnnounceFiles) {
  test::TempDir dir;
  auto w = DirectoryWatch::open(dir.path(), 2.0, true);
  ASSERT_TRUE(w.ok());
  touch(dir.file("closed.pcap"));
  touch(dir.file("renamed.pcap.part"));
  std::filesystem::rename(dir.file("renamed.pcap.part"), dir.file("renamed.pcap"));
  touch(dir.file("ignored.pcap.tmp"));
  (*w)->wait(1000);
  EXPECT_EQ(drain_ready(**w), (std::vector<std::string>{"closed.pcap", "renamed.pcap"}));
}

TEST(DirectoryWatch, QueueOverflowListsTheDirectoryAgain) {
  test::TempDir dir;
  auto w = DirectoryWatch::open(dir.path(), 2.0, true);
  ASSERT_TRUE(w.ok());
  // Files whose events the kernel dropped: the overflow event is all that
  // arrives (injected here, without reading the real queue).
  touch(dir.file("missed1.pcap"));
  touch(dir.file("missed2.pcap"));
  touch(dir.file(".missed.pcap"));
  (*w)->on_event(IN_Q_OVERFLOW, "");
  auto names = drain_ready(**w);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"missed1.pcap", "missed2.pcap"}));
}

TEST(DirectorySource, IngestsClosedCapturesAndSkipsDamagedOnes) {
  test::TempDir dir;
  const std::string good = dir.file("a.pcap");
  test::write_capture(good, 3'000);
  test::age_file(good, 10);
  touch(dir.file("junk.pcap"));
  test::age_file(dir.file("junk.pcap"), 10);
  auto state = std::make_shared<test::FakeState>();
  auto engine = test::open_engine(state);
  std::vector<std::pair<std::string, FileOutcome>> done;
  FileObserver observer;
  observer.file_done = [&done](const std::string &path, const FileResult &r) {
    done.emplace_back(path, r.outcome);
  };
  DirectoryOptions options;
  options.directory = dir.path();
  options.once = true;
  options.delete_after = true;
  auto source = DirectorySource::open(options, observer);
  ASSERT_TRUE(source.ok());
  const RunResult result = run(*engine, **source, StopToken());
  EXPECT_TRUE(result.ok());
  ASSERT_EQ(done.size(), 2U);
  EXPECT_EQ(done[0], std::make_pair(good, FileOutcome::ok));
  EXPECT_EQ(done[1], std::make_pair(dir.file("junk.pcap"), FileOutcome::not_capture));
  EXPECT_GT(state->record_count(), 0U);
  // Durable, so deleted; the damaged one stays for a person to see.
  EXPECT_FALSE(std::filesystem::exists(good));
  EXPECT_TRUE(std::filesystem::exists(dir.file("junk.pcap")));
}

TEST(DirectorySource, AFileStillBeingWrittenIsNotReadBeforeItSettles) {
  test::TempDir dir;
  const std::string path = dir.file("busy.pcap");
  test::write_capture(path, 1'000);
  auto state = std::make_shared<test::FakeState>();
  auto engine = test::open_engine(state);
  int files = 0;
  FileObserver observer;
  observer.file_done = [&files](const std::string &, const FileResult &) { ++files; };
  DirectoryOptions options;
  options.directory = dir.path();
  options.settle_seconds = 30;
  auto source = DirectorySource::open(options, observer);
  ASSERT_TRUE(source.ok());
  RunOptions run_options;
  run_options.deadline = Clock::now() + std::chrono::milliseconds(300);
  run_options.max_wait = std::chrono::milliseconds(50);
  EXPECT_TRUE(run(*engine, **source, StopToken(), run_options).ok());
  EXPECT_EQ(files, 0);
  test::age_file(path, 31);
  run_options.deadline = Clock::now() + std::chrono::milliseconds(300);
  EXPECT_TRUE(run(*engine, **source, StopToken(), run_options).ok());
  EXPECT_EQ(files, 1);
  EXPECT_GT(state->record_count(), 0U);
}

TEST(DirectorySource, LinksAndFifosAreSkippedCountedAndToldUnlessLinksAreFollowed) {
  test::TempDir dir;
  test::TempDir outside;
  const std::string elsewhere = outside.file("elsewhere.pcap");
  test::write_capture(elsewhere, 2'000);
  test::age_file(elsewhere, 10);
  std::filesystem::create_symlink(elsewhere, dir.file("link.pcap"));
  std::filesystem::create_symlink(outside.path(), dir.file("linkdir.pcap"));
  ASSERT_EQ(::mkfifo(dir.file("fifo.pcap").c_str(), 0600), 0);
  for (const bool follow : {false, true}) {
    auto state = std::make_shared<test::FakeState>();
    auto engine = test::open_engine(state);
    std::vector<std::string> read;
    std::vector<std::string> notes;
    FileObserver observer;
    observer.file_done = [&read](const std::string &path, const FileResult &) {
      read.push_back(path);
    };
    observer.note = [&notes](const Status &st) { notes.push_back(st.message()); };
    DirectoryOptions options;
    options.directory = dir.path();
    options.once = true;
    options.delete_after = true;
    options.follow_symlinks = follow;
    auto source = DirectorySource::open(options, observer);
    ASSERT_TRUE(source.ok());
    EXPECT_TRUE(run(*engine, **source, StopToken()).ok());
    EXPECT_EQ((*source)->skipped(SkipReason::not_regular_file), follow ? 2U : 1U);
    EXPECT_EQ((*source)->skipped(SkipReason::symlink), follow ? 0U : 2U);
    EXPECT_EQ(notes.size(), follow ? 2U : 3U) << ::testing::PrintToString(notes);
    if (follow) {
      EXPECT_EQ(read, std::vector<std::string>{dir.file("link.pcap")});
      EXPECT_GT(state->record_count(), 0U);
    } else {
      EXPECT_TRUE(read.empty());
      EXPECT_EQ(state->record_count(), 0U);
      EXPECT_EQ(notes.front(), dir.file("fifo.pcap") + ": skipped: a FIFO, not a regular file");
    }
    // Neither a link nor what it points to is deleted when skipped.
    EXPECT_TRUE(std::filesystem::exists(elsewhere));
  }
  EXPECT_STREQ(skip_reason_name(SkipReason::symlink), "symlink");
  EXPECT_STREQ(skip_reason_name(SkipReason::not_regular_file), "not_regular_file");
}

} // namespace
} // namespace ta::ingest
