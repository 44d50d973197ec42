// store/rollup_table: the per-batch in-memory roll-up aggregation used by the
// SQLite backend (private to the store libraries).
//
// One entry per (endpoint id, second, endpoint address): sent packets and
// bytes, received packets and bytes, packets (both directions) per name
// source, and the first/last timestamp of either direction. The table is a
// flat open-addressing hash index over a dense vector of entries; clear()
// keeps both allocations, so after the first few batches (warm-up) adding a
// packet never allocates. Only growth past the largest batch seen so far
// allocates (and may throw std::bad_alloc; callers catch at the API boundary).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/time.hpp"
#include "ta/store/store.hpp"

namespace ta::store::detail {

struct RollupKey {
  std::int64_t endpoint_id = 0;
  std::int64_t second = 0;
  IpAddress address;
  friend bool operator==(const RollupKey &, const RollupKey &) = default;
};

inline constexpr std::size_t kNameSources = static_cast<std::size_t>(NameSource::count_);

struct Rollup {
  RollupKey key;
  std::int64_t packets = 0; // sent
  std::int64_t bytes = 0;   // sent
  std::int64_t received_packets = 0;
  std::int64_t received_bytes = 0;
  std::array<std::int64_t, kNameSources> names{}; // by NameSource, both directions
  TimeUs first_us = 0;
  TimeUs last_us = 0;

  void count(std::int64_t b, TimeUs ts, Direction d, NameSource s) noexcept {
    if (d == Direction::received) {
      received_packets += 1;
      received_bytes += b;
    } else {
      packets += 1;
      bytes += b;
    }
    const auto i = static_cast<std::size_t>(s);
    names[i < kNameSources ? i : 0] += 1;
    first_us = std::min(first_us, ts);
    last_us = std::max(last_us, ts);
  }
};

class RollupTable {
public:
  // Forgets every entry; keeps capacity.
  void clear() noexcept {
    entries_.clear();
    std::fill(slots_.begin(), slots_.end(), 0U);
  }

  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] std::span<const Rollup> entries() const noexcept { return entries_; }

  // Counts one packet of `bytes` at `ts` under `key`.
  void add(const RollupKey &key, std::int64_t bytes, TimeUs ts, Direction d = Direction::sent,
           NameSource source = NameSource::none) {
    if ((entries_.size() + 1) * 2 > slots_.size()) {
      grow();
    }
    std::size_t i = hash(key) & mask_;
    while (slots_[i] != 0) {
      Rollup &r = entries_[slots_[i] - 1];
      if (r.key == key) {
        r.count(bytes, ts, d, source);
        return;
      }
      i = (i + 1) & mask_;
    }
    Rollup &r = entries_.emplace_back();
    r.key = key;
    r.first_us = ts;
    r.last_us = ts;
    r.count(bytes, ts, d, source);
    slots_[i] = static_cast<std::uint32_t>(entries_.size());
  }

  // Orders the entries like the rollups primary key (endpoint id, second,
  // address bytes as SQLite compares BLOBs: memcmp, then shorter first), so
  // the upserts walk the B-tree in order. Invalidates the hash index: the
  // table accepts no add() until the next clear().
  void sort_by_key() noexcept {
    std::sort(entries_.begin(), entries_.end(), [](const Rollup &a, const Rollup &b) {
      if (a.key.endpoint_id != b.key.endpoint_id) {
        return a.key.endpoint_id < b.key.endpoint_id;
      }
      if (a.key.second != b.key.second) {
        return a.key.second < b.key.second;
      }
      const std::size_t la = a.key.address.length();
      const std::size_t lb = b.key.address.length();
      const int c =
          std::memcmp(a.key.address.bytes.data(), b.key.address.bytes.data(), std::min(la, lb));
      return c != 0 ? c < 0 : la < lb;
    });
  }

private:
  [[nodiscard]] static std::size_t hash(const RollupKey &k) noexcept {
    std::uint64_t h = IpAddressHash{}(k.address);
    h ^= static_cast<std::uint64_t>(k.second) * 0x9E3779B97F4A7C15ULL;
    h ^= static_cast<std::uint64_t>(k.endpoint_id) * 0xC2B2AE3D27D4EB4FULL;
    h *= 0xBF58476D1CE4E5B9ULL;
    return static_cast<std::size_t>(h ^ (h >> 29U));
  }

  void grow() {
    const std::size_t size = slots_.empty() ? 1024 : slots_.size() * 2;
    slots_.assign(size, 0U);
    mask_ = size - 1;
    for (std::size_t e = 0; e < entries_.size(); ++e) {
      std::size_t i = hash(entries_[e].key) & mask_;
      while (slots_[i] != 0) {
        i = (i + 1) & mask_;
      }
      slots_[i] = static_cast<std::uint32_t>(e + 1);
    }
    entries_.reserve(size / 2);
  }

  std::vector<Rollup> entries_;
  std::vector<std::uint32_t> slots_; // 0 = empty, else index into entries_ + 1
  std::size_t mask_ = 0;
};

} // namespace ta::store::detail
