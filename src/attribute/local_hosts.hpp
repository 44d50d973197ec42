// attribute/local_hosts: the local hosts learnt from DNS responses (README
// "What is counted"), when no --local-net is given. Bounded
// (Options::local_hosts_capacity); over the bound the least recently active
// host is evicted, so a flood of responses to other hosts cannot push out a
// client that keeps sending.
//
// "Active" is receiving a DNS response (add) or being seen at work (touch):
// sending a packet under DNS-only naming, either end of a flow under flow
// naming. Only an insertion can evict, so a touch moves a host to the recent
// end only when the set has had an insertion since that host's last move
// (generation()): callers can skip the lookup while the generation they saw
// is current. Between two insertions, hosts therefore rank by their first
// activity after the earlier insertion.
//
// A pool with an open-addressing index and an intrusive recency list
// (ta/common/flat_index.hpp): no allocation once the pool has grown to the
// bound. Private to ta_attribute.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/flat_index.hpp"

namespace ta::attribute {

class LocalHosts {
public:
  explicit LocalHosts(std::size_t capacity);

  [[nodiscard]] bool contains(const IpAddress &a) const noexcept;
  // True when `a` is a local host; it becomes the most recently active one.
  bool touch(const IpAddress &a) noexcept;
  // Learns `a` (or refreshes it). True when it was not in the set; then
  // `evicted` says whether the least recently active host had to go.
  bool add(const IpAddress &a, bool &evicted);

  // Changes with every insertion (never 0).
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
  struct Entry {
    IpAddress address;
    std::uint32_t prev = flat::kNil;
    std::uint32_t next = flat::kNil;
  };

  [[nodiscard]] std::uint32_t find(const IpAddress &a, std::uint64_t hash) const noexcept;

  std::size_t capacity_;
  std::vector<Entry> pool_;
  std::vector<std::uint32_t> free_;
  flat::FlatIndex index_;
  flat::LruList<Entry> recency_; // front: least recently active
  std::uint64_t generation_ = 1;
};

} // namespace ta::attribute
