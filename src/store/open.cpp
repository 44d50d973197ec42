// store/open: maps a --store SPEC to a backend.
//   "none"               -> the null store
//   "cassandra://..."    -> Cassandra (see cassandra_store.hpp)
//   "sqlite:PATH"        -> SQLite at PATH
//   "PATH"               -> SQLite at PATH (anything else is taken as a path)
// An empty spec or an empty PATH is an error.
#include "ta/store/open.hpp"

#include <new>

#include "ta/store/sqlite_store.hpp"

namespace ta::store {

std::unique_ptr<Store> open_store(std::string_view spec, std::string &error) {
  return open_store(spec, CassandraOptions{}, error);
}

std::unique_ptr<Store> open_store(std::string_view spec, const CassandraOptions &cassandra,
                                  std::string &error) {
  try {
    if (spec == "none") {
      auto store = make_null_store();
      if (!store) {
        error = "store none: out of memory";
      }
      return store;
    }
    if (is_cassandra_spec(spec)) {
      return open_cassandra_store(spec, cassandra, error);
    }
    constexpr std::string_view kSqlite = "sqlite:";
    std::string_view path = spec;
    if (path.starts_with(kSqlite)) {
      path.remove_prefix(kSqlite.size());
    }
    if (path.empty()) {
      error = "store '" + std::string(spec) + "': empty database path";
      return nullptr;
    }
    return open_sqlite_store(std::string(path), error);
  } catch (const std::bad_alloc &) {
    error = "store: out of memory";
    return nullptr;
  }
}

} // namespace ta::store
