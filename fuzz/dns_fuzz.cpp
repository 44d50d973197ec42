// libFuzzer target for the dns stage:
//   1. the input as one DNS message -> parse_response;
//   2. the input as a DNS-over-TCP byte stream, cut into segments at an offset
//      chosen by the input's first octet, fed in order, with a retransmitted
//      overlap, out of order, and across more directions than the flow bound
//      allows, into a TcpReassembler with small limits; every delivered
//      message is parsed too.
// Checked invariants (abort on violation): parse results are self-consistent,
// and the reassembler never delivers more octets than the stream held.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ta/dns/message.hpp"
#include "ta/dns/tcp_reassembler.hpp"

namespace {

using ta::Bytes;
using ta::dns::DnsError;
using ta::dns::DnsResponse;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void parse_and_check(Bytes message) {
  DnsResponse r;
  const DnsError e = ta::dns::parse_response(message, r);
  check(e < DnsError::count_);
  check(!ta::dns::to_string(e).empty() && ta::dns::to_string(e) != "unknown");
  if (e == DnsError::ok) {
    check(message.size() >= 12);
    // 255 wire octets at most: 253 characters of text.
    check(r.qname_len <= 253 && r.qname_buf[r.qname_len] == '\0');
    check(r.address_count <= DnsResponse::kMaxAddresses);
    check(r.address_count + r.cname_count <= r.answer_count);
    for (std::size_t i = 0; i < r.address_count; ++i) {
      check(r.addresses[i].valid());
    }
    for (const char ch : r.qname()) {
      check(ch < 'A' || ch > 'Z');
    }
  }
}

ta::dns::TcpFlowKey key(std::uint16_t port) {
  ta::dns::TcpFlowKey k;
  k.src.family = 4;
  k.src.bytes[0] = 192;
  k.dst.family = 4;
  k.dst.bytes[0] = 10;
  k.src_port = 53;
  k.dst_port = port;
  return k;
}

constexpr std::uint8_t kFin = 0x01;
constexpr std::uint8_t kSyn = 0x02;
constexpr std::uint8_t kAck = 0x10;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const Bytes input(reinterpret_cast<const std::byte *>(data), size);
  parse_and_check(input);
  if (size == 0) {
    return 0;
  }

  // The stream is the whole input; its first octets also pick the cut and
  // the ISN (so some runs wrap the sequence space).
  const std::size_t cut = data[0] % (size + 1);
  std::uint32_t isn = 0xFFFFFFFFU - data[0];
  if (size >= 5) {
    isn = (std::uint32_t{data[1]} << 24U) | (std::uint32_t{data[2]} << 16U) |
          (std::uint32_t{data[3]} << 8U) | data[4];
  }
  const auto seq_at = [isn](std::size_t offset) {
    return isn + 1U + static_cast<std::uint32_t>(offset);
  };

  std::size_t delivered_octets = 0;
  std::size_t delivered_messages = 0;
  const ta::dns::TcpReassembler::MessageSink sink = [&](Bytes message) {
    delivered_octets += message.size();
    ++delivered_messages;
    parse_and_check(message);
  };
  ta::dns::TcpReassembler reasm(
      ta::dns::TcpReassembler::Limits{.max_flows = 2, .max_buffered_bytes = 1024});

  // Direction 1: in order, then a retransmission overlapping both halves, FIN.
  const auto k1 = key(1);
  reasm.feed(k1, isn, kSyn, {}, sink);
  reasm.feed(k1, seq_at(0), kAck, input.first(cut), sink);
  reasm.feed(k1, seq_at(cut / 2), kAck, input.subspan(cut / 2), sink);
  reasm.feed(k1, seq_at(size), kAck | kFin, {}, sink);
  // Each octet is consumed once: a message costs two length octets more.
  check(delivered_octets + 2 * delivered_messages <= size);

  // Direction 2: second half first (a gap), then the first half (now stale),
  // no SYN seen. Direction 3 evicts one of them; direction 2 is then fed the
  // whole stream as a single segment.
  const auto k2 = key(2);
  reasm.feed(k2, seq_at(cut), kAck, input.subspan(cut), sink);
  reasm.feed(k2, seq_at(0), kAck, input.first(cut), sink);
  const auto k3 = key(3);
  reasm.feed(k3, seq_at(0), kAck, input.first(cut), sink);
  reasm.feed(k2, seq_at(size), kAck, input, sink);
  check(reasm.flow_count() <= 2);
  return 0;
}
