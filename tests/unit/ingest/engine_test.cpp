// The engine and the run loop over capture files and generated traffic:
// resume past the ledger, stop mid-file, a failing store write.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/ingest/engine.hpp"
#include "ta/ingest/runner.hpp"
#include "ta/ingest/sources.hpp"

#include "test_util.hpp"

namespace ta::ingest {
namespace {

using test::FakeState;

struct Seen {
  std::vector<std::string> paths;
  std::vector<FileResult> results;
  std::vector<Status> notes;
  FileObserver observer() {
    FileObserver o;
    o.file_done = [this](const std::string &path, const FileResult &r) {
      paths.push_back(path);
      results.push_back(r);
    };
    o.note = [this](const Status &st) { notes.push_back(st); };
    return o;
  }
};

// Records of one whole capture ingested once into a fresh store.
std::uint64_t reference_records(const std::string &path) {
  auto state = std::make_shared<FakeState>();
  auto engine = test::open_engine(state);
  EXPECT_EQ(engine->ingest_file(path, StopToken()).outcome, FileOutcome::ok);
  EXPECT_TRUE(engine->drain().ok());
  return state->record_count();
}

TEST(Engine, ResumesAPartialCapturePastItsLedgerPosition) {
  test::TempDir dir;
  const std::string full = dir.file("full.pcap");
  test::write_capture(full, 20'000);
  const std::uint64_t expected = reference_records(full);
  ASSERT_GT(expected, 0U);

  // The same capture cut mid-frame, as when its writer was still busy: its
  // fingerprint (first frame) is the full capture's.
  const std::string cut = dir.file("cut.pcap");
  test::copy_prefix(full, cut, std::filesystem::file_size(full) * 2 / 5);
  auto state = std::make_shared<FakeState>();
  {
    auto engine = test::open_engine(state);
    const FileResult r = engine->ingest_file(cut, StopToken());
    EXPECT_EQ(r.outcome, FileOutcome::damaged) << r.status.message();
    EXPECT_GT(r.counted, 0U);
    ASSERT_TRUE(engine->drain().ok());
  }
  const std::uint64_t first = state->record_count();
  const std::uint64_t position = state->done(1);
  EXPECT_GT(first, 0U);
  EXPECT_LT(first, expected);
  EXPECT_GT(position, 0U);

  // The grown capture: only what lies past the ledger position is new.
  {
    auto engine = test::open_engine(state);
    const FileResult r = engine->ingest_file(full, StopToken());
    EXPECT_EQ(r.outcome, FileOutcome::ok) << r.status.message();
    EXPECT_EQ(r.counted, expected - first);
    EXPECT_EQ(engine->analyzer().stats().outcome(attribute::Outcome::already_stored) > 0, true);
    ASSERT_TRUE(engine->drain().ok());
  }
  EXPECT_EQ(state->record_count(), expected);
  EXPECT_EQ(state->duplicates, 0U);
  EXPECT_EQ(state->done(1), 20'000U);

  // Read a third time: nothing new.
  {
    auto engine = test::open_engine(state);
    EXPECT_EQ(engine->ingest_file(full, StopToken()).counted, 0U);
    ASSERT_TRUE(engine->drain().ok());
  }
  EXPECT_EQ(state->duplicates, 0U);
}

TEST(Runner, StopMidFileKeepsWhatWasReadAndARerunResumes) {
  test::TempDir dir;
  const std::string path = dir.file("big.pcap");
  // Larger than one stop check (every 65536 frames).
  test::write_capture(path, 150'000);
  const std::uint64_t expected = reference_records(path);

  std::atomic<bool> stop{false};
  auto state = std::make_shared<FakeState>();
  // The stop request arrives while the file is being ingested.
  state->on_begin_source = [&stop] { stop.store(true); };
  {
    auto engine = test::open_engine(state);
    Seen seen;
    FileSource source({path, dir.file("never-read.pcap")}, seen.observer());
    const RunResult result = run(*engine, source, StopToken(stop));
    EXPECT_TRUE(result.ok()) << result.store.message() << result.drain.message();
    ASSERT_EQ(seen.results.size(), 1U);
    EXPECT_EQ(seen.results[0].outcome, FileOutcome::stopped);
    EXPECT_EQ(seen.results[0].status.code(), StatusCode::cancelled);
    EXPECT_EQ(seen.results[0].status.message(), path + ": stopped after frame 65536");
  }
  // Durable up to the stop: the ledger says where, and holds those records.
  EXPECT_EQ(state->done(1), 65536U);
  const std::uint64_t first = state->record_count();
  EXPECT_GT(first, 0U);
  EXPECT_LT(first, expected);

  state->on_begin_source = nullptr;
  stop.store(false);
  {
    auto engine = test::open_engine(state);
    Seen seen;
    FileSource source({path}, seen.observer());
    const RunResult result = run(*engine, source, StopToken(stop));
    EXPECT_TRUE(result.ok());
    ASSERT_EQ(seen.results.size(), 1U);
    EXPECT_EQ(seen.results[0].outcome, FileOutcome::ok);
    EXPECT_EQ(seen.results[0].counted, expected - first);
  }
  EXPECT_EQ(state->record_count(), expected);
  EXPECT_EQ(state->duplicates, 0U);
  EXPECT_EQ(state->done(1), 150'000U);
}

TEST(Runner, AFailedWriteStopsTheRunWithItsStatus) {
  test::TempDir dir;
  std::vector<std::string> paths;
  for (int i = 0; i < 4; ++i) {
    paths.push_back(dir.file("f" + std::to_string(i) + ".pcap"));
    test::write_capture(paths.back(), 2'000, static_cast<std::uint64_t>(i) + 1);
  }
  auto state = std::make_shared<FakeState>();
  state->fail_writes = true;
  auto engine = test::open_engine(state);
  Seen seen;
  FileSource source(paths, seen.observer());
  const RunResult result = run(*engine, source, StopToken());
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(result.source.ok());
  EXPECT_EQ(result.store.message(), "store write failed: disk full");
  EXPECT_TRUE(result.drain.ok()); // not tried: the store already failed
  // The failure is seen by the next file at the latest; the rest are not read.
  ASSERT_FALSE(seen.results.empty());
  EXPECT_LE(seen.results.size(), 2U);
  EXPECT_EQ(seen.results.back().outcome, FileOutcome::store_failed);
  EXPECT_EQ(state->record_count(), 0U);
  EXPECT_EQ(state->done(1), 0U);
  EXPECT_FALSE(engine->store_status().ok());
}

TEST(Runner, AFailedWriteStopsALiveSourceLongBeforeItsDeadline) {
  auto state = std::make_shared<FakeState>();
  state->fail_writes = true;
  auto engine = test::open_engine(state);
  GeneratorOptions gopt;
  gopt.rate = 2000;
  GeneratorSource source(gopt);
  ASSERT_TRUE(source.begin(*engine).ok());
  RunOptions options;
  options.flush_every = std::chrono::milliseconds(20);
  options.max_wait = std::chrono::milliseconds(5);
  const auto t0 = Clock::now();
  options.deadline = t0 + std::chrono::seconds(30);
  const RunResult result = run(*engine, source, StopToken(), options);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(result.store.message(), "store write failed: disk full");
  EXPECT_GT(source.emitted(), 0U);
}

TEST(Runner, GeneratedTrafficIsPacedAndFlushedOnTheTimer) {
  auto state = std::make_shared<FakeState>();
  auto engine = test::open_engine(state);
  GeneratorOptions gopt;
  gopt.rate = 1000;
  GeneratorSource source(gopt);
  ASSERT_TRUE(source.begin(*engine).ok());
  RunOptions options;
  options.flush_every = std::chrono::milliseconds(50);
  options.max_wait = std::chrono::milliseconds(20);
  int ticks = 0;
  options.tick_every = std::chrono::milliseconds(100);
  options.tick = [&ticks] { ++ticks; };
  options.deadline = Clock::now() + std::chrono::milliseconds(500);
  const RunResult result = run(*engine, source, StopToken(), options);
  EXPECT_TRUE(result.ok());
  // ~500 frames in 0.5 s at 1000/s (generous bounds for a loaded machine).
  EXPECT_GE(source.emitted(), 200U);
  EXPECT_LE(source.emitted(), 700U);
  EXPECT_GE(ticks, 2);
  EXPECT_GT(state->writes, 1U); // flushed along the way, not only at the end
  EXPECT_EQ(engine->analyzer().stats().frames, source.emitted());
  EXPECT_EQ(state->duplicates, 0U);
}

} // namespace
} // namespace ta::ingest
