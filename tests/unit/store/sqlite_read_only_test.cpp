// The SQLite backend opened for reading only (query), and the page check a
// writer runs before it adds anything.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "ta/store/sqlite.hpp"
#include "ta/store/store.hpp"

#include "test_util.hpp"

namespace ta::store {
namespace {

namespace fs = std::filesystem;
using test::BatchBuilder;
using test::kSec;
using test::RawDb;
using test::SqliteStoreTest;

std::vector<std::string> listing(const fs::path &dir) {
  std::vector<std::string> names;
  for (const auto &e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<char> bytes_of(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(SqliteStoreTest, ReadOnlyOpenOfAMissingPathCreatesNothing) {
  auto opened = open_sqlite_store_read_only(path_.string());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::not_found);
  EXPECT_NE(opened.status().message().find(path_.string()), std::string::npos);
  EXPECT_TRUE(listing(dir_).empty());
}

TEST_F(SqliteStoreTest, ReadOnlyOpenReadsWithoutWritingOrCreatingFiles) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    const auto id = source(*store);
    ASSERT_TRUE(
        store->write(BatchBuilder(id).packet(0, 5 * kSec, "a.example", "10.0.0.1", 100).batch));
  }
  ASSERT_EQ(listing(dir_), std::vector<std::string>{"traffic.db"}); // closed: no -wal
  const auto before = bytes_of(path_);
  struct stat st_before {};
  ASSERT_EQ(::stat(path_.c_str(), &st_before), 0);
  {
    std::string error;
    auto store = test::take(open_sqlite_store_read_only(path_.string()), error);
    ASSERT_TRUE(store) << error;
    const auto eps = endpoints(*store);
    ASSERT_EQ(eps.size(), 1U);
    EXPECT_EQ(eps[0].endpoint, "a.example");
    SourceState state;
    EXPECT_FALSE(store->begin_source({"fp-2", "other.pcap"}, state).ok());
    EXPECT_EQ(listing(dir_), std::vector<std::string>{"traffic.db"});
  }
  struct stat st_after {};
  ASSERT_EQ(::stat(path_.c_str(), &st_after), 0);
  EXPECT_EQ(st_after.st_mtim.tv_sec, st_before.st_mtim.tv_sec);
  EXPECT_EQ(st_after.st_mtim.tv_nsec, st_before.st_mtim.tv_nsec);
  EXPECT_EQ(bytes_of(path_), before);
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"traffic.db"});
}

TEST_F(SqliteStoreTest, ReadOnlyOpenNamesAnOlderSchemaAndLeavesIt) {
  fs::copy_file(fs::path(TA_TEST_DATA_DIR) / "store_v2_espn.db", path_);
  const auto before = bytes_of(path_);
  auto opened = open_sqlite_store_read_only(path_.string());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::unsupported);
  EXPECT_NE(opened.status().message().find("schema version 2 was written by an earlier release"),
            std::string::npos)
      << opened.status().message();
  EXPECT_EQ(bytes_of(path_), before);
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"traffic.db"});
}

TEST_F(SqliteStoreTest, ReadOnlyOpenRefusesAnEmptyFile) {
  { std::ofstream(path_.string()); }
  auto opened = open_sqlite_store_read_only(path_.string());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::unsupported);
  EXPECT_EQ(fs::file_size(path_), 0U);
}

TEST_F(SqliteStoreTest, NewStoresAreNotWorldReadable) {
  const mode_t old = ::umask(0);
  { auto store = open(); }
  ::umask(old);
  EXPECT_EQ(fs::status(path_).permissions(),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

TEST_F(SqliteStoreTest, ADamagedPageIsRefusedBeforeAnythingIsWritten) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    const auto id = source(*store);
    BatchBuilder b(id);
    for (std::uint64_t f = 0; f < 20000; ++f) {
      b.packet(f, static_cast<TimeUs>(f) * kSec, "a.example", "10.0.0.1", 100);
    }
    ASSERT_TRUE(store->write(b.batch));
  }
  const auto size = fs::file_size(path_);
  const std::uintmax_t page = 16384;
  ASSERT_GT(size / page, 8U);
  {
    // A page in the middle of the packets table: appending never reads it.
    std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>((size / page / 2) * page));
    const std::string junk(page, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const auto before = bytes_of(path_);
  auto opened = open_sqlite_store(path_.string());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::corrupt);
  EXPECT_NE(opened.status().message().find("damaged"), std::string::npos)
      << opened.status().message();
  EXPECT_EQ(opened.status().message().find('\n'), std::string::npos);
  EXPECT_EQ(bytes_of(path_), before);
}

} // namespace
} // namespace ta::store
