// Contract B's counts (flow naming), accumulated by construction: the
// generator knows, when a flow starts, its client, its endpoint and the name
// (and the source of the name) the contract gives it, and reports every
// packet of the flow as sent (client -> endpoint) or received. Names are
// interned once per flow so a packet costs one array update.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ta/generate/generate.hpp"

namespace ta::generate::detail {

// Packets of one flow held back until its name is known.
struct PendingCounts {
  std::uint64_t sent_packets = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
  TimeUs first = 0;
  TimeUs last = 0;

  void add(bool sent, std::uint32_t bytes, TimeUs now) noexcept {
    if (sent_packets + received_packets == 0) {
      first = now;
    }
    (sent ? sent_packets : received_packets) += 1;
    (sent ? sent_bytes : received_bytes) += bytes;
    last = now;
  }
};

class FlowTruth {
public:
  FlowTruth();

  // The id of `name` (lower-case, no trailing dot); "" is id 0.
  [[nodiscard]] std::uint32_t intern(std::string_view name);
  [[nodiscard]] const std::string &name(std::uint32_t id) const { return names_[id]; }

  void count(std::uint32_t id, NameSource source, bool sent, std::uint32_t bytes, TimeUs now);
  void add(std::uint32_t id, NameSource source, const PendingCounts &c);

  // Endpoints with at least one packet, sorted by name.
  [[nodiscard]] std::vector<FlowEndpointTruth> result() const;

private:
  std::unordered_map<std::string, std::uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<FlowEndpointTruth> agg_;
};

} // namespace ta::generate::detail
