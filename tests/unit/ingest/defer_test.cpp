// A store that cannot start a ledger entry now (begin_source `unavailable`):
// the engine does not fail and counts nothing of the file; a watched
// directory keeps the file waiting, retries it before newer files, and reads
// everything exactly once when the store answers; a failure for good still
// ends the run.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/ingest/runner.hpp"
#include "ta/ingest/sources.hpp"

#include "test_util.hpp"

namespace ta::ingest {
namespace {

// Three aged captures a.pcap, b.pcap, c.pcap (different seeds).
std::vector<std::string> three_captures(const test::TempDir &dir) {
  std::vector<std::string> paths;
  std::uint64_t seed = 1;
  for (const char *name : {"a.pcap", "b.pcap", "c.pcap"}) {
    paths.push_back(dir.file(name));
    test::write_capture(paths.back(), 2'000, seed++);
    test::age_file(paths.back(), 10);
  }
  return paths;
}

// Records the same captures give a store that always answers.
std::uint64_t records_without_outage(const std::vector<std::string> &paths) {
  auto state = std::make_shared<test::FakeState>();
  auto engine = test::open_engine(state);
  for (const auto &p : paths) {
    EXPECT_EQ(engine->ingest_file(p, StopToken()).outcome, FileOutcome::ok);
  }
  EXPECT_TRUE(engine->drain().ok());
  return state->record_count();
}

TEST(Deferred, EngineCountsNothingAndStaysOkThenReadsTheFileOnce) {
  test::TempDir dir;
  const auto paths = three_captures(dir);
  auto state = std::make_shared<test::FakeState>();
  state->begin_unavailable = 2;
  auto engine = test::open_engine(state);
  for (int i = 0; i < 2; ++i) {
    const FileResult r = engine->ingest_file(paths[0], StopToken());
    EXPECT_EQ(r.outcome, FileOutcome::deferred);
    EXPECT_TRUE(r.status.is_unavailable());
    EXPECT_EQ(r.status.message(), "no node answers");
    EXPECT_EQ(r.counted, 0U);
    EXPECT_TRUE(engine->store_status().ok());
  }
  EXPECT_TRUE(engine->drain().ok());
  EXPECT_EQ(state->record_count(), 0U);
  const FileResult r = engine->ingest_file(paths[0], StopToken());
  EXPECT_EQ(r.outcome, FileOutcome::ok);
  EXPECT_GT(r.counted, 0U);
  EXPECT_TRUE(engine->drain().ok());
  EXPECT_EQ(state->record_count(), records_without_outage({paths[0]}));
  EXPECT_EQ(state->duplicates, 0U);
}

TEST(Deferred, AFailureForGoodStillFailsTheEngine) {
  test::TempDir dir;
  const auto paths = three_captures(dir);
  auto state = std::make_shared<test::FakeState>();
  state->begin_fails_for_good = true;
  auto engine = test::open_engine(state);
  const FileResult r = engine->ingest_file(paths[0], StopToken());
  EXPECT_EQ(r.outcome, FileOutcome::store_failed);
  EXPECT_EQ(engine->store_status().message(), "ledger table missing");
}

TEST(Deferred, AFileListEndsItsRunOnAFileTheStoreCannotStart) {
  test::TempDir dir;
  const auto paths = three_captures(dir);
  auto state = std::make_shared<test::FakeState>();
  state->begin_unavailable = 1;
  auto engine = test::open_engine(state);
  FileSource source(paths, {});
  const RunResult result = run(*engine, source, StopToken());
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(result.source.is_unavailable());
  EXPECT_TRUE(result.store.ok());
  EXPECT_EQ(state->record_count(), 0U);
}

struct Watched {
  std::vector<std::string> done;
  std::vector<FileOutcome> outcomes;
  std::vector<std::string> notes;
  std::atomic<bool> stop{false};
  std::size_t stop_after = 0; // files done
  bool stop_at_note = false;

  FileObserver observer() {
    FileObserver o;
    o.file_done = [this](const std::string &path, const FileResult &r) {
      done.push_back(path);
      outcomes.push_back(r.outcome);
      if (done.size() >= stop_after) {
        stop = true;
      }
    };
    o.note = [this](const Status &st) {
      notes.push_back(st.message());
      if (stop_at_note) {
        stop = true;
      }
    };
    return o;
  }
};

DirectoryOptions fast_retries(const std::string &dir, bool once) {
  DirectoryOptions options;
  options.directory = dir;
  options.once = once;
  options.retry_first = std::chrono::milliseconds(5);
  options.retry_last = std::chrono::milliseconds(20);
  return options;
}

TEST(Deferred, AWatchedFileWaitsOnceToldThenAllAreReadInOrderExactlyOnce) {
  for (const bool once : {false, true}) {
    SCOPED_TRACE(once ? "once" : "watching");
    test::TempDir dir;
    const auto paths = three_captures(dir);
    auto state = std::make_shared<test::FakeState>();
    state->begin_unavailable = 4;
    auto engine = test::open_engine(state);
    Watched seen;
    seen.stop_after = once ? 99 : 3;
    auto source = DirectorySource::open(fast_retries(dir.path(), once), seen.observer());
    ASSERT_TRUE(source.ok());
    RunOptions run_options;
    run_options.max_wait = std::chrono::milliseconds(50);
    run_options.deadline = Clock::now() + std::chrono::seconds(60); // a bound, not a timing
    const RunResult result = run(*engine, **source, StopToken(seen.stop), run_options);
    EXPECT_TRUE(result.ok()) << result.store.message() << result.source.message();
    EXPECT_EQ(seen.done, paths); // arrival order, the waiting one first
    EXPECT_EQ(seen.outcomes, std::vector<FileOutcome>(3, FileOutcome::ok));
    {
      std::lock_guard lock(state->mu);
      EXPECT_EQ(state->begun, paths);
      EXPECT_EQ(state->begin_unavailable, 0);
      EXPECT_EQ(state->duplicates, 0U);
    }
    EXPECT_EQ(state->record_count(), records_without_outage(paths));
    ASSERT_EQ(seen.notes.size(), 1U) << ::testing::PrintToString(seen.notes);
    EXPECT_EQ(seen.notes[0], paths[0] +
                                 " waits: the store cannot start its ledger entry now (no node "
                                 "answers); retrying");
    EXPECT_EQ((*source)->deferrals(), 4U);
    EXPECT_FALSE((*source)->waiting().has_value());
    EXPECT_TRUE(engine->store_status().ok());
  }
}

TEST(Deferred, AStopWhileAFileWaitsEndsTheRunAndKeepsTheFile) {
  test::TempDir dir;
  const auto paths = three_captures(dir);
  auto state = std::make_shared<test::FakeState>();
  state->begin_unavailable = 1'000'000;
  auto engine = test::open_engine(state);
  Watched seen;
  seen.stop_at_note = true;
  DirectoryOptions options = fast_retries(dir.path(), true);
  options.delete_after = true;
  auto source = DirectorySource::open(options, seen.observer());
  ASSERT_TRUE(source.ok());
  RunOptions run_options;
  run_options.deadline = Clock::now() + std::chrono::seconds(60);
  const RunResult result = run(*engine, **source, StopToken(seen.stop), run_options);
  EXPECT_TRUE(result.ok());
  EXPECT_TRUE(seen.done.empty());
  EXPECT_EQ((*source)->waiting(), std::optional<std::string>("a.pcap"));
  EXPECT_EQ(state->record_count(), 0U);
  for (const auto &p : paths) {
    EXPECT_TRUE(std::filesystem::exists(p));
  }
}

TEST(Deferred, AFailureForGoodEndsAWatchedRun) {
  test::TempDir dir;
  three_captures(dir);
  auto state = std::make_shared<test::FakeState>();
  auto engine = test::open_engine(state);
  {
    std::lock_guard lock(state->mu);
    state->begin_unavailable = 2;
  }
  Watched seen;
  seen.stop_after = 99;
  // Two retries, then the store fails for good.
  state->on_begin_source = [&state] {
    std::lock_guard lock(state->mu);
    if (state->begin_unavailable == 0) {
      state->begin_fails_for_good = true;
    }
  };
  auto source = DirectorySource::open(fast_retries(dir.path(), false), seen.observer());
  ASSERT_TRUE(source.ok());
  RunOptions run_options;
  run_options.max_wait = std::chrono::milliseconds(50);
  run_options.deadline = Clock::now() + std::chrono::seconds(60);
  const RunResult result = run(*engine, **source, StopToken(seen.stop), run_options);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.store.message(), "ledger table missing");
  EXPECT_EQ(seen.outcomes, std::vector<FileOutcome>{FileOutcome::store_failed});
  EXPECT_EQ(state->record_count(), 0U);
}

} // namespace
} // namespace ta::ingest
