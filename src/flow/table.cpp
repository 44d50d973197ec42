// The flow table: a pool of flow entries with an open-addressing index, an
// LRU list by last activity (idle sweep from the front, eviction of the front),
// a list of waiting flows ordered by their oldest held packet, pooled
// held-packet records and pooled naming state. See ta/flow/flow.hpp for the
// contract.
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "ta/flow/flow.hpp"

#include "flat_index.hpp"
#include "naming.hpp"
#include "tcp_join.hpp"

namespace ta::flow {

using detail::kNil;
using detail::same_address;
using store::Direction;
using store::NameSource;

namespace {

// Slack over the ClientHello bound for the record headers around it (RFC 8446
// 5.1: 5 bytes per record; a 16 KiB message spans at most a few records).
constexpr std::size_t kRecordSlack = 256;

struct Held {
  std::uint64_t frame = 0;
  TimeUs ts = 0;
  std::uint32_t ip_bytes = 0;
  std::uint32_t next = kNil;
  Direction direction = Direction::sent;
};

struct Waiter {
  detail::TcpJoin join;
  std::unique_ptr<detail::StreamNamer> stream;
  std::unique_ptr<detail::DatagramNamer> datagram;
  bool dropped = false; // a segment was refused by the window or the budget
};

// Laid out for the per-packet path: the key, the state every packet reads
// and the start of `info` (what emission reads) share the first two cache
// lines; the waiting state and the once-per-flow fields come after.
struct alignas(64) Entry {
  // Key: protocol + ends a < b (address, then port).
  IpAddress a;
  IpAddress b;
  std::uint16_t pa = 0;
  std::uint16_t pb = 0;
  std::uint8_t protocol = 0;
  bool client_is_a = false;
  bool ended = false;
  bool decided = false;
  bool fin_a = false;
  bool fin_b = false;
  bool has_dns = false;
  bool in_waiting = false;
  TimeUs last_ts = 0;
  std::uint64_t hash = 0;
  FlowInfo info;
  std::uint32_t wprev = kNil; // waiting-list links (only while holding packets)
  std::uint32_t wnext = kNil;
  std::uint32_t seen_waiting = 0; // packets seen while undecided
  std::uint32_t held_head = kNil;
  std::uint32_t held_tail = kNil;
  std::uint32_t held_count = 0;
  std::uint32_t waiter = kNil;
};

using WaitList = detail::LruList<Entry, &Entry::wprev, &Entry::wnext>;

// The recency links live beside the pool, not in the entries: moving a flow
// to the back touches its neighbours' links on every packet, and 8-byte
// links stay in cache where whole entries would not.
struct Link {
  std::uint32_t prev = kNil;
  std::uint32_t next = kNil;
};

// (x, xp) < (y, yp): any strict order works, it only picks a canonical side.
// The address bytes compare as two native 64-bit words (no memcmp call).
[[nodiscard]] bool end_less(const IpAddress &x, std::uint16_t xp, const IpAddress &y,
                            std::uint16_t yp) noexcept {
  if (x.family != y.family) {
    return x.family < y.family;
  }
  std::uint64_t x_lo = 0;
  std::uint64_t x_hi = 0;
  std::uint64_t y_lo = 0;
  std::uint64_t y_hi = 0;
  std::memcpy(&x_lo, x.bytes.data(), 8);
  std::memcpy(&y_lo, y.bytes.data(), 8);
  if (x_lo != y_lo) {
    return x_lo < y_lo;
  }
  std::memcpy(&x_hi, x.bytes.data() + 8, 8);
  std::memcpy(&y_hi, y.bytes.data() + 8, 8);
  if (x_hi != y_hi) {
    return x_hi < y_hi;
  }
  return xp < yp;
}

[[nodiscard]] std::uint64_t mix(std::uint64_t h, std::uint64_t w) noexcept {
  h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
  return h ^ (h >> 29U);
}

[[nodiscard]] std::uint64_t hash_key(const IpAddress &a, std::uint16_t pa, const IpAddress &b,
                                     std::uint16_t pb, std::uint8_t protocol) noexcept {
  std::array<std::uint64_t, 4> w{};
  std::memcpy(&w[0], a.bytes.data(), 8);
  std::memcpy(&w[1], a.bytes.data() + 8, 8);
  std::memcpy(&w[2], b.bytes.data(), 8);
  std::memcpy(&w[3], b.bytes.data() + 8, 8);
  std::uint64_t h = std::uint64_t{protocol} | (std::uint64_t{pa} << 8U) |
                    (std::uint64_t{pb} << 24U) | (std::uint64_t{a.family} << 40U) |
                    (std::uint64_t{b.family} << 48U);
  for (const std::uint64_t x : w) {
    h = mix(h, x);
  }
  return h * 0xBF58476D1CE4E5B9ULL;
}

[[nodiscard]] bool final_step(const detail::NameStep &s) noexcept {
  return s.kind != detail::NameStep::Kind::need_more;
}

} // namespace

struct Table::Impl {
  Options opt;
  DnsLookup dns;
  Sink sink;
  LocalTest local_test;
  std::unique_ptr<detail::NamingFactory> naming;

  std::vector<Entry> pool;
  std::vector<std::uint32_t> free_entries;
  detail::FlatIndex index;
  std::vector<Link> links; // parallel to pool
  detail::LruList<Link> lru;
  WaitList waiting;
  std::vector<Held> held;
  std::uint32_t held_free = kNil;
  std::vector<Waiter> waiters;
  std::vector<std::uint32_t> free_waiters;
  std::int64_t source = 0;
  // The flow of the previous packet: consecutive packets of one flow skip
  // the hash and the index (kNil once that flow leaves the table).
  std::uint32_t last_flow = kNil;
  Stats stats;
  std::string scratch; // a parser's name, before it is copied into the flow

  Impl(Options o, DnsLookup d, Sink s, std::unique_ptr<detail::NamingFactory> n)
      : opt(o), dns(std::move(d)), sink(std::move(s)), naming(std::move(n)) {
    opt.max_flows = std::max<std::size_t>(opt.max_flows, 1);
    opt.max_wait_packets = std::max<std::size_t>(opt.max_wait_packets, 1);
    // Address space only: pages are touched as flows arrive, and the pool
    // never moves (growing by copies cost page faults and time per flow).
    const std::size_t up_front = std::min<std::size_t>(opt.max_flows, std::size_t{1} << 20U);
    pool.reserve(up_front);
    links.reserve(up_front);
  }

  // --- emission -------------------------------------------------------------

  void emit(Entry &e, std::uint64_t frame, TimeUs ts, Direction d, std::uint32_t bytes) {
    Emitted out;
    out.frame = frame;
    out.ts = ts;
    out.direction = d;
    out.ip_bytes = bytes;
    out.flow = &e.info;
    ++stats.emitted;
    sink(out);
  }

  void hold(std::uint32_t idx, const Packet &p, Direction d) {
    std::uint32_t h = held_free;
    if (h != kNil) {
      held_free = held[h].next;
    } else {
      h = static_cast<std::uint32_t>(held.size());
      held.emplace_back();
    }
    held[h] = Held{p.frame, p.ts, p.ip_bytes, kNil, d};
    Entry &e = pool[idx];
    if (e.held_tail != kNil) {
      held[e.held_tail].next = h;
    } else {
      e.held_head = h;
    }
    e.held_tail = h;
    ++e.held_count;
    ++stats.held_packets;
    if (!e.in_waiting) {
      e.in_waiting = true;
      waiting.push_back(pool, idx);
    }
  }

  // --- naming ---------------------------------------------------------------

  std::uint32_t acquire_waiter(std::uint8_t protocol) {
    std::uint32_t w = 0;
    if (!free_waiters.empty()) {
      w = free_waiters.back();
      free_waiters.pop_back();
    } else {
      w = static_cast<std::uint32_t>(waiters.size());
      waiters.emplace_back();
    }
    Waiter &wt = waiters[w];
    wt.join.reset();
    wt.dropped = false;
    if (protocol == kTcp) {
      if (!wt.stream) {
        wt.stream = naming->stream(opt.max_first_payload);
      }
      wt.stream->reset();
    } else {
      if (!wt.datagram) {
        wt.datagram = naming->datagram();
      }
      wt.datagram->reset();
    }
    return w;
  }

  void release_waiter(Entry &e) {
    if (e.waiter == kNil) {
      return;
    }
    Waiter &wt = waiters[e.waiter];
    if (e.protocol == kUdp) {
      wt.datagram->take_errors(stats.quic_packet_errors);
    }
    stats.buffered_bytes -= wt.join.held_bytes();
    wt.join.reset();
    free_waiters.push_back(e.waiter);
    e.waiter = kNil;
  }

  // Ends the wait of flow `idx`: its name is final, its held packets go out.
  void decide(std::uint32_t idx, DecideReason reason, const detail::NameStep *step) {
    Entry &e = pool[idx];
    if (e.decided) {
      return;
    }
    e.decided = true;
    --stats.waiting;
    ++stats.reasons[static_cast<std::size_t>(reason)];
    if (step != nullptr && step->outcome != NamingOutcome::count_) {
      ++stats.outcomes[static_cast<std::size_t>(step->outcome)];
    }
    if (e.waiter != kNil) {
      const Waiter &wt = waiters[e.waiter];
      if (step == nullptr && wt.join.gap_open()) {
        ++stats.outcomes[static_cast<std::size_t>(NamingOutcome::tcp_gap)];
      }
      if (wt.dropped) {
        ++stats.outcomes[static_cast<std::size_t>(NamingOutcome::tcp_window_dropped)];
      }
    }
    if (step != nullptr && step->kind == detail::NameStep::Kind::named) {
      e.info.name.assign(scratch);
      e.info.source = step->source;
    } else if (e.has_dns) {
      e.info.source = NameSource::dns; // the name is already there
    } else {
      e.info.name.clear();
      e.info.source = NameSource::none;
    }
    ++stats.decisions[static_cast<std::size_t>(e.info.source)];
    release_waiter(e);
    if (e.in_waiting) {
      waiting.unlink(pool, idx);
      e.in_waiting = false;
    }
    std::uint32_t h = e.held_head;
    e.held_head = kNil;
    e.held_tail = kNil;
    stats.held_packets -= e.held_count;
    e.held_count = 0;
    while (h != kNil) {
      const Held rec = held[h];
      held[h].next = held_free;
      held_free = h;
      h = rec.next;
      emit(e, rec.frame, rec.ts, rec.direction, rec.ip_bytes);
    }
  }

  // A client packet of a waiting flow goes to the parsers.
  void feed_naming(std::uint32_t idx, const Packet &p) {
    Entry &e = pool[idx];
    Waiter &wt = waiters[e.waiter];
    detail::NameStep step;
    if (e.protocol == kUdp) {
      step = wt.datagram->feed(p.payload, scratch);
    } else {
      std::uint32_t seq = p.tcp_seq;
      if ((p.tcp_flags & kSyn) != 0) {
        wt.join.syn(p.tcp_seq);
        seq += 1U; // data on a SYN starts after it
      }
      const std::size_t before = wt.join.held_bytes();
      const auto fed = wt.join.feed(
          seq, p.payload, opt.max_first_payload + kRecordSlack,
          [&](Bytes bytes) {
            step = wt.stream->feed(bytes, scratch);
            return !final_step(step);
          },
          [&](std::size_t n) { return stats.buffered_bytes + n <= opt.max_buffered_bytes; });
      stats.buffered_bytes += wt.join.held_bytes();
      stats.buffered_bytes -= before;
      if (fed == detail::TcpJoin::Fed::dropped) {
        wt.dropped = true;
      }
    }
    if (final_step(step)) {
      decide(idx, DecideReason::parsers, &step);
    }
  }

  // --- table ----------------------------------------------------------------

  void remove(std::uint32_t idx) {
    Entry &e = pool[idx];
    if (last_flow == idx) {
      last_flow = kNil;
    }
    index.erase(e.hash, idx);
    lru.unlink(links, idx);
    free_entries.push_back(idx);
    --stats.active;
  }

  // Idle gap or eviction: the flow leaves the table.
  void drop(std::uint32_t idx, FlowEnd why) {
    Entry &e = pool[idx];
    if (!e.ended || why == FlowEnd::evicted) {
      ++stats.ends[static_cast<std::size_t>(why)];
    }
    decide(idx, why == FlowEnd::evicted ? DecideReason::evicted : DecideReason::flow_end, nullptr);
    remove(idx);
  }

  void sweep(TimeUs now) {
    while (!lru.empty()) {
      const std::uint32_t f = lru.front();
      if (now - pool[f].last_ts <= opt.idle_timeout_us) {
        return;
      }
      drop(f, FlowEnd::idle);
    }
  }

  std::uint32_t create(const Packet &p, bool src_is_a, std::uint64_t hash, bool syn_only) {
    if (stats.active >= opt.max_flows && !lru.empty()) {
      drop(lru.front(), FlowEnd::evicted);
    }
    std::uint32_t idx = 0;
    if (!free_entries.empty()) {
      idx = free_entries.back();
      free_entries.pop_back();
    } else {
      idx = static_cast<std::uint32_t>(pool.size());
      pool.emplace_back();
      links.emplace_back();
    }
    Entry &e = pool[idx];
    e.a = src_is_a ? p.src : p.dst;
    e.pa = src_is_a ? p.sport : p.dport;
    e.b = src_is_a ? p.dst : p.src;
    e.pb = src_is_a ? p.dport : p.sport;
    e.protocol = p.protocol;
    e.hash = hash;
    // Which end is the endpoint, fixed now (see flow.hpp).
    bool endpoint_is_dst = true;
    bool src_local = p.src_local;
    bool dst_local = p.dst_local;
    if (local_test) {
      src_local = src_local || local_test(p.src);
      dst_local = dst_local || local_test(p.dst);
    }
    if (src_local != dst_local) {
      endpoint_is_dst = src_local;
    } else if (p.protocol == kTcp && syn_only) {
      endpoint_is_dst = true;
    } else if (p.sport != p.dport) {
      endpoint_is_dst = p.dport < p.sport;
    }
    e.client_is_a = endpoint_is_dst == src_is_a;
    e.ended = false;
    e.decided = false;
    e.fin_a = false;
    e.fin_b = false;
    e.in_waiting = false;
    e.last_ts = p.ts;
    e.seen_waiting = 0;
    e.held_head = kNil;
    e.held_tail = kNil;
    e.held_count = 0;
    FlowInfo &info = e.info;
    info.origin_source = source;
    info.first_frame = p.frame;
    info.protocol = p.protocol;
    info.client = endpoint_is_dst ? p.src : p.dst;
    info.client_port = endpoint_is_dst ? p.sport : p.dport;
    info.endpoint = endpoint_is_dst ? p.dst : p.src;
    info.endpoint_port = endpoint_is_dst ? p.dport : p.sport;
    info.source = NameSource::none;
    info.user_slot = store::kNoFlow;
    info.user_epoch = 0;
    info.user_mark = 0;
    e.has_dns = false;
    info.name.clear();
    if (dns) {
      if (const auto n = dns(info.client, info.endpoint)) {
        info.name.assign(*n);
        e.has_dns = true;
      }
    }
    e.waiter = acquire_waiter(p.protocol);
    index.insert(hash, idx);
    lru.push_back(links, idx);
    ++stats.flows_created;
    ++stats.active;
    ++stats.waiting;
    return idx;
  }

  FlowInfo *on_packet(const Packet &p) {
    ++stats.packets;
    sweep(p.ts);
    const bool src_is_a = !end_less(p.dst, p.dport, p.src, p.sport);
    const IpAddress &a = src_is_a ? p.src : p.dst;
    const IpAddress &b = src_is_a ? p.dst : p.src;
    const std::uint16_t pa = src_is_a ? p.sport : p.dport;
    const std::uint16_t pb = src_is_a ? p.dport : p.sport;
    const bool tcp = p.protocol == kTcp;
    const bool syn_only = tcp && (p.tcp_flags & (kSyn | kAck)) == kSyn;
    const auto same_key = [&](std::uint32_t i) {
      const Entry &e = pool[i];
      return e.protocol == p.protocol && e.pa == pa && e.pb == pb && same_address(e.a, a) &&
             same_address(e.b, b);
    };
    std::uint64_t hash = 0;
    std::uint32_t idx = kNil;
    if (last_flow != kNil && same_key(last_flow)) {
      idx = last_flow;
      hash = pool[idx].hash;
    } else {
      hash = hash_key(a, pa, b, pb, p.protocol);
      idx = index.find(hash, same_key);
    }
    if (idx != kNil) {
      Entry &e = pool[idx];
      if (p.ts - e.last_ts > opt.idle_timeout_us) {
        drop(idx, FlowEnd::idle);
        idx = kNil;
      } else if (e.ended && syn_only) {
        remove(idx); // ended flows are decided already
        idx = kNil;
      }
    }
    if (idx == kNil) {
      idx = create(p, src_is_a, hash, syn_only);
      last_flow = idx;
    } else {
      last_flow = idx;
      lru.move_to_back(links, idx);
      Entry &e = pool[idx];
      e.last_ts = std::max(e.last_ts, p.ts);
    }

    const Direction dir = pool[idx].client_is_a == src_is_a ? Direction::sent : Direction::received;
    if (!pool[idx].decided) {
      ++pool[idx].seen_waiting;
      if (dir == Direction::sent) {
        feed_naming(idx, p);
      }
    }
    if (tcp) {
      Entry &e = pool[idx];
      if (!e.ended) {
        if ((p.tcp_flags & kRst) != 0) {
          e.ended = true;
          ++stats.ends[static_cast<std::size_t>(FlowEnd::rst)];
        } else if ((p.tcp_flags & kFin) != 0) {
          (src_is_a ? e.fin_a : e.fin_b) = true;
          if (e.fin_a && e.fin_b) {
            e.ended = true;
            ++stats.ends[static_cast<std::size_t>(FlowEnd::fin)];
          }
        }
        if (e.ended) {
          decide(idx, DecideReason::flow_end, nullptr);
        }
      }
    }
    if (!pool[idx].decided && pool[idx].seen_waiting >= opt.max_wait_packets) {
      decide(idx, DecideReason::wait_bound, nullptr);
    }
    if (!p.record) {
      return &pool[idx].info;
    }
    if (!pool[idx].decided) {
      while (stats.held_packets >= opt.max_held_total && !waiting.empty()) {
        decide(waiting.front(), DecideReason::held_bound, nullptr);
      }
      if (!pool[idx].decided && stats.held_packets >= opt.max_held_total) {
        decide(idx, DecideReason::held_bound, nullptr); // a bound of 0 holds nothing
      }
    }
    if (pool[idx].decided) {
      emit(pool[idx], p.frame, p.ts, dir, p.ip_bytes);
    } else {
      hold(idx, p, dir);
    }
    return &pool[idx].info;
  }

  void decide_all() {
    // Oldest held first, so emission stays close to frame order.
    while (!waiting.empty()) {
      decide(waiting.front(), DecideReason::end_of_input, nullptr);
    }
    for (std::uint32_t i = lru.front(); i != kNil && stats.waiting > 0; i = links[i].next) {
      decide(i, DecideReason::end_of_input, nullptr);
    }
  }
};

Table::Table(Options options, DnsLookup dns, Sink sink)
    : Table(options, std::move(dns), std::move(sink), detail::parser_naming()) {}

Table::Table(Options options, DnsLookup dns, Sink sink,
             std::unique_ptr<detail::NamingFactory> naming)
    : impl_(std::make_unique<Impl>(options, std::move(dns), std::move(sink), std::move(naming))) {}

Table::~Table() = default;

void Table::begin_source(std::int64_t source_id) {
  impl_->decide_all();
  impl_->source = source_id;
}

void Table::set_local_test(LocalTest test) {
  impl_->local_test = std::move(test);
}

FlowInfo *Table::on_packet(const Packet &packet) noexcept {
  return impl_->on_packet(packet);
}

void Table::release_all() {
  impl_->decide_all();
}

std::optional<std::uint64_t> Table::oldest_held_frame() const noexcept {
  if (impl_->waiting.empty()) {
    return std::nullopt;
  }
  const Entry &e = impl_->pool[impl_->waiting.front()];
  return impl_->held[e.held_head].frame;
}

const Stats &Table::stats() const noexcept {
  return impl_->stats;
}

std::size_t Table::active() const noexcept {
  return impl_->stats.active;
}

} // namespace ta::flow
