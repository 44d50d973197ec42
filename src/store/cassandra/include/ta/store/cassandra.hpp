// store/cassandra (library ta_store_cassandra): many capture agents, one
// Cassandra cluster. Links ta_store, ta_cql (our CQL client: OpenSSL, LZ4)
// and SQLite (the spool is a SQLite file).
//
// The target comes parsed from the store spec (ta/store/spec.hpp). The
// password is a value in CassandraOptions: finding it (environment, a file)
// is the caller's job. The library never prints: the notes an operator
// needs while it runs (the cluster went away and came back, a damaged
// spooled batch was set aside) go to CassandraOptions::notice.
//
// Durable hand-off. write() appends the batch to an on-disk spool (a SQLite
// file next to the agent, fsync'd) and returns; a thread of the store sends
// spooled batches to Cassandra oldest first and deletes each only after every
// one of its statements was acknowledged. Cassandra down or slow: batches
// wait in the spool (bounded by spool_max_mb; write() blocks while it is
// full, which is the pipeline's backpressure) and drain in order once a node
// answers. Every row's key is fixed by what it records (agent, source,
// frame; roll-up rows also by the batch), so a batch sent twice writes the
// same cells: replays are idempotent.
//
// Permanent failures (bad credentials, a keyspace that cannot be created,
// a statement the server rejects) fail open or the next write(); the spool
// keeps what it holds for the next start.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ta/common/status.hpp"
#include "ta/store/spec.hpp"
#include "ta/store/store.hpp"

namespace ta::store {

struct CassandraOptions {
  std::string password; // "" = none (a spec with a user then fails to open)
  std::string agent_id; // "" = the host name
  std::string spool_path = "traffic-spool.db";
  std::uint64_t spool_max_mb = 1024; // write() waits while the spool holds more
  // CQL replication map, e.g. {'class': 'NetworkTopologyStrategy', 'dc1': 3}
  std::string replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
  std::int64_t ttl_seconds = 0; // default_time_to_live of packets and roll-ups
  bool twcs = false;            // TimeWindowCompactionStrategy, 1-day windows
  std::string consistency = "local_quorum";
  bool lz4 = false;
  // Where a write goes: to a replica of its partition (the token ring of
  // the keyspace, README "Token-aware routing") or round robin over the
  // nodes that are up (kept for comparison; the benchmark measures both).
  bool token_aware = true;
  bool tls = false;
  std::string tls_ca_file;
  double connect_timeout_seconds = 5;
  // Queries only: no spool, no schema changes; begin_source/write refuse.
  bool read_only = false;
  // One line (no newline) for the operator, from the store's own thread:
  // the cluster became unreachable (records wait in the spool) or reachable
  // again, a spooled batch did not decode and was set aside. Unset: dropped.
  std::function<void(std::string_view)> notice;
};

// Status::detail() of an open failure because the spool file belongs to
// another keyspace or agent (negative: never a CQL error code).
inline constexpr std::int32_t kSpoolOwnedElsewhere = -1;

// Whether `name` is a CQL consistency level (one, quorum, local_quorum, ...).
[[nodiscard]] bool is_consistency_level(std::string_view name);

// Connects, creates the schema if needed (not when read_only) and starts the
// drain thread. Failures are one line: invalid_argument (consistency level),
// unauthenticated (a user without a password, credentials refused), the
// spool's open failure, or the CQL failure (connecting, creating the
// keyspace, preparing statements) naming the host.
[[nodiscard]] Result<std::unique_ptr<Store>> open_cassandra_store(const CassandraTarget &target,
                                                                  const CassandraOptions &options);

} // namespace ta::store
