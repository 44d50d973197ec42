// dns/client_table: what DNS answered to each client, (client, address) ->
// hostname, latest answer wins. Flow naming reads it first ("the latest
// answer sent to this client", README "Flow naming"), then AddressTable
// (the latest answer to anyone). Part of ta_dns, which links only ta_common.
//
// Bounded: at most `capacity` pairs; a new pair in a full table evicts the
// least recently learnt one (counted). Names are stored per pair (answers are
// rare next to packets; lookups happen once per new flow, never per packet).
//
// Not thread-safe; owned by the pipeline thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "ta/common/address.hpp"

namespace ta::dns {

struct ClientTableStats {
  std::uint64_t learnt = 0;
  std::uint64_t evictions = 0;
};

class ClientTable {
public:
  explicit ClientTable(std::size_t capacity = 1U << 18U);
  ~ClientTable();
  ClientTable(const ClientTable &) = delete;
  ClientTable &operator=(const ClientTable &) = delete;

  // `name` already lower-cased, without the trailing dot.
  void learn(const IpAddress &client, const IpAddress &address, std::string_view name);
  // The name is valid until the next learn().
  [[nodiscard]] std::optional<std::string_view> lookup(const IpAddress &client,
                                                       const IpAddress &address) const noexcept;

  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] const ClientTableStats &stats() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::dns
