// Per-client answer table: a pool of entries with a FlatIndex by (client,
// address) and an LruList by learn time, as address_table.cpp (see
// flat_index.hpp); a full table reuses the least recently learnt slot.
#include "ta/dns/client_table.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "flat_index.hpp"

namespace ta::dns {
namespace {

using detail::kNil;

struct Entry {
  IpAddress client;
  IpAddress address;
  std::string name;
  std::uint32_t prev = kNil;
  std::uint32_t next = kNil;
};

std::uint64_t hash_pair(const IpAddress &client, const IpAddress &address) noexcept {
  const std::uint64_t a = IpAddressHash{}(client);
  const std::uint64_t b = IpAddressHash{}(address);
  return a ^ (b * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL);
}

constexpr std::size_t kInitialRoom = 1024;

} // namespace

struct ClientTable::Impl {
  std::size_t capacity;
  std::vector<Entry> entries;
  detail::FlatIndex index;
  detail::LruList<Entry> recency;
  ClientTableStats stats;

  explicit Impl(std::size_t cap) : capacity(std::min<std::size_t>(cap, kNil - 1U)) {
    entries.reserve(std::min(capacity, kInitialRoom));
  }

  [[nodiscard]] std::uint32_t find(const IpAddress &client, const IpAddress &address,
                                   std::uint64_t h) const noexcept {
    return index.find(h, [&](std::uint32_t i) noexcept {
      return detail::same_address(entries[i].address, address) &&
             detail::same_address(entries[i].client, client);
    });
  }
};

ClientTable::ClientTable(std::size_t capacity) : impl_(std::make_unique<Impl>(capacity)) {}
ClientTable::~ClientTable() = default;

void ClientTable::learn(const IpAddress &client, const IpAddress &address, std::string_view name) {
  Impl &m = *impl_;
  ++m.stats.learnt;
  if (m.capacity == 0) {
    return;
  }
  const std::uint64_t h = hash_pair(client, address);
  const std::uint32_t at = m.find(client, address, h);
  if (at != kNil) {
    m.entries[at].name.assign(name);
    m.recency.move_to_back(m.entries, at);
    return;
  }
  std::uint32_t slot = 0;
  if (m.entries.size() >= m.capacity) {
    slot = m.recency.front();
    m.recency.unlink(m.entries, slot);
    m.index.erase(hash_pair(m.entries[slot].client, m.entries[slot].address), slot);
    ++m.stats.evictions;
  } else {
    if (m.entries.size() == m.entries.capacity()) {
      m.entries.reserve(std::min(m.capacity, 2 * m.entries.size()));
    }
    slot = static_cast<std::uint32_t>(m.entries.size());
    m.entries.emplace_back();
  }
  Entry &e = m.entries[slot];
  e.client = client;
  e.address = address;
  e.name.assign(name);
  m.index.insert(h, slot);
  m.recency.push_back(m.entries, slot);
}

std::optional<std::string_view> ClientTable::lookup(const IpAddress &client,
                                                    const IpAddress &address) const noexcept {
  const std::uint32_t at = impl_->find(client, address, hash_pair(client, address));
  if (at == kNil) {
    return std::nullopt;
  }
  return std::string_view(impl_->entries[at].name);
}

std::size_t ClientTable::size() const noexcept {
  return impl_->entries.size();
}

const ClientTableStats &ClientTable::stats() const noexcept {
  return impl_->stats;
}

} // namespace ta::dns
