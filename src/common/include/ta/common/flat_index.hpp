// common/flat_index: the building blocks of the bounded tables (the learnt
// address table, the per-client answers, DNS-over-TCP streams, the flow
// table): a pool of entries (std::vector, addressed by uint32 index) with
//   - a FlatIndex: open-addressing hash index key -> pool index, and
//   - an LruList: an intrusive doubly-linked recency list through the pool.
// Both are O(1) per operation and allocate only when the index grows.
// Header-only, part of ta_common.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "ta/common/address.hpp"

namespace ta::flat {

inline constexpr std::uint32_t kNil = std::numeric_limits<std::uint32_t>::max();

// IpAddress equality as two 64-bit compares: the defaulted operator== goes
// through memcmp, a call that dominated the lookup path when profiled.
[[nodiscard]] inline bool same_address(const IpAddress &a, const IpAddress &b) noexcept {
  std::uint64_t a_lo = 0;
  std::uint64_t a_hi = 0;
  std::uint64_t b_lo = 0;
  std::uint64_t b_hi = 0;
  std::memcpy(&a_lo, a.bytes.data(), 8);
  std::memcpy(&a_hi, a.bytes.data() + 8, 8);
  std::memcpy(&b_lo, b.bytes.data(), 8);
  std::memcpy(&b_hi, b.bytes.data() + 8, 8);
  return ((a_lo ^ b_lo) | (a_hi ^ b_hi) | std::uint64_t(a.family ^ b.family)) == 0;
}

// Linear probing with backward-shift deletion (no tombstones), load <= 1/2.
// A slot is (tag << 32) | (value + 1), 0 = empty. The tag is the top 32 bits
// of the (re-mixed) hash and the home slot is the tag's top bits, so the index
// can rehash and delete without ever looking at keys; only find() compares
// keys, through the caller's predicate, and only on a tag match.
class FlatIndex {
public:
  FlatIndex() = default;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  // Room for `n` values without growing.
  void reserve(std::size_t n) {
    std::size_t cap = slots_.empty() ? kMinSlots : slots_.size();
    while (cap < 2 * n) {
      cap *= 2;
    }
    if (cap != slots_.size()) {
      rehash(cap);
    }
  }

  // The value whose key `eq(value)` accepts, or kNil.
  template <class Eq> [[nodiscard]] std::uint32_t find(std::uint64_t hash, Eq &&eq) const noexcept {
    if (slots_.empty()) {
      return kNil;
    }
    const std::uint32_t tag = tag_of(hash);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = home(tag); slots_[i] != 0; i = (i + 1) & mask) {
      const std::uint64_t s = slots_[i];
      if (static_cast<std::uint32_t>(s >> 32U) == tag) {
        const auto value = static_cast<std::uint32_t>(s) - 1U;
        if (eq(value)) {
          return value;
        }
      }
    }
    return kNil;
  }

  // Adds `value` under `hash`; the caller guarantees its key is not present.
  void insert(std::uint64_t hash, std::uint32_t value) {
    if (2 * (size_ + 1) > slots_.size()) {
      rehash(slots_.empty() ? kMinSlots : 2 * slots_.size());
    }
    place(tag_of(hash), value);
    ++size_;
  }

  // Removes `value`, which must have been inserted under `hash`.
  void erase(std::uint64_t hash, std::uint32_t value) noexcept {
    if (slots_.empty()) {
      return;
    }
    const std::uint32_t tag = tag_of(hash);
    const std::uint64_t want = slot_of(tag, value);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = home(tag);
    while (slots_[i] != want) {
      if (slots_[i] == 0) {
        return; // not present
      }
      i = (i + 1) & mask;
    }
    // Backward shift: pull later members of the probe run into the hole when
    // the hole lies on their probe path (between their home and them).
    for (std::size_t j = (i + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
      const std::size_t k = home(static_cast<std::uint32_t>(slots_[j] >> 32U));
      if (((j - k) & mask) >= ((j - i) & mask)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = 0;
    --size_;
  }

  void clear() noexcept {
    for (auto &s : slots_) {
      s = 0;
    }
    size_ = 0;
  }

private:
  static constexpr std::size_t kMinSlots = 16;

  static std::uint32_t tag_of(std::uint64_t hash) noexcept {
    // Fibonacci re-mix: the caller's hash may have weak high bits.
    return static_cast<std::uint32_t>((hash * 0x9E3779B97F4A7C15ULL) >> 32U);
  }
  static std::uint64_t slot_of(std::uint32_t tag, std::uint32_t value) noexcept {
    return (std::uint64_t{tag} << 32U) | (std::uint64_t{value} + 1U);
  }
  [[nodiscard]] std::size_t home(std::uint32_t tag) const noexcept {
    return static_cast<std::size_t>(std::uint64_t{tag} >> shift_); // shift_ <= 32
  }

  void place(std::uint32_t tag, std::uint32_t value) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = home(tag);
    while (slots_[i] != 0) {
      i = (i + 1) & mask;
    }
    slots_[i] = slot_of(tag, value);
  }

  void rehash(std::size_t new_size) {
    std::vector<std::uint64_t> old(new_size, 0);
    old.swap(slots_);
    unsigned bits = 0;
    while ((std::size_t{1} << bits) < new_size) {
      ++bits;
    }
    shift_ = 32U - bits;
    for (const std::uint64_t s : old) {
      if (s != 0) {
        place(static_cast<std::uint32_t>(s >> 32U), static_cast<std::uint32_t>(s) - 1U);
      }
    }
  }

  std::vector<std::uint64_t> slots_; // power-of-two size, or empty
  unsigned shift_ = 32;
  std::size_t size_ = 0;
};

// Intrusive list over a pool whose entries have two `std::uint32_t` link
// members (by default `prev` and `next`). Front = least recent.
template <class Entry, std::uint32_t Entry::*Prev = &Entry::prev,
          std::uint32_t Entry::*Next = &Entry::next>
class LruList {
public:
  [[nodiscard]] std::uint32_t front() const noexcept { return head_; }
  [[nodiscard]] bool empty() const noexcept { return head_ == kNil; }

  void push_back(std::vector<Entry> &pool, std::uint32_t i) noexcept {
    (pool[i].*Prev) = tail_;
    (pool[i].*Next) = kNil;
    if (tail_ != kNil) {
      (pool[tail_].*Next) = i;
    } else {
      head_ = i;
    }
    tail_ = i;
  }

  void unlink(std::vector<Entry> &pool, std::uint32_t i) noexcept {
    const std::uint32_t p = (pool[i].*Prev);
    const std::uint32_t n = (pool[i].*Next);
    (p != kNil ? (pool[p].*Next) : head_) = n;
    (n != kNil ? (pool[n].*Prev) : tail_) = p;
    (pool[i].*Prev) = kNil;
    (pool[i].*Next) = kNil;
  }

  void move_to_back(std::vector<Entry> &pool, std::uint32_t i) noexcept {
    if (tail_ != i) {
      unlink(pool, i);
      push_back(pool, i);
    }
  }

private:
  std::uint32_t head_ = kNil;
  std::uint32_t tail_ = kNil;
};

} // namespace ta::flat
