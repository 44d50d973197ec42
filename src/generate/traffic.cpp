// The flows of the synthetic capture: which flows start, and TCP (TLS with a
// ClientHello, or HTTP/1.1) with its inbound replies; QUIC, NTP and ICMP echo
// are in datagrams.cpp. At most kSlots flows at a time. Each flow is named
// under flow naming at its first packet (name_flow) from what the generator
// is about to write.
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <string_view>

#include "impl.hpp"
#include "tls_hello.hpp"

namespace ta::generate {
namespace {

using detail::FlowKind;
using detail::kNone;
using detail::Special;
using detail::TcpFields;

constexpr detail::Mac kGatewayMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr std::uint64_t kMidFlowFrames = 4;

std::size_t decimal_digits(std::uint32_t v) {
  std::size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

std::size_t put_text(std::uint8_t *p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return s.size();
}

} // namespace

void Generator::Impl::build_specials() {
  // Public resolvers, never named by DNS; pool[0] stands in for endpoints
  // when there are none.
  const std::uint32_t quad9 = add_address(detail::make_v4(0x09090909));
  const std::uint32_t google = add_address(detail::make_v4(0x08080808));
  const std::uint32_t cloudflare = add_address(detail::make_v4(0x01010101));
  const std::uint32_t h_test = add_address(detail::make_v4(0xCB007163)); // 203.0.113.99
  const std::uint32_t ep0 = eps.empty() ? pool.front() : eps[0].v4.front();
  const std::uint32_t ep3 = eps.size() > 3 && !eps[3].v4.empty() ? eps[3].v4.front() : ep0;
  const auto name = [&](std::uint32_t id, std::string_view fallback) {
    const std::int32_t owner = addr[id].owner;
    return flow_truth.intern(
        owner >= 0 ? std::string_view(eps[static_cast<std::size_t>(owner)].name) : fallback);
  };
  specials.push_back({FlowKind::tcp, 8443, ep3, name(ep3, "tls.alt-port.test"), false, 0, 0});
  specials.push_back({FlowKind::tcp, 853, quad9, flow_truth.intern("dns.quad9.net"), false, 0, 0});
  specials.push_back({FlowKind::tcp, 443, google, flow_truth.intern("dns.google"), false, 0, 0});
  specials.push_back(
      {FlowKind::tcp, 443, cloudflare, flow_truth.intern("cloudflare-dns.com"), false, 0, 0});
  specials.push_back({FlowKind::tcp, 8080, h_test, flow_truth.intern("h.test"), true, 8080, 0});
  specials.push_back(
      {FlowKind::quic, 443, ep0, name(ep0, "quic.v1.test"), false, 0, detail::kQuicV1});
  specials.push_back(
      {FlowKind::quic, 443, ep0, name(ep0, "quic.v2.test"), false, 0, detail::kQuicV2});
  // A server_name unlike what DNS taught for the address.
  specials.push_back(
      {FlowKind::tcp, 443, ep0, flow_truth.intern("sni-not-dns.example.test"), false, 0, 0});
}

void Generator::Impl::start_midflow() {
  // Two flows already running when the capture starts: a TLS connection
  // (its first captured packet is the server's data) and a QUIC one in short
  // headers. No local host is known at their first packet, so the endpoint is
  // the end with the lower port; no DNS answer exists yet, so they stay
  // unnamed for their whole life even once DNS names the address.
  midflow_frames = std::min<std::uint64_t>(kMidFlowFrames, opt.packets);
  const std::uint32_t a = eps.empty() ? pool.front() : eps[0].v4.front();
  const std::uint32_t b = eps.empty() || eps[0].v4.size() < 2 ? a : eps[0].v4[1];
  Flow &t = flows[0];
  t.kind = FlowKind::tcp;
  t.dst = a;
  t.dport = 443;
  choose_sport(t);
  t.cseq = static_cast<std::uint32_t>(rng.next());
  t.sseq = static_cast<std::uint32_t>(rng.next());
  t.rounds = 3;
  t.seg_count = 1;
  t.segments = 1;
  t.seg[0] = 180;
  t.state = 4; // a response segment
  Flow &q = flows[1];
  q.kind = FlowKind::quic;
  q.dst = b;
  q.dport = 443;
  choose_sport(q);
  q.rounds = 12;
  q.ident = static_cast<std::uint16_t>(rng.next());
  q.state = 1; // short headers, either way
}

void Generator::Impl::emit_midflow() {
  Flow &f = flows[produced % 2];
  if (f.kind == FlowKind::tcp) {
    step_tcp(f);
  } else {
    step_quic(f);
  }
}

std::uint32_t Generator::Impl::pick_destination() {
  const bool local6 = clients[0].local6;
  if (resolved_prefix > 0 && !rng.percent(6)) {
    // Skewed towards low indices: endpoint 0 is the most popular.
    const std::uint32_t e = std::min(rng.below(resolved_prefix), rng.below(resolved_prefix));
    const detail::Endpoint &ep = eps[e];
    std::uint32_t n = 0;
    for (const std::uint32_t id : ep.v4) {
      n += addr[id].announced ? 1 : 0;
    }
    if (local6) {
      for (const std::uint32_t id : ep.v6) {
        n += addr[id].announced ? 1 : 0;
      }
    }
    if (n > 0) {
      std::uint32_t k = rng.below(n);
      for (int fam = 0; fam < 2; ++fam) {
        for (const std::uint32_t id : fam == 0 ? ep.v4 : ep.v6) {
          if (addr[id].announced && (fam == 0 || local6) && k-- == 0) {
            return id;
          }
        }
      }
    }
  }
  // IPv6 destinations only once the client's IPv6 address is local.
  for (std::size_t tries = 0; tries < pool.size(); ++tries) {
    const std::uint32_t id = pool[pool_next++ % pool.size()];
    if (addr[id].ip.family == 4 || local6) {
      return id;
    }
  }
  return pool.front();
}

std::uint32_t Generator::Impl::pick_destination_second() {
  // Client 1 talks to the address it was told is endpoint 1 (client 0 was
  // told endpoint 0), and to endpoint 1's own addresses, one of which it
  // never asked for (flow naming falls back to the answer to anyone).
  const std::uint32_t r = rng.below(10);
  if (r < 4) {
    return alias_addr;
  }
  if (r < 7 || !clients[1].local6 || eps[1].v6.empty()) {
    return eps[1].v4.front();
  }
  return eps[1].v6.front();
}

void Generator::Impl::choose_sport(Flow &f) {
  // A port no live flow uses, so no two flows share a 5-tuple; a UDP flow
  // also avoids the 5-tuples of recent UDP flows (idle timeout).
  const bool udp = f.kind == FlowKind::quic || f.kind == FlowKind::ntp;
  for (int tries = 0;; ++tries) {
    f.sport = ephemeral_port(rng);
    const bool live = std::any_of(flows.begin(), flows.end(), [&](const Flow &o) {
      return &o != &f && o.kind != FlowKind::none && o.sport == f.sport;
    });
    if (live) {
      continue;
    }
    if (!udp) {
      return;
    }
    const std::uint64_t key =
        (std::uint64_t{f.dst} << 32U) | (std::uint64_t{f.sport} << 16U) | std::uint64_t{f.dport};
    const auto [it, fresh] = udp_used.try_emplace(key, now);
    if (fresh || now - it->second > detail::kUdpReuseUs || tries > 1000) {
      it->second = now;
      return;
    }
  }
}

std::string_view Generator::Impl::view_name(std::uint8_t client, std::uint32_t dst) const {
  // The name the client would put in SNI or Host: what its own DNS answers
  // said, else the address's current owner; "" for never-resolved addresses.
  const detail::Address &a = addr[dst];
  const std::int32_t e = client != 0 && a.taught_to[client] >= 0 ? a.taught_to[client] : a.owner;
  return e >= 0 ? std::string_view(eps[static_cast<std::size_t>(e)].name) : std::string_view();
}

void Generator::Impl::name_flow(Flow &f) {
  // Flow naming, at the flow's first packet: the name the client sends (sni,
  // quic, http) when it sends one, else the answer sent to this client for
  // the endpoint's address, else the answer to anyone (both tables as of
  // this packet). A QUIC Initial is the flow's first packet; a TCP flow waits
  // for its ClientHello or request.
  const detail::Address &a = addr[f.dst];
  const bool mine =
      a.taught_to[f.client] >= 0 && (opt.dns_table_size == 0 || a.client_learnt_at[f.client] != 0);
  const std::int32_t e = mine ? a.taught_to[f.client] : a.taught;
  f.fallback = endpoint_flow_id(e);
  f.fallback_source = e >= 0 ? NameSource::dns : NameSource::none;
  if (f.wire_name != kNone) {
    f.name = f.wire_name;
    f.source = f.kind == FlowKind::quic ? NameSource::quic
               : f.http                 ? NameSource::http
                                        : NameSource::sni;
    f.pending = f.kind == FlowKind::tcp;
    return;
  }
  f.name = f.fallback;
  f.source = f.fallback_source;
}

void Generator::Impl::start_flow(Flow &f) {
  f = Flow{};
  f.client = clients[1].local4 && eps.size() >= 2 && rng.percent(15) ? 1 : 0;
  f.dst = f.client == 0 ? pick_destination() : pick_destination_second();
  const std::uint32_t r = rng.below(100);
  if (r < 68) {
    f.kind = FlowKind::tcp;
    f.dport = rng.percent(80) ? 443 : 80;
    f.rounds = static_cast<std::uint8_t>(rng.between(1, 6));
    f.cseq = static_cast<std::uint32_t>(rng.next());
    f.sseq = static_cast<std::uint32_t>(rng.next());
    f.ident = static_cast<std::uint16_t>(rng.next());
    f.http = f.dport == 80;
    f.hello = !f.http;
  } else if (r < 88) {
    f.kind = FlowKind::quic;
    f.dport = 443;
    f.rounds = static_cast<std::uint8_t>(rng.between(4, 16));
    f.ident = static_cast<std::uint16_t>(rng.next());
    const std::uint32_t q = rng.below(100);
    f.quic_version = q < 40 ? detail::kQuicV1 : (q < 50 ? detail::kQuicV2 : 0);
  } else if (r < 95) {
    f.kind = FlowKind::ntp;
    f.dport = 123;
    f.rounds = 2;
  } else {
    f.kind = FlowKind::echo;
    f.rounds = static_cast<std::uint8_t>(2 * rng.between(1, 4));
    f.ident = static_cast<std::uint16_t>(rng.next());
    f.seq16 = 1;
  }
  choose_sport(f);
  if (f.kind == FlowKind::echo) {
    return; // named per packet
  }
  const std::string_view view = view_name(f.client, f.dst);
  const std::uint32_t s = rng.below(100);
  if (f.http) {
    // Host: the name, now and then another one; an IP literal (IPv6 in
    // brackets) for never-resolved addresses.
    if (view.empty()) {
      const std::string &text = addr[f.dst].text;
      f.wire_name = flow_truth.intern(addr[f.dst].ip.family == 6 ? "[" + text + "]" : text);
    } else {
      f.wire_name = flow_truth.intern(s < 8 ? "alt." + std::string(view) : std::string(view));
    }
  } else if (f.hello || f.quic_version != 0) {
    // server_name: the name, now and then another one, sometimes none (and
    // never for an address no one named).
    if (!view.empty() && s >= 7) {
      f.wire_name = flow_truth.intern(s < 15 ? "alt." + std::string(view) : std::string(view));
    }
    f.split = f.hello && (!split_done || rng.percent(3));
    split_done = split_done || f.split;
  }
  if (f.quic_version != 0) {
    f.client_cid = rng.next();
  }
  name_flow(f);
}

void Generator::Impl::start_special(Flow &f) {
  const Special &s = specials[special_next++];
  f = Flow{};
  f.kind = s.kind;
  f.dst = s.dst;
  f.dport = s.dport;
  f.wire_name = s.wire_name;
  f.http = s.http;
  f.host_port = s.host_port;
  f.quic_version = s.quic_version;
  f.ident = static_cast<std::uint16_t>(rng.next());
  if (f.kind == FlowKind::tcp) {
    f.hello = !f.http;
    f.rounds = static_cast<std::uint8_t>(rng.between(1, 3));
    f.cseq = static_cast<std::uint32_t>(rng.next());
    f.sseq = static_cast<std::uint32_t>(rng.next());
  } else {
    f.rounds = static_cast<std::uint8_t>(rng.between(5, 10));
    f.client_cid = rng.next();
  }
  choose_sport(f);
  name_flow(f);
}

void Generator::Impl::emit_traffic() {
  Flow &f = flows[rng.below(detail::kSlots)];
  if (f.kind == FlowKind::none) {
    if (special_next < specials.size() && preamble_done() &&
        produced >= opt.packets * (5 + 4 * special_next) / 100) {
      start_special(f);
    } else {
      start_flow(f);
    }
  }
  switch (f.kind) {
  case FlowKind::tcp:
    step_tcp(f);
    break;
  case FlowKind::quic:
    step_quic(f);
    break;
  case FlowKind::ntp:
    step_ntp(f);
    break;
  case FlowKind::echo:
  case FlowKind::none:
    step_echo(f);
    break;
  }
}

std::uint8_t *Generator::Impl::begin(const Flow &f, bool outbound, std::uint8_t proto,
                                     std::size_t l4_header) {
  const IpAddress &remote = addr[f.dst].ip;
  const detail::Client &c = clients[f.client];
  const IpAddress &client = remote.family == 6 ? c.v6 : c.v4;
  if (outbound) {
    return w.start(c.mac, kGatewayMac, 0, client, remote, 64, proto, l4_header);
  }
  return w.start(kGatewayMac, c.mac, 0, remote, client, 52, proto, l4_header);
}

void Generator::Impl::fill(std::uint8_t *p, std::size_t n) {
  std::size_t off = rng.below(static_cast<std::uint32_t>(noise.size() / 2));
  while (n > 0) {
    const std::size_t k = std::min(n, noise.size() - off);
    std::memcpy(p, noise.data() + off, k);
    p += k;
    n -= k;
    off = 0;
  }
}

std::uint16_t Generator::Impl::draw_request_size() {
  // Mostly small messages: the mix averages ~80-byte frames (a 1M-packet
  // capture is ~95 MB), with the odd large upload.
  const std::uint32_t r = rng.below(100);
  if (r < 90) {
    return static_cast<std::uint16_t>(rng.between(10, 40));
  }
  if (r < 99) {
    return static_cast<std::uint16_t>(rng.between(41, 200));
  }
  return static_cast<std::uint16_t>(rng.between(301, 1000));
}

std::uint16_t Generator::Impl::draw_segment_size(bool six) {
  const std::uint32_t r = rng.below(1000);
  if (r < 5) {
    return six ? 1440 : 1460; // a full segment: a 1514-byte frame
  }
  if (r < 855) {
    return static_cast<std::uint16_t>(rng.between(10, 50));
  }
  return static_cast<std::uint16_t>(rng.between(51, 200));
}

std::size_t Generator::Impl::client_hello(const Flow &f, bool quic_hello) {
  // Into `scratch`: over TCP a whole handshake record, in QUIC the bare
  // message. Random, session id and key share come from the noise table at
  // a per-flow offset, so writing it twice gives the same bytes.
  std::array<std::uint8_t, 8> scid{};
  detail::put_be64(scid.data(), f.client_cid);
  detail::ClientHelloShape shape;
  if (f.wire_name != kNone) {
    shape.server_name = flow_truth.name(f.wire_name);
  }
  shape.random = std::span<const std::uint8_t>(noise.data() + f.ident % 2048, 32);
  shape.quic = quic_hello;
  shape.quic_scid = scid;
  const std::size_t header = quic_hello ? 0 : 5;
  const std::size_t n =
      detail::write_client_hello(scratch.data() + header, scratch.size() - header, shape);
  if (!quic_hello) {
    detail::put_tls_record_header(scratch.data(), detail::kTlsHandshake, n);
  }
  return header + n;
}

void Generator::Impl::tcp_request(Flow &f, bool six) {
  // A request of this round: the ClientHello (whole, or its first part), an
  // HTTP/1.1 GET with its Host header, or a TLS application data record.
  // Then the server's answer is drawn.
  TcpFields out{f.sport, f.dport, f.cseq, f.sseq, detail::kTcpPsh | detail::kTcpAck, 502, {}};
  std::uint8_t *p = begin(f, true, detail::kProtoTcp, 20);
  std::size_t n = 0;
  if (f.hello) {
    const std::size_t total = client_hello(f, false);
    n = f.split && f.state == 3 ? total / 3 : total;
    const std::size_t from = f.state == 3 ? 0 : total / 3;
    n -= from;
    std::memcpy(p, scratch.data() + from, n);
  } else if (f.http) {
    n = draw_request_size();
    std::size_t k = put_text(p, "GET /");
    for (std::size_t i = 0; i < n % 48 + 1; ++i) {
      p[k++] = static_cast<std::uint8_t>("abcdefghijklmnopqrstuvwxyz0123456789"[noise[i + n] % 36]);
    }
    k += put_text(p + k, " HTTP/1.1\r\nHost: ");
    k += put_text(p + k, f.wire_name != kNone ? std::string_view(flow_truth.name(f.wire_name))
                                              : std::string_view(addr[f.dst].text));
    if (f.host_port != 0) {
      k += put_text(p + k, ":" + std::to_string(f.host_port));
    }
    k += put_text(p + k, "\r\nAccept: */*\r\n\r\n");
    n = k;
  } else {
    n = draw_request_size();
    detail::put_tls_record_header(p, detail::kTlsApplicationData, n - 5);
    fill(p + 5, n - 5);
  }
  w.finish_tcp(out, n);
  f.cseq += static_cast<std::uint32_t>(n);
  count(f.client, f.dst, false);
  if (f.pending && !(f.hello && f.split && f.state == 3)) {
    // The name is in the bytes now: what was held back is the name's.
    flow_truth.add(f.name, f.source, f.held);
    f.pending = false;
  }
  count_flow(f, true);
  if (f.hello && f.split && f.state == 3) {
    f.state = 10; // the rest of the ClientHello next
    return;
  }
  f.hello = false;
  const std::uint32_t r = rng.below(100);
  f.seg_count = static_cast<std::uint8_t>(r < 70 ? 1 : (r < 92 ? 2 : 3));
  f.segments = f.seg_count;
  for (std::size_t i = 0; i < f.seg_count; ++i) {
    f.seg[i] = draw_segment_size(six);
  }
  if (f.http) {
    f.seg[0] = std::max<std::uint16_t>(f.seg[0], 64); // room for the status line
  }
  f.state = rng.percent(50) ? 9 : 4;
}

void Generator::Impl::step_tcp(Flow &f) {
  const bool six = addr[f.dst].ip.family == 6;
  // SYN / SYN-ACK options: MSS, SACK permitted, timestamps, NOP, window scale 7.
  std::array<std::uint8_t, 20> syn_options{2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0,
                                           0, 0, 0,    0,    0, 0, 1, 3,  3, 7};
  if (six) {
    syn_options[2] = 0x05;
    syn_options[3] = 0xA0; // 1440
  }
  detail::put32(syn_options.data() + 8, static_cast<std::uint32_t>(now / 1000));
  TcpFields out{f.sport, f.dport, f.cseq, f.sseq, detail::kTcpAck, 502, {}};
  TcpFields in{f.dport, f.sport, f.sseq, f.cseq, detail::kTcpAck, 501, {}};
  bool outbound = true;
  switch (f.state) {
  case 0: // SYN
    (void)begin(f, true, detail::kProtoTcp, 20 + syn_options.size());
    out.ack = 0;
    out.flags = detail::kTcpSyn;
    out.window = 64240;
    out.options = syn_options;
    w.finish_tcp(out, 0);
    ++f.cseq;
    f.state = 1;
    break;
  case 1: // SYN-ACK
    (void)begin(f, false, detail::kProtoTcp, 20 + syn_options.size());
    detail::put32(syn_options.data() + 12, static_cast<std::uint32_t>(now / 1000)); // TSecr
    in.flags = detail::kTcpSyn | detail::kTcpAck;
    in.window = 65160;
    in.options = syn_options;
    w.finish_tcp(in, 0);
    ++f.sseq;
    f.state = 2;
    outbound = false;
    break;
  case 2: // ACK
    (void)begin(f, true, detail::kProtoTcp, 20);
    w.finish_tcp(out, 0);
    f.state = 3;
    break;
  case 3:  // request
  case 10: // the second part of a split ClientHello
    tcp_request(f, six);
    return;
  case 9: // the server acknowledges the request before answering
    (void)begin(f, false, detail::kProtoTcp, 20);
    w.finish_tcp(in, 0);
    f.state = 4;
    outbound = false;
    break;
  case 4: { // response segment
    std::uint8_t *p = begin(f, false, detail::kProtoTcp, 20);
    const std::size_t index = f.seg_count - f.segments;
    const std::size_t n = f.seg[index];
    if (f.http && index == 0) {
      // HTTP/1.1 status line, Content-Length = the rest of this round.
      std::size_t total = 0;
      for (std::size_t i = 0; i < f.seg_count; ++i) {
        total += f.seg[i];
      }
      const std::size_t fixed =
          std::string_view("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n").size();
      std::uint32_t body = static_cast<std::uint32_t>(total - fixed - 1);
      for (std::size_t d = 1; d <= 5; ++d) {
        const auto candidate = static_cast<std::uint32_t>(total - fixed - d);
        if (decimal_digits(candidate) == d) {
          body = candidate;
          break;
        }
      }
      std::size_t k = put_text(p, "HTTP/1.1 200 OK\r\nContent-Length: ");
      k += put_text(p + k, std::to_string(body));
      k += put_text(p + k, "\r\n\r\n");
      fill(p + k, n - k);
    } else if (f.http) {
      fill(p, n);
    } else {
      detail::put_tls_record_header(p, detail::kTlsApplicationData, n - 5);
      fill(p + 5, n - 5);
    }
    in.flags = detail::kTcpPsh | detail::kTcpAck;
    w.finish_tcp(in, n);
    f.sseq += static_cast<std::uint32_t>(n);
    --f.segments;
    f.state = 5; // every segment is acknowledged
    outbound = false;
    break;
  }
  case 5: // ACK
    (void)begin(f, true, detail::kProtoTcp, 20);
    w.finish_tcp(out, 0);
    if (f.segments > 0) {
      f.state = 4;
    } else {
      f.state = --f.rounds > 0 ? 3 : 6;
    }
    break;
  case 6: // FIN
    (void)begin(f, true, detail::kProtoTcp, 20);
    out.flags = detail::kTcpFin | detail::kTcpAck;
    w.finish_tcp(out, 0);
    ++f.cseq;
    f.state = 7;
    break;
  case 7: // FIN-ACK
    (void)begin(f, false, detail::kProtoTcp, 20);
    in.flags = detail::kTcpFin | detail::kTcpAck;
    w.finish_tcp(in, 0);
    ++f.sseq;
    f.state = 8;
    outbound = false;
    break;
  default: // 8: the last ACK
    (void)begin(f, true, detail::kProtoTcp, 20);
    w.finish_tcp(out, 0);
    f.kind = FlowKind::none;
    break;
  }
  if (outbound) {
    count(f.client, f.dst, false);
  }
  count_flow(f, outbound);
}

} // namespace ta::generate
