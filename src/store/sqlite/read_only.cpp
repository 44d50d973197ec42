// store/sqlite/read_only: opening an existing store for reading only (query):
// nothing is created, migrated or written (sqlite.hpp).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include <sys/stat.h>

#include "ta/store/sqlite.hpp"

#include "sqlite_store.hpp"

namespace ta::store {
namespace detail::sqlite {
namespace {

// A path as an SQLite URI filename ("file:PATH"): %, ? and # are escaped,
// and a leading "//" is not taken for an authority.
std::string uri_of(const std::string &path) {
  std::string out = path.rfind("//", 0) == 0 ? "file://" : "file:";
  for (const char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

} // namespace

Result<std::unique_ptr<Store>> SqliteStore::open_read_only(const std::string &path) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  store->read_only_ = true;
  if (path.empty()) {
    return Status::invalid_argument(store->plain_error("empty database path"));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return Status(err == ENOENT ? StatusCode::not_found : StatusCode::io_error,
                  store->plain_error(err == ENOENT ? "no such store (reading creates none)"
                                                   : std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::invalid_argument(store->plain_error("not a regular file"));
  }
  // Without a -wal file no connection has the store open (the last one to
  // close removes it) and the main file holds everything: read it as
  // immutable, which creates no -wal/-shm. With one, a writer may be at
  // work: read through the WAL as any SQLite reader does.
  const bool wal = ::access((path + "-wal").c_str(), F_OK) == 0;
  const std::string uri = uri_of(path) + (wal ? "?mode=ro" : "?mode=ro&immutable=1");
  sqlite3 *raw = nullptr;
  const int rc = sqlite3_open_v2(
      uri.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  store->db_.reset(raw);
  if (rc != SQLITE_OK) {
    return Status::io_error(store->db_error("cannot open"));
  }
  std::string error;
  if (!store->check_readable(error)) {
    const int code = sqlite3_errcode(store->db_.get());
    return Status(code == SQLITE_NOTADB || code == SQLITE_CORRUPT ? StatusCode::corrupt
                                                                  : StatusCode::io_error,
                  error);
  }
  if (Status schema = store->check_current_schema(); !schema) {
    return schema;
  }
  if (!store->run_script("PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;", error) ||
      !store->prepare_all(error)) {
    return Status::io_error(error);
  }
  return std::unique_ptr<Store>(std::move(store));
}

} // namespace detail::sqlite

Result<std::unique_ptr<Store>> open_sqlite_store_read_only(const std::string &path) {
  try {
    return detail::sqlite::SqliteStore::open_read_only(path);
  } catch (...) {
    return Status::failure("sqlite store '" + path + "': out of memory");
  }
}

} // namespace ta::store
