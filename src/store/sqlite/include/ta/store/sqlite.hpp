// store/sqlite (library ta_store_sqlite): the embedded backend (default
// ./traffic.db). Links ta_store and SQLite; the schema is described in
// src/store/sqlite/sqlite_store.hpp.
#pragma once

#include <memory>
#include <string>

#include "ta/common/status.hpp"
#include "ta/store/store.hpp"

namespace ta::store {

// Opens (creating and migrating as needed) a SQLite database. A failure is
// one line naming the path: io_error (missing directory, unreadable),
// corrupt (not a SQLite file, or a damaged one: every page is checked with
// PRAGMA quick_check before anything is written), unsupported (another application's database,
// a schema version newer than this build).
//
// Backend specifics:
// - A packet's key is (source id << 40) | frame, so a source may have at most
//   2^40 frames and there may be at most 2^23 sources; a batch breaking a
//   limit, referring to a name index out of range, or carrying a record
//   without a valid address fails as a whole, and nothing of it is stored.
// - query_endpoints is exact for any range: whole seconds come from the
//   per-second roll-ups; a range bound inside a second scans the packets
//   table (no time index) for the partial seconds. Whole-second bounds never
//   scan packets. Received packets have no packet rows: received counts and
//   the per-source name counts come from the whole seconds' roll-ups only
//   (exact for whole-second bounds; a bound inside a second leaves that
//   second's received and name counts out).
// - query_flows scans the flows table (no index besides its key).
// - query_packets scans the packets table (no index on endpoint or time).
// - Calls on one Store are serialised by an internal mutex; several processes
//   may share the file (WAL; writers wait up to 5 s for each other).
[[nodiscard]] Result<std::unique_ptr<Store>> open_sqlite_store(const std::string &path);

// Opens an existing store for reading only (query): nothing is created,
// migrated or written, not even a -wal or -shm file when none exists (the
// file is then read as immutable: no writer has it open). Fails with
// not_found when there is no file at `path`, unsupported when it is not a
// traffic-analyzer store or its schema is older or newer than this build's
// (an older one is migrated by the first command that writes to it), and
// like open_sqlite_store otherwise. Writes on the returned store fail.
[[nodiscard]] Result<std::unique_ptr<Store>> open_sqlite_store_read_only(const std::string &path);

} // namespace ta::store
