// libFuzzer target for the flow table: the input is a sequence of synthetic
// packets between a few addresses and ports (TCP or UDP, any flags, sequence
// numbers, payloads, local marks, record or not, time steps up to past the
// idle timeout), fed to a Table with small bounds and the real parsers, then
// release_all(). Record layout, repeated:
//   u8  ends:  bits 0-1 source address, 2-3 destination address, bit 4 UDP,
//              bit 5 record=false, bit 6 source local, bit 7 destination local
//   u8  ports: low nibble source port, high nibble destination port (a table)
//   u8  TCP flags
//   u32 TCP sequence number
//   u8  time step (x 64 us; 255: a jump past the idle timeout)
//   u16 payload length (clipped to what is left), then the payload
// Checked invariants (abort on violation): every packet with record=true is
// emitted exactly once, none with record=false is; a packet's direction
// matches its flow's client end; nothing is held or waiting after
// release_all(); the held frame the caller may not pass is never above a
// frame still held.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/flow/flow.hpp"

namespace {

using ta::IpAddress;
using ta::flow::Emitted;
using ta::flow::Packet;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

constexpr std::uint16_t kPorts[16] = {443, 80,    8080, 5000, 50000, 123,  500,  40000,
                                      1,   65535, 22,   853,  4433,  3478, 1024, 65534};

struct Fed {
  IpAddress src;
  IpAddress dst;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  bool record = false;
  int emitted = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static const IpAddress addrs[4] = {*IpAddress::parse("10.0.0.1"), *IpAddress::parse("1.1.1.1"),
                                     *IpAddress::parse("10.0.0.2"),
                                     *IpAddress::parse("2001:db8::1")};
  ta::flow::Options o;
  o.max_flows = 4;
  o.idle_timeout_us = 10'000;
  o.max_wait_packets = 6;
  o.max_first_payload = 1024;
  o.max_held_total = 12;
  o.max_buffered_bytes = 2048;

  std::vector<Fed> fed;
  auto lookup = [](const IpAddress &,
                   const IpAddress &endpoint) -> std::optional<std::string_view> {
    if (endpoint.family == 6) {
      return std::string_view("six.example");
    }
    return std::nullopt;
  };
  auto sink = [&fed](const Emitted &e) {
    check(e.frame < fed.size());
    Fed &f = fed[e.frame];
    check(f.record);
    ++f.emitted;
    check(e.flow != nullptr);
    const bool sent = e.direction == ta::store::Direction::sent;
    const IpAddress &client_side = sent ? f.src : f.dst;
    const std::uint16_t client_port = sent ? f.sport : f.dport;
    check(client_side == e.flow->client && client_port == e.flow->client_port);
    check(e.flow->source < ta::store::NameSource::count_);
    check(e.flow->source != ta::store::NameSource::none || e.flow->name.empty());
  };
  ta::flow::Table table(o, lookup, sink);
  table.begin_source(1);

  std::size_t pos = 0;
  ta::TimeUs now = 1'000'000;
  while (size - pos >= 10) {
    const std::uint8_t ends = data[pos];
    const std::uint8_t ports = data[pos + 1];
    Packet p;
    p.tcp_flags = data[pos + 2];
    p.tcp_seq = (std::uint32_t{data[pos + 3]} << 24U) | (std::uint32_t{data[pos + 4]} << 16U) |
                (std::uint32_t{data[pos + 5]} << 8U) | std::uint32_t{data[pos + 6]};
    const std::uint8_t step = data[pos + 7];
    std::size_t len = (std::size_t{data[pos + 8]} << 8U) | data[pos + 9];
    pos += 10;
    len = std::min(len, size - pos);
    p.payload = std::span(reinterpret_cast<const std::byte *>(data + pos), len);
    pos += len;

    now += step == 255 ? o.idle_timeout_us + 1 : ta::TimeUs{step} * 64;
    p.ts = now;
    p.frame = fed.size();
    p.src = addrs[ends & 3U];
    p.dst = addrs[(ends >> 2U) & 3U];
    p.protocol = (ends & 0x10U) != 0 ? ta::flow::kUdp : ta::flow::kTcp;
    p.record = (ends & 0x20U) == 0;
    p.src_local = (ends & 0x40U) != 0;
    p.dst_local = (ends & 0x80U) != 0;
    p.sport = kPorts[ports & 15U];
    p.dport = kPorts[ports >> 4U];
    p.ip_bytes = static_cast<std::uint32_t>(40 + len);
    fed.push_back({p.src, p.dst, p.sport, p.dport, p.record, 0});
    table.on_packet(p);

    const auto oldest = table.oldest_held_frame();
    for (std::size_t i = 0; i < fed.size(); ++i) {
      if (fed[i].record && fed[i].emitted == 0) {
        check(oldest.has_value() && *oldest <= i); // held, and not below the oldest
      }
    }
    check(table.stats().held_packets <= o.max_held_total);
    check(table.active() <= o.max_flows);
  }
  table.release_all();
  for (const Fed &f : fed) {
    check(f.emitted == (f.record ? 1 : 0));
  }
  const auto &st = table.stats();
  check(st.held_packets == 0 && st.waiting == 0 && st.buffered_bytes == 0);
  check(!table.oldest_held_frame().has_value());
  return 0;
}
