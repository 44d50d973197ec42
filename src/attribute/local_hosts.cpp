// The bounded, least-recently-active set of learnt local hosts; see
// local_hosts.hpp for the contract.
#include "local_hosts.hpp"

#include <algorithm>

namespace ta::attribute {
namespace {

[[nodiscard]] std::uint64_t hash_of(const IpAddress &a) noexcept {
  return IpAddressHash{}(a);
}

} // namespace

LocalHosts::LocalHosts(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {
  const std::size_t up_front = std::min<std::size_t>(capacity_, std::size_t{1} << 16U);
  pool_.reserve(up_front);
  index_.reserve(up_front);
}

std::uint32_t LocalHosts::find(const IpAddress &a, std::uint64_t hash) const noexcept {
  return index_.find(hash,
                     [&](std::uint32_t i) { return flat::same_address(pool_[i].address, a); });
}

bool LocalHosts::contains(const IpAddress &a) const noexcept {
  return find(a, hash_of(a)) != flat::kNil;
}

bool LocalHosts::touch(const IpAddress &a) noexcept {
  const std::uint32_t i = find(a, hash_of(a));
  if (i == flat::kNil) {
    return false;
  }
  recency_.move_to_back(pool_, i);
  return true;
}

bool LocalHosts::add(const IpAddress &a, bool &evicted) {
  evicted = false;
  const std::uint64_t hash = hash_of(a);
  if (const std::uint32_t i = find(a, hash); i != flat::kNil) {
    recency_.move_to_back(pool_, i);
    return false;
  }
  if (index_.size() >= capacity_) {
    const std::uint32_t old = recency_.front();
    index_.erase(hash_of(pool_[old].address), old);
    recency_.unlink(pool_, old);
    free_.push_back(old);
    evicted = true;
  }
  std::uint32_t i = 0;
  if (!free_.empty()) {
    i = free_.back();
    free_.pop_back();
  } else {
    i = static_cast<std::uint32_t>(pool_.size());
    pool_.emplace_back();
  }
  pool_[i].address = a;
  index_.insert(hash, i);
  recency_.push_back(pool_, i);
  ++generation_;
  return true;
}

} // namespace ta::attribute
