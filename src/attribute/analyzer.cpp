#include "ta/attribute/analyzer.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "impl.hpp"

namespace ta::attribute {
namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(Outcome::count_)> kOutcomeNames = {
    "counted",
    "unsupported_link_type",
    "truncated_link_header",
    "not_ip",
    "truncated_ip_header",
    "bad_ip_version",
    "bad_ip_header_length",
    "bad_ip_total_length",
    "truncated_ipv6_extension",
    "truncated_l4_header",
    "bad_tcp_header_length",
    "dns",
    "not_outbound",
    "port_filtered",
    "already_stored",
};

// Outcome mirrors decode::DecodeError value for value (checked below), so
// the mapping is a cast.
static_assert(static_cast<int>(decode::DecodeError::count_) == static_cast<int>(Outcome::dns));
static_assert(static_cast<int>(decode::DecodeError::bad_tcp_header_length) ==
              static_cast<int>(Outcome::bad_tcp_header_length));

constexpr Outcome outcome_of(decode::DecodeError e) noexcept {
  return static_cast<Outcome>(e);
}

// Frees an (empty) vector's room when it exceeds `bound` elements.
template <class T> void shrink_past(std::vector<T> &v, std::size_t bound) {
  if (v.capacity() > bound) {
    std::vector<T>().swap(v);
  }
}

// Adds `r` into `s` (an all-zero `s` takes r's first/last seen).
void add_to(EndpointRun &s, const EndpointRun &r) {
  const bool fresh = s.packets + s.received_packets == 0;
  if (fresh || r.first_seen < s.first_seen) {
    s.first_seen = r.first_seen;
  }
  if (fresh || r.last_seen > s.last_seen) {
    s.last_seen = r.last_seen;
  }
  s.packets += r.packets;
  s.bytes += r.bytes;
  s.received_packets += r.received_packets;
  s.received_bytes += r.received_bytes;
  s.flows += r.flows;
  s.sources |= r.sources;
}

} // namespace

std::string_view to_string(Outcome o) noexcept {
  const auto i = static_cast<std::size_t>(o);
  return i < kOutcomeNames.size() ? kOutcomeNames[i] : std::string_view("unknown");
}

std::string_view encrypted_dns_name(EncryptedDns kind) noexcept {
  switch (kind) {
  case EncryptedDns::dot:
    return "dot";
  case EncryptedDns::doq:
    return "doq";
  case EncryptedDns::doh:
    return "doh";
  case EncryptedDns::count_:
    break;
  }
  return "unknown";
}

Analyzer::Impl::Impl(Options o, BatchSink s)
    : opt(std::move(o)), sink(std::move(s)), table(opt.dns_table_capacity),
      clients(opt.naming == Naming::flow ? std::min(opt.client_table_capacity,
                                                    kClientPairsPerAddress * opt.dns_table_capacity)
                                         : 0),
      locals(opt.local_nets.empty() ? opt.local_hosts_capacity : 1) {
  for (auto p : opt.ports) {
    port_allowed.set(p);
  }
  port_filter = !opt.ports.empty();
  reset_batch();
  on_tcp_message = [this](Bytes msg) { apply_dns(msg, dns_receiver, dns_ts); };
  if (opt.naming == Naming::flow) {
    start_flows();
  }
}

void Analyzer::Impl::reset_batch() {
  ++batch_no;
  batch.clear();
  // A batch handed back by the sink may be a fresh one: room for a whole
  // batch at once, instead of growing (and copying) towards it. A flow's
  // held packets come out together, so a batch can pass the bound a little.
  const std::size_t room = opt.batch_records + opt.batch_records / 16;
  // A batch handed back by the sink that once grew far past its bounds (the
  // end of a source emits every flow still waiting at once, a name flood's
  // tens of thousands) gives that room back: the writer keeps its batches
  // for reuse, and each would otherwise hold its largest size for good.
  shrink_past(batch.packets, 2 * room);
  shrink_past(batch.flows, 2 * opt.batch_names);
  shrink_past(batch.endpoints, 2 * opt.batch_names);
  shrink_past(batch.learnt, 2 * room);
  batch.packets.reserve(room);
  batch.endpoints.emplace_back();
  batch_runs.assign(1, EndpointRun{});
  flow_names.clear();
}

std::uint32_t Analyzer::Impl::batch_index(dns::NameId id) {
  if (id >= name_stamp.size()) {
    const std::size_t n = std::max<std::size_t>(id + 1, name_stamp.size() * 2);
    name_stamp.resize(n, 0);
    name_index.resize(n, 0);
  }
  if (name_stamp[id] != batch_no) {
    name_stamp[id] = batch_no;
    name_index[id] = static_cast<std::uint32_t>(batch.endpoints.size());
    batch.endpoints.emplace_back(table.name(id));
    batch_runs.emplace_back();
  }
  return name_index[id];
}

bool Analyzer::Impl::in_local_nets(const IpAddress &a) const {
  for (const auto &p : opt.local_nets) {
    if (p.contains(a)) {
      return true;
    }
  }
  return false;
}

// Asking whether a packet's sender is local is also what keeps a learnt local
// host recently active (local_hosts.hpp): the cache skips the lookup only
// while no host was added since it last looked.
bool Analyzer::Impl::is_local(const IpAddress &a) {
  if (!opt.local_nets.empty()) {
    return in_local_nets(a);
  }
  if (src_cache.generation == locals.generation() && flat::same_address(a, src_cache.address)) {
    return src_cache.local;
  }
  src_cache.address = a;
  src_cache.generation = locals.generation();
  src_cache.local = locals.touch(a);
  return src_cache.local;
}

void Analyzer::Impl::add_local(const IpAddress &a) {
  if (!opt.local_nets.empty() || !a.valid()) {
    return;
  }
  bool evicted = false;
  if (!locals.add(a, evicted)) {
    return;
  }
  ++stats.local_hosts_learnt;
  if (evicted) {
    ++stats.local_hosts_evicted;
  }
  if (!preloading) {
    batch.local_hosts.push_back(a);
  }
}

// One whole DNS message from port 53 towards `receiver`.
void Analyzer::Impl::apply_dns(Bytes msg, const IpAddress &receiver, TimeUs ts) {
  const dns::DnsError err = dns::parse_response(msg, response);
  if (err == dns::DnsError::truncated_header || err == dns::DnsError::not_a_response) {
    ++stats.dns_errors[static_cast<std::size_t>(err)];
    return;
  }
  // The header parsed with QR set: whatever else is wrong, its receiver got
  // a DNS response and so is a local host (README "What is counted").
  add_local(receiver);
  if (err != dns::DnsError::ok) {
    ++stats.dns_errors[static_cast<std::size_t>(err)];
    return;
  }
  ++stats.dns_responses;
  if (response.rcode != 0 || response.qname_len == 0) {
    return;
  }
  const std::string_view name = response.qname();
  for (std::size_t i = 0; i < response.address_count; ++i) {
    const IpAddress &addr = response.addresses[i];
    table.learn(addr, name, ts);
    clients.learn(receiver, addr, name);
    ++stats.dns_answers_learnt;
    if (auto id = table.lookup(addr)) {
      batch.learnt.push_back({addr, batch_index(*id), ts});
    }
  }
}

void Analyzer::Impl::add_run(std::uint32_t endpoint, store::Direction direction, TimeUs ts,
                             std::uint32_t bytes, store::NameSource source) {
  EndpointRun &r = batch_runs[endpoint];
  r.sources |= EndpointRun::source_bit(source);
  if (r.packets + r.received_packets == 0) {
    r.first_seen = ts;
  }
  r.first_seen = std::min(r.first_seen, ts); // held packets come out late
  r.last_seen = std::max(r.last_seen, ts);
  if (direction == store::Direction::sent) {
    ++r.packets;
    r.bytes += bytes;
  } else {
    ++r.received_packets;
    r.received_bytes += bytes;
  }
}

void Analyzer::Impl::seal(std::uint64_t through, bool complete) {
  // The ledger may not pass a frame that still waits for its flow's name.
  if (flows) {
    if (const auto held = flows->oldest_held_frame()) {
      through = std::min(through, *held);
    }
  }
  batch.source_id = source_id;
  batch.frames_through = through;
  batch.source_complete = complete;
  for (std::size_t i = 0; i < batch_runs.size(); ++i) {
    const EndpointRun &r = batch_runs[i];
    if (r.packets + r.received_packets == 0) {
      continue;
    }
    add_to(run_summary[batch.endpoints[i]], r);
  }
  trim_summary();
  sink(batch);
  reset_batch();
  // Safe now: no open batch refers to a NameId any more.
  table.release_unused();
}

// Keeps the summary at opt.summary_capacity endpoints: the busiest (packets
// both ways; ties: the most recently seen, then the name) stay, the others
// are folded into summary_rest. Runs once per sealed batch, over at most the
// capacity plus that batch's names.
void Analyzer::Impl::trim_summary() {
  const std::size_t cap = std::max<std::size_t>(opt.summary_capacity, 1);
  if (run_summary.size() <= cap) {
    return;
  }
  using It = std::map<std::string, EndpointRun>::iterator;
  std::vector<It> order;
  order.reserve(run_summary.size());
  for (It it = run_summary.begin(); it != run_summary.end(); ++it) {
    order.push_back(it);
  }
  const auto busier = [](const It &a, const It &b) {
    // The unresolved endpoint "" is always kept.
    if (a->first.empty() != b->first.empty()) {
      return a->first.empty();
    }
    const std::uint64_t wa = a->second.packets + a->second.received_packets;
    const std::uint64_t wb = b->second.packets + b->second.received_packets;
    if (wa != wb) {
      return wa > wb;
    }
    if (a->second.last_seen != b->second.last_seen) {
      return a->second.last_seen > b->second.last_seen;
    }
    return a->first < b->first;
  };
  const auto keep = static_cast<std::ptrdiff_t>(cap);
  std::nth_element(order.begin(), order.begin() + keep, order.end(), busier);
  for (auto it = order.begin() + keep; it != order.end(); ++it) {
    add_to(summary_rest, (*it)->second);
    ++summary_folded;
    run_summary.erase(*it);
  }
}

void Analyzer::Impl::on_frame(decode::LinkType link, std::uint64_t idx, TimeUs ts, Bytes frame) {
  ++stats.frames;
  frames_through = std::max(frames_through, idx + 1);
  decode::PacketView pv;
  const decode::DecodeError derr = decode::decode_packet(link, frame, pv);
  if (derr != decode::DecodeError::ok) {
    count(outcome_of(derr));
    return;
  }
  if (pv.has_ports && (pv.src_port == kDnsPort || pv.dst_port == kDnsPort)) {
    if (pv.src_port == kDnsPort) {
      if (pv.protocol == kUdp) {
        apply_dns(pv.payload, pv.dst, ts);
      } else if (pv.protocol == kTcp) {
        dns_receiver = pv.dst;
        dns_ts = ts;
        tcp.feed({pv.src, pv.dst, pv.src_port, pv.dst_port}, pv.tcp_seq, pv.tcp_flags, pv.payload,
                 on_tcp_message);
      }
    }
    count(Outcome::dns);
    maybe_seal(idx);
    return;
  }
  if (flows && pv.has_ports && (pv.protocol == kTcp || pv.protocol == kUdp)) {
    to_flow_table(pv, idx, ts);
    maybe_seal(idx);
    return;
  }
  if (idx < frames_done) {
    count(Outcome::already_stored);
    return;
  }
  per_packet(pv, idx, ts);
  maybe_seal(idx);
}

// Per-packet naming: every packet under `--naming dns`, and under flow naming
// the packets that belong to no flow (other IP protocols, later fragments).
void Analyzer::Impl::per_packet(const decode::PacketView &pv, std::uint64_t idx, TimeUs ts) {
  const bool outbound = pv.direction == decode::LinkDirection::outgoing || is_local(pv.src);
  if (!outbound) {
    count(Outcome::not_outbound);
    return;
  }
  if (port_filter && (!pv.has_ports || !port_allowed.test(pv.dst_port))) {
    count(Outcome::port_filtered);
    return;
  }
  std::uint32_t endpoint = 0;
  store::NameSource source = store::NameSource::none;
  if (auto id = table.lookup(pv.dst)) {
    endpoint = batch_index(*id);
    source = store::NameSource::dns;
  } else {
    ++stats.unresolved;
  }
  store::PacketRecord rec;
  rec.ts_us = ts;
  rec.frame = idx;
  rec.dst = pv.dst;
  rec.dst_port = pv.has_ports ? pv.dst_port : 0;
  rec.protocol = pv.protocol;
  rec.bytes = pv.ip_length;
  rec.endpoint = endpoint;
  rec.source = source;
  batch.packets.push_back(rec);
  add_run(endpoint, store::Direction::sent, ts, pv.ip_length, source);
  ++stats.names[static_cast<std::size_t>(source)];
  count(Outcome::counted);
  stats.bytes_counted += pv.ip_length;
}

void Analyzer::Impl::maybe_seal(std::uint64_t idx) {
  if (batch.packets.size() >= opt.batch_records || batch.learnt.size() >= opt.batch_records ||
      batch.local_hosts.size() >= opt.batch_records || batch.endpoints.size() >= opt.batch_names ||
      batch.flows.size() >= opt.batch_names) {
    seal(idx + 1, false);
  }
}

Analyzer::Analyzer(Options options, BatchSink sink)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(sink))) {}

Analyzer::~Analyzer() = default;

void Analyzer::preload_address(const IpAddress &address, std::string_view name, TimeUs when) {
  impl_->table.learn(address, name, when);
  // No batch refers to a NameId while preloading, so names the bounded table
  // no longer uses are freed at once: a store with more addresses than
  // --dns-table-size preloads in the table's memory, not the store's.
  impl_->table.release_unused();
}

void Analyzer::preload_local_host(const IpAddress &address) {
  impl_->preloading = true;
  impl_->add_local(address);
  impl_->preloading = false;
}

void Analyzer::begin_source(std::int64_t source_id, std::uint64_t frames_done) {
  if (impl_->flows) {
    impl_->flows->begin_source(source_id);
  }
  impl_->source_id = source_id;
  impl_->frames_done = frames_done;
  impl_->frames_through = 0;
  impl_->in_source = true;
}

void Analyzer::on_frame(decode::LinkType link, std::uint64_t frame_index, TimeUs ts,
                        Bytes frame) noexcept {
  impl_->on_frame(link, frame_index, ts, frame);
}

void Analyzer::end_source(bool complete) {
  if (impl_->flows) {
    impl_->flows->release_all(); // the end of the input ends every wait
  }
  impl_->seal(std::max(impl_->frames_through, impl_->frames_done), complete);
  impl_->in_source = false;
}

void Analyzer::flush() {
  if (impl_->in_source) {
    impl_->seal(std::max(impl_->frames_through, impl_->frames_done), false);
  }
}

const Stats &Analyzer::stats() const noexcept {
  impl_->refresh_flow_stats();
  impl_->stats.local_hosts = impl_->locals.size();
  return impl_->stats;
}
const dns::AddressTable &Analyzer::table() const noexcept {
  return impl_->table;
}
const dns::TcpReassemblerStats &Analyzer::dns_tcp_stats() const noexcept {
  return impl_->tcp.stats();
}
std::size_t Analyzer::local_host_count() const noexcept {
  return impl_->opt.local_nets.empty() ? impl_->locals.size() : 0;
}
Naming Analyzer::naming() const noexcept {
  return impl_->opt.naming;
}
std::size_t Analyzer::encrypted_dns_clients() const noexcept {
  return impl_->encrypted_dns_clients.size();
}
const std::map<std::string, EndpointRun> &Analyzer::run_summary() const noexcept {
  return impl_->run_summary;
}
const EndpointRun &Analyzer::run_summary_rest() const noexcept {
  return impl_->summary_rest;
}
std::uint64_t Analyzer::run_summary_folded() const noexcept {
  return impl_->summary_folded;
}

} // namespace ta::attribute
