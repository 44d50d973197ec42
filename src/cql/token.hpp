// cql/token (private): the partition token of a row as Cassandra's
// Murmur3Partitioner computes it, and the routing key it is computed from.
//
// Token: the first 64-bit half of MurmurHash3 x64_128 (seed 0) of the
// serialized partition key, read as a signed number; the one value
// INT64_MIN is reserved by Cassandra as the ring's minimum and becomes
// INT64_MAX. The 1..15 tail bytes are read as *signed* bytes (Java's byte),
// so a tail byte >= 0x80 sign-extends into the bits above it: that is where
// a textbook MurmurHash3 gives a different token.
//
// Routing key (the serialized partition key): with one partition-key column
// the column's value bytes; with several, each as
// [2-byte big-endian length][value][0x00], concatenated in key order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ta::cql::detail {

// Never fails; an empty key hashes to 0 (Cassandra refuses empty partition
// keys, so no stored row has one).
[[nodiscard]] std::int64_t murmur3_token(std::span<const std::byte> key) noexcept;

// The routing key of bound values (Values::encoded(): count x [bytes]) for
// the partition-key indexes of a prepared statement. false (out unspecified)
// when a key value is null or unset, an index is out of range, a component
// is longer than 65535 bytes, or the values are malformed.
bool routing_key(std::span<const std::byte> encoded_values, std::uint16_t count,
                 std::span<const std::uint16_t> pk_indices, std::vector<std::byte> &out);

} // namespace ta::cql::detail
