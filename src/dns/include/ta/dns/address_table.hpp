// dns/address_table: what DNS taught, address -> hostname, latest answer wins
// (README "What is counted"). Part of ta_dns, which links only ta_common.
//
// Bounded: at most `capacity` addresses; learning a new address into a full
// table evicts the least recently learnt one (counted). Hostnames are interned
// once and referred to by NameId; a NameId stays valid (and its name readable)
// until release_unused() is called, even if its last address was replaced or
// evicted in between. The pipeline calls release_unused() only at batch
// boundaries, so ids inside an open batch never dangle.
//
// Not thread-safe; owned by the pipeline thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "ta/common/address.hpp"
#include "ta/common/time.hpp"

namespace ta::dns {

using NameId = std::uint32_t;

struct AddressTableStats {
  std::uint64_t learnt = 0;    // learn() calls (answers applied)
  std::uint64_t replaced = 0;  // learn() that changed an address's name
  std::uint64_t evictions = 0; // addresses dropped by the capacity bound
};

class AddressTable {
public:
  explicit AddressTable(std::size_t capacity = 1U << 20U);
  ~AddressTable();
  AddressTable(const AddressTable &) = delete;
  AddressTable &operator=(const AddressTable &) = delete;

  // address -> name (already lower-cased, no trailing dot). `when` is the
  // answer's capture time, kept for persistence.
  void learn(const IpAddress &address, std::string_view name, TimeUs when);

  // Hot path: no allocation.
  [[nodiscard]] std::optional<NameId> lookup(const IpAddress &address) const noexcept;
  [[nodiscard]] std::string_view name(NameId id) const noexcept;

  // Frees names no address refers to any more. Invalidates their NameIds.
  void release_unused();

  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::size_t capacity() const noexcept;
  [[nodiscard]] std::size_t name_count() const noexcept;
  [[nodiscard]] const AddressTableStats &stats() const noexcept;

  // Every entry, least recently learnt first (for persistence and `query addresses`).
  void for_each(const std::function<void(const IpAddress &, std::string_view name,
                                         TimeUs first_learnt, TimeUs last_learnt)> &fn) const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::dns
