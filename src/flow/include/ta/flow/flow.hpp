// flow (library ta_flow): the flow table of flow naming. Groups TCP and UDP
// packets into flows, decides once per flow which end is the endpoint and what
// its name is (sni -> quic -> http -> dns -> none, README "What is counted"),
// and hands every packet back, with its direction and its flow, once the flow
// is named. Links ta_common, ta_store (the NameSource/Direction vocabulary, no
// database) and the first-bytes parsers ta_tls, ta_http and ta_quic.
//
// Contract, per packet (on_packet):
//  - Flow key: protocol + the unordered pair of (address, port) ends. A TCP
//    flow ends after a FIN from both ends or a RST; on the ends of an ended
//    flow only a SYN without ACK starts a new flow, late ACK/FIN/RST packets
//    stay with the ended one. Any flow ends after a gap strictly longer than
//    Options::idle_timeout_us. At most Options::max_flows flows: a new flow
//    evicts the least recently active one.
//  - Endpoint side, fixed at the flow's first packet: exactly one end local ->
//    the other end; else a TCP first packet that is a SYN without ACK -> its
//    receiver; else the lower port; equal ports -> the receiver of packet 1.
//    The other end is the client; client->endpoint is `sent`.
//  - Name: the client's first payload bytes on TCP, joined in sequence order
//    (0x16 first -> TLS ClientHello server_name `sni`, else HTTP/1.x Host
//    `http`); the client's QUIC Initials on UDP (`quic`); else the name the
//    DnsLookup gave at the flow's first packet (`dns`); else "" (`none`). The
//    decision is final for the flow's life.
//  - While a flow waits for its decision its packets are held (metadata only)
//    and emitted, in order, when it is decided: by the parsers, by the wait
//    bound (max_wait_packets packets of the flow), by the global held bound,
//    by the flow's end or eviction, by release_all() (end of input) or by
//    begin_source() (held frames belong to the previous source).
//  - Packets with record == false (already stored by an earlier run) change
//    state and naming exactly like the others but are never emitted.
//
// Emission order across flows is not frame order: a waiting flow's packets
// come out later. oldest_held_frame() tells the caller how far its ledger of
// "every frame below N is accounted for" may advance.
//
// Single-threaded. The per-packet path does not allocate in steady state: flow
// entries, held-packet records and waiting state are pooled; a flow's first
// payload is copied only when it spans segments or arrives out of order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ta/common/address.hpp"
#include "ta/common/time.hpp"
#include "ta/store/store.hpp"

namespace ta::flow {

namespace detail {
class NamingFactory;
} // namespace detail

inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kUdp = 17;
// TCP flag bits as in decode::PacketView::tcp_flags.
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kAck = 0x10;

struct Options {
  std::size_t max_flows = 65536;
  TimeUs idle_timeout_us = 300'000'000;
  // Packets of one flow seen while it waits before it is decided anyway.
  std::size_t max_wait_packets = 32;
  // Bound on the client's first payload bytes joined for naming (the TLS
  // ClientHello message bound; the joiner keeps a little more for record
  // headers).
  std::size_t max_first_payload = 16384;
  // Held packets over all flows; over it the flow holding the oldest packet is
  // decided.
  std::size_t max_held_total = 1U << 20U;
  // Out-of-order first-payload bytes buffered over all flows; over it a
  // segment is dropped (the flow then has a gap).
  std::size_t max_buffered_bytes = 64U << 20U;
};

// One TCP or UDP packet that is not DNS; the views are valid only during the
// call.
struct Packet {
  TimeUs ts = 0;
  std::uint64_t frame = 0;
  bool record = true; // false: already stored, only teaches state
  IpAddress src;
  IpAddress dst;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint8_t protocol = kTcp; // kTcp or kUdp
  std::uint8_t tcp_flags = 0;
  std::uint32_t tcp_seq = 0;
  std::span<const std::byte> payload;
  std::uint32_t ip_bytes = 0;
  // Local hosts as known now. With a LocalTest set (Table::set_local_test)
  // an end not marked here is asked about when its packet starts a flow.
  bool src_local = false;
  bool dst_local = false;
};

struct FlowInfo {
  // What every emitted packet reads first, then what is read once per flow.
  // Free for the caller (e.g. the flow's index in its current batch); reset
  // to kNoFlow / 0 when the flow is created.
  std::uint32_t user_slot = store::kNoFlow;
  store::NameSource source = store::NameSource::none;
  std::uint8_t protocol = 0;
  std::uint16_t endpoint_port = 0;
  std::uint64_t user_epoch = 0;
  std::uint64_t user_mark = 0;
  IpAddress endpoint;
  std::uint16_t client_port = 0;
  IpAddress client;
  std::int64_t origin_source = 0; // the source of the flow's first packet
  std::uint64_t first_frame = 0;
  std::string name; // final once the flow is decided (every emitted packet)
};

struct Emitted {
  std::uint64_t frame = 0;
  TimeUs ts = 0;
  store::Direction direction = store::Direction::sent;
  std::uint32_t ip_bytes = 0;
  FlowInfo *flow = nullptr; // valid during the call; the caller may set user_*
};

// "The latest answer sent to this client, else to anyone": called once per
// flow, at its first packet.
using DnsLookup = std::function<std::optional<std::string_view>(const IpAddress &client,
                                                                const IpAddress &endpoint)>;
using Sink = std::function<void(const Emitted &)>;
// "Is this address a local host?", asked only for the ends of a packet that
// starts a flow (the endpoint side is decided there and nowhere else).
using LocalTest = std::function<bool(const IpAddress &)>;

// How a flow left the table (or became ended). Names: flow_end_name().
enum class FlowEnd : std::uint8_t { fin, rst, idle, evicted, count_ };
[[nodiscard]] std::string_view flow_end_name(FlowEnd e) noexcept;

// What ended a flow's wait. Names: decide_reason_name().
enum class DecideReason : std::uint8_t {
  parsers,      // the parsers gave a final answer
  wait_bound,   // max_wait_packets packets of the flow seen
  held_bound,   // max_held_total reached, the oldest waiting flow decided
  flow_end,     // FIN from both ends, RST, or idle gap
  evicted,      // evicted by max_flows
  end_of_input, // release_all() or begin_source()
  count_
};
[[nodiscard]] std::string_view decide_reason_name(DecideReason r) noexcept;

// The parsers' final answers and the joiner's failures, one closed set for
// metrics. Names: naming_outcome_name().
enum class NamingOutcome : std::uint8_t {
  tls_sni,
  tls_no_sni,
  tls_not_client_hello, // the first handshake message is another type
  tls_empty_name,       // a server_name that normalises to nothing
  tls_too_large,
  tls_truncated,     // tls::ClientHelloStatus::truncated
  tls_bad_length,    // ... bad_length
  tls_bad_extension, // ... bad_extension
  tls_not_tls,       // first byte 0x16 but not a TLS 3.x handshake record
  tls_bad_record,    // a later record is not handshake, or its length lies
  http_host,
  http_no_host,
  http_not_http,
  http_too_large,
  http_malformed,
  quic_sni,
  quic_no_sni,
  quic_unsupported_version,
  quic_not_quic,
  tcp_gap,            // decided while a hole in the client's first bytes was open
  tcp_window_dropped, // an out-of-order segment beyond the joining bound or budget
  count_
};
[[nodiscard]] std::string_view naming_outcome_name(NamingOutcome o) noexcept;

// Per-packet failures of the QUIC Initial parser (quic::PacketError), added
// up when a UDP flow's wait ends. Names: quic_packet_error_name().
inline constexpr std::size_t kQuicPacketErrors = 12;
[[nodiscard]] std::string_view quic_packet_error_name(std::size_t index) noexcept;

struct Stats {
  std::uint64_t packets = 0;
  std::uint64_t emitted = 0;
  std::uint64_t flows_created = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(FlowEnd::count_)> ends{};
  std::array<std::uint64_t, static_cast<std::size_t>(store::NameSource::count_)> decisions{};
  std::array<std::uint64_t, static_cast<std::size_t>(DecideReason::count_)> reasons{};
  std::array<std::uint64_t, static_cast<std::size_t>(NamingOutcome::count_)> outcomes{};
  std::array<std::uint64_t, kQuicPacketErrors> quic_packet_errors{};
  // Gauges.
  std::uint64_t active = 0;       // flows in the table (ended ones linger until idle)
  std::uint64_t waiting = 0;      // flows not yet decided
  std::uint64_t held_packets = 0; // packets held now
  std::uint64_t buffered_bytes = 0;

  [[nodiscard]] std::uint64_t end(FlowEnd e) const noexcept {
    return ends[static_cast<std::size_t>(e)];
  }
  [[nodiscard]] std::uint64_t decided(store::NameSource s) const noexcept {
    return decisions[static_cast<std::size_t>(s)];
  }
  [[nodiscard]] std::uint64_t reason(DecideReason r) const noexcept {
    return reasons[static_cast<std::size_t>(r)];
  }
  [[nodiscard]] std::uint64_t outcome(NamingOutcome o) const noexcept {
    return outcomes[static_cast<std::size_t>(o)];
  }
};

class Table {
public:
  Table(Options options, DnsLookup dns, Sink sink);
  // With other parsers behind the naming seam (tests).
  Table(Options options, DnsLookup dns, Sink sink, std::unique_ptr<detail::NamingFactory> naming);
  ~Table();
  Table(const Table &) = delete;
  Table &operator=(const Table &) = delete;

  // New flows carry this source id. Decides every waiting flow first.
  void begin_source(std::int64_t source_id);
  // Asked at each flow's first packet for the ends Packet does not mark.
  void set_local_test(LocalTest test);
  // Hot path. Returns the packet's flow (valid until the next call; the
  // caller may set user_*).
  FlowInfo *on_packet(const Packet &packet) noexcept;
  // End of input: decides every waiting flow and emits what is held.
  void release_all();

  // The smallest frame still held, if any.
  [[nodiscard]] std::optional<std::uint64_t> oldest_held_frame() const noexcept;
  [[nodiscard]] const Stats &stats() const noexcept;
  [[nodiscard]] std::size_t active() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::flow
