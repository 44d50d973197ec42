// generate: a deterministic synthetic capture of one client, and the ground
// truth it implies under the attribution contract (README "What is counted").
// The mock traffic producer for demos, tests and benchmarks: same options, same
// bytes. ta_generate links ta_common; privately ta_capture (to write the pcap
// file) and nlohmann_json (truth_to_json).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ta/common/byte_cursor.hpp"
#include "ta/common/status.hpp"
#include "ta/common/time.hpp"

namespace ta::generate {

struct Options {
  std::uint64_t packets = 10'000; // frames in the capture, all kinds together
  std::uint32_t endpoints = 20;   // distinct hostnames resolved (at most 30'000)
  std::uint64_t seed = 1;
  TimeUs start_us = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
  std::uint32_t packets_per_second = 2'000; // timestamp spacing
};

struct EndpointTruth {
  std::string endpoint; // "" = unresolved
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  TimeUs first_seen = 0;
  TimeUs last_seen = 0;
  std::vector<std::string> addresses; // sorted canonical text
};

struct GroundTruth {
  std::uint64_t frames = 0;
  std::vector<EndpointTruth> endpoints; // sorted by endpoint name
  // address -> name the contract's latest-answer rule leaves at the end
  // (sorted by address text; addresses only glue or RCODE != 0 named are absent)
  std::vector<std::pair<std::string, std::string>> final_addresses;
  // The half-way re-resolution: `moved_address` was taught as `moved_from`
  // until an answer for `moved_to` carried it at `moved_at`. Empty when the
  // capture ends before it or has fewer than two endpoints. Not in the JSON.
  std::string moved_address;
  std::string moved_from;
  std::string moved_to;
  TimeUs moved_at = 0;
};

// Streams frames one at a time (Ethernet link type), so a live demo can feed
// the pipeline at a chosen rate without writing a file.
//
// Content: client 10.0.0.2 / fd00::2, resolver 10.0.0.1 / fd00::1. DNS
// exchanges (A over IPv4, AAAA over IPv6; CNAME chains; every fourth one
// 802.1Q-tagged; one QNAME asked in mixed case; glue in additional sections;
// one NXDOMAIN carrying an A record; lost queries to 198.51.100.53), then
// TCP 80/443, UDP 443/123 and ICMP echo flows with their inbound replies,
// some to never-resolved addresses. At 30% of the frames the client sends an
// ICMP port unreachable quoting a DNS response (teaches nothing, counts for
// "" at 10.0.0.1); at 50% an address of endpoint 0 (www.example.com) is
// answered for endpoint 1 (api.github.test) and counts for it from then on.
class Generator {
public:
  explicit Generator(const Options &options);
  ~Generator();
  Generator(const Generator &) = delete;
  Generator &operator=(const Generator &) = delete;

  // The next frame; false once options.packets frames were produced. The
  // span is valid until the next call.
  [[nodiscard]] bool next(TimeUs &ts_us, Bytes &frame);
  // Truth for the frames produced so far.
  [[nodiscard]] GroundTruth truth() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes the whole capture as classic pcap (LINKTYPE_ETHERNET) and returns
// its truth. Fails with capture::PcapWriter's status (io_error: the file
// cannot be written; the message names the path).
[[nodiscard]] Result<GroundTruth> write_capture(const Options &options, const std::string &path);

// The ground truth as JSON: {"frames": N, "endpoints": [{endpoint, packets,
// bytes, first_seen, last_seen, addresses}], "addresses": [{address, name}]},
// times in RFC 3339 UTC µs, the same shape as `query endpoints --format json`.
// Indented by 2, no trailing newline.
[[nodiscard]] std::string truth_to_json(const GroundTruth &truth);

} // namespace ta::generate
