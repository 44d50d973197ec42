// app/store_open: --store SPEC -> an opened backend. The one place of the
// command line that links every store backend (ta_store_sqlite,
// ta_store_cassandra) and words their failures for the user: it finds the
// Cassandra password (TRAFFIC_ANALYZER_CASSANDRA_PASSWORD, or the first
// line of --cassandra-password-file), prints the Cassandra store's notices
// on stderr, and names the flag behind a refused value.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ta/common/status.hpp"
#include "ta/store/cassandra.hpp"
#include "ta/store/store.hpp"

namespace ta::app {

// The Cassandra flags: the backend's options, plus where its password is
// read from (the options carry the password itself).
struct CassandraArgs : store::CassandraOptions {
  std::string password_file; // first line is the password
};

// The message of a failure is the one line the user sees (without the
// "traffic-analyzer: " prefix).
[[nodiscard]] Result<std::unique_ptr<store::Store>> open_store(std::string_view spec,
                                                               const CassandraArgs &cassandra);

} // namespace ta::app
