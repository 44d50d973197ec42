#include "ta/generate/generate.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include "ta/capture/capture.hpp"
#include "ta/common/address.hpp"

#include "dns_writer.hpp"
#include "impl.hpp"

// The world: client 10.0.0.2 / fd00::2 (and from 20% on 10.0.0.3 / fd00::3)
// behind gateway+resolver 10.0.0.1 / fd00::1 (MACs 02:00:00:00:00:02, :03
// and :01). Endpoint addresses come from
// 198.18.0.0/15 and 2001:db8:a00::/40; never-resolved ones from 203.0.113.0/24,
// 192.0.2.0/24 (glue and the NXDOMAIN answer) and 2001:db8:ffff::/48; the
// public resolvers 9.9.9.9 (DoT), 8.8.8.8 and 1.1.1.1 (DoH) are never
// resolved either.
//
// Timeline: a burst of DNS exchanges (the first 8 back to back, the rest of
// the initial resolutions interleaved with traffic), then traffic with a
// re-resolution every ~500 frames; at 30% one ICMP port-unreachable quoting a
// DNS response; at 50% the move (an address of endpoint 0 answered for
// endpoint 1). The flows themselves: traffic.cpp. The truth models: impl.hpp.

namespace ta::generate {
namespace {

using detail::Address;
using detail::DnsSection;
using detail::DnsWriter;
using detail::Endpoint;
using detail::Exchange;
using detail::kNone;
using detail::kUnresolved;
using detail::Mac;
using detail::make_v4;
using detail::make_v6;
using detail::Plan;
using detail::SplitMix64;

constexpr Mac kGatewayMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr std::uint16_t kDnsVlan = 100;
constexpr std::uint32_t kMaxEndpoints = 30'000; // 3 addresses each fit 198.18.0.0/15
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

} // namespace

namespace detail {

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

} // namespace detail

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
  outgoing_marks = opt.link == detail::kLinkSll || opt.link == detail::kLinkSll2;
  build_world();
  build_specials();
  start_midflow();
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
  for (std::size_t k = 0; k < detail::kClients; ++k) {
    detail::Client &c = clients[k];
    c.v4 = make_v4(static_cast<std::uint32_t>(0x0A000002U + k));
    c.v6 = make_v6({0xfd00, 0, 0, 0, 0, 0, 0, static_cast<std::uint16_t>(2 + k)});
    c.mac = {0x02, 0x00, 0x00, 0x00, 0x00, static_cast<std::uint8_t>(2 + k)};
  }
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
    // Client 1 asks endpoint 1's name and is answered another address of
    // endpoint 0; then endpoint 1's AAAA, answered as to client 0.
    alias_addr = eps[0].v4.front();
    alias_answers.push_back(alias_addr);
    second_plans.push_back({Exchange::alias, 1, detail::kDnsA, false, 1});
    second_plans.push_back({Exchange::second, 1, detail::kDnsAaaa, false, 1});
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
  if (fragment_due) {
    emit_fragment(); // the second fragment of the previous frame, as written
    ++produced;
    ts = now;
    frame = Bytes(reinterpret_cast<const std::byte *>(linked.bytes.data()), linked.size);
    return true;
  }
  fragment_this = false;
  if (produced < midflow_frames) {
    emit_midflow();
  } else if (tcp_dns_step != 0) {
    emit_tcp_dns();
  } else if (response_due && countdown == 0) {
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
  if (fragment_this) {
    split_fragments(); // the first one now, the second next
  } else {
    to_link(w.frame());
  }
  frame = Bytes(reinterpret_cast<const std::byte *>(linked.bytes.data()), linked.size);
  return true;
}

bool Generator::Impl::dns_start_due() const {
  if (response_due || tcp_dns_step != 0) {
    return false;
  }
  if (!preamble_done()) {
    return preamble_next < kBurst || produced >= next_preamble;
  }
  if (second_due()) {
    return true;
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
  if (second_due()) {
    return second_plans[second_next++];
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
  if (opt.dns_over_tcp && current.kind == Exchange::answer && preamble_done() &&
      tcp_dns_turn++ % 3 == 0) {
    start_tcp_dns();
    return;
  }
  const bool six = current.qtype == detail::kDnsAaaa && current.kind != Exchange::lost;
  const detail::Client &client = clients[current.client];
  dns_vlan = (exchanges++ % 4 == 1 || current.kind == Exchange::move) ? kDnsVlan : 0;
  dns_id = static_cast<std::uint16_t>(rng.next());
  dns_sport = ephemeral_port(rng);
  const std::uint32_t dst =
      current.kind == Exchange::lost ? secondary : (six ? resolver6 : resolver4);
  std::uint8_t *p = w.start(client.mac, kGatewayMac, dns_vlan, six ? client.v6 : client.v4,
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
  count(current.client, dst, true);

  if (current.kind == Exchange::lost) {
    next_periodic = produced + 1 + rng.below(3);
    return;
  }
  response_due = true;
  countdown = burst ? 0 : static_cast<std::uint8_t>(rng.below(4));
  if (opt.fragments && current.kind == Exchange::answer && !six && preamble_done() &&
      fragment_turn++ % 4 == 1) {
    fragment_due_next = true;
  }
  if (!preamble_done()) {
    next_preamble = produced + 2 + rng.below(24);
  } else if (current.client != 0) {
    // keeps the periodic schedule
  } else {
    next_periodic = produced + kDnsInterval / 2 + rng.below(kDnsInterval);
  }
}

void Generator::Impl::emit_response() {
  response_due = false;
  fragment_this = fragment_due_next;
  fragment_due_next = false;
  const bool six = current.qtype == detail::kDnsAaaa;
  const std::uint32_t src = six ? resolver6 : resolver4;
  const detail::Client &client = clients[current.client];
  std::uint8_t *p = w.start(kGatewayMac, client.mac, dns_vlan, addr[src].ip,
                            six ? client.v6 : client.v4, 64, detail::kProtoUdp, 8);
  const std::vector<std::uint32_t> *answers = nullptr;
  const std::size_t n = write_response(p, w.payload_room(), answers);
  w.finish_udp(53, dns_sport, n);
  // A response sent as two IP fragments: the first one's DNS message is cut,
  // so it teaches nothing (its receiver is local all the same).
  learn_response(answers, !fragment_this);
}

void Generator::Impl::learn_response(const std::vector<std::uint32_t> *answers, bool whole) {
  const bool six = current.qtype == detail::kDnsAaaa;
  if (current.kind == Exchange::nxdomain) {
    learn(current.client, six, false, nullptr, kUnresolved);
    return;
  }
  learn(current.client, six, whole, answers, static_cast<std::int32_t>(current.endpoint));
}

std::size_t Generator::Impl::write_response(std::uint8_t *p, std::size_t room,
                                            const std::vector<std::uint32_t> *&answers_out) {
  DnsWriter d(p, room);
  answers_out = nullptr;
  if (current.kind == Exchange::nxdomain) {
    // RCODE 3 with an answer section anyway (a CNAME to a name that does not
    // exist, and an A for it): it must teach nothing.
    d.header(dns_id, 0x8183);
    d.question(kNxName, detail::kDnsA);
    d.name_record(DnsSection::answer, kNxName, detail::kDnsCname, kTtl, kNxAlias);
    d.address_record(DnsSection::answer, kNxAlias, addr[nx_addr].ip, kTtl);
    d.soa_record(DnsSection::authority, kNxZone, kNxMname, kNxRname, 2024010101, 900);
    d.opt_record(1232);
    return d.finish();
  }

  const bool six = current.qtype == detail::kDnsAaaa;
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
  const std::vector<std::uint32_t> &answers =
      current.kind == Exchange::alias ? alias_answers : (six ? e.v6 : e.v4);
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
  if (current.client == 0) {
    resolved_prefix = std::max(resolved_prefix, current.endpoint + 1);
  }
  answers_out = &answers;
  (void)ei;
  return d.finish();
}

void Generator::Impl::emit_decoy() {
  // Outbound ICMP port unreachable to the resolver, quoting a whole IPv4/UDP
  // DNS response (from port 53, RCODE 0, an A record for an address that
  // belongs to endpoint 2). A quoted message is not a response: it teaches
  // nothing, and the ICMP packet itself counts (port 0) for "" (10.0.0.1 is
  // never answered for).
  decoy_done = true;
  const IpAddress &resolver = addr[resolver4].ip;
  const IpAddress &client4 = clients[0].v4;
  std::uint8_t *p =
      w.start(clients[0].mac, kGatewayMac, 0, client4, resolver, 64, detail::kProtoIcmp, 8);
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
  count(0, resolver4, false);
  count_icmp(0, resolver4);
}

Generator::Generator(const Options &options) : impl_(std::make_unique<Impl>(options)) {}

Generator::~Generator() = default;

bool Generator::next(TimeUs &ts_us, Bytes &frame) {
  return impl_->next(ts_us, frame);
}

GroundTruth Generator::truth() const {
  return impl_->truth();
}

std::uint32_t Generator::link_type() const noexcept {
  return impl_->opt.link;
}

Result<GroundTruth> write_capture(const Options &options, const std::string &path) {
  if (!is_generated_link(options.link)) {
    return Status::invalid_argument("link type " + std::to_string(options.link) +
                                    " cannot be generated");
  }
  auto opened = capture::PcapWriter::open(path, options.link, 65535);
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

} // namespace ta::generate
