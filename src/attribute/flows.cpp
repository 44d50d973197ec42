// Flow naming inside the Analyzer: TCP and UDP packets go through the flow
// table (ta_flow), which hands each one back with its direction and its
// flow's name once the flow is named; here they become records of the open
// batch, and flows become per-batch FlowRecords (README "What is counted").
#include <algorithm>
#include <array>
#include <functional>
#include <string_view>

#include "impl.hpp"

namespace ta::attribute {
namespace {

// DNS-over-HTTPS services whose flows are counted as encrypted DNS when no
// --doh-names list replaces it: the resolvers browsers and operating systems
// offer by default.
constexpr std::array<std::string_view, 22> kBuiltinDohNames = {
    "dns.google",
    "dns.google.com",
    "dns64.dns.google",
    "cloudflare-dns.com",
    "mozilla.cloudflare-dns.com",
    "chrome.cloudflare-dns.com",
    "one.one.one.one",
    "1dot1dot1dot1.cloudflare-dns.com",
    "security.cloudflare-dns.com",
    "family.cloudflare-dns.com",
    "dns.quad9.net",
    "dns9.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "doh.opendns.com",
    "dns.nextdns.io",
    "doh.cleanbrowsing.org",
    "dns.adguard-dns.com",
    "doh.dns.sb",
    "doh.mullvad.net",
    "dns.alidns.com",
    "doh.pub",
};

constexpr std::uint16_t kEncryptedDnsPort = 853;      // DoT (RFC 7858), DoQ (RFC 9250)
constexpr std::size_t kMaxEncryptedDnsClients = 4096; // for the summary only

} // namespace

void Analyzer::Impl::start_flows() {
  if (opt.doh_names.empty()) {
    for (const std::string_view n : kBuiltinDohNames) {
      doh_names.emplace(n);
    }
  } else {
    doh_names.insert(opt.doh_names.begin(), opt.doh_names.end());
  }
  flow::Options fo;
  fo.max_flows = opt.max_flows;
  fo.idle_timeout_us = opt.flow_idle_timeout_us;
  flows = std::make_unique<flow::Table>(
      fo,
      [this](const IpAddress &client,
             const IpAddress &endpoint) -> std::optional<std::string_view> {
        if (auto n = clients.lookup(client, endpoint)) {
          return n;
        }
        if (auto id = table.lookup(endpoint)) {
          return table.name(*id);
        }
        return std::nullopt;
      },
      [this](const flow::Emitted &e) { on_emitted(e); });
  flows->set_local_test([this](const IpAddress &a) { return is_local(a); });
}

void Analyzer::Impl::to_flow_table(const decode::PacketView &pv, std::uint64_t idx, TimeUs ts) {
  flow::Packet p;
  p.ts = ts;
  p.frame = idx;
  p.record = idx >= frames_done;
  p.src = pv.src;
  p.dst = pv.dst;
  p.sport = pv.src_port;
  p.dport = pv.dst_port;
  p.protocol = pv.protocol;
  p.tcp_flags = pv.tcp_flags;
  p.tcp_seq = pv.tcp_seq;
  p.payload = pv.payload;
  p.ip_bytes = pv.ip_length;
  // A capture's own "outgoing" packet type marks a local source even when
  // the local networks are given. Other ends are asked about only when the
  // packet starts a flow (the local test set in start_flows).
  p.src_local = pv.direction == decode::LinkDirection::outgoing;
  if (!p.record) {
    count(Outcome::already_stored); // teaches the flow table, stored before
  }
  flow::FlowInfo *f = flows->on_packet(p);
  if (f != nullptr && f->user_mark != locals.generation()) {
    touch_flow_ends(*f);
  }
}

// A flow's ends are active hosts: they keep their place in the learnt local
// set. A flow's first packet asked about both already (user_mark 0); later
// packets look again only once a host was added since (local_hosts.hpp).
void Analyzer::Impl::touch_flow_ends(flow::FlowInfo &f) {
  if (f.user_mark != 0 && opt.local_nets.empty()) {
    locals.touch(f.client);
    locals.touch(f.endpoint);
  }
  f.user_mark = locals.generation();
}

std::uint32_t Analyzer::Impl::name_index_of(std::string_view name) {
  if (name.empty()) {
    return 0;
  }
  const std::uint64_t h = std::hash<std::string_view>{}(name);
  const std::uint32_t found =
      flow_names.find(h, [&](std::uint32_t i) noexcept { return batch.endpoints[i] == name; });
  if (found != flat::kNil) {
    return found;
  }
  const auto index = static_cast<std::uint32_t>(batch.endpoints.size());
  flow_names.insert(h, index);
  batch.endpoints.emplace_back(name);
  batch_runs.emplace_back();
  return index;
}

void Analyzer::Impl::note_encrypted_dns(const flow::FlowInfo &f) {
  EncryptedDns kind = EncryptedDns::count_;
  if (f.endpoint_port == kEncryptedDnsPort) {
    kind = f.protocol == kTcp ? EncryptedDns::dot : EncryptedDns::doq;
  } else if (!f.name.empty() && doh_names.count(f.name) != 0) {
    kind = EncryptedDns::doh;
  }
  if (kind == EncryptedDns::count_) {
    return;
  }
  ++stats.encrypted_dns_flows[static_cast<std::size_t>(kind)];
  if (encrypted_dns_clients.size() < kMaxEncryptedDnsClients) {
    encrypted_dns_clients.insert(f.client);
  }
}

// The flow's FlowRecord in the open batch, created on its first packet there.
std::uint32_t Analyzer::Impl::flow_slot(flow::FlowInfo &f) {
  if (f.user_epoch == batch_no) {
    return f.user_slot;
  }
  const bool first = f.user_epoch == 0; // the flow's first counted packet
  if (first) {
    note_encrypted_dns(f);
  }
  f.user_epoch = batch_no;
  f.user_slot = static_cast<std::uint32_t>(batch.flows.size());
  store::FlowRecord &r = batch.flows.emplace_back();
  r.origin_source = f.origin_source;
  r.first_frame = f.first_frame;
  r.protocol = f.protocol;
  r.client = f.client;
  r.client_port = f.client_port;
  r.endpoint_address = f.endpoint;
  r.endpoint_port = f.endpoint_port;
  r.name = name_index_of(f.name);
  r.source = f.source;
  if (first) {
    ++batch_runs[r.name].flows; // once per flow, with the name it was first counted under
  }
  return f.user_slot;
}

void Analyzer::Impl::on_emitted(const flow::Emitted &e) {
  flow::FlowInfo &f = *e.flow;
  if (port_filter && !port_allowed.test(f.endpoint_port)) {
    count(Outcome::port_filtered); // flows are selected by the endpoint's port
    return;
  }
  const std::uint32_t slot = flow_slot(f);
  store::FlowRecord &fr = batch.flows[slot];
  store::PacketRecord rec;
  rec.ts_us = e.ts;
  rec.frame = e.frame;
  rec.dst = f.endpoint;
  rec.dst_port = f.endpoint_port;
  rec.protocol = f.protocol;
  rec.bytes = e.ip_bytes;
  rec.endpoint = fr.name;
  rec.direction = e.direction;
  rec.source = f.source;
  rec.flow = slot;
  batch.packets.push_back(rec);
  if (e.direction == store::Direction::sent) {
    ++fr.sent_packets;
    fr.sent_bytes += e.ip_bytes;
  } else {
    ++fr.received_packets;
    fr.received_bytes += e.ip_bytes;
    ++stats.received_packets;
    stats.received_bytes += e.ip_bytes;
  }
  if (fr.sent_packets + fr.received_packets == 1) {
    fr.first_seen = e.ts;
  }
  fr.first_seen = std::min(fr.first_seen, e.ts);
  fr.last_seen = std::max(fr.last_seen, e.ts);
  add_run(fr.name, e.direction, e.ts, e.ip_bytes, f.source);
  if (fr.name == 0) {
    ++stats.unresolved;
  }
  ++stats.names[static_cast<std::size_t>(f.source)];
  count(Outcome::counted);
  stats.bytes_counted += e.ip_bytes;
}

void Analyzer::Impl::refresh_flow_stats() {
  if (!flows) {
    return;
  }
  const flow::Stats &fs = flows->stats();
  stats.flows_created = fs.flows_created;
  stats.flows_evicted = fs.end(flow::FlowEnd::evicted);
  stats.flows_active = fs.active;
  stats.packets_waiting = fs.held_packets;
  stats.naming_outcomes = fs.outcomes;
  stats.quic_packet_errors = fs.quic_packet_errors;
}

} // namespace ta::attribute
