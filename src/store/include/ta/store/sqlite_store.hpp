// store/sqlite_store: the embedded backend (default ./traffic.db).
#pragma once

#include <memory>
#include <string>

#include "ta/store/store.hpp"

namespace ta::store {

// Opens (creating and migrating as needed) a SQLite database. On failure
// returns nullptr and sets `error` to one line naming the path.
[[nodiscard]] std::unique_ptr<Store> open_sqlite_store(const std::string &path,
                                                       std::string &error);

} // namespace ta::store
