// attribute/analyzer: the per-packet pipeline, frame in -> record out, under
// the attribution contract (README "What is counted"):
//   decode -> DNS responses teach address->name (and mark their receiver as a
//   local host) -> records go out in batches. Two ways to name:
//   - flow naming (Naming::flow, the default): TCP/UDP packets belong to
//     flows (ta_flow) named by the client's TLS SNI, QUIC SNI or HTTP Host,
//     else the DNS answer sent to that client, else any DNS answer; both
//     directions count (sent, received);
//   - DNS-only naming (Naming::dns): an outbound, non-DNS packet counts for
//     the endpoint its destination was last taught as ("" when none).
//   Packets of no flow (ICMP, later fragments) are always named per packet.
// ta_attribute links ta_decode, ta_dns, ta_flow and ta_store (the record and
// batch model; no database, no capture library).
//
// Every frame ends in exactly one Outcome: `counted` or a named skip reason
// (under flow naming, once its flow is named). Nothing is dropped silently;
// stats() holds a counter per outcome and per DNS parse error.
//
// The hot path (on_frame) does not allocate once batches have warmed up.
// Single-threaded: one Analyzer per pipeline thread.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/time.hpp"
#include "ta/decode/decode.hpp"
#include "ta/dns/address_table.hpp"
#include "ta/dns/message.hpp"
#include "ta/dns/tcp_reassembler.hpp"
#include "ta/flow/flow.hpp"
#include "ta/store/store.hpp"

namespace ta::attribute {

// Closed set; names are stable snake_case (metric label values). The decode
// errors come first with the same names as decode::DecodeError.
enum class Outcome : std::uint8_t {
  counted = 0,
  // decode::DecodeError values 1..count_-1 map to 1..: see outcome_of().
  unsupported_link_type,
  truncated_link_header,
  not_ip,
  truncated_ip_header,
  bad_ip_version,
  bad_ip_header_length,
  bad_ip_total_length,
  truncated_ipv6_extension,
  truncated_l4_header,
  bad_tcp_header_length,
  // Well-formed frames that are not endpoint traffic:
  dns,            // to or from port 53 (DNS is what teaches, not what counts)
  not_outbound,   // source is not a local host (inbound, or before any DNS response)
  port_filtered,  // destination port not in Options::ports
  already_stored, // below the ledger position of a resumed source
  count_
};

[[nodiscard]] std::string_view to_string(Outcome o) noexcept;

// How endpoints are named (README "What is counted"): `flow` names every
// TCP/UDP flow by what its client asked for (TLS SNI, QUIC, HTTP Host), then
// DNS, and counts both directions; `dns` is DNS-only naming of outbound
// packets, one packet at a time.
enum class Naming : std::uint8_t { flow, dns };

// Flows that carry DNS the analyzer cannot read: DNS over TLS (TCP 853), DNS
// over QUIC (UDP 853), DNS over HTTPS (a flow named after a known DoH
// service). Names are stable label values (encrypted_dns_name).
enum class EncryptedDns : std::uint8_t { dot, doq, doh, count_ };
[[nodiscard]] std::string_view encrypted_dns_name(EncryptedDns kind) noexcept;

// The per-client answer table holds at most this many pairs per address of
// the DNS table (and never more than Options::client_table_capacity).
inline constexpr std::size_t kClientPairsPerAddress = 4;

struct Options {
  Naming naming = Naming::flow;
  std::vector<IpPrefix> local_nets; // empty: learn local hosts from DNS
  std::vector<std::uint16_t> ports; // empty: every port counts (flows: the endpoint's port)
  std::size_t max_flows = 65536;    // flow table bound; the least recently active flow goes
  TimeUs flow_idle_timeout_us = 300'000'000;
  // (client, address) -> name pairs, at most kClientPairsPerAddress times
  // dns_table_capacity: part of the learnt DNS table, so one bound
  // (--dns-table-size) bounds both (README "What is counted").
  std::size_t client_table_capacity = 1U << 18U;
  // Hostnames of DoH services (lower-case); empty: the built-in list.
  std::vector<std::string> doh_names;
  std::size_t dns_table_capacity = 1U << 20U;
  // Local hosts learnt from DNS responses; over it the least recently active
  // one (receiving a response, sending, or an end of a flow) is forgotten.
  std::size_t local_hosts_capacity = 4096;
  std::size_t batch_records = 65536; // records (or learnt answers) per batch
  // Names, or flow records, per batch: normal traffic seals on records long
  // before, a name flood (one packet per name and flow) here, so the batches
  // in flight to the store stay small however many names arrive.
  std::size_t batch_names = 16384;
  // Most endpoints the run summary keeps (at least 1; the unresolved one is
  // always kept). Past it, the least busy are folded into one rest, so the
  // summary stays bounded however many names a long-running mode sees.
  std::size_t summary_capacity = 1000;
};

struct Stats {
  std::uint64_t frames = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Outcome::count_)> outcomes{};
  std::uint64_t bytes_counted = 0;
  std::uint64_t unresolved = 0;         // counted under ""
  std::uint64_t dns_responses = 0;      // parsed OK (any RCODE)
  std::uint64_t dns_answers_learnt = 0; // address->name applied
  std::array<std::uint64_t, static_cast<std::size_t>(dns::DnsError::count_)> dns_errors{};
  std::uint64_t local_hosts_learnt = 0;
  std::uint64_t local_hosts_evicted = 0; // the least recently active, over the bound
  std::uint64_t local_hosts = 0;         // learnt local hosts now (a level)
  // Flow naming: counted packets (both directions) by the source of their
  // name, received traffic, the flow table, encrypted DNS flows by kind.
  std::array<std::uint64_t, static_cast<std::size_t>(store::NameSource::count_)> names{};
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
  std::uint64_t flows_created = 0;
  std::uint64_t flows_evicted = 0;
  std::uint64_t flows_active = 0;    // a level, not a count
  std::uint64_t packets_waiting = 0; // held until their flow is named (a level)
  std::array<std::uint64_t, static_cast<std::size_t>(EncryptedDns::count_)> encrypted_dns_flows{};
  // What the naming parsers concluded per flow, and QUIC packets they could
  // not use, by reason (flow::naming_outcome_name, flow::quic_packet_error_name).
  std::array<std::uint64_t, static_cast<std::size_t>(flow::NamingOutcome::count_)>
      naming_outcomes{};
  std::array<std::uint64_t, flow::kQuicPacketErrors> quic_packet_errors{};

  [[nodiscard]] std::uint64_t outcome(Outcome o) const noexcept {
    return outcomes[static_cast<std::size_t>(o)];
  }
};

// What one endpoint did in this run (the analyze summary). Counts are those
// since the endpoint last entered the bounded summary (see
// Options::summary_capacity).
struct EndpointRun {
  std::uint64_t packets = 0; // sent
  std::uint64_t bytes = 0;
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;
  TimeUs first_seen = 0;
  TimeUs last_seen = 0;
  // Flows first named with this endpoint (flow naming; each flow counted
  // once, in the batch of its first counted packet), and the sources that
  // named its packets: bit (1 << NameSource) per source seen. Folded rows
  // add their flows and their sources into the rest, so flows too add up.
  std::uint64_t flows = 0;
  std::uint8_t sources = 0;

  [[nodiscard]] bool named_by(store::NameSource s) const noexcept {
    return (sources & source_bit(s)) != 0;
  }
  [[nodiscard]] static constexpr std::uint8_t source_bit(store::NameSource s) noexcept {
    return static_cast<std::uint8_t>(1U << static_cast<unsigned>(s));
  }
};
static_assert(static_cast<unsigned>(store::NameSource::count_) <= 8,
              "EndpointRun::sources holds one bit per name source");

class Analyzer {
public:
  // Receives each sealed batch; must leave `batch` empty (reusable) on return.
  using BatchSink = std::function<void(store::Batch &batch)>;

  Analyzer(Options options, BatchSink sink);
  ~Analyzer();
  Analyzer(const Analyzer &) = delete;
  Analyzer &operator=(const Analyzer &) = delete;

  // Seeds the address table (a reloaded store, a previous run); before the
  // first begin_source(). Memory stays that of the bounded table however many
  // addresses are seeded.
  void preload_address(const IpAddress &address, std::string_view name, TimeUs when);
  // Seeds a local host learnt in an earlier run (ignored when
  // Options::local_nets is set).
  void preload_local_host(const IpAddress &address);

  // Starts a source: frames with index < frames_done were stored before and
  // only teach (DNS, local hosts); later frames produce records.
  void begin_source(std::int64_t source_id, std::uint64_t frames_done);
  // Hot path. `frame_index` counts every frame of the source from 0.
  void on_frame(decode::LinkType link, std::uint64_t frame_index, TimeUs ts, Bytes frame) noexcept;
  // Seals the last batch of the source (complete: the whole file was read).
  void end_source(bool complete);
  // Seals the current batch now (live sources flush on a timer).
  void flush();

  [[nodiscard]] const Stats &stats() const noexcept;
  [[nodiscard]] const dns::AddressTable &table() const noexcept;
  [[nodiscard]] const dns::TcpReassemblerStats &dns_tcp_stats() const noexcept;
  [[nodiscard]] std::size_t local_host_count() const noexcept;
  [[nodiscard]] Naming naming() const noexcept;
  // Clients seen using encrypted DNS (flow naming; at most a few thousand).
  [[nodiscard]] std::size_t encrypted_dns_clients() const noexcept;
  // Per endpoint ("" unresolved), for batches sealed so far: at most
  // Options::summary_capacity endpoints, the busiest by packets (both
  // directions). An endpoint pushed out by busier ones is folded into
  // run_summary_rest(); if it comes back it starts again from zero, so the
  // kept rows plus the rest always add up to everything counted.
  [[nodiscard]] const std::map<std::string, EndpointRun> &run_summary() const noexcept;
  // The endpoints folded out of run_summary(), added up (first/last seen
  // span them all), and how many times an endpoint was folded.
  [[nodiscard]] const EndpointRun &run_summary_rest() const noexcept;
  [[nodiscard]] std::uint64_t run_summary_folded() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::attribute
