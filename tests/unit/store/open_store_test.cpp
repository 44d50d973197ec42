// Store SPEC parsing (and opening what it names: the null backend, SQLite).
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "ta/store/spec.hpp"
#include "ta/store/sqlite.hpp"
#include "ta/store/store.hpp"

#include "test_util.hpp"

namespace ta::store {
namespace {

namespace fs = std::filesystem;

// What the command line does with a none or SQLite spec.
std::unique_ptr<Store> open_store(std::string_view text, std::string &error) {
  auto spec = parse_store_spec(text);
  if (!spec) {
    error = spec.status().message();
    return nullptr;
  }
  if (spec->backend == Backend::none) {
    return make_null_store();
  }
  EXPECT_EQ(spec->backend, Backend::sqlite) << text;
  return test::take(open_sqlite_store(spec->sqlite_path), error);
}

TEST(NullStore, AcceptsEverythingAndKeepsNothing) {
  auto store = make_null_store();
  ASSERT_TRUE(store);
  SourceState state{42, 7, true};
  ASSERT_TRUE(store->begin_source({"abc", "x.pcap"}, state));
  EXPECT_EQ(state.id, 1);
  EXPECT_EQ(state.frames_done, 0U);
  EXPECT_FALSE(state.complete);

  Batch batch;
  batch.source_id = 1;
  batch.endpoints = {"a.example"};
  batch.packets.push_back(PacketRecord{1'000'000, 0, *IpAddress::parse("10.0.0.1"), 443, 6, 60, 0});
  batch.frames_through = 1;
  EXPECT_TRUE(store->write(batch));

  int calls = 0;
  EXPECT_TRUE(
      store->load_addresses([&](const IpAddress &, std::string_view, TimeUs, TimeUs) { ++calls; }));
  EXPECT_EQ(calls, 0);
  std::vector<EndpointSummary> endpoints(3);
  EXPECT_TRUE(store->query_endpoints({}, endpoints));
  EXPECT_TRUE(endpoints.empty());
  std::vector<PacketRow> packets(2);
  EXPECT_TRUE(store->query_packets("a.example", 0, packets));
  EXPECT_TRUE(packets.empty());
  std::vector<AddressRow> addresses(1);
  EXPECT_TRUE(store->query_addresses(addresses));
  EXPECT_TRUE(addresses.empty());
}

class OpenStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    tmp_ = std::make_unique<test::TempDir>("ta-open-store");
    dir_ = tmp_->path();
  }
  void TearDown() override { tmp_.reset(); }
  std::unique_ptr<test::TempDir> tmp_;
  fs::path dir_;
};

TEST_F(OpenStoreTest, NoneIsTheNullStore) {
  std::string error;
  auto store = open_store("none", error);
  ASSERT_TRUE(store) << error;
  SourceState state;
  ASSERT_TRUE(store->begin_source({"abc", ""}, state));
  EXPECT_EQ(state.id, 1);
}

TEST_F(OpenStoreTest, SqlitePrefixAndBarePathOpenSqlite) {
  std::string error;
  const auto prefixed = dir_ / "prefixed.db";
  auto a = open_store("sqlite:" + prefixed.string(), error);
  ASSERT_TRUE(a) << error;
  EXPECT_TRUE(fs::exists(prefixed));

  const auto bare = dir_ / "bare.db";
  auto b = open_store(bare.string(), error);
  ASSERT_TRUE(b) << error;
  EXPECT_TRUE(fs::exists(bare));

  SourceState state;
  ASSERT_TRUE(b->begin_source({"fp", "p"}, state));
  EXPECT_EQ(state.id, 1);
}

TEST_F(OpenStoreTest, EmptyPathIsAnError) {
  std::string error;
  EXPECT_FALSE(open_store("", error));
  EXPECT_NE(error.find("empty"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(open_store("sqlite:", error));
  EXPECT_NE(error.find("empty"), std::string::npos) << error;
}

TEST_F(OpenStoreTest, MissingDirectoryNamesThePath) {
  std::string error;
  const auto path = (dir_ / "no-such-dir" / "x.db").string();
  EXPECT_FALSE(open_store("sqlite:" + path, error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

} // namespace
} // namespace ta::store
