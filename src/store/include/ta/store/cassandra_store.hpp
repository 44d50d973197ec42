// store/cassandra_store: many capture agents, one Cassandra cluster.
//
// Spec: cassandra://[USER@]HOST[:PORT][,HOST[:PORT]]...[/KEYSPACE]
//   (IPv6 literals in brackets: cassandra://[::1]:9042). The password is
//   never part of the spec: it comes from CassandraOptions::password, which
//   the command line fills from TRAFFIC_ANALYZER_CASSANDRA_PASSWORD or a file.
//
// Durable hand-off. write() appends the batch to an on-disk spool (a SQLite
// file next to the agent, fsync'd) and returns; a thread of the store sends
// spooled batches to Cassandra oldest first and deletes each only after every
// one of its statements was acknowledged. Cassandra down or slow: batches
// wait in the spool (bounded by spool_max_bytes; write() blocks while it is
// full, which is the pipeline's backpressure) and drain in order once a node
// answers. Every row's key is fixed by what it records (agent, source,
// frame; roll-up rows also by the batch), so a batch sent twice writes the
// same cells: replays are idempotent.
//
// Permanent failures (bad credentials, a keyspace that cannot be created,
// a statement the server rejects) fail open() or the next write(); the spool
// keeps what it holds for the next start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ta/store/store.hpp"

namespace ta::store {

struct CassandraOptions {
  std::string password;      // "" = TRAFFIC_ANALYZER_CASSANDRA_PASSWORD, or password_file
  std::string password_file; // first line is the password
  std::string agent_id;      // "" = the host name
  std::string spool_path = "traffic-spool.db";
  std::uint64_t spool_max_mb = 1024; // write() waits while the spool holds more
  // CQL replication map, e.g. {'class': 'NetworkTopologyStrategy', 'dc1': 3}
  std::string replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
  std::int64_t ttl_seconds = 0; // default_time_to_live of packets and roll-ups
  bool twcs = false;            // TimeWindowCompactionStrategy, 1-day windows
  std::string consistency = "local_quorum";
  bool lz4 = false;
  bool tls = false;
  std::string tls_ca_file;
  double connect_timeout_seconds = 5;
  // Queries only: no spool, no schema changes; begin_source/write refuse.
  bool read_only = false;
};

struct CassandraTarget {
  std::string user;
  std::vector<std::pair<std::string, std::uint16_t>> hosts;
  std::string keyspace = "traffic_analyzer";
};

[[nodiscard]] bool is_cassandra_spec(std::string_view spec);
// Parses the spec; false and one line in `error` when it is malformed
// (a password in it, an empty host, a bad port, a keyspace name CQL refuses).
[[nodiscard]] bool parse_cassandra_spec(std::string_view spec, CassandraTarget &target,
                                        std::string &error);

[[nodiscard]] std::unique_ptr<Store>
open_cassandra_store(std::string_view spec, const CassandraOptions &options, std::string &error);

} // namespace ta::store
