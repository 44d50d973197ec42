// The generator's state, shared by generate.cpp (the world, DNS, the truth
// models) and traffic.cpp (the flows). Not a public header.
//
// The truth is not derived from the bytes: every frame reports what it is to
// two small models fed in frame order. DNS-only naming (README "What is
// counted"): count() with the destination and whether port 53 is involved,
// learn() with what a response teaches. Flow naming: each flow decides at its
// first packet its endpoint (always the server side here: the client is a
// local host by then, or, for the flows already running when the capture
// starts, the server has the lower port) and its name, and count_flow()
// credits every packet of it; ICMP goes through count_icmp().
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/generate/generate.hpp"

#include "flow_truth.hpp"
#include "frame.hpp"
#include "prng.hpp"
#include "quic_initial.hpp"

namespace ta::generate {
namespace detail {

inline constexpr std::uint32_t kNone = 0xFFFFFFFFU;
inline constexpr std::int32_t kUnresolved = -1;
inline constexpr std::int32_t kNeverCounted = -2;
inline constexpr std::size_t kSlots = 6;           // concurrent flows
inline constexpr std::size_t kClients = 2;         // 10.0.0.2 and 10.0.0.3
inline constexpr TimeUs kUdpReuseUs = 400'000'000; // > the 300 s flow idle timeout
// pcap LINKTYPE values Options::link may take.
inline constexpr std::uint32_t kLinkNull = 0;
inline constexpr std::uint32_t kLinkEthernet = 1;
inline constexpr std::uint32_t kLinkRaw = 101;
inline constexpr std::uint32_t kLinkSll = 113;
inline constexpr std::uint32_t kLinkSll2 = 276;

struct Address {
  IpAddress ip;
  std::string text;
  std::int32_t owner = kUnresolved;          // generator: endpoint whose answers carry it now
  bool announced = false;                    // generator: sent in an answer already
  std::int32_t taught = kUnresolved;         // truth: latest RCODE-0 answer section naming it
  std::int32_t last_counted = kNeverCounted; // truth: endpoint of its last counted packet
  std::uint64_t learnt_at = 0;               // truth: bounded table's learn order (0: absent)
  // truth (flow naming): latest RCODE-0 answer naming it sent to client k
  std::array<std::int32_t, kClients> taught_to{kUnresolved, kUnresolved};
  // truth: the bounded per-client table's learn order of (k, this address) (0: absent)
  std::array<std::uint64_t, kClients> client_learnt_at{};
};

struct Endpoint {
  std::string name;               // lower-case; what the truth reports
  std::string asked;              // QNAME as first asked (mixed case for endpoint 2)
  std::vector<std::string> chain; // CNAME targets, in answer order
  std::string zone;               // with glue: owner of the authority NS record
  std::string ns;                 // with glue: ns1.<zone>, owner of the glue A
  std::uint32_t glue = kNone;     // address id of the additional-section glue
  std::vector<std::uint32_t> v4;  // address ids its A answers carry now
  std::vector<std::uint32_t> v6;  // address ids its AAAA answers carry now
  std::uint32_t flow_id = kNone;  // its name interned in the flow-naming truth
};

// answer/nxdomain/lost/move: client 0's exchanges. alias: client 1 asks the
// name of endpoint 1 and is answered an address of endpoint 0; second: client
// 1 asks endpoint 1's AAAA and gets the same answer client 0 got.
enum class Exchange : std::uint8_t { answer, nxdomain, lost, move, alias, second };

struct Plan {
  Exchange kind = Exchange::answer;
  std::uint32_t endpoint = 0;
  std::uint16_t qtype = 1;
  bool mixed_case = false;
  std::uint8_t client = 0;
};

enum class FlowKind : std::uint8_t { none, tcp, quic, ntp, echo };

struct Flow {
  FlowKind kind = FlowKind::none;
  std::uint8_t state = 0;
  std::uint8_t rounds = 0;   // tcp: request/response rounds left; others: packets left
  std::uint8_t segments = 0; // tcp: response segments left in this round
  std::uint8_t seg_count = 0;
  std::uint8_t client = 0;
  bool http = false;     // tcp: HTTP/1.1 requests; otherwise TLS records
  bool hello = false;    // tcp: the next request is the ClientHello
  bool split = false;    // tcp: ... sent in two segments
  std::uint32_t dst = 0; // address id
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t cseq = 0;
  std::uint32_t sseq = 0;
  std::uint16_t ident = 0;
  std::uint16_t seq16 = 0;
  std::uint16_t host_port = 0;        // http: "Host: name:port"
  std::uint32_t wire_name = kNone;    // interned SNI / Host name; kNone: none sent
  std::uint32_t quic_version = 0;     // quic: the Initial's version; 0: short headers only
  std::uint64_t client_cid = 0;       // quic: the client's SCID
  std::array<std::uint16_t, 3> seg{}; // response payload sizes of this round
  // flow naming: the flow's name (interned) and the rule that gave it
  std::uint32_t name = 0;
  NameSource source = NameSource::none;
  // tcp with SNI or Host: until the ClientHello or request is wholly sent the
  // name is not known yet; at the end of the input a flow still waiting takes
  // the DNS rule's name (`fallback`), as of its first packet.
  bool pending = false;
  std::uint32_t fallback = 0;
  NameSource fallback_source = NameSource::none;
  PendingCounts held;
};

// A flow started on schedule once (each edge case at least once).
struct Special {
  FlowKind kind = FlowKind::tcp;
  std::uint16_t dport = 443;
  std::uint32_t dst = 0;
  std::uint32_t wire_name = kNone;
  bool http = false;
  std::uint16_t host_port = 0;
  std::uint32_t quic_version = 0;
};

struct Aggregate {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  TimeUs first = 0;
  TimeUs last = 0;
};

struct Client {
  IpAddress v4;
  IpAddress v6;
  Mac mac{};
  bool local4 = false; // received a DNS response over IPv4 (local from then on)
  bool local6 = false;
};

// One frame as written: the Ethernet frame converted to Options::link.
struct LinkFrame {
  std::array<std::uint8_t, 1600> bytes{};
  std::size_t size = 0;
};

inline void put_be64(std::uint8_t *p, std::uint64_t v) noexcept {
  put32(p, static_cast<std::uint32_t>(v >> 32U));
  put32(p + 4, static_cast<std::uint32_t>(v));
}

IpAddress make_v4(std::uint32_t v);
IpAddress make_v6(const std::array<std::uint16_t, 8> &groups);
std::uint16_t ephemeral_port(SplitMix64 &rng);

} // namespace detail

struct Generator::Impl {
  using Flow = detail::Flow;

  explicit Impl(const Options &options);

  bool next(TimeUs &ts, Bytes &frame);
  [[nodiscard]] GroundTruth truth() const;

  std::uint32_t add_address(const IpAddress &ip);
  void build_world();
  void build_specials();
  [[nodiscard]] TimeUs timestamp(std::uint64_t i);

  [[nodiscard]] bool preamble_done() const { return preamble_next == preamble.size(); }
  [[nodiscard]] bool can_move() const {
    return move_addr != detail::kNone && !moved && preamble_done() && addr[move_addr].announced;
  }
  [[nodiscard]] bool second_due() const {
    return second_next < second_plans.size() && preamble_done() && produced >= opt.packets / 5;
  }
  [[nodiscard]] bool dns_start_due() const;
  detail::Plan next_plan();
  void emit_query();
  void emit_response();
  void emit_decoy();
  void emit_traffic();
  // The response message of `current` at `p`, with its effects on the world
  // (the move, addresses announced); `answers` is what it teaches, or null.
  std::size_t write_response(std::uint8_t *p, std::size_t room,
                             const std::vector<std::uint32_t> *&answers);
  void learn_response(const std::vector<std::uint32_t> *answers, bool whole);

  // links.cpp: DNS over TCP, IP fragments, the link layer.
  void start_tcp_dns();
  void emit_tcp_dns();
  void split_fragments();
  void emit_fragment();
  void to_link(Bytes ethernet);

  // traffic.cpp
  void start_midflow();
  void emit_midflow();
  std::uint32_t pick_destination();
  std::uint32_t pick_destination_second();
  void start_flow(Flow &f);
  void start_special(Flow &f);
  void choose_sport(Flow &f);
  void name_flow(Flow &f);
  [[nodiscard]] std::string_view view_name(std::uint8_t client, std::uint32_t dst) const;
  void step_tcp(Flow &f);
  void tcp_request(Flow &f, bool six);
  void step_quic(Flow &f);
  void step_ntp(Flow &f);
  void step_echo(Flow &f);
  std::uint8_t *begin(const Flow &f, bool outbound, std::uint8_t proto, std::size_t l4_header);
  std::uint16_t draw_request_size();
  std::uint16_t draw_segment_size(bool six);
  void fill(std::uint8_t *p, std::size_t n);
  std::size_t client_hello(const Flow &f, bool quic);

  // The truth models.
  void learn(std::uint8_t client, bool six, bool rcode_ok,
             const std::vector<std::uint32_t> *answers, std::int32_t endpoint);
  void count(std::uint8_t client, std::uint32_t dst, bool dns_port);
  void count_flow(Flow &f, bool sent);
  void count_icmp(std::uint8_t client, std::uint32_t dst);
  // Whether a client-sourced frame is outbound: its address is local, or
  // the link marks the frame "outgoing" (cooked captures).
  [[nodiscard]] bool is_local(std::uint8_t client, const IpAddress &a) const {
    return outgoing_marks || (a.family == 6 ? clients[client].local6 : clients[client].local4);
  }
  void table_learn(std::uint32_t id, std::int32_t endpoint);
  void client_learn(std::uint8_t client, std::uint32_t id);
  std::uint32_t endpoint_flow_id(std::int32_t endpoint);

  Options opt;
  detail::SplitMix64 rng;    // traffic and DNS choices
  detail::SplitMix64 jitter; // timestamps only
  detail::FrameWriter w;
  detail::QuicInitialWriter quic;
  std::array<std::uint8_t, 4096> noise{};
  std::array<std::uint8_t, 1024> scratch{}; // a ClientHello being written

  std::vector<detail::Address> addr;
  std::vector<detail::Endpoint> eps;
  std::array<detail::Client, detail::kClients> clients{};
  std::uint32_t resolver4 = 0;
  std::uint32_t resolver6 = 0;
  std::uint32_t secondary = 0;
  std::uint32_t nx_addr = 0;
  std::uint32_t decoy_target = 0;
  std::uint32_t move_addr = detail::kNone;
  std::uint32_t alias_addr = detail::kNone; // answered to client 1 under endpoint 1's name
  std::vector<std::uint32_t> alias_answers;
  std::vector<std::uint32_t> pool; // never-resolved destinations, used round robin
  std::size_t pool_next = 0;
  std::uint32_t resolved_prefix = 0; // endpoints [0, n) have had an answer

  std::vector<detail::Plan> preamble;
  std::size_t preamble_next = 0;
  std::vector<detail::Plan> second_plans;
  std::size_t second_next = 0;
  std::uint64_t next_preamble = 0;
  std::uint64_t next_periodic = 0;
  std::uint64_t exchanges = 0;
  std::uint32_t periodic = 0;
  std::uint32_t rr = 0;
  bool lost_retry = false;
  bool moved = false;
  bool decoy_done = false;

  std::vector<detail::Special> specials;
  std::size_t special_next = 0;
  bool split_done = false;
  std::uint64_t midflow_frames = 0;
  // UDP 5-tuples (destination, source port, port) -> when last started: a
  // new UDP flow never reuses one within the flow idle timeout, so under
  // flow naming it is a flow of its own.
  std::unordered_map<std::uint64_t, TimeUs> udp_used;

  // The DNS exchange in flight: the response follows `countdown` frames later.
  bool response_due = false;
  std::uint8_t countdown = 0;
  detail::Plan current;
  std::uint16_t dns_id = 0;
  std::uint16_t dns_sport = 0;
  std::uint16_t dns_vlan = 0;

  // DNS over TCP: the exchange in flight (0: none; else the next step), its
  // sequence numbers and the response message, sent in two segments.
  std::uint8_t tcp_dns_step = 0;
  std::uint32_t tcp_dns_cseq = 0;
  std::uint32_t tcp_dns_sseq = 0;
  std::uint32_t tcp_dns_turn = 0;
  std::array<std::uint8_t, 1400> tcp_dns_msg{};
  std::size_t tcp_dns_len = 0;
  std::vector<std::uint32_t> tcp_dns_answers;
  // IP fragments: this response goes out as two; the second is held.
  std::uint32_t fragment_turn = 0;
  bool fragment_due_next = false; // the response of the exchange in flight
  bool fragment_this = false;
  detail::LinkFrame fragment2;
  bool fragment_due = false;
  // The link layer: frames as written, and whether clients' frames are
  // marked outgoing.
  bool outgoing_marks = false;
  detail::LinkFrame linked;
  // The bounded DNS table's truth: learn order -> address id.
  std::map<std::uint64_t, std::uint32_t> table_order;
  std::uint64_t table_clock = 0;
  // The per-client table's truth: learn order -> (address id, client).
  std::map<std::uint64_t, std::pair<std::uint32_t, std::uint8_t>> client_order;
  std::uint64_t client_clock = 0;

  std::array<Flow, detail::kSlots> flows{};
  std::uint64_t produced = 0;
  TimeUs now = 0;

  std::vector<detail::Aggregate> agg;                          // [0] = "", [1 + i] = endpoint i
  std::vector<std::pair<std::uint32_t, std::int32_t>> counted; // on change only
  std::string moved_address;
  std::int32_t moved_from = detail::kUnresolved;
  std::int32_t moved_to = detail::kUnresolved;
  TimeUs moved_at = 0;
  detail::FlowTruth flow_truth;
};

} // namespace ta::generate
