#include "flow_truth.hpp"

#include <algorithm>

namespace ta::generate::detail {

FlowTruth::FlowTruth() {
  (void)intern("");
}

std::uint32_t FlowTruth::intern(std::string_view name) {
  std::string key(name);
  const auto it = ids_.find(key);
  if (it != ids_.end()) {
    return it->second;
  }
  const auto id = static_cast<std::uint32_t>(names_.size());
  names_.push_back(key);
  FlowEndpointTruth e;
  e.endpoint = key;
  agg_.push_back(std::move(e));
  ids_.emplace(std::move(key), id);
  return id;
}

void FlowTruth::count(std::uint32_t id, NameSource source, bool sent, std::uint32_t bytes,
                      TimeUs now) {
  FlowEndpointTruth &e = agg_[id];
  if (e.packets + e.received_packets == 0) {
    e.first_seen = now;
  }
  if (sent) {
    ++e.packets;
    e.bytes += bytes;
  } else {
    ++e.received_packets;
    e.received_bytes += bytes;
  }
  ++e.names[static_cast<std::size_t>(source)];
  e.last_seen = std::max(e.last_seen, now);
}

void FlowTruth::add(std::uint32_t id, NameSource source, const PendingCounts &c) {
  const std::uint64_t n = c.sent_packets + c.received_packets;
  if (n == 0) {
    return;
  }
  FlowEndpointTruth &e = agg_[id];
  if (e.packets + e.received_packets == 0 || c.first < e.first_seen) {
    e.first_seen = c.first;
  }
  e.last_seen = std::max(e.last_seen, c.last);
  e.packets += c.sent_packets;
  e.bytes += c.sent_bytes;
  e.received_packets += c.received_packets;
  e.received_bytes += c.received_bytes;
  e.names[static_cast<std::size_t>(source)] += n;
}

std::vector<FlowEndpointTruth> FlowTruth::result() const {
  std::vector<FlowEndpointTruth> out;
  for (const FlowEndpointTruth &e : agg_) {
    if (e.packets + e.received_packets > 0) {
      out.push_back(e);
    }
  }
  std::sort(out.begin(), out.end(), [](const FlowEndpointTruth &a, const FlowEndpointTruth &b) {
    return a.endpoint < b.endpoint;
  });
  return out;
}

} // namespace ta::generate::detail
