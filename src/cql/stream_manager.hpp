// cql/stream_manager (private): the stream ids of one connection.
//
// A v4 request carries a stream id in 0..32767 that its response echoes
// (spec section 2.3); a connection has at most max_in_flight ids out at
// once. Each id in use maps to an owner (the session's task index). An id
// whose owner gave up (timeout, abandoned call) becomes an orphan: it stays
// reserved until its late response arrives, so no id is reused while the
// server may still answer on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ta::cql::detail {

class StreamManager {
public:
  static constexpr std::size_t kMaxStreams = 32768;
  // Owner value of an orphaned id; owners must be below it.
  static constexpr std::uint32_t kOrphan = 0xFFFFFFFEU;

  explicit StreamManager(std::size_t max_in_flight = 1) { reset(max_in_flight); }

  // Every id free again; capacity clamped to 1..kMaxStreams.
  void reset(std::size_t max_in_flight);

  // A free id for `owner`, the lowest recently released first; nullopt
  // when max_in_flight ids are out.
  [[nodiscard]] std::optional<std::int16_t> acquire(std::uint32_t owner);
  // A response arrived on `stream`: frees it and returns its owner (kOrphan
  // for an orphan); nullopt when the id is not in use (a protocol error).
  [[nodiscard]] std::optional<std::uint32_t> release(std::int16_t stream);
  // Frees `stream` only if it is an orphan; false otherwise.
  bool release_orphan(std::int16_t stream);
  // The owner stops waiting; the id stays reserved until released.
  void orphan(std::int16_t stream);
  void orphan_all();

  // Owners of the ids in use that are not orphans, in id order.
  [[nodiscard]] std::vector<std::uint32_t> owners() const;

  [[nodiscard]] bool available() const noexcept { return !free_.empty(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }
  [[nodiscard]] std::size_t in_flight() const noexcept { return slots_.size() - free_.size(); }
  [[nodiscard]] std::size_t orphans() const noexcept { return orphans_; }

private:
  static constexpr std::uint32_t kFree = 0xFFFFFFFFU;
  std::vector<std::uint32_t> slots_; // id -> owner, kOrphan or kFree
  std::vector<std::int16_t> free_;   // stack: back() is handed out next
  std::size_t orphans_ = 0;
};

} // namespace ta::cql::detail
