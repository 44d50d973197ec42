// store/sqlite_store: the embedded backend (default ./traffic.db).
#pragma once

#include <memory>
#include <string>

#include "ta/store/store.hpp"

namespace ta::store {

// Opens (creating and migrating as needed) a SQLite database. On failure
// returns nullptr and sets `error` to one line naming the path (missing
// directory, not a SQLite file, another application's database, a schema
// version newer than this build).
//
// Backend specifics (the schema is described in sqlite_store.cpp):
// - A packet's key is (source id << 40) | frame, so a source may have at most
//   2^40 frames and there may be at most 2^23 sources; a batch breaking a
//   limit, referring to a name index out of range, or carrying a record
//   without a valid address fails as a whole, and nothing of it is stored.
// - query_endpoints is exact for any range: whole seconds come from the
//   per-second roll-ups; a range bound inside a second scans the packets
//   table (no time index) for the partial seconds. Whole-second bounds never
//   scan packets.
// - query_packets scans the packets table (no index on endpoint or time).
// - Calls on one Store are serialised by an internal mutex; several processes
//   may share the file (WAL; writers wait up to 5 s for each other).
[[nodiscard]] std::unique_ptr<Store> open_sqlite_store(const std::string &path, std::string &error);

} // namespace ta::store
