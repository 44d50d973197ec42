// Shared by the ingest tests: a temporary folder, captures written by
// ta_generate, and a fake Store that keeps the ledger and every record key in
// memory (state shared across engines, so a "rerun" sees the first run's
// ledger), can fail its writes, and counts records written twice.
#pragma once

#include <fcntl.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "ta/generate/generate.hpp"
#include "ta/ingest/engine.hpp"
#include "ta/store/store.hpp"

namespace ta::ingest::test {

class TempDir {
public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ingest-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  [[nodiscard]] const std::string &path() const { return path_; }
  [[nodiscard]] std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

// A generated capture of `packets` frames (Ethernet pcap); its truth.
inline generate::GroundTruth write_capture(const std::string &path, std::uint64_t packets,
                                           std::uint64_t seed = 1) {
  generate::Options opt;
  opt.packets = packets;
  opt.endpoints = 10;
  opt.seed = seed;
  auto written = generate::write_capture(opt, path);
  EXPECT_TRUE(written.ok()) << written.status().message();
  return written.ok() ? std::move(written).value() : generate::GroundTruth{};
}

// The first `bytes` bytes of `from` (a capture cut mid-frame, as a writer
// still busy with it leaves it).
inline void copy_prefix(const std::string &from, const std::string &to, std::uintmax_t bytes) {
  std::ifstream in(from, std::ios::binary);
  std::string data(bytes, '\0');
  in.read(data.data(), static_cast<std::streamsize>(bytes));
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out.write(data.data(), in.gcount());
}

// Sets a file's modification time `seconds` into the past.
inline void age_file(const std::string &path, double seconds) {
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  timespec times[2] = {st.st_atim, st.st_mtim};
  times[1].tv_sec -= static_cast<time_t>(seconds + 1);
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

// What the fake store holds; outlives each FakeStore.
struct FakeState {
  std::mutex mu;
  std::map<std::string, std::int64_t> ids; // fingerprint -> source id
  std::map<std::int64_t, std::uint64_t> frames_done;
  std::set<std::pair<std::int64_t, std::uint64_t>> records; // (source, frame)
  std::uint64_t duplicates = 0;
  std::uint64_t writes = 0;
  bool fail_writes = false;
  // Called (on the writer thread) inside every begin_source.
  std::function<void()> on_begin_source;
  // The next this many begin_source calls fail `unavailable` (the store
  // cannot answer now); with `begin_fails_for_good`, every one fails for good.
  int begin_unavailable = 0;
  bool begin_fails_for_good = false;
  std::vector<std::string> begun; // paths whose ledger entry was started, in order

  [[nodiscard]] std::uint64_t record_count() {
    std::lock_guard lock(mu);
    return records.size();
  }
  [[nodiscard]] std::uint64_t done(std::int64_t id) {
    std::lock_guard lock(mu);
    return frames_done[id];
  }
};

class FakeStore final : public store::Store {
public:
  explicit FakeStore(std::shared_ptr<FakeState> state) : state_(std::move(state)) {}

  store::Status begin_source(const store::SourceInfo &info, store::SourceState &out) override {
    if (state_->on_begin_source) {
      state_->on_begin_source();
    }
    std::lock_guard lock(state_->mu);
    if (state_->begin_fails_for_good) {
      return store::Status::failure("ledger table missing");
    }
    if (state_->begin_unavailable > 0) {
      --state_->begin_unavailable;
      return store::Status::unavailable("no node answers");
    }
    state_->begun.push_back(info.path);
    auto [it, added] =
        state_->ids.emplace(info.fingerprint, static_cast<std::int64_t>(state_->ids.size() + 1));
    (void)added;
    out.id = it->second;
    out.frames_done = state_->frames_done[out.id];
    return {};
  }
  store::Status write(const store::Batch &batch) override {
    std::lock_guard lock(state_->mu);
    if (state_->fail_writes) {
      return store::Status::failure("disk full");
    }
    ++state_->writes;
    for (const auto &p : batch.packets) {
      if (!state_->records.emplace(batch.source_id, p.frame).second) {
        ++state_->duplicates;
      }
    }
    auto &done = state_->frames_done[batch.source_id];
    done = std::max(done, batch.frames_through);
    return {};
  }
  store::Status load_addresses(
      const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &) override {
    return {};
  }
  store::Status load_local_hosts(const std::function<void(const IpAddress &)> &) override {
    return {};
  }
  store::Status query_endpoints(const store::TimeRange &,
                                std::vector<store::EndpointSummary> &) override {
    return {};
  }
  store::Status query_packets(std::string_view, std::size_t,
                              std::vector<store::PacketRow> &) override {
    return {};
  }
  store::Status query_addresses(std::vector<store::AddressRow> &) override { return {}; }

private:
  std::shared_ptr<FakeState> state_;
};

// An engine over a fake store on `state` (no metrics).
inline std::unique_ptr<Engine> open_engine(const std::shared_ptr<FakeState> &state) {
  auto engine = Engine::open(std::make_unique<FakeStore>(state), Options{});
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

} // namespace ta::ingest::test
