// cql/cluster_rows (private): reading the cluster's description from the
// rows of system.local, system.peers_v2 (Cassandra 4+) and system.peers.
//
// Columns are found by name in the result metadata (SELECT *), so extra or
// reordered columns do not matter. Where a node is reached:
//   system.local     the node we asked (its address is not read)
//   system.peers_v2  native_address, native_port
//   system.peers     rpc_address (`peer` when it is 0.0.0.0 or ::), on the
//                    port of the node we asked (peers has no port column)
// tokens is a set<text> of Murmur3 tokens: [int n] then n x [bytes] each a
// signed 64-bit decimal. host_id and schema_version are uuids, kept as
// their 8-4-4-4-12 text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/cql/messages.hpp"

namespace ta::cql::detail {

enum class NodeTable : std::uint8_t { local, peers_v2, peers };

struct NodeRow {
  std::optional<IpAddress> address; // not read for system.local
  std::uint16_t port = 0;
  std::string data_center;
  std::string rack;
  std::string host_id;
  std::string schema_version;
  std::vector<std::int64_t> tokens;
};

// Reads row `r` of `res`. Returns an empty string when the row is usable,
// otherwise why not ("no native_address", "token \"x\" is not a 64-bit
// integer", ...). `default_port` is used for system.peers.
[[nodiscard]] std::string read_node_row(const ResultResponse &res, std::size_t r, NodeTable table,
                                        std::uint16_t default_port, NodeRow &out);

// A uuid cell as 8-4-4-4-12 lowercase hex; empty when null or not 16 bytes.
[[nodiscard]] std::string uuid_text(const Cell &c);

} // namespace ta::cql::detail
