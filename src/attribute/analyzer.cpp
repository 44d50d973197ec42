#include "ta/attribute/analyzer.hpp"

#include <algorithm>
#include <deque>
#include <unordered_set>
#include <utility>

#include "ta/dns/tcp_reassembler.hpp"

namespace ta::attribute {
namespace {

constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint16_t kDnsPort = 53;

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

} // namespace

std::string_view to_string(Outcome o) noexcept {
  const auto i = static_cast<std::size_t>(o);
  return i < kOutcomeNames.size() ? kOutcomeNames[i] : std::string_view("unknown");
}

struct Analyzer::Impl {
  Options opt;
  BatchSink sink;
  Stats stats;
  dns::AddressTable table;
  dns::TcpReassembler tcp;
  dns::DnsResponse response; // reused: ~2 KiB, not on the stack per packet
  std::bitset<65536> port_allowed;
  bool port_filter = false;

  // Local hosts learnt from DNS responses (when Options::local_nets is empty),
  // bounded with first-in-first-out eviction. A one-entry cache serves the
  // common case of one client sending most packets.
  std::unordered_set<IpAddress, IpAddressHash> local_hosts;
  std::deque<IpAddress> local_order;
  IpAddress cached_src;
  bool cached_local = false;
  bool preloading = false; // seeding from the store: nothing to persist again

  // The open batch. Names get a batch-local index on first use; index 0 is
  // always the unresolved endpoint "".
  store::Batch batch;
  std::vector<EndpointRun> batch_runs;
  std::vector<std::uint32_t> name_stamp; // by NameId: batch number of last use
  std::vector<std::uint32_t> name_index; // by NameId: batch-local index
  std::uint32_t batch_no = 1;
  std::map<std::string, EndpointRun> run_summary;

  std::int64_t source_id = 0;
  std::uint64_t frames_done = 0;
  std::uint64_t frames_through = 0; // 1 + highest frame index seen in the source
  bool in_source = false;

  // Context for DNS-over-TCP messages delivered through the sink below.
  IpAddress dns_receiver;
  TimeUs dns_ts = 0;
  dns::TcpReassembler::MessageSink on_tcp_message;

  Impl(Options o, BatchSink s)
      : opt(std::move(o)), sink(std::move(s)), table(opt.dns_table_capacity) {
    for (auto p : opt.ports) {
      port_allowed.set(p);
    }
    port_filter = !opt.ports.empty();
    local_hosts.reserve(opt.local_hosts_capacity * 2);
    batch.packets.reserve(opt.batch_records);
    reset_batch();
    on_tcp_message = [this](Bytes msg) { apply_dns(msg, dns_receiver, dns_ts); };
  }

  void reset_batch() {
    ++batch_no;
    batch.clear();
    batch.endpoints.emplace_back();
    batch_runs.assign(1, EndpointRun{});
  }

  std::uint32_t batch_index(dns::NameId id) {
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

  bool is_local(const IpAddress &a) {
    if (!opt.local_nets.empty()) {
      for (const auto &p : opt.local_nets) {
        if (p.contains(a)) {
          return true;
        }
      }
      return false;
    }
    if (a == cached_src) {
      return cached_local;
    }
    cached_src = a;
    cached_local = local_hosts.count(a) != 0;
    return cached_local;
  }

  void add_local(const IpAddress &a) {
    if (!opt.local_nets.empty() || !a.valid()) {
      return;
    }
    if (!local_hosts.insert(a).second) {
      return;
    }
    ++stats.local_hosts_learnt;
    if (!preloading) {
      batch.local_hosts.push_back(a);
    }
    local_order.push_back(a);
    if (local_order.size() > opt.local_hosts_capacity) {
      local_hosts.erase(local_order.front());
      local_order.pop_front();
      ++stats.local_hosts_evicted;
    }
    cached_src = IpAddress{}; // invalidate
  }

  // One whole DNS message from port 53 towards `receiver`.
  void apply_dns(Bytes msg, const IpAddress &receiver, TimeUs ts) {
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
      ++stats.dns_answers_learnt;
      if (auto id = table.lookup(addr)) {
        batch.learnt.push_back({addr, batch_index(*id), ts});
      }
    }
  }

  void count(Outcome o) { ++stats.outcomes[static_cast<std::size_t>(o)]; }

  void seal(std::uint64_t through, bool complete) {
    batch.source_id = source_id;
    batch.frames_through = through;
    batch.source_complete = complete;
    for (std::size_t i = 0; i < batch_runs.size(); ++i) {
      const EndpointRun &r = batch_runs[i];
      if (r.packets == 0) {
        continue;
      }
      EndpointRun &s = run_summary[batch.endpoints[i]];
      if (s.packets == 0 || r.first_seen < s.first_seen) {
        s.first_seen = r.first_seen;
      }
      if (s.packets == 0 || r.last_seen > s.last_seen) {
        s.last_seen = r.last_seen;
      }
      s.packets += r.packets;
      s.bytes += r.bytes;
    }
    sink(batch);
    reset_batch();
    // Safe now: no open batch refers to a NameId any more.
    table.release_unused();
  }

  void on_frame(decode::LinkType link, std::uint64_t idx, TimeUs ts, Bytes frame) {
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
    if (idx < frames_done) {
      count(Outcome::already_stored);
      return;
    }
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
    if (auto id = table.lookup(pv.dst)) {
      endpoint = batch_index(*id);
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
    batch.packets.push_back(rec);
    EndpointRun &r = batch_runs[endpoint];
    if (r.packets == 0) {
      r.first_seen = ts;
    }
    r.last_seen = ts;
    ++r.packets;
    r.bytes += pv.ip_length;
    count(Outcome::counted);
    stats.bytes_counted += pv.ip_length;
    maybe_seal(idx);
  }

  void maybe_seal(std::uint64_t idx) {
    if (batch.packets.size() >= opt.batch_records || batch.learnt.size() >= opt.batch_records ||
        batch.local_hosts.size() >= opt.batch_records) {
      seal(idx + 1, false);
    }
  }
};

Analyzer::Analyzer(Options options, BatchSink sink)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(sink))) {}

Analyzer::~Analyzer() = default;

void Analyzer::preload_address(const IpAddress &address, std::string_view name, TimeUs when) {
  impl_->table.learn(address, name, when);
}

void Analyzer::preload_local_host(const IpAddress &address) {
  impl_->preloading = true;
  impl_->add_local(address);
  impl_->preloading = false;
}

void Analyzer::begin_source(std::int64_t source_id, std::uint64_t frames_done) {
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
  impl_->seal(std::max(impl_->frames_through, impl_->frames_done), complete);
  impl_->in_source = false;
}

void Analyzer::flush() {
  if (impl_->in_source) {
    impl_->seal(std::max(impl_->frames_through, impl_->frames_done), false);
  }
}

const Stats &Analyzer::stats() const noexcept {
  return impl_->stats;
}
const dns::AddressTable &Analyzer::table() const noexcept {
  return impl_->table;
}
const dns::TcpReassemblerStats &Analyzer::dns_tcp_stats() const noexcept {
  return impl_->tcp.stats();
}
std::size_t Analyzer::local_host_count() const noexcept {
  return impl_->local_hosts.size();
}
const std::map<std::string, EndpointRun> &Analyzer::run_summary() const noexcept {
  return impl_->run_summary;
}

} // namespace ta::attribute
