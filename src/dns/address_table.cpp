// Learnt address -> hostname table. Layout (see flat_index.hpp):
//   entries:  pool of addresses, FlatIndex by address, LruList by learn time;
//             full table: the least recently learnt entry's slot is reused.
//   names:    interned hostnames with a count of entries referring to each,
//             FlatIndex by text; a NameId is an index into names. Names whose
//             count drops to 0 stay readable until release_unused(), which
//             frees them (only those, not a scan of all names) and recycles
//             their ids.
// lookup() is one hash, usually one index probe and one pool read.
#include "ta/dns/address_table.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "flat_index.hpp"

namespace ta::dns {
namespace {

using detail::kNil;

struct Entry {
  IpAddress key;
  NameId name = 0;
  TimeUs first_learnt = 0;
  TimeUs last_learnt = 0;
  std::uint32_t prev = kNil;
  std::uint32_t next = kNil;
};

struct Name {
  std::string text;
  std::uint32_t refs = 0;
  bool live = false;    // false: free id (released, on free_names)
  bool pending = false; // on unused (refs reached 0 since the last release)
};

std::uint64_t hash_address(const IpAddress &a) noexcept {
  return IpAddressHash{}(a);
}
std::uint64_t hash_name(std::string_view s) noexcept {
  return std::hash<std::string_view>{}(s);
}

// Initial index/pool room: small tables stay small, big ones grow by doubling.
constexpr std::size_t kInitialRoom = 1024;

} // namespace

struct AddressTable::Impl {
  std::size_t capacity;
  std::vector<Entry> entries;
  detail::FlatIndex by_address;
  detail::LruList<Entry> recency;
  std::vector<Name> names;
  detail::FlatIndex by_name;
  std::vector<NameId> free_names;
  std::vector<NameId> unused; // release candidates, each at most once (Name::pending)
  std::size_t live_names = 0;
  AddressTableStats stats;

  explicit Impl(std::size_t cap) : capacity(std::min<std::size_t>(cap, kNil - 1U)) {
    const std::size_t room = std::min(capacity, kInitialRoom);
    entries.reserve(room);
    by_address.reserve(room);
  }

  [[nodiscard]] std::uint32_t find(const IpAddress &a) const noexcept {
    return by_address.find(hash_address(a), [&](std::uint32_t i) noexcept {
      return detail::same_address(entries[i].key, a);
    });
  }

  NameId intern(std::string_view text) {
    const std::uint64_t h = hash_name(text);
    const std::uint32_t found =
        by_name.find(h, [&](std::uint32_t i) noexcept { return names[i].text == text; });
    if (found != kNil) {
      ++names[found].refs;
      return found;
    }
    NameId id = 0;
    if (!free_names.empty()) {
      id = free_names.back();
      free_names.pop_back();
    } else {
      id = static_cast<NameId>(names.size());
      names.emplace_back();
    }
    Name &n = names[id];
    n.text.assign(text);
    n.refs = 1;
    n.live = true;
    ++live_names;
    by_name.insert(h, id);
    return id;
  }

  void unref(NameId id) {
    Name &n = names[id];
    if (--n.refs == 0 && !n.pending) {
      n.pending = true;
      unused.push_back(id);
    }
  }

  void learn(const IpAddress &address, std::string_view text, TimeUs when) {
    ++stats.learnt;
    if (capacity == 0) {
      return;
    }
    const std::uint32_t at = find(address);
    if (at != kNil) {
      Entry &e = entries[at];
      if (names[e.name].text != text) {
        const NameId id = intern(text);
        unref(e.name);
        e.name = id;
        e.first_learnt = when;
        ++stats.replaced;
      }
      e.last_learnt = when;
      recency.move_to_back(entries, at);
      return;
    }
    const NameId id = intern(text);
    std::uint32_t slot = 0;
    if (entries.size() >= capacity) {
      // Full: the least recently learnt address makes room.
      slot = recency.front();
      recency.unlink(entries, slot);
      by_address.erase(hash_address(entries[slot].key), slot);
      unref(entries[slot].name);
      ++stats.evictions;
    } else {
      if (entries.size() == entries.capacity()) {
        entries.reserve(std::min(capacity, 2 * entries.size()));
      }
      slot = static_cast<std::uint32_t>(entries.size());
      entries.emplace_back();
    }
    Entry &e = entries[slot];
    e.key = address;
    e.name = id;
    e.first_learnt = when;
    e.last_learnt = when;
    by_address.insert(hash_address(address), slot);
    recency.push_back(entries, slot);
  }

  void release_unused() {
    for (const NameId id : unused) {
      Name &n = names[id];
      n.pending = false;
      if (n.refs != 0) {
        continue; // learnt again since
      }
      by_name.erase(hash_name(n.text), id);
      std::string().swap(n.text);
      n.live = false;
      --live_names;
      free_names.push_back(id);
    }
    unused.clear();
  }
};

AddressTable::AddressTable(std::size_t capacity) : impl_(std::make_unique<Impl>(capacity)) {}

AddressTable::~AddressTable() = default;

void AddressTable::learn(const IpAddress &address, std::string_view name, TimeUs when) {
  impl_->learn(address, name, when);
}

std::optional<NameId> AddressTable::lookup(const IpAddress &address) const noexcept {
  const std::uint32_t at = impl_->find(address);
  if (at == kNil) {
    return std::nullopt;
  }
  return impl_->entries[at].name;
}

std::string_view AddressTable::name(NameId id) const noexcept {
  if (id >= impl_->names.size() || !impl_->names[id].live) {
    return {};
  }
  return impl_->names[id].text;
}

void AddressTable::release_unused() {
  impl_->release_unused();
}

std::size_t AddressTable::size() const noexcept {
  return impl_->entries.size();
}

std::size_t AddressTable::capacity() const noexcept {
  return impl_->capacity;
}

std::size_t AddressTable::name_count() const noexcept {
  return impl_->live_names;
}

const AddressTableStats &AddressTable::stats() const noexcept {
  return impl_->stats;
}

void AddressTable::for_each(
    const std::function<void(const IpAddress &, std::string_view, TimeUs, TimeUs)> &fn) const {
  for (std::uint32_t i = impl_->recency.front(); i != kNil; i = impl_->entries[i].next) {
    const Entry &e = impl_->entries[i];
    fn(e.key, impl_->names[e.name].text, e.first_learnt, e.last_learnt);
  }
}

} // namespace ta::dns
