// generate: a deterministic synthetic capture of one client, and the ground
// truth it implies under the attribution contract (BRIEF §2). The mock traffic
// producer for demos, tests and benchmarks: same options, same bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ta/common/byte_cursor.hpp"
#include "ta/common/time.hpp"

namespace ta::generate {

struct Options {
  std::uint64_t packets = 10'000;  // frames in the capture, all kinds together
  std::uint32_t endpoints = 20;    // distinct hostnames resolved
  std::uint64_t seed = 1;
  TimeUs start_us = 1'704'067'200'000'000; // 2024-01-01T00:00:00Z
  std::uint32_t packets_per_second = 2'000; // timestamp spacing
};

struct EndpointTruth {
  std::string endpoint;            // "" = unresolved
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
  std::vector<std::pair<std::string, std::string>> final_addresses;
};

// Streams frames one at a time (Ethernet link type), so a live demo can feed
// the pipeline at a chosen rate without writing a file.
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

// Writes the whole capture as classic pcap (LINKTYPE_ETHERNET).
[[nodiscard]] bool write_capture(const Options &options, const std::string &path,
                                 GroundTruth &truth, std::string &error);

// The ground truth as JSON: {"frames": N, "endpoints": [{endpoint, packets,
// bytes, first_seen, last_seen, addresses}], "addresses": [{address, name}]},
// times in RFC 3339 UTC µs, the same shape as `query endpoints --format json`.
[[nodiscard]] std::string truth_to_json(const GroundTruth &truth);

} // namespace ta::generate
