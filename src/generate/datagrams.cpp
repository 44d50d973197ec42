// The datagram flows of the synthetic capture: QUIC (a protected v1/v2
// Initial, the server's long-header packets, then short headers), NTP and
// ICMP echo, each with its inbound replies.
#include <algorithm>
#include <array>
#include <cstring>

#include "impl.hpp"

namespace ta::generate {

using detail::FlowKind;

void Generator::Impl::step_quic(Flow &f) {
  // A flow with an Initial: the client's protected Initial (state 0), two
  // server long-header Handshake packets (states 2-3; random contents, no
  // one can read them), then short headers. Short-header packets (first byte
  // 01xxxxxx, then a DCID that starts 00 <flow id>) go either way; a flow
  // without an Initial starts with an outbound one. Wireshark does not claim
  // short headers of an unseen connection; the zero byte keeps its UDP
  // heuristics (COTP/CLTP, GOOSE, ...) from claiming noise.
  bool outbound = true;
  std::size_t n = 0;
  if (f.state == 0 && f.quic_version != 0) {
    std::uint8_t *p = begin(f, true, detail::kProtoUdp, 8);
    const std::size_t hello = client_hello(f, true);
    std::array<std::uint8_t, 8> dcid{};
    std::array<std::uint8_t, 8> scid{};
    detail::put_be64(dcid.data(), rng.next());
    detail::put_be64(scid.data(), f.client_cid);
    n = quic.write(p, w.payload_room(), f.quic_version, dcid, scid, 0, 0,
                   std::span<const std::uint8_t>(scratch.data(), hello));
    f.state = 2;
  } else if (f.state == 2 || f.state == 3) {
    // RFC 9000 §17.2.4 Handshake: type 10 in v1, 11 in v2 (RFC 9369 §3.2).
    std::uint8_t *p = begin(f, false, detail::kProtoUdp, 8);
    n = rng.between(120, 400);
    const std::uint8_t type = f.quic_version == detail::kQuicV2 ? 3 : 2;
    p[0] = static_cast<std::uint8_t>(0xC1U | (type << 4U));
    detail::put32(p + 1, f.quic_version);
    p[5] = 8;
    detail::put_be64(p + 6, f.client_cid);
    p[14] = 8;
    detail::put_be64(p + 15, ~f.client_cid); // the server's connection id
    const std::size_t length = n - 25;
    detail::put16(p + 23, static_cast<std::uint16_t>(0x4000U | length));
    fill(p + 25, length);
    f.state = f.state == 2 ? 3 : 1;
    outbound = false;
  } else {
    outbound = f.state == 0 || rng.percent(50);
    f.state = 1;
    std::uint8_t *p = begin(f, outbound, detail::kProtoUdp, 8);
    const std::uint32_t r = rng.below(100);
    n = r < 85 ? rng.between(20, 36) : (r < 99 ? rng.between(37, 140) : 1200);
    if (f.quic_version != 0) {
      // A connection a dissector knows from its Initial: the DCID is the
      // peer's 8-byte connection id, and the packet is long enough for the
      // header protection sample (1 + 8 + 4 + 16 bytes) plus the AEAD tag.
      n = std::max<std::size_t>(n, 45);
      fill(p, n);
      p[0] = static_cast<std::uint8_t>(0x40U | (p[0] & 0x3FU));
      detail::put_be64(p + 1, outbound ? ~f.client_cid : f.client_cid);
    } else {
      fill(p, n);
      p[0] = static_cast<std::uint8_t>(0x40U | (p[0] & 0x3FU));
      p[1] = 0;
      detail::put16(p + 2, f.ident);
    }
  }
  if (outbound) {
    w.finish_udp(f.sport, f.dport, n);
    count(f.client, f.dst, false);
  } else {
    w.finish_udp(f.dport, f.sport, n);
  }
  count_flow(f, outbound);
  if (--f.rounds == 0) {
    f.kind = FlowKind::none;
  }
}

void Generator::Impl::step_ntp(Flow &f) {
  // NTPv4 (RFC 5905): LI/VN/mode, stratum, poll, precision, root delay,
  // root dispersion, reference id, then four 64-bit timestamps (seconds since
  // 1900, fraction); client mode 3, server mode 4.
  const bool outbound = f.state == 0;
  std::uint8_t *p = begin(f, outbound, detail::kProtoUdp, 8);
  std::memset(p, 0, 48);
  const auto secs = static_cast<std::uint32_t>(now / 1'000'000 + 2'208'988'800LL);
  const auto frac = static_cast<std::uint32_t>(((now % 1'000'000) << 32U) / 1'000'000);
  p[0] = outbound ? 0x23 : 0x24;
  p[2] = 6;
  p[3] = 0xEC; // 2^-20 s
  if (outbound) {
    detail::put32(p + 40, secs); // transmit
    detail::put32(p + 44, frac);
    w.finish_udp(f.sport, f.dport, 48);
    count(f.client, f.dst, false);
    count_flow(f, true);
    f.state = 1;
    return;
  }
  p[1] = 2; // stratum
  detail::put32(p + 4, 0x00000100);
  detail::put32(p + 8, 0x00000200);
  std::memcpy(p + 12, addr[f.dst].ip.family == 4 ? addr[f.dst].ip.bytes.data() : noise.data(), 4);
  for (std::size_t at : {16U, 24U, 32U, 40U}) {
    detail::put32(p + at, secs);
    detail::put32(p + at + 4, frac);
  }
  w.finish_udp(f.dport, f.sport, 48);
  count_flow(f, false);
  f.kind = FlowKind::none;
}

void Generator::Impl::step_echo(Flow &f) {
  // Echo request then reply, 56 data bytes as ping(8) sends: 16 bytes of
  // timestamp, then 0x10, 0x11, ...
  const bool six = addr[f.dst].ip.family == 6;
  const bool outbound = f.state == 0;
  std::uint8_t *p = begin(f, outbound, six ? detail::kProtoIcmp6 : detail::kProtoIcmp, 8);
  std::memset(p, 0, 16);
  detail::put32(p, static_cast<std::uint32_t>(now / 1'000'000));
  detail::put32(p + 8, static_cast<std::uint32_t>(now % 1'000'000));
  for (std::size_t i = 16; i < 56; ++i) {
    p[i] = static_cast<std::uint8_t>(i);
  }
  const std::uint32_t rest = (std::uint32_t{f.ident} << 16U) | f.seq16;
  if (outbound) {
    w.finish_icmp(six ? 128 : 8, 0, rest, 56);
    count(f.client, f.dst, false);
    count_icmp(f.client, f.dst);
    f.state = 1;
  } else {
    w.finish_icmp(six ? 129 : 0, 0, rest, 56);
    f.state = 0;
    ++f.seq16;
  }
  f.rounds = static_cast<std::uint8_t>(f.rounds - 1);
  if (f.rounds == 0) {
    f.kind = FlowKind::none;
  }
}

} // namespace ta::generate
