#include "batch_codec.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace ta::store::detail {
namespace {

constexpr std::array<std::byte, 4> kMagic{std::byte{'T'}, std::byte{'A'}, std::byte{'B'},
                                          std::byte{'3'}};
constexpr std::array<std::byte, 4> kMagicV2{std::byte{'T'}, std::byte{'A'}, std::byte{'B'},
                                            std::byte{'2'}};
constexpr std::array<std::byte, 4> kMagicV1{std::byte{'T'}, std::byte{'A'}, std::byte{'B'},
                                            std::byte{'1'}};
// Bounds a damaged count before anything is reserved: no entry is smaller
// than one byte, so a count above the bytes left is corrupt.
constexpr std::size_t kMaxName = 1U << 16U;

void put_u8(std::vector<std::byte> &out, std::uint8_t v) {
  out.push_back(std::byte{v});
}
void put_u16(std::vector<std::byte> &out, std::uint16_t v) {
  put_u8(out, static_cast<std::uint8_t>(v >> 8U));
  put_u8(out, static_cast<std::uint8_t>(v));
}
void put_u32(std::vector<std::byte> &out, std::uint32_t v) {
  put_u16(out, static_cast<std::uint16_t>(v >> 16U));
  put_u16(out, static_cast<std::uint16_t>(v));
}
void put_u64(std::vector<std::byte> &out, std::uint64_t v) {
  put_u32(out, static_cast<std::uint32_t>(v >> 32U));
  put_u32(out, static_cast<std::uint32_t>(v));
}
void put_address(std::vector<std::byte> &out, const IpAddress &a) {
  put_u8(out, a.family);
  const auto *p = reinterpret_cast<const std::byte *>(a.bytes.data());
  out.insert(out.end(), p, p + a.length());
}

bool get_u64(ByteCursor &c, std::uint64_t &v) {
  std::uint32_t hi = 0;
  std::uint32_t lo = 0;
  if (!c.read_u32(hi) || !c.read_u32(lo)) {
    return false;
  }
  v = (std::uint64_t{hi} << 32U) | lo;
  return true;
}
bool get_i64(ByteCursor &c, std::int64_t &v) {
  std::uint64_t u = 0;
  if (!get_u64(c, u)) {
    return false;
  }
  v = static_cast<std::int64_t>(u);
  return true;
}
bool get_address(ByteCursor &c, IpAddress &a) {
  std::uint8_t family = 0;
  Bytes raw;
  if (!c.read_u8(family) || (family != 4 && family != 6) || !c.take(family == 4 ? 4 : 16, raw)) {
    return false;
  }
  a = family == 4 ? IpAddress::v4(raw.data()) : IpAddress::v6(raw.data());
  return true;
}
bool get_count(ByteCursor &c, std::size_t min_entry, std::uint32_t &n) {
  return c.read_u32(n) && std::size_t{n} * min_entry <= c.remaining();
}

} // namespace

void encode_batch(const Batch &batch, std::vector<std::byte> &out) {
  out.clear();
  out.reserve(64 + batch.packets.size() * 40 + batch.endpoints.size() * 24);
  out.insert(out.end(), kMagic.begin(), kMagic.end());
  put_u64(out, static_cast<std::uint64_t>(batch.source_id));
  put_u64(out, batch.frames_through);
  put_u8(out, batch.source_complete ? 1 : 0);
  put_u32(out, static_cast<std::uint32_t>(batch.endpoints.size()));
  for (const std::string &name : batch.endpoints) {
    put_u32(out, static_cast<std::uint32_t>(name.size()));
    const auto *p = reinterpret_cast<const std::byte *>(name.data());
    out.insert(out.end(), p, p + name.size());
  }
  put_u32(out, static_cast<std::uint32_t>(batch.packets.size()));
  for (const PacketRecord &r : batch.packets) {
    put_u64(out, static_cast<std::uint64_t>(r.ts_us));
    put_u64(out, r.frame);
    put_address(out, r.dst);
    put_u16(out, r.dst_port);
    put_u8(out, r.protocol);
    put_u32(out, r.bytes);
    put_u32(out, r.endpoint);
    put_u8(out, static_cast<std::uint8_t>(r.direction));
    put_u8(out, static_cast<std::uint8_t>(r.source));
    put_u32(out, r.flow);
  }
  put_u32(out, static_cast<std::uint32_t>(batch.flows.size()));
  for (const FlowRecord &f : batch.flows) {
    put_u64(out, static_cast<std::uint64_t>(f.origin_source));
    put_u64(out, f.first_frame);
    put_u8(out, f.protocol);
    put_address(out, f.client);
    put_u16(out, f.client_port);
    put_address(out, f.endpoint_address);
    put_u16(out, f.endpoint_port);
    put_u32(out, f.name);
    put_u8(out, static_cast<std::uint8_t>(f.source));
    put_u64(out, f.sent_packets);
    put_u64(out, f.sent_bytes);
    put_u64(out, f.received_packets);
    put_u64(out, f.received_bytes);
    put_u64(out, static_cast<std::uint64_t>(f.first_seen));
    put_u64(out, static_cast<std::uint64_t>(f.last_seen));
    put_u32(out, static_cast<std::uint32_t>(f.pid));
    put_u32(out, static_cast<std::uint32_t>(f.program.size()));
    const auto *p = reinterpret_cast<const std::byte *>(f.program.data());
    out.insert(out.end(), p, p + f.program.size());
  }
  put_u32(out, static_cast<std::uint32_t>(batch.learnt.size()));
  for (const LearntAddress &l : batch.learnt) {
    put_address(out, l.address);
    put_u32(out, l.name);
    put_u64(out, static_cast<std::uint64_t>(l.when));
  }
  put_u32(out, static_cast<std::uint32_t>(batch.local_hosts.size()));
  for (const IpAddress &a : batch.local_hosts) {
    put_address(out, a);
  }
}

bool decode_batch(Bytes data, Batch &batch, std::string &error) {
  batch.clear();
  ByteCursor c(data);
  const auto bad = [&](const char *what) {
    error = std::string("spooled batch: ") + what + " at byte " + std::to_string(c.offset());
    batch.clear();
    return false;
  };
  Bytes magic;
  if (!c.take(kMagic.size(), magic)) {
    return bad("bad magic");
  }
  // v3: flows carry their program; v2: flows without it; v1: no flows.
  const bool v3 = std::memcmp(magic.data(), kMagic.data(), kMagic.size()) == 0;
  const bool v2 = v3 || std::memcmp(magic.data(), kMagicV2.data(), kMagicV2.size()) == 0;
  if (!v2 && std::memcmp(magic.data(), kMagicV1.data(), kMagicV1.size()) != 0) {
    return bad("bad magic");
  }
  std::uint64_t frames = 0;
  std::uint8_t complete = 0;
  if (!get_i64(c, batch.source_id) || !get_u64(c, frames) || !c.read_u8(complete) || complete > 1) {
    return bad("bad header");
  }
  batch.frames_through = frames;
  batch.source_complete = complete == 1;
  std::uint32_t n = 0;
  if (!get_count(c, 4, n)) {
    return bad("bad endpoint count");
  }
  batch.endpoints.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t len = 0;
    Bytes name;
    if (!c.read_u32(len) || len > kMaxName || !c.take(len, name)) {
      return bad("truncated endpoint name");
    }
    batch.endpoints.emplace_back(reinterpret_cast<const char *>(name.data()), name.size());
  }
  if (!get_count(c, v2 ? 38 : 32, n)) {
    return bad("bad packet count");
  }
  batch.packets.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    PacketRecord r;
    std::uint64_t ts = 0;
    if (!get_u64(c, ts) || !get_u64(c, r.frame) || !get_address(c, r.dst) ||
        !c.read_u16(r.dst_port) || !c.read_u8(r.protocol) || !c.read_u32(r.bytes) ||
        !c.read_u32(r.endpoint)) {
      return bad("truncated packet record");
    }
    r.ts_us = static_cast<TimeUs>(ts);
    if (r.endpoint >= batch.endpoints.size()) {
      return bad("packet refers to an unknown endpoint");
    }
    if (v2) {
      std::uint8_t direction = 0;
      std::uint8_t source = 0;
      if (!c.read_u8(direction) || !c.read_u8(source) || !c.read_u32(r.flow)) {
        return bad("truncated packet record");
      }
      if (direction > static_cast<std::uint8_t>(Direction::received) ||
          source >= static_cast<std::uint8_t>(NameSource::count_)) {
        return bad("packet with an unknown direction or name source");
      }
      r.direction = static_cast<Direction>(direction);
      r.source = static_cast<NameSource>(source);
    }
    batch.packets.push_back(r);
  }
  if (v2) {
    if (!get_count(c, v3 ? 92 : 84, n)) {
      return bad("bad flow count");
    }
    batch.flows.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      FlowRecord f;
      std::uint8_t source = 0;
      if (!get_i64(c, f.origin_source) || !get_u64(c, f.first_frame) || !c.read_u8(f.protocol) ||
          !get_address(c, f.client) || !c.read_u16(f.client_port) ||
          !get_address(c, f.endpoint_address) || !c.read_u16(f.endpoint_port) ||
          !c.read_u32(f.name) || !c.read_u8(source) || !get_u64(c, f.sent_packets) ||
          !get_u64(c, f.sent_bytes) || !get_u64(c, f.received_packets) ||
          !get_u64(c, f.received_bytes) || !get_i64(c, f.first_seen) || !get_i64(c, f.last_seen)) {
        return bad("truncated flow record");
      }
      if (v3) {
        std::uint32_t pid = 0;
        std::uint32_t len = 0;
        Bytes program;
        if (!c.read_u32(pid) || !c.read_u32(len) || len > kMaxName || !c.take(len, program)) {
          return bad("truncated flow record");
        }
        f.pid = static_cast<std::int32_t>(pid);
        f.program.assign(reinterpret_cast<const char *>(program.data()), program.size());
      }
      if (f.name >= batch.endpoints.size()) {
        return bad("flow refers to an unknown name");
      }
      if (source >= static_cast<std::uint8_t>(NameSource::count_)) {
        return bad("flow with an unknown name source");
      }
      f.source = static_cast<NameSource>(source);
      batch.flows.push_back(f);
    }
    for (const PacketRecord &r : batch.packets) {
      if (r.flow != kNoFlow && r.flow >= batch.flows.size()) {
        return bad("packet refers to an unknown flow");
      }
    }
  }
  if (!get_count(c, 17, n)) {
    return bad("bad learnt count");
  }
  batch.learnt.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    LearntAddress l;
    if (!get_address(c, l.address) || !c.read_u32(l.name) || !get_i64(c, l.when)) {
      return bad("truncated learnt address");
    }
    if (l.name >= batch.endpoints.size()) {
      return bad("learnt address refers to an unknown name");
    }
    batch.learnt.push_back(l);
  }
  if (!get_count(c, 5, n)) {
    return bad("bad local host count");
  }
  batch.local_hosts.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    IpAddress a;
    if (!get_address(c, a)) {
      return bad("truncated local host");
    }
    batch.local_hosts.push_back(a);
  }
  if (!c.empty()) {
    return bad("trailing bytes");
  }
  return true;
}

} // namespace ta::store::detail
