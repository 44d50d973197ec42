// cql/ring (private): which nodes hold the replicas of a token, for
// token-aware routing.
//
// The ring is every node's tokens (system.local / system.peers_v2 `tokens`)
// sorted; a token belongs to the range that ends at the first ring token >= it
// (wrapping past the largest to the smallest). Each range's replicas are
// computed once, at build(), the way Cassandra places them:
// - SimpleStrategy(rf): the owners of the next ring tokens, walking
//   clockwise from the range's own token, skipping nodes already chosen,
//   until rf distinct nodes (or every node);
// - NetworkTopologyStrategy({dc: rf}): the same walk, per data centre,
//   rack-aware: a node whose rack already holds a replica is taken only
//   while there are fewer racks than rf in that data centre (the first
//   rf - racks such repeats met, as Cassandra does); rf is capped at the
//   data centre's node count;
// - LocalStrategy: every node holds its own copy: any node is a replica.
// Other strategies (or none) give an empty ring: no token awareness.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ta/common/status.hpp"

namespace ta::cql::detail {

struct Replication {
  enum class Kind : std::uint8_t { none, local, simple, network_topology };
  Kind kind = Kind::none;
  std::uint32_t rf = 0;                                     // simple
  std::vector<std::pair<std::string, std::uint32_t>> dc_rf; // network_topology

  static Replication simple(std::uint32_t rf) { return {Kind::simple, rf, {}}; }
  static Replication network_topology(std::vector<std::pair<std::string, std::uint32_t>> dc_rf) {
    return {Kind::network_topology, 0, std::move(dc_rf)};
  }
  static Replication local() { return {Kind::local, 0, {}}; }
};

// A keyspace's replication from system_schema.keyspaces' `replication` map:
// {"class": "org.apache.cassandra.locator.SimpleStrategy",
//  "replication_factor": "3"} or {"class": "...NetworkTopologyStrategy",
// "dc1": "3", ...} or LocalStrategy; the class may be given short. A factor
// "N/T" (transient replication) counts N. unsupported for any other class
// (the message names it: no token awareness for that keyspace),
// invalid_argument for a missing class or a factor that is not a number.
[[nodiscard]] Result<Replication>
parse_replication(std::span<const std::pair<std::string, std::string>> options);

class TokenRing {
public:
  TokenRing() = default; // empty: replicas() is always empty

  // tokens: (token, node index); node_dc / node_rack by node index (a node
  // beyond their size has data centre and rack ""). A token listed twice
  // keeps its first owner.
  [[nodiscard]] static TokenRing build(std::vector<std::pair<std::int64_t, std::uint32_t>> tokens,
                                       const Replication &r, std::vector<std::string> node_dc,
                                       std::vector<std::string> node_rack);

  // The replicas of the range holding `token` (node indexes, placement
  // order); empty when the ring is empty. Valid as long as the ring.
  [[nodiscard]] std::span<const std::uint32_t> replicas(std::int64_t token) const noexcept;
  [[nodiscard]] bool empty() const noexcept { return tokens_.empty(); }
  [[nodiscard]] std::size_t ranges() const noexcept { return tokens_.size(); }

private:
  std::vector<std::int64_t> tokens_;    // sorted, distinct
  std::vector<std::uint32_t> offsets_;  // range i: replicas_[offsets_[i] .. offsets_[i+1])
  std::vector<std::uint32_t> replicas_; // flat
  bool everywhere_ = false;             // LocalStrategy: replicas_ is every node, for all
};

} // namespace ta::cql::detail
