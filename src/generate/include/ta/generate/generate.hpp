// generate: a deterministic synthetic capture of two clients, and the ground
// truth it implies under both attribution contracts: DNS-only naming (README
// "What is counted") and flow naming (a flow named by its TLS SNI, QUIC
// Initial, HTTP Host or the DNS answer its client got). The mock traffic
// producer for demos, tests and benchmarks: same options, same bytes.
// ta_generate links ta_common; privately ta_capture (to write the pcap file),
// nlohmann_json (truth_to_json) and OpenSSL's libcrypto (QUIC Initial
// packet protection).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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
  // The capture's pcap LINKTYPE (one per file): 1 Ethernet, 113 Linux cooked
  // (SLL), 276 Linux cooked v2 (SLL2), 101 raw IP, 0 BSD null/loopback. The
  // IP packets are the same in every one; cooked frames mark the clients'
  // frames "outgoing" (packet type 4), which the contract reads as a local
  // source, and the others "to us" (0).
  std::uint32_t link = 1;
  // Every third periodic re-resolution goes over TCP: handshake, query, the
  // response split across two segments, FINs.
  bool dns_over_tcp = false;
  // Every fourth periodic IPv4 response is sent as two IP fragments: the
  // first (with the UDP header) carries a cut DNS message that teaches
  // nothing but still marks its receiver local; the second has no ports.
  bool fragments = false;
  // The truth models the analyzer's DNS table bounded to this many addresses
  // (`--dns-table-size`, least recently learnt evicted); 0: unbounded.
  std::uint32_t dns_table_size = 0;
};

// Whether `link` is one Options::link may name.
[[nodiscard]] bool is_generated_link(std::uint32_t link) noexcept;

struct EndpointTruth {
  std::string endpoint; // "" = unresolved
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  TimeUs first_seen = 0;
  TimeUs last_seen = 0;
  std::vector<std::string> addresses; // sorted canonical text
};

// Which rule of flow naming named a packet, in the JSON's order.
enum class NameSource : std::uint8_t { sni = 0, quic = 1, http = 2, dns = 3, none = 4 };
inline constexpr std::size_t kNameSources = 5;
[[nodiscard]] constexpr std::string_view name_source_name(NameSource s) noexcept {
  switch (s) {
  case NameSource::sni:
    return "sni";
  case NameSource::quic:
    return "quic";
  case NameSource::http:
    return "http";
  case NameSource::dns:
    return "dns";
  case NameSource::none:
    break;
  }
  return "none";
}

// One endpoint under flow naming. TCP/UDP packets (DNS, port 53, excepted)
// count by flow: client -> endpoint is sent, endpoint -> client received,
// every packet of a flow under the flow's name. Other protocols (ICMP) count
// per packet as under DNS-only naming: outbound only, as sent, named `dns` or
// `none`. first/last_seen and `names` cover sent and received packets.
struct FlowEndpointTruth {
  std::string endpoint;      // "" = unresolved
  std::uint64_t packets = 0; // sent
  std::uint64_t bytes = 0;   // sent
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
  TimeUs first_seen = 0;
  TimeUs last_seen = 0;
  std::array<std::uint64_t, kNameSources> names{}; // packets by NameSource
};

struct GroundTruth {
  std::uint64_t frames = 0;
  std::vector<EndpointTruth> endpoints;          // DNS-only naming, sorted by endpoint name
  std::vector<FlowEndpointTruth> flow_endpoints; // flow naming, sorted by endpoint name
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

// Streams frames one at a time (Options::link), so a live demo can feed
// the pipeline at a chosen rate without writing a file.
//
// Content: client 10.0.0.2 / fd00::2, resolver 10.0.0.1 / fd00::1. A few
// packets of two flows already running when the capture starts (no
// handshake, no DNS yet). DNS
// exchanges (A over IPv4, AAAA over IPv6; CNAME chains; every fourth one
// 802.1Q-tagged; one QNAME asked in mixed case; glue in additional sections;
// one NXDOMAIN carrying an A record; lost queries to 198.51.100.53), then
// TCP 80/443, UDP 443/123 and ICMP echo flows with their inbound replies,
// some to never-resolved addresses. At 30% of the frames the client sends an
// ICMP port unreachable quoting a DNS response (teaches nothing, counts for
// "" at 10.0.0.1); at 50% an address of endpoint 0 (www.example.com) is
// answered for endpoint 1 (api.github.test) and counts for it from then on.
// TCP 443 flows open with a TLS 1.3 ClientHello (mostly with server_name, the
// DNS name or another one; the first one split over two segments), HTTP
// requests carry a Host header, QUIC flows mostly open with a real v1 or v2
// Initial (1200 bytes, protected with the Initial keys). From 5% on, single
// flows: TLS on 8443, DoT (853) to 9.9.9.9, DoH to 8.8.8.8 (dns.google) and
// 1.1.1.1 (cloudflare-dns.com), `Host: h.test:8080`, QUIC v1 and v2, and a
// SNI unlike the DNS name. From 20% on a second client 10.0.0.3 / fd00::3
// gets its own answers (one naming an address of www.example.com as
// api.github.test) and opens its own flows.
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
  // The pcap LINKTYPE of the frames next() produces (Options::link).
  [[nodiscard]] std::uint32_t link_type() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes the whole capture as classic pcap (Options::link) and returns
// its truth. Fails with capture::PcapWriter's status (io_error: the file
// cannot be written; the message names the path).
[[nodiscard]] Result<GroundTruth> write_capture(const Options &options, const std::string &path);

// The ground truth as JSON: {"frames": N, "endpoints": [{endpoint, packets,
// bytes, first_seen, last_seen, addresses}], "addresses": [{address, name}],
// "flow_endpoints": [{endpoint, packets, bytes, received_packets,
// received_bytes, first_seen, last_seen, names: {sni, quic, http, dns,
// none}}]}, times in RFC 3339 UTC µs; "endpoints" has the same shape as
// `query endpoints --format json` under DNS-only naming.
// Indented by 2, no trailing newline.
[[nodiscard]] std::string truth_to_json(const GroundTruth &truth);

} // namespace ta::generate
