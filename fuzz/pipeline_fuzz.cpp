// libFuzzer target for the whole per-packet path: frames through decode, DNS
// learning (UDP and TCP reassembly), the flow table with its parsers and
// attribution, into batches that a null sink drops (as `--store none` does).
//
// Input layout:
//   u8  mode: bits 0-2 link type (index into kLinks, modulo its size),
//       bit 3 DNS-only naming, bit 4 tiny bounds (DNS table, flow table,
//       client table, local hosts, batch size: evictions and seals on every
//       few frames), bit 5 --local-net 10.0.0.0/8 and fd00::/8, bit 6 the
//       first two frames were stored before (already_stored),
//       bit 7 ports 443,80 only
//   then frames, repeated: u16 length (big-endian, clipped to what is left),
//       u8 time step (x 1 ms; 255: a jump past the idle timeout), the bytes.
// The seeds in fuzz/corpus/pipeline/ are short generated captures in every
// link type (`traffic-analyzer generate --link ...`), so kLinks is
// append-only.
//
// Checked (abort on violation): every frame ends in exactly one outcome once
// the source ends; each packet record is a frame fed, at most once, counted
// only when its frame index is past the stored ones; its name index is in
// its batch; counted records and the `counted` outcome agree.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "ta/attribute/analyzer.hpp"
#include "ta/common/address.hpp"
#include "ta/decode/decode.hpp"

namespace {

using ta::attribute::Analyzer;
using ta::attribute::Outcome;
using ta::decode::LinkType;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

constexpr LinkType kLinks[] = {
    LinkType::ethernet,      // 0
    LinkType::linux_sll,     // 1
    LinkType::linux_sll2,    // 2
    LinkType::raw,           // 3
    LinkType::null_loopback, // 4
    LinkType::loop,          // 5
    LinkType::ipv4,          // 6
    LinkType::ipv6,          // 7
};
constexpr std::size_t kLinkCount = sizeof kLinks / sizeof kLinks[0];

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  const std::uint8_t mode = data[0];
  const LinkType link = kLinks[(mode & 7U) % kLinkCount];
  ta::attribute::Options o;
  o.naming = (mode & 0x08U) != 0 ? ta::attribute::Naming::dns : ta::attribute::Naming::flow;
  // Bounds far below the defaults (whose tables would be allocated for
  // every input), still above what an input fills unless bit 4 asks.
  o.dns_table_capacity = 1024;
  o.max_flows = 256;
  o.client_table_capacity = 1024;
  o.local_hosts_capacity = 256;
  o.batch_records = 256;
  if ((mode & 0x10U) != 0) {
    o.dns_table_capacity = 3;
    o.max_flows = 3;
    o.client_table_capacity = 3;
    o.local_hosts_capacity = 2;
    o.batch_records = 4;
  }
  if ((mode & 0x20U) != 0) {
    o.local_nets = {*ta::IpPrefix::parse("10.0.0.0/8"), *ta::IpPrefix::parse("fd00::/8")};
  }
  if ((mode & 0x80U) != 0) {
    o.ports = {443, 80};
  }
  const std::uint64_t frames_done = (mode & 0x40U) != 0 ? 2 : 0;
  o.flow_idle_timeout_us = 300'000'000;

  std::vector<int> seen; // per frame: packet records emitted for it
  std::uint64_t records = 0;
  Analyzer analyzer(o, [&](ta::store::Batch &b) {
    for (const ta::store::PacketRecord &r : b.packets) {
      check(r.frame < seen.size());
      check(r.frame >= frames_done);
      check(r.endpoint < b.endpoints.size() || (r.endpoint == 0 && b.endpoints.empty()));
      ++seen[r.frame];
      check(seen[r.frame] == 1);
      ++records;
    }
    for (const ta::store::FlowRecord &f : b.flows) {
      check(f.name < b.endpoints.size() || (f.name == 0 && b.endpoints.empty()));
    }
    b.clear();
  });
  analyzer.begin_source(1, frames_done);

  std::size_t pos = 1;
  ta::TimeUs now = 1'700'000'000'000'000;
  std::uint64_t index = 0;
  while (size - pos >= 3) {
    std::size_t len = (std::size_t{data[pos]} << 8U) | data[pos + 1];
    const std::uint8_t step = data[pos + 2];
    pos += 3;
    len = std::min(len, size - pos);
    now += step == 255 ? o.flow_idle_timeout_us + 1 : ta::TimeUs{step} * 1000;
    // A copy of exactly the frame's bytes, so ASan sees any over-read.
    std::vector<std::byte> frame(len);
    if (len > 0) {
      std::memcpy(frame.data(), data + pos, len);
    }
    pos += len;
    seen.push_back(0);
    analyzer.on_frame(link, index++, now, std::span<const std::byte>(frame.data(), frame.size()));
  }
  analyzer.end_source(true);

  const ta::attribute::Stats &st = analyzer.stats();
  check(st.frames == index);
  std::uint64_t outcomes = 0;
  for (const std::uint64_t n : st.outcomes) {
    outcomes += n;
  }
  check(outcomes == index);
  check(st.outcome(Outcome::counted) == records);
  check(st.packets_waiting == 0);
  return 0;
}
