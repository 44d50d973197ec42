#include "ta/generate/generate.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ta/capture/capture.hpp"
#include "ta/common/address.hpp"

#include "dns_writer.hpp"
#include "frame.hpp"
#include "prng.hpp"

// The world: client 10.0.0.2 / fd00::2 behind gateway+resolver 10.0.0.1 /
// fd00::1 (MACs 02:00:00:00:00:02 and :01). Endpoint addresses come from
// 198.18.0.0/15 and 2001:db8:a00::/40; never-resolved ones from 203.0.113.0/24,
// 192.0.2.0/24 (glue and the NXDOMAIN answer) and 2001:db8:ffff::/48.
//
// Timeline: a burst of DNS exchanges (the first 8 back to back, the rest of
// the initial resolutions interleaved with traffic), then traffic with a
// re-resolution every ~500 frames; at 30% one ICMP port-unreachable quoting a
// DNS response; at 50% the move (an address of endpoint 0 answered for
// endpoint 1).
//
// The truth is not derived from the bytes: every frame reports what it is
// (family, destination, whether port 53 is involved, what a response teaches)
// to a small model of the attribution contract (README "What is counted"), fed
// in frame order.

namespace ta::generate {
namespace {

using detail::DnsSection;
using detail::DnsWriter;
using detail::FrameWriter;
using detail::Mac;
using detail::SplitMix64;
using detail::TcpFields;

constexpr std::uint32_t kNone = 0xFFFFFFFFU;
constexpr std::int32_t kUnresolved = -1;
constexpr std::int32_t kNeverCounted = -2;

constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr Mac kGatewayMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr std::uint16_t kDnsVlan = 100;
constexpr std::uint32_t kMaxEndpoints = 30'000; // 3 addresses each fit 198.18.0.0/15
constexpr std::size_t kSlots = 6;               // concurrent flows
constexpr std::uint32_t kDnsInterval = 500;     // mean frames between re-resolutions
constexpr std::size_t kBurst = 8;               // initial exchanges sent back to back
constexpr std::uint32_t kTtl = 300;

constexpr std::array<std::string_view, 16> kWellKnown{
    "www.example.com",     "api.github.test",    "cdn.news.test",      "mail.example.org",
    "static.shop.test",    "login.example.net",  "video.stream.test",  "images.photos.test",
    "updates.os.test",     "telemetry.app.test", "docs.example.com",   "maps.geo.test",
    "chat.messenger.test", "music.player.test",  "search.example.org", "ads.tracker.test"};

constexpr std::string_view kNxName = "missing.example.test";
constexpr std::string_view kNxAlias = "gone.cdnedge.test";
constexpr std::string_view kNxZone = "cdnedge.test";
constexpr std::string_view kNxMname = "ns1.cdnedge.test";
constexpr std::string_view kNxRname = "hostmaster.cdnedge.test";
constexpr std::string_view kDecoyName = "decoy.example.test";

IpAddress make_v4(std::uint32_t v) {
  IpAddress a;
  a.family = 4;
  a.bytes[0] = static_cast<std::uint8_t>(v >> 24U);
  a.bytes[1] = static_cast<std::uint8_t>(v >> 16U);
  a.bytes[2] = static_cast<std::uint8_t>(v >> 8U);
  a.bytes[3] = static_cast<std::uint8_t>(v);
  return a;
}

IpAddress make_v6(const std::array<std::uint16_t, 8> &groups) {
  IpAddress a;
  a.family = 6;
  for (std::size_t i = 0; i < 8; ++i) {
    a.bytes[2 * i] = static_cast<std::uint8_t>(groups[i] >> 8U);
    a.bytes[2 * i + 1] = static_cast<std::uint8_t>(groups[i]);
  }
  return a;
}

struct Address {
  IpAddress ip;
  std::string text;
  std::int32_t owner = kUnresolved;          // generator: endpoint whose answers carry it now
  bool announced = false;                    // generator: sent in an answer already
  std::int32_t taught = kUnresolved;         // truth: latest RCODE-0 answer section naming it
  std::int32_t last_counted = kNeverCounted; // truth: endpoint of its last counted packet
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
};

enum class Exchange : std::uint8_t { answer, nxdomain, lost, move };

struct Plan {
  Exchange kind = Exchange::answer;
  std::uint32_t endpoint = 0;
  std::uint16_t qtype = detail::kDnsA;
  bool mixed_case = false;
};

enum class FlowKind : std::uint8_t { none, tcp, quic, ntp, echo };

struct Flow {
  FlowKind kind = FlowKind::none;
  std::uint8_t state = 0;
  std::uint8_t rounds = 0;   // tcp: request/response rounds left; others: packets left
  std::uint8_t segments = 0; // tcp: response segments left in this round
  std::uint8_t seg_count = 0;
  std::uint32_t dst = 0; // address id
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t cseq = 0;
  std::uint32_t sseq = 0;
  std::uint16_t ident = 0;
  std::uint16_t seq16 = 0;
  std::array<std::uint16_t, 3> seg{}; // response payload sizes of this round
};

struct Aggregate {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  TimeUs first = 0;
  TimeUs last = 0;
};

std::size_t decimal_digits(std::uint32_t v) {
  std::size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Linux's ephemeral range minus the ports Wireshark 4.0 dissects by number
// (`tshark -G decodes`): a flow from 44818 would be read as EtherNet/IP.
std::uint16_t ephemeral_port(SplitMix64 &rng) {
  constexpr std::array<std::uint32_t, 15> kTaken{34962, 34980, 37008, 41170, 44321,
                                                 44322, 44818, 45564, 47000, 47808,
                                                 48049, 48898, 49999, 54328, 60001};
  std::uint32_t p = rng.between(32768, 60999 - (59533 - 56000 + 1));
  if (p >= 56000) {
    p += 59533 - 56000 + 1; // the EOBI ports are all in 56000-59533
  }
  while (std::find(kTaken.begin(), kTaken.end(), p) != kTaken.end()) {
    ++p;
  }
  return static_cast<std::uint16_t>(p);
}

std::size_t put_text(std::uint8_t *p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return s.size();
}

} // namespace

struct Generator::Impl {
  explicit Impl(const Options &options);

  bool next(TimeUs &ts, Bytes &frame);
  [[nodiscard]] GroundTruth truth() const;

  std::uint32_t add_address(const IpAddress &ip);
  void build_world();
  [[nodiscard]] TimeUs timestamp(std::uint64_t i);

  [[nodiscard]] bool preamble_done() const { return preamble_next == preamble.size(); }
  [[nodiscard]] bool can_move() const {
    return move_addr != kNone && !moved && preamble_done() && addr[move_addr].announced;
  }
  [[nodiscard]] bool dns_start_due() const;
  Plan next_plan();
  void emit_query();
  void emit_response();
  void emit_decoy();
  void emit_traffic();

  std::uint32_t pick_destination();
  void start_flow(Flow &f);
  void step_tcp(Flow &f);
  void step_quic(Flow &f);
  void step_ntp(Flow &f);
  void step_echo(Flow &f);
  std::uint8_t *begin(const Flow &f, bool outbound, std::uint8_t proto, std::size_t l4_header);
  std::uint16_t draw_request_size();
  std::uint16_t draw_segment_size(bool six);
  void fill(std::uint8_t *p, std::size_t n);

  // The contract model.
  void learn(bool six, bool rcode_ok, const std::vector<std::uint32_t> *answers,
             std::int32_t endpoint);
  void count(std::uint32_t dst, bool dns_port);

  Options opt;
  SplitMix64 rng;    // traffic and DNS choices
  SplitMix64 jitter; // timestamps only
  FrameWriter w;
  std::array<std::uint8_t, 4096> noise{};

  std::vector<Address> addr;
  std::vector<Endpoint> eps;
  IpAddress client4;
  IpAddress client6;
  std::uint32_t resolver4 = 0;
  std::uint32_t resolver6 = 0;
  std::uint32_t secondary = 0;
  std::uint32_t nx_addr = 0;
  std::uint32_t decoy_target = 0;
  std::uint32_t move_addr = kNone;
  std::vector<std::uint32_t> pool; // never-resolved destinations, used round robin
  std::size_t pool_next = 0;
  std::uint32_t resolved_prefix = 0; // endpoints [0, n) have had an answer

  std::vector<Plan> preamble;
  std::size_t preamble_next = 0;
  std::uint64_t next_preamble = 0;
  std::uint64_t next_periodic = 0;
  std::uint64_t exchanges = 0;
  std::uint32_t periodic = 0;
  std::uint32_t rr = 0;
  bool lost_retry = false;
  bool moved = false;
  bool decoy_done = false;

  // The DNS exchange in flight: the response follows `countdown` frames later.
  bool response_due = false;
  std::uint8_t countdown = 0;
  Plan current;
  std::uint16_t dns_id = 0;
  std::uint16_t dns_sport = 0;
  std::uint16_t dns_vlan = 0;

  std::array<Flow, kSlots> flows{};
  std::uint64_t produced = 0;
  TimeUs now = 0;

  bool local4 = false;
  bool local6 = false;
  std::vector<Aggregate> agg;                                  // [0] = "", [1 + i] = endpoint i
  std::vector<std::pair<std::uint32_t, std::int32_t>> counted; // on change only
  std::string moved_address;
  std::int32_t moved_from = kUnresolved;
  std::int32_t moved_to = kUnresolved;
  TimeUs moved_at = 0;
};

Generator::Impl::Impl(const Options &options)
    : opt(options), rng(options.seed ^ 0x7A11C0FFEE5EEDULL),
      jitter(options.seed * 0x9E3779B97F4A7C15ULL + 0x1D) {
  if (opt.packets_per_second == 0) {
    opt.packets_per_second = 1;
  }
  opt.endpoints = std::min(opt.endpoints, kMaxEndpoints);
  SplitMix64 bytes(options.seed ^ 0x6E6F697365ULL);
  for (std::size_t i = 0; i < noise.size(); i += 8) {
    const std::uint64_t v = bytes.next();
    for (std::size_t k = 0; k < 8; ++k) {
      noise[i + k] = static_cast<std::uint8_t>(v >> (8U * k));
    }
  }
  build_world();
  counted.reserve(addr.size() + 16);
  agg.resize(eps.size() + 1);
}

std::uint32_t Generator::Impl::add_address(const IpAddress &ip) {
  Address a;
  a.ip = ip;
  a.text = ip.to_string();
  addr.push_back(std::move(a));
  return static_cast<std::uint32_t>(addr.size() - 1);
}

void Generator::Impl::build_world() {
  client4 = make_v4(0x0A000002);
  client6 = make_v6({0xfd00, 0, 0, 0, 0, 0, 0, 2});
  resolver4 = add_address(make_v4(0x0A000001));
  resolver6 = add_address(make_v6({0xfd00, 0, 0, 0, 0, 0, 0, 1}));
  secondary = add_address(make_v4(0xC6336435)); // 198.51.100.53

  SplitMix64 world(opt.seed ^ 0x776F726C64ULL);
  const std::uint32_t v4_offset = world.below(1U << 17U);
  std::uint32_t v4_counter = 0;
  std::uint32_t v6_counter = 0;
  std::uint32_t glue_count = 0;
  std::vector<std::uint32_t> glue_ids;

  eps.resize(opt.endpoints);
  for (std::uint32_t i = 0; i < opt.endpoints; ++i) {
    Endpoint &e = eps[i];
    e.name = i < kWellKnown.size() ? std::string(kWellKnown[i])
                                   : "host-" + std::to_string(i) + ".example.net";
    e.asked = e.name;
    std::uint32_t n4 = 0;
    std::uint32_t n6 = 0;
    std::uint32_t hops = 0;
    if (i == 0) {
      n4 = 3; // loses one address at the move
    } else if (i == 1) {
      n4 = 1; // gains it
      n6 = 1;
      hops = 1;
    } else if (i == 2) {
      n4 = 2;
      hops = 2;
      // DNS 0x20-style mixed case; the truth reports the lower-case name.
      for (std::size_t k = 0; k < e.asked.size(); ++k) {
        const char c = e.asked[k];
        if (c >= 'a' && c <= 'z' && (k == 0 || world.percent(50))) {
          e.asked[k] = static_cast<char>(c - 'a' + 'A');
        }
      }
    } else {
      const std::uint32_t shape = world.below(10);
      if (shape < 6) {
        n4 = world.between(1, 3);
      } else if (shape < 8) {
        n4 = world.between(1, 2);
        n6 = 1;
      } else {
        n6 = world.between(1, 2);
      }
      const std::uint32_t c = world.below(100);
      hops = c < 60 ? 0 : (c < 85 ? 1 : 2);
    }
    if (hops >= 1) {
      e.chain.push_back(e.name + ".edgekey.test");
    }
    if (hops >= 2) {
      e.chain.push_back("e" + std::to_string(1000 + world.below(9000)) + ".a.cdnedge.test");
    }
    if (i % 7 == 3 && glue_count < 3) {
      e.zone = e.name.substr(e.name.find('.') + 1);
      e.ns = "ns1." + e.zone;
      e.glue = add_address(make_v4(0xC0000235U + glue_count)); // 192.0.2.53+
      glue_ids.push_back(e.glue);
      ++glue_count;
    }
    for (std::uint32_t k = 0; k < n4; ++k) {
      std::uint32_t host = 0;
      do {
        ++v4_counter;
        host = (v4_counter * 40503U + v4_offset) & 0x1FFFFU; // a bijection on 17 bits
      } while ((host & 0xFFU) == 0 || (host & 0xFFU) == 0xFF);
      const std::uint32_t id = add_address(make_v4(0xC6120000U + host)); // 198.18.0.0/15
      addr[id].owner = static_cast<std::int32_t>(i);
      e.v4.push_back(id);
    }
    for (std::uint32_t k = 0; k < n6; ++k) {
      ++v6_counter;
      const std::uint32_t id = add_address(
          make_v6({0x2001, 0x0db8, static_cast<std::uint16_t>(0x0a00U + (v6_counter >> 16U)),
                   static_cast<std::uint16_t>(v6_counter & 0xFFFFU), 0, 0, 0,
                   static_cast<std::uint16_t>(world.between(1, 0xFFFE))}));
      addr[id].owner = static_cast<std::int32_t>(i);
      e.v6.push_back(id);
    }
  }

  nx_addr = add_address(make_v4(0xC0000263)); // 192.0.2.99
  const std::array<std::uint32_t, 4> unresolved4{0xCB007107, 0xCB007117, 0xCB00712A, 0xCB007165};
  const std::uint32_t u6a = add_address(make_v6({0x2001, 0x0db8, 0xffff, 0, 0, 0, 0, 7}));
  const std::uint32_t u6b = add_address(make_v6({0x2001, 0x0db8, 0xffff, 0, 0, 0, 0, 0x2a}));
  // Interleaved so every kind is hit early; pool[0] is IPv4.
  pool.push_back(add_address(make_v4(unresolved4[0])));
  if (!glue_ids.empty()) {
    pool.push_back(glue_ids[0]);
  }
  pool.push_back(u6a);
  pool.push_back(nx_addr);
  pool.push_back(add_address(make_v4(unresolved4[1])));
  pool.push_back(u6b);
  for (std::size_t k = 1; k < glue_ids.size(); ++k) {
    pool.push_back(glue_ids[k]);
  }
  pool.push_back(add_address(make_v4(unresolved4[2])));
  pool.push_back(add_address(make_v4(unresolved4[3])));

  if (eps.size() >= 2) {
    move_addr = eps[0].v4.back();
  }
  decoy_target = eps.size() >= 3 ? eps[2].v4.front() : pool.front();

  // Initial resolutions in endpoint order: A, then AAAA over IPv6. The
  // NXDOMAIN exchange comes third (first if there are no endpoints).
  for (std::uint32_t i = 0; i < eps.size(); ++i) {
    if (!eps[i].v4.empty()) {
      preamble.push_back({Exchange::answer, i, detail::kDnsA, i == 2});
    }
    if (!eps[i].v6.empty()) {
      preamble.push_back({Exchange::answer, i, detail::kDnsAaaa, false});
    }
  }
  preamble.insert(preamble.begin() +
                      static_cast<std::ptrdiff_t>(std::min<std::size_t>(2, preamble.size())),
                  Plan{Exchange::nxdomain, 0, detail::kDnsA, false});
}

TimeUs Generator::Impl::timestamp(std::uint64_t i) {
  // Spacing 1e6/pps µs; jitter stays below half a step, so timestamps never
  // go backwards.
  const auto pps = static_cast<std::uint64_t>(opt.packets_per_second);
  const auto base = static_cast<TimeUs>(i * 1'000'000ULL / pps);
  const auto step = static_cast<TimeUs>((i + 1) * 1'000'000ULL / pps) - base;
  const TimeUs j = step >= 2 ? static_cast<TimeUs>(jitter.below(static_cast<std::uint32_t>(
                                   std::min<TimeUs>(step / 2, 0xFFFFFFFF))))
                             : 0;
  return opt.start_us + base + j;
}

bool Generator::Impl::next(TimeUs &ts, Bytes &frame) {
  if (produced >= opt.packets) {
    return false;
  }
  now = timestamp(produced);
  if (response_due && countdown == 0) {
    emit_response();
  } else if (dns_start_due()) {
    emit_query();
  } else if (!decoy_done && preamble_done() && produced >= opt.packets * 3 / 10) {
    emit_decoy();
  } else {
    if (response_due) {
      --countdown;
    }
    emit_traffic();
  }
  ++produced;
  ts = now;
  frame = w.frame();
  return true;
}

bool Generator::Impl::dns_start_due() const {
  if (response_due) {
    return false;
  }
  if (!preamble_done()) {
    return preamble_next < kBurst || produced >= next_preamble;
  }
  if (can_move() && produced >= opt.packets / 2) {
    return true;
  }
  return produced >= next_periodic;
}

Plan Generator::Impl::next_plan() {
  if (!preamble_done()) {
    return preamble[preamble_next++];
  }
  if (can_move() && produced >= opt.packets / 2) {
    moved = true;
    return {Exchange::move, 1, detail::kDnsA, false};
  }
  if (eps.empty()) {
    return {Exchange::nxdomain, 0, detail::kDnsA, false};
  }
  const std::uint32_t e = rr % static_cast<std::uint32_t>(eps.size());
  const Endpoint &ep = eps[e];
  // Both families: A in even rounds, AAAA in odd ones.
  const bool aaaa = ep.v4.empty() || (!ep.v6.empty() && ((rr / eps.size()) % 2) == 1);
  const std::uint16_t qtype = aaaa ? detail::kDnsAaaa : detail::kDnsA;
  // Every tenth re-resolution first goes to a secondary resolver that never
  // answers, then is retried at the resolver.
  if (!lost_retry && ++periodic % 10 == 0) {
    lost_retry = true;
    return {Exchange::lost, e, qtype, false};
  }
  lost_retry = false;
  ++rr;
  return {Exchange::answer, e, qtype, false};
}

void Generator::Impl::emit_query() {
  const bool burst = preamble_next < kBurst;
  current = next_plan();
  const bool six = current.qtype == detail::kDnsAaaa && current.kind != Exchange::lost;
  dns_vlan = (exchanges++ % 4 == 1 || current.kind == Exchange::move) ? kDnsVlan : 0;
  dns_id = static_cast<std::uint16_t>(rng.next());
  dns_sport = ephemeral_port(rng);
  const std::uint32_t dst =
      current.kind == Exchange::lost ? secondary : (six ? resolver6 : resolver4);
  std::uint8_t *p = w.start(kClientMac, kGatewayMac, dns_vlan, six ? client6 : client4,
                            addr[dst].ip, 64, detail::kProtoUdp, 8);
  DnsWriter d(p, w.payload_room());
  d.header(dns_id, 0x0100); // RD
  std::string_view qname = kNxName;
  if (current.kind != Exchange::nxdomain) {
    const Endpoint &e = eps[current.endpoint];
    qname = current.mixed_case ? std::string_view(e.asked) : std::string_view(e.name);
  }
  d.question(qname, current.qtype);
  d.opt_record(1232);
  w.finish_udp(dns_sport, 53, d.finish());
  count(dst, true);

  if (current.kind == Exchange::lost) {
    next_periodic = produced + 1 + rng.below(3);
    return;
  }
  response_due = true;
  countdown = burst ? 0 : static_cast<std::uint8_t>(rng.below(4));
  if (!preamble_done()) {
    next_preamble = produced + 2 + rng.below(24);
  } else {
    next_periodic = produced + kDnsInterval / 2 + rng.below(kDnsInterval);
  }
}

void Generator::Impl::emit_response() {
  response_due = false;
  const bool six = current.qtype == detail::kDnsAaaa;
  const std::uint32_t src = six ? resolver6 : resolver4;
  std::uint8_t *p = w.start(kGatewayMac, kClientMac, dns_vlan, addr[src].ip,
                            six ? client6 : client4, 64, detail::kProtoUdp, 8);
  DnsWriter d(p, w.payload_room());
  if (current.kind == Exchange::nxdomain) {
    // RCODE 3 with an answer section anyway (a CNAME to a name that does not
    // exist, and an A for it): it must teach nothing.
    d.header(dns_id, 0x8183);
    d.question(kNxName, detail::kDnsA);
    d.name_record(DnsSection::answer, kNxName, detail::kDnsCname, kTtl, kNxAlias);
    d.address_record(DnsSection::answer, kNxAlias, addr[nx_addr].ip, kTtl);
    d.soa_record(DnsSection::authority, kNxZone, kNxMname, kNxRname, 2024010101, 900);
    d.opt_record(1232);
    w.finish_udp(53, dns_sport, d.finish());
    learn(six, false, nullptr, kUnresolved);
    return;
  }

  const auto ei = static_cast<std::int32_t>(current.endpoint);
  Endpoint &e = eps[current.endpoint];
  if (current.kind == Exchange::move) {
    Endpoint &from = eps[0];
    from.v4.erase(std::find(from.v4.begin(), from.v4.end(), move_addr));
    e.v4.push_back(move_addr);
    addr[move_addr].owner = ei;
    moved_address = addr[move_addr].text;
    moved_from = addr[move_addr].taught;
    moved_to = ei;
    moved_at = now;
  }
  const std::vector<std::uint32_t> &answers = six ? e.v6 : e.v4;
  d.header(dns_id, 0x8180); // QR RD RA, RCODE 0
  const std::string_view qname =
      current.mixed_case ? std::string_view(e.asked) : std::string_view(e.name);
  d.question(qname, current.qtype);
  std::string_view owner = qname;
  for (const std::string &alias : e.chain) {
    d.name_record(DnsSection::answer, owner, detail::kDnsCname, 3600, alias);
    owner = alias;
  }
  for (const std::uint32_t id : answers) {
    d.address_record(DnsSection::answer, owner, addr[id].ip, kTtl);
    addr[id].announced = true;
  }
  if (e.glue != kNone) {
    // Delegation plus glue: an NS in authority, its A in additional. Glue
    // teaches nothing; the client contacts that address later anyway.
    d.name_record(DnsSection::authority, e.zone, detail::kDnsNs, 86400, e.ns);
    d.address_record(DnsSection::additional, e.ns, addr[e.glue].ip, 86400);
  }
  d.opt_record(1232);
  w.finish_udp(53, dns_sport, d.finish());
  resolved_prefix = std::max(resolved_prefix, current.endpoint + 1);
  learn(six, true, &answers, ei);
}

void Generator::Impl::emit_decoy() {
  // Outbound ICMP port unreachable to the resolver, quoting a whole IPv4/UDP
  // DNS response (from port 53, RCODE 0, an A record for an address that
  // belongs to endpoint 2). A quoted message is not a response: it teaches
  // nothing, and the ICMP packet itself counts (port 0) for "" (10.0.0.1 is
  // never answered for).
  decoy_done = true;
  const IpAddress &resolver = addr[resolver4].ip;
  std::uint8_t *p =
      w.start(kClientMac, kGatewayMac, 0, client4, resolver, 64, detail::kProtoIcmp, 8);
  DnsWriter d(p + 28, w.payload_room() - 28);
  d.header(static_cast<std::uint16_t>(rng.next()), 0x8180);
  d.question(kDecoyName, detail::kDnsA);
  d.address_record(DnsSection::answer, kDecoyName, addr[decoy_target].ip, kTtl);
  const std::size_t n = d.finish();
  const auto port = ephemeral_port(rng);
  detail::put_udp_header(p + 20, resolver, client4, 53, port, n);
  detail::put_ipv4_header(p, resolver, client4, detail::kProtoUdp, 64,
                          static_cast<std::uint16_t>(rng.next()), 8 + n);
  w.finish_icmp(3, 3, 0, 28 + n);
  count(resolver4, false);
}

std::uint32_t Generator::Impl::pick_destination() {
  if (resolved_prefix > 0 && !rng.percent(6)) {
    // Skewed towards low indices: endpoint 0 is the most popular.
    const std::uint32_t e = std::min(rng.below(resolved_prefix), rng.below(resolved_prefix));
    const Endpoint &ep = eps[e];
    std::uint32_t n = 0;
    for (const std::uint32_t id : ep.v4) {
      n += addr[id].announced ? 1 : 0;
    }
    if (local6) {
      for (const std::uint32_t id : ep.v6) {
        n += addr[id].announced ? 1 : 0;
      }
    }
    if (n > 0) {
      std::uint32_t k = rng.below(n);
      for (int fam = 0; fam < 2; ++fam) {
        for (const std::uint32_t id : fam == 0 ? ep.v4 : ep.v6) {
          if (addr[id].announced && (fam == 0 || local6) && k-- == 0) {
            return id;
          }
        }
      }
    }
  }
  // IPv6 destinations only once the client's IPv6 address is local.
  for (std::size_t tries = 0; tries < pool.size(); ++tries) {
    const std::uint32_t id = pool[pool_next++ % pool.size()];
    if (addr[id].ip.family == 4 || local6) {
      return id;
    }
  }
  return pool.front();
}

void Generator::Impl::start_flow(Flow &f) {
  f = Flow{};
  f.dst = pick_destination();
  // A port no live flow uses, so no two flows share a 5-tuple.
  bool clash = true;
  while (clash) {
    f.sport = ephemeral_port(rng);
    clash = std::any_of(flows.begin(), flows.end(), [&](const Flow &o) {
      return &o != &f && o.kind != FlowKind::none && o.sport == f.sport;
    });
  }
  const std::uint32_t r = rng.below(100);
  if (r < 68) {
    f.kind = FlowKind::tcp;
    f.dport = rng.percent(80) ? 443 : 80;
    f.rounds = static_cast<std::uint8_t>(rng.between(1, 6));
    f.cseq = static_cast<std::uint32_t>(rng.next());
    f.sseq = static_cast<std::uint32_t>(rng.next());
  } else if (r < 88) {
    f.kind = FlowKind::quic;
    f.dport = 443;
    f.rounds = static_cast<std::uint8_t>(rng.between(4, 16));
    f.ident = static_cast<std::uint16_t>(rng.next());
  } else if (r < 95) {
    f.kind = FlowKind::ntp;
    f.dport = 123;
    f.rounds = 2;
  } else {
    f.kind = FlowKind::echo;
    f.rounds = static_cast<std::uint8_t>(2 * rng.between(1, 4));
    f.ident = static_cast<std::uint16_t>(rng.next());
    f.seq16 = 1;
  }
}

void Generator::Impl::emit_traffic() {
  Flow &f = flows[rng.below(kSlots)];
  if (f.kind == FlowKind::none) {
    start_flow(f);
  }
  switch (f.kind) {
  case FlowKind::tcp:
    step_tcp(f);
    break;
  case FlowKind::quic:
    step_quic(f);
    break;
  case FlowKind::ntp:
    step_ntp(f);
    break;
  case FlowKind::echo:
  case FlowKind::none:
    step_echo(f);
    break;
  }
}

std::uint8_t *Generator::Impl::begin(const Flow &f, bool outbound, std::uint8_t proto,
                                     std::size_t l4_header) {
  const IpAddress &remote = addr[f.dst].ip;
  const IpAddress &client = remote.family == 6 ? client6 : client4;
  if (outbound) {
    return w.start(kClientMac, kGatewayMac, 0, client, remote, 64, proto, l4_header);
  }
  return w.start(kGatewayMac, kClientMac, 0, remote, client, 52, proto, l4_header);
}

void Generator::Impl::fill(std::uint8_t *p, std::size_t n) {
  std::size_t off = rng.below(static_cast<std::uint32_t>(noise.size() / 2));
  while (n > 0) {
    const std::size_t k = std::min(n, noise.size() - off);
    std::memcpy(p, noise.data() + off, k);
    p += k;
    n -= k;
    off = 0;
  }
}

std::uint16_t Generator::Impl::draw_request_size() {
  // Mostly small messages: the mix averages ~80-byte frames (a 1M-packet
  // capture is ~95 MB), with the odd large upload.
  const std::uint32_t r = rng.below(100);
  if (r < 90) {
    return static_cast<std::uint16_t>(rng.between(10, 40));
  }
  if (r < 99) {
    return static_cast<std::uint16_t>(rng.between(41, 200));
  }
  return static_cast<std::uint16_t>(rng.between(301, 1000));
}

std::uint16_t Generator::Impl::draw_segment_size(bool six) {
  const std::uint32_t r = rng.below(1000);
  if (r < 5) {
    return six ? 1440 : 1460; // a full segment: a 1514-byte frame
  }
  if (r < 855) {
    return static_cast<std::uint16_t>(rng.between(10, 50));
  }
  return static_cast<std::uint16_t>(rng.between(51, 200));
}

void Generator::Impl::step_tcp(Flow &f) {
  const bool six = addr[f.dst].ip.family == 6;
  // SYN / SYN-ACK options: MSS, SACK permitted, timestamps, NOP, window scale 7.
  std::array<std::uint8_t, 20> syn_options{2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0,
                                           0, 0, 0,    0,    0, 0, 1, 3,  3, 7};
  if (six) {
    syn_options[2] = 0x05;
    syn_options[3] = 0xA0; // 1440
  }
  detail::put32(syn_options.data() + 8, static_cast<std::uint32_t>(now / 1000));
  TcpFields out{f.sport, f.dport, f.cseq, f.sseq, detail::kTcpAck, 502, {}};
  TcpFields in{f.dport, f.sport, f.sseq, f.cseq, detail::kTcpAck, 501, {}};
  switch (f.state) {
  case 0: // SYN
    (void)begin(f, true, detail::kProtoTcp, 20 + syn_options.size());
    out.ack = 0;
    out.flags = detail::kTcpSyn;
    out.window = 64240;
    out.options = syn_options;
    w.finish_tcp(out, 0);
    ++f.cseq;
    f.state = 1;
    break;
  case 1: // SYN-ACK
    (void)begin(f, false, detail::kProtoTcp, 20 + syn_options.size());
    detail::put32(syn_options.data() + 12, static_cast<std::uint32_t>(now / 1000)); // TSecr
    in.flags = detail::kTcpSyn | detail::kTcpAck;
    in.window = 65160;
    in.options = syn_options;
    w.finish_tcp(in, 0);
    ++f.sseq;
    f.state = 2;
    return;
  case 2: // ACK
    (void)begin(f, true, detail::kProtoTcp, 20);
    w.finish_tcp(out, 0);
    f.state = 3;
    break;
  case 3: { // request
    std::uint8_t *p = begin(f, true, detail::kProtoTcp, 20);
    std::size_t n = draw_request_size();
    if (f.dport == 80) {
      const std::int32_t owner = addr[f.dst].owner;
      const std::string_view host =
          owner >= 0 ? std::string_view(eps[static_cast<std::size_t>(owner)].name)
                     : std::string_view(addr[f.dst].text);
      std::size_t k = put_text(p, "GET /");
      for (std::size_t i = 0; i < n % 48 + 1; ++i) {
        p[k++] =
            static_cast<std::uint8_t>("abcdefghijklmnopqrstuvwxyz0123456789"[noise[i + n] % 36]);
      }
      k += put_text(p + k, " HTTP/1.1\r\nHost: ");
      k += put_text(p + k, host);
      k += put_text(p + k, "\r\nAccept: */*\r\n\r\n");
      n = k;
    } else {
      // A TLS 1.2-framed application data record: type 23, version 3.3, length.
      p[0] = 23;
      p[1] = 3;
      p[2] = 3;
      detail::put16(p + 3, static_cast<std::uint16_t>(n - 5));
      fill(p + 5, n - 5);
    }
    out.flags = detail::kTcpPsh | detail::kTcpAck;
    w.finish_tcp(out, n);
    f.cseq += static_cast<std::uint32_t>(n);
    const std::uint32_t r = rng.below(100);
    f.seg_count = static_cast<std::uint8_t>(r < 70 ? 1 : (r < 92 ? 2 : 3));
    f.segments = f.seg_count;
    for (std::size_t i = 0; i < f.seg_count; ++i) {
      f.seg[i] = draw_segment_size(six);
    }
    if (f.dport == 80) {
      f.seg[0] = std::max<std::uint16_t>(f.seg[0], 64); // room for the status line
    }
    f.state = rng.percent(50) ? 9 : 4;
    break;
  }
  case 9: // the server acknowledges the request before answering
    (void)begin(f, false, detail::kProtoTcp, 20);
    w.finish_tcp(in, 0);
    f.state = 4;
    return;
  case 4: { // response segment
    std::uint8_t *p = begin(f, false, detail::kProtoTcp, 20);
    const std::size_t index = f.seg_count - f.segments;
    const std::size_t n = f.seg[index];
    if (f.dport == 80 && index == 0) {
      // HTTP/1.1 status line, Content-Length = the rest of this round.
      std::size_t total = 0;
      for (std::size_t i = 0; i < f.seg_count; ++i) {
        total += f.seg[i];
      }
      const std::size_t fixed =
          std::string_view("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n").size();
      std::uint32_t body = static_cast<std::uint32_t>(total - fixed - 1);
      for (std::size_t d = 1; d <= 5; ++d) {
        const auto candidate = static_cast<std::uint32_t>(total - fixed - d);
        if (decimal_digits(candidate) == d) {
          body = candidate;
          break;
        }
      }
      std::size_t k = put_text(p, "HTTP/1.1 200 OK\r\nContent-Length: ");
      k += put_text(p + k, std::to_string(body));
      k += put_text(p + k, "\r\n\r\n");
      fill(p + k, n - k);
    } else if (f.dport == 80) {
      fill(p, n);
    } else {
      p[0] = 23;
      p[1] = 3;
      p[2] = 3;
      detail::put16(p + 3, static_cast<std::uint16_t>(n - 5));
      fill(p + 5, n - 5);
    }
    in.flags = detail::kTcpPsh | detail::kTcpAck;
    w.finish_tcp(in, n);
    f.sseq += static_cast<std::uint32_t>(n);
    --f.segments;
    f.state = 5; // every segment is acknowledged
    return;
  }
  case 5: // ACK
    (void)begin(f, true, detail::kProtoTcp, 20);
    w.finish_tcp(out, 0);
    if (f.segments > 0) {
      f.state = 4;
    } else {
      f.state = --f.rounds > 0 ? 3 : 6;
    }
    break;
  case 6: // FIN
    (void)begin(f, true, detail::kProtoTcp, 20);
    out.flags = detail::kTcpFin | detail::kTcpAck;
    w.finish_tcp(out, 0);
    ++f.cseq;
    f.state = 7;
    break;
  case 7: // FIN-ACK
    (void)begin(f, false, detail::kProtoTcp, 20);
    in.flags = detail::kTcpFin | detail::kTcpAck;
    w.finish_tcp(in, 0);
    ++f.sseq;
    f.state = 8;
    return;
  default: // 8: the last ACK
    (void)begin(f, true, detail::kProtoTcp, 20);
    w.finish_tcp(out, 0);
    f.kind = FlowKind::none;
    break;
  }
  count(f.dst, false);
}

void Generator::Impl::step_quic(Flow &f) {
  // QUIC-like short-header packets (first byte 01xxxxxx, then a DCID that
  // starts 00 <flow id>); the first one is outbound, the rest go either way.
  // Wireshark does not claim short headers of an unseen connection; the zero
  // byte keeps its UDP heuristics (COTP/CLTP, GOOSE, ...) from claiming noise.
  const bool outbound = f.state == 0 || rng.percent(50);
  f.state = 1;
  std::uint8_t *p = begin(f, outbound, detail::kProtoUdp, 8);
  const std::uint32_t r = rng.below(100);
  const std::size_t n = r < 85 ? rng.between(20, 36) : (r < 99 ? rng.between(37, 140) : 1200);
  fill(p, n);
  p[0] = static_cast<std::uint8_t>(0x40U | (p[0] & 0x3FU));
  p[1] = 0;
  detail::put16(p + 2, f.ident);
  if (outbound) {
    w.finish_udp(f.sport, f.dport, n);
    count(f.dst, false);
  } else {
    w.finish_udp(f.dport, f.sport, n);
  }
  if (--f.rounds == 0) {
    f.kind = FlowKind::none;
  }
}

void Generator::Impl::step_ntp(Flow &f) {
  // NTPv4 (RFC 5905): LI/VN/mode, stratum, poll, precision, root delay,
  // root dispersion, reference id, then four 64-bit timestamps (seconds since
  // 1900, fraction); client mode 3, server mode 4.
  const bool outbound = f.state == 0;
  std::uint8_t *p = begin(f, outbound, detail::kProtoUdp, 8);
  std::memset(p, 0, 48);
  const auto secs = static_cast<std::uint32_t>(now / 1'000'000 + 2'208'988'800LL);
  const auto frac = static_cast<std::uint32_t>(((now % 1'000'000) << 32U) / 1'000'000);
  p[0] = outbound ? 0x23 : 0x24;
  p[2] = 6;
  p[3] = 0xEC; // 2^-20 s
  if (outbound) {
    detail::put32(p + 40, secs); // transmit
    detail::put32(p + 44, frac);
    w.finish_udp(f.sport, f.dport, 48);
    count(f.dst, false);
    f.state = 1;
    return;
  }
  p[1] = 2; // stratum
  detail::put32(p + 4, 0x00000100);
  detail::put32(p + 8, 0x00000200);
  std::memcpy(p + 12, addr[f.dst].ip.family == 4 ? addr[f.dst].ip.bytes.data() : noise.data(), 4);
  for (std::size_t at : {16U, 24U, 32U, 40U}) {
    detail::put32(p + at, secs);
    detail::put32(p + at + 4, frac);
  }
  w.finish_udp(f.dport, f.sport, 48);
  f.kind = FlowKind::none;
}

void Generator::Impl::step_echo(Flow &f) {
  // Echo request then reply, 56 data bytes as ping(8) sends: 16 bytes of
  // timestamp, then 0x10, 0x11, ...
  const bool six = addr[f.dst].ip.family == 6;
  const bool outbound = f.state == 0;
  std::uint8_t *p = begin(f, outbound, six ? detail::kProtoIcmp6 : detail::kProtoIcmp, 8);
  std::memset(p, 0, 16);
  detail::put32(p, static_cast<std::uint32_t>(now / 1'000'000));
  detail::put32(p + 8, static_cast<std::uint32_t>(now % 1'000'000));
  for (std::size_t i = 16; i < 56; ++i) {
    p[i] = static_cast<std::uint8_t>(i);
  }
  const std::uint32_t rest = (std::uint32_t{f.ident} << 16U) | f.seq16;
  if (outbound) {
    w.finish_icmp(six ? 128 : 8, 0, rest, 56);
    count(f.dst, false);
    f.state = 1;
  } else {
    w.finish_icmp(six ? 129 : 0, 0, rest, 56);
    f.state = 0;
    ++f.seq16;
  }
  f.rounds = static_cast<std::uint8_t>(f.rounds - 1);
  if (f.rounds == 0) {
    f.kind = FlowKind::none;
  }
}

void Generator::Impl::learn(bool six, bool rcode_ok, const std::vector<std::uint32_t> *answers,
                            std::int32_t endpoint) {
  // The client received a DNS response: its address of that family is local
  // from here on. Only RCODE 0 answer-section A/AAAA records teach.
  (six ? local6 : local4) = true;
  if (rcode_ok && answers != nullptr) {
    for (const std::uint32_t id : *answers) {
      addr[id].taught = endpoint;
    }
  }
}

void Generator::Impl::count(std::uint32_t dst, bool dns_port) {
  // Called for client-sourced frames only. Outbound = the client's address of
  // the frame's family is local; DNS (to/from port 53) never counts.
  Address &a = addr[dst];
  if (dns_port || !(a.ip.family == 6 ? local6 : local4)) {
    return;
  }
  const std::int32_t ep = a.taught;
  Aggregate &g = agg[static_cast<std::size_t>(ep) + 1];
  if (g.packets == 0) {
    g.first = now;
  }
  ++g.packets;
  g.bytes += w.ip_length();
  g.last = now;
  if (a.last_counted != ep) {
    a.last_counted = ep;
    counted.emplace_back(dst, ep);
  }
}

GroundTruth Generator::Impl::truth() const {
  GroundTruth t;
  t.frames = produced;
  std::vector<std::vector<std::string>> lists(agg.size());
  for (const auto &[id, ep] : counted) {
    lists[static_cast<std::size_t>(ep) + 1].push_back(addr[id].text);
  }
  for (std::size_t slot = 0; slot < agg.size(); ++slot) {
    const Aggregate &g = agg[slot];
    if (g.packets == 0) {
      continue;
    }
    EndpointTruth e;
    e.endpoint = slot == 0 ? std::string() : eps[slot - 1].name;
    e.packets = g.packets;
    e.bytes = g.bytes;
    e.first_seen = g.first;
    e.last_seen = g.last;
    e.addresses = std::move(lists[slot]);
    std::sort(e.addresses.begin(), e.addresses.end());
    e.addresses.erase(std::unique(e.addresses.begin(), e.addresses.end()), e.addresses.end());
    t.endpoints.push_back(std::move(e));
  }
  std::sort(t.endpoints.begin(), t.endpoints.end(),
            [](const EndpointTruth &a, const EndpointTruth &b) { return a.endpoint < b.endpoint; });
  for (const Address &a : addr) {
    if (a.taught >= 0) {
      t.final_addresses.emplace_back(a.text, eps[static_cast<std::size_t>(a.taught)].name);
    }
  }
  std::sort(t.final_addresses.begin(), t.final_addresses.end());
  if (!moved_address.empty()) {
    t.moved_address = moved_address;
    t.moved_from = moved_from >= 0 ? eps[static_cast<std::size_t>(moved_from)].name : "";
    t.moved_to = eps[static_cast<std::size_t>(moved_to)].name;
    t.moved_at = moved_at;
  }
  return t;
}

Generator::Generator(const Options &options) : impl_(std::make_unique<Impl>(options)) {}

Generator::~Generator() = default;

bool Generator::next(TimeUs &ts_us, Bytes &frame) {
  return impl_->next(ts_us, frame);
}

GroundTruth Generator::truth() const {
  return impl_->truth();
}

Result<GroundTruth> write_capture(const Options &options, const std::string &path) {
  constexpr std::uint32_t kLinkTypeEthernet = 1;
  auto opened = capture::PcapWriter::open(path, kLinkTypeEthernet, 65535);
  if (!opened) {
    return opened.status();
  }
  const std::unique_ptr<capture::PcapWriter> writer = std::move(opened).value();
  Generator g(options);
  TimeUs ts = 0;
  Bytes frame;
  while (g.next(ts, frame)) {
    writer->write(ts, frame);
  }
  if (Status st = writer->close(); !st) {
    return st;
  }
  return g.truth();
}

std::string truth_to_json(const GroundTruth &truth) {
  nlohmann::ordered_json j;
  j["frames"] = truth.frames;
  auto endpoints = nlohmann::ordered_json::array();
  for (const EndpointTruth &e : truth.endpoints) {
    nlohmann::ordered_json o;
    o["endpoint"] = e.endpoint;
    o["packets"] = e.packets;
    o["bytes"] = e.bytes;
    o["first_seen"] = format_rfc3339_us(e.first_seen);
    o["last_seen"] = format_rfc3339_us(e.last_seen);
    o["addresses"] = e.addresses;
    endpoints.push_back(std::move(o));
  }
  j["endpoints"] = std::move(endpoints);
  auto addresses = nlohmann::ordered_json::array();
  for (const auto &[address, name] : truth.final_addresses) {
    nlohmann::ordered_json o;
    o["address"] = address;
    o["name"] = name;
    addresses.push_back(std::move(o));
  }
  j["addresses"] = std::move(addresses);
  return j.dump(2);
}

} // namespace ta::generate
