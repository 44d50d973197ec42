// DNS-over-TCP framing (RFC 1035 §4.2.2):
//
//   +--------+--------+------------------------- - -
//   | length (16, BE) | DNS message (length octets) ...
//   +--------+--------+------------------------- - -
//
// repeated back to back on each connection direction. Per direction we keep
// the next expected sequence number and the unit in progress: how many of the
// two length octets were seen, then the message body collected so far (a
// buffer reserved for exactly `length` octets), or, after the buffer bound
// refused a body, how many octets of it are left to skip.
//
// A unit that lies wholly inside one segment is handed to the sink straight
// from the payload; only a body split across segments is copied.
#include "ta/dns/tcp_reassembler.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "flat_index.hpp"

namespace ta::dns {
namespace {

using detail::kNil;

constexpr std::uint8_t kFin = 0x01;
constexpr std::uint8_t kSyn = 0x02;
constexpr std::uint8_t kRst = 0x04;

// RFC 1982 serial arithmetic on 32-bit sequence numbers: a is before b when
// b - a, taken mod 2^32, lies in (0, 2^31] (2^31 itself is undefined by the
// RFC; counting it as "before" only makes such a segment look stale).
bool seq_before(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) < 0;
}

std::uint64_t hash_key(const TcpFlowKey &k) noexcept {
  const IpAddressHash h;
  std::uint64_t x = h(k.src);
  x = (x ^ (x >> 29U)) * 0xBF58476D1CE4E5B9ULL + h(k.dst);
  x = (x ^ (x >> 32U)) * 0x94D049BB133111EBULL + ((std::uint64_t{k.src_port} << 16U) | k.dst_port);
  return x ^ (x >> 31U);
}

struct Flow {
  TcpFlowKey key;
  std::uint32_t next_seq = 0;
  std::uint32_t prev = kNil; // recency list; `next` doubles as the free-list link
  std::uint32_t next = kNil;
  // Unit in progress.
  std::uint8_t prefix_have = 0; // 0..2 length octets seen
  std::uint8_t prefix_hi = 0;   // first length octet, when prefix_have == 1
  std::uint16_t length = 0;     // valid when prefix_have == 2
  std::uint32_t skip = 0;       // body octets still to discard (oversize)
  std::vector<std::byte> body;  // capacity == length while collecting, else none

  [[nodiscard]] std::size_t partial_bytes() const noexcept { return prefix_have + body.size(); }
};

std::uint16_t be16(Bytes b) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(b[0]) << 8U) |
                                    std::to_integer<unsigned>(b[1]));
}

} // namespace

struct TcpReassembler::Impl {
  Limits limits;
  std::vector<Flow> flows;
  detail::FlatIndex index;
  detail::LruList<Flow> recency;
  std::uint32_t free_head = kNil;
  std::size_t live = 0;
  std::size_t buffered = 0; // sum of body capacities
  TcpReassemblerStats stats;

  explicit Impl(Limits l) : limits(l) {
    limits.max_flows = std::min<std::size_t>(limits.max_flows, kNil - 1U);
    // Typical flow counts fit without growing; a huge bound is not paid upfront.
    index.reserve(std::min<std::size_t>(limits.max_flows, 4096));
  }

  [[nodiscard]] std::uint32_t find(const TcpFlowKey &k, std::uint64_t h) const noexcept {
    return index.find(h, [&](std::uint32_t i) noexcept {
      const TcpFlowKey &f = flows[i].key;
      return f.src_port == k.src_port && f.dst_port == k.dst_port &&
             detail::same_address(f.src, k.src) && detail::same_address(f.dst, k.dst);
    });
  }

  void release_body(Flow &f) noexcept {
    buffered -= f.body.capacity();
    std::vector<std::byte>().swap(f.body);
  }

  // Drops the unit in progress; returns how many buffered octets that threw away.
  std::size_t reset_unit(Flow &f) noexcept {
    const std::size_t dropped = f.partial_bytes();
    release_body(f);
    f.prefix_have = 0;
    f.length = 0;
    f.skip = 0;
    return dropped;
  }

  void forget(std::uint32_t i) noexcept {
    Flow &f = flows[i];
    stats.bytes_dropped += reset_unit(f);
    index.erase(hash_key(f.key), i);
    recency.unlink(flows, i);
    f.next = free_head;
    free_head = i;
    --live;
  }

  std::uint32_t create(const TcpFlowKey &k, std::uint64_t h) {
    if (live >= limits.max_flows) {
      forget(recency.front());
      ++stats.flows_evicted;
    }
    std::uint32_t i = free_head;
    if (i != kNil) {
      free_head = flows[i].next;
    } else {
      i = static_cast<std::uint32_t>(flows.size());
      flows.emplace_back();
    }
    Flow &f = flows[i];
    f.key = k;
    index.insert(h, i);
    recency.push_back(flows, i);
    ++live;
    return i;
  }

  void deliver(Bytes message, const MessageSink &sink) {
    ++stats.messages;
    sink(message);
  }

  // Consumes in-order stream bytes of one direction.
  void consume(Flow &f, Bytes data, const MessageSink &sink) {
    while (!data.empty()) {
      if (f.skip != 0) {
        const std::size_t n = std::min<std::size_t>(f.skip, data.size());
        f.skip -= static_cast<std::uint32_t>(n);
        stats.bytes_dropped += n;
        data = data.subspan(n);
        continue;
      }
      if (f.prefix_have < 2) {
        if (f.prefix_have == 0 && data.size() >= 2) {
          const std::uint16_t len = be16(data);
          if (data.size() >= 2U + len) {
            // Common case: the whole unit is in this segment.
            deliver(data.subspan(2, len), sink);
            data = data.subspan(2U + len);
            continue;
          }
          f.length = len;
          f.prefix_have = 2;
          data = data.subspan(2);
        } else if (f.prefix_have == 0) {
          f.prefix_hi = std::to_integer<std::uint8_t>(data[0]);
          f.prefix_have = 1;
          data = data.subspan(1);
          continue;
        } else {
          f.length = static_cast<std::uint16_t>((unsigned{f.prefix_hi} << 8U) |
                                                std::to_integer<unsigned>(data[0]));
          f.prefix_have = 2;
          data = data.subspan(1);
        }
      }
      // prefix_have == 2: collecting the body.
      const std::size_t missing = f.length - f.body.size();
      const std::size_t n = std::min(missing, data.size());
      if (f.body.empty() && n == missing) {
        // Prefix came earlier, body is whole here (covers length 0 too).
        deliver(data.subspan(0, n), sink);
        f.prefix_have = 0;
        data = data.subspan(n);
        continue;
      }
      if (f.body.capacity() == 0) {
        if (buffered + f.length > limits.max_buffered_bytes) {
          ++stats.oversize;
          stats.bytes_dropped += 2;
          f.prefix_have = 0;
          f.skip = f.length; // resynchronise after this message
          continue;
        }
        f.body.reserve(f.length);
        buffered += f.body.capacity();
      }
      f.body.insert(f.body.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
      data = data.subspan(n);
      if (f.body.size() == f.length) {
        deliver(f.body, sink);
        release_body(f);
        f.prefix_have = 0;
      }
    }
  }

  void feed(const TcpFlowKey &key, std::uint32_t seq, std::uint8_t flags, Bytes payload,
            const MessageSink &sink) {
    const bool syn = (flags & kSyn) != 0;
    const bool closing = (flags & (kFin | kRst)) != 0;
    // SYN occupies one sequence number before any data (TCP Fast Open).
    const std::uint32_t data_seq = syn ? seq + 1U : seq;
    const std::uint64_t h = hash_key(key);
    std::uint32_t i = find(key, h);

    if (i == kNil) {
      if (closing || limits.max_flows == 0) {
        // Nothing to remember: take the whole units the segment starts with.
        while (payload.size() >= 2 && payload.size() >= 2U + be16(payload)) {
          const std::size_t len = be16(payload);
          deliver(payload.subspan(2, len), sink);
          payload = payload.subspan(2 + len);
        }
        stats.bytes_dropped += payload.size();
        return;
      }
      if (!syn && payload.empty()) {
        return; // a bare ACK says nothing a later data segment won't
      }
      i = create(key, h);
      flows[i].next_seq = data_seq;
    } else if (syn) {
      // A new connection reusing the 4-tuple: start over.
      stats.bytes_dropped += reset_unit(flows[i]);
      flows[i].next_seq = data_seq;
    }
    recency.move_to_back(flows, i);
    Flow &f = flows[i];

    // Place the payload relative to the expected sequence number.
    const std::uint32_t end_seq = data_seq + static_cast<std::uint32_t>(payload.size());
    if (seq_before(f.next_seq, data_seq)) {
      // Gap: data between next_seq and data_seq was never seen. Whatever unit
      // was in progress cannot be completed; treat this segment as starting a
      // new unit (right after a lost whole unit it does; otherwise the parser
      // rejects what follows).
      ++stats.gaps;
      stats.bytes_dropped += reset_unit(f);
      f.next_seq = data_seq;
    } else if (seq_before(data_seq, f.next_seq)) {
      if (!seq_before(f.next_seq, end_seq)) {
        payload = {}; // wholly a retransmission
      } else {
        payload = payload.subspan(f.next_seq - data_seq); // overlap: skip the old part
      }
    }
    if (!payload.empty()) {
      consume(f, payload, sink);
      f.next_seq += static_cast<std::uint32_t>(payload.size());
    }
    if (closing) {
      forget(i);
    }
  }
};

TcpReassembler::TcpReassembler() : TcpReassembler(Limits{}) {}

TcpReassembler::TcpReassembler(Limits limits) : impl_(std::make_unique<Impl>(limits)) {}

TcpReassembler::~TcpReassembler() = default;

void TcpReassembler::feed(const TcpFlowKey &key, std::uint32_t seq, std::uint8_t flags,
                          Bytes payload, const MessageSink &sink) {
  impl_->feed(key, seq, flags, payload, sink);
}

const TcpReassemblerStats &TcpReassembler::stats() const noexcept {
  return impl_->stats;
}

std::size_t TcpReassembler::flow_count() const noexcept {
  return impl_->live;
}

} // namespace ta::dns
