#include "stream_manager.hpp"

#include <algorithm>

namespace ta::cql::detail {

void StreamManager::reset(std::size_t max_in_flight) {
  const std::size_t n = std::clamp<std::size_t>(max_in_flight, 1, kMaxStreams);
  slots_.assign(n, kFree);
  free_.clear();
  free_.reserve(n);
  for (std::size_t i = n; i-- > 0;) {
    free_.push_back(static_cast<std::int16_t>(i));
  }
  orphans_ = 0;
}

std::optional<std::int16_t> StreamManager::acquire(std::uint32_t owner) {
  if (free_.empty() || owner >= kOrphan) {
    return std::nullopt;
  }
  const std::int16_t stream = free_.back();
  free_.pop_back();
  slots_[static_cast<std::size_t>(stream)] = owner;
  return stream;
}

std::optional<std::uint32_t> StreamManager::release(std::int16_t stream) {
  if (stream < 0 || static_cast<std::size_t>(stream) >= slots_.size()) {
    return std::nullopt;
  }
  auto &slot = slots_[static_cast<std::size_t>(stream)];
  if (slot == kFree) {
    return std::nullopt;
  }
  const std::uint32_t owner = slot;
  slot = kFree;
  free_.push_back(stream);
  if (owner == kOrphan) {
    --orphans_;
  }
  return owner;
}

bool StreamManager::release_orphan(std::int16_t stream) {
  if (stream < 0 || static_cast<std::size_t>(stream) >= slots_.size() ||
      slots_[static_cast<std::size_t>(stream)] != kOrphan) {
    return false;
  }
  (void)release(stream);
  return true;
}

void StreamManager::orphan(std::int16_t stream) {
  if (stream < 0 || static_cast<std::size_t>(stream) >= slots_.size()) {
    return;
  }
  auto &slot = slots_[static_cast<std::size_t>(stream)];
  if (slot != kFree && slot != kOrphan) {
    slot = kOrphan;
    ++orphans_;
  }
}

void StreamManager::orphan_all() {
  for (auto &slot : slots_) {
    if (slot != kFree && slot != kOrphan) {
      slot = kOrphan;
      ++orphans_;
    }
  }
}

std::vector<std::uint32_t> StreamManager::owners() const {
  std::vector<std::uint32_t> out;
  for (const std::uint32_t slot : slots_) {
    if (slot != kFree && slot != kOrphan) {
      out.push_back(slot);
    }
  }
  return out;
}

} // namespace ta::cql::detail
