// Shared helpers of the store tests: a temporary folder per test, the step
// from a Result to the (pointer, error text) the assertions read, and for
// the SQLite tests a fixture with a fresh database, a raw second connection
// to the file and a batch builder.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "ta/common/status.hpp"
#include "ta/store/sqlite.hpp"
#include "ta/store/store.hpp"
#include "ta/testing/bytes.hpp"

namespace ta::store::test {

// A fresh folder under the system's temporary directory, removed with
// everything in it when the object goes.
class TempDir {
public:
  explicit TempDir(const std::string &prefix = "ta-store") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << tmpl;
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  [[nodiscard]] const std::filesystem::path &path() const { return path_; }

private:
  std::filesystem::path path_;
};

// The value of `r`, or a default one (a null pointer) with the failure's
// message in `error`.
template <class T> T take(Result<T> r, std::string &error) {
  if (!r) {
    error = r.status().message();
    return T{};
  }
  return std::move(r).value();
}

// A batch as the spool wrote it before flow naming (format "TAB1", see
// src/store/cassandra/batch_codec.hpp), written out by hand from that
// format: source 7, frames_through 5, endpoints {"", "a.example"}, one packet
// (1700000000000001 µs, frame 4, 10.0.0.1:80, TCP, 60 bytes, "a.example"),
// one learnt address (10.0.0.1 -> "a.example" at 1700000000000000 µs), no
// local hosts.
inline constexpr const char *kSpooledV1Hex =
    "54414231" // "TAB1"
    "0000000000000007"
    "0000000000000005"
    "00" // source, frames_through, complete
    "00000002"
    "00000000"
    "00000009"
    "612e6578616d706c65" // endpoints
    "00000001"           // one packet:
    "00060a24181e4001"
    "0000000000000004" //   ts_us, frame
    "040a000001"
    "0050"
    "06"
    "0000003c"
    "00000001" //   address, port, protocol, bytes, endpoint
    "00000001"
    "040a000001"
    "00000001"
    "00060a24181e4000" // one learnt address
    "00000000";        // no local hosts

inline std::vector<std::byte> from_hex(std::string_view h) {
  return ta::testing::hex(h);
}

inline constexpr TimeUs kSec = 1'000'000;

inline IpAddress ip(const char *text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(IpAddress{});
}

// A raw second connection for looking at (and tampering with) the file.
class RawDb {
public:
  explicit RawDb(const std::filesystem::path &path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb &) = delete;
  RawDb &operator=(const RawDb &) = delete;

  std::int64_t integer(const std::string &sql) {
    sqlite3_stmt *s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
    std::int64_t v = -1;
    if (sqlite3_step(s) == SQLITE_ROW) {
      v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
  }
  std::string text(const std::string &sql) {
    sqlite3_stmt *s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
    std::string v;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      v = reinterpret_cast<const char *>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return v;
  }
  void exec(const std::string &sql) {
    char *err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err != nullptr ? err : "");
    sqlite3_free(err);
  }

private:
  sqlite3 *db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("ta-sqlite-store");
    dir_ = tmp_->path();
    path_ = dir_ / "traffic.db";
  }
  void TearDown() override { tmp_.reset(); }

  std::unique_ptr<Store> open() {
    std::string error;
    auto store = take(open_sqlite_store(path_.string()), error);
    EXPECT_TRUE(store) << error;
    return store;
  }

  static std::int64_t source(Store &store, const std::string &fingerprint = "fp-1") {
    SourceState state;
    const Status st = store.begin_source({fingerprint, "capture.pcap"}, state);
    EXPECT_TRUE(st) << st.message();
    return state.id;
  }

  static std::vector<EndpointSummary> endpoints(Store &store, TimeRange range = {}) {
    std::vector<EndpointSummary> out;
    const Status st = store.query_endpoints(range, out);
    EXPECT_TRUE(st) << st.message();
    return out;
  }

  static std::vector<FlowRow> flows(Store &store, FlowQuery query = {}) {
    std::vector<FlowRow> out;
    const Status st = store.query_flows(query, out);
    EXPECT_TRUE(st) << st.message();
    return out;
  }

  std::unique_ptr<TempDir> tmp_;
  std::filesystem::path dir_;
  std::filesystem::path path_;
};

// Builds a batch; endpoint names are interned on first use.
struct BatchBuilder {
  Batch batch;
  explicit BatchBuilder(std::int64_t source_id) { batch.source_id = source_id; }

  std::uint32_t name(const std::string &n) {
    auto it = std::find(batch.endpoints.begin(), batch.endpoints.end(), n);
    if (it != batch.endpoints.end()) {
      return static_cast<std::uint32_t>(it - batch.endpoints.begin());
    }
    batch.endpoints.push_back(n);
    return static_cast<std::uint32_t>(batch.endpoints.size() - 1);
  }
  // A sent packet (per-packet naming unless `flow` is given).
  BatchBuilder &packet(std::uint64_t frame, TimeUs ts, const std::string &endpoint, const char *dst,
                       std::uint32_t bytes, std::uint16_t port = 443, std::uint8_t protocol = 6,
                       NameSource source = NameSource::none, std::uint32_t flow = kNoFlow) {
    batch.packets.push_back(PacketRecord{ts, frame, ip(dst), port, protocol, bytes, name(endpoint),
                                         Direction::sent, source, flow});
    batch.frames_through = std::max(batch.frames_through, frame + 1);
    return *this;
  }
  // A packet of flow `flow`, in `d`, with the flow's endpoint, name and
  // source; adds itself to the flow's deltas.
  BatchBuilder &flow_packet(std::uint32_t flow, Direction d, std::uint64_t frame, TimeUs ts,
                            std::uint32_t bytes) {
    FlowRecord &f = batch.flows[flow];
    batch.packets.push_back(PacketRecord{ts, frame, f.endpoint_address, f.endpoint_port, f.protocol,
                                         bytes, f.name, d, f.source, flow});
    if (d == Direction::sent) {
      f.sent_packets += 1;
      f.sent_bytes += bytes;
    } else {
      f.received_packets += 1;
      f.received_bytes += bytes;
    }
    if (f.sent_packets + f.received_packets == 1) {
      f.first_seen = ts;
      f.last_seen = ts;
    }
    f.first_seen = std::min(f.first_seen, ts);
    f.last_seen = std::max(f.last_seen, ts);
    batch.frames_through = std::max(batch.frames_through, frame + 1);
    return *this;
  }
  // A flow with no packets yet in this batch; returns its index.
  std::uint32_t flow(std::int64_t origin, std::uint64_t first_frame, const char *client,
                     std::uint16_t client_port, const char *endpoint_address,
                     std::uint16_t endpoint_port, const std::string &endpoint, NameSource source,
                     std::uint8_t protocol = 6) {
    FlowRecord f;
    f.origin_source = origin;
    f.first_frame = first_frame;
    f.protocol = protocol;
    f.client = ip(client);
    f.client_port = client_port;
    f.endpoint_address = ip(endpoint_address);
    f.endpoint_port = endpoint_port;
    f.name = name(endpoint);
    f.source = source;
    batch.flows.push_back(f);
    return static_cast<std::uint32_t>(batch.flows.size() - 1);
  }
  BatchBuilder &learnt(const char *address, const std::string &n, TimeUs when) {
    batch.learnt.push_back(LearntAddress{ip(address), name(n), when});
    return *this;
  }
  BatchBuilder &through(std::uint64_t frames, bool complete = false) {
    batch.frames_through = frames;
    batch.source_complete = complete;
    return *this;
  }
};

} // namespace ta::store::test
