#!/usr/bin/env python3
"""The oracle for flow-naming golden tests: per-flow and per-endpoint traffic
computed from tshark's own dissection of a capture under the README's
Contract B (flow naming), independently of traffic-analyzer's code.

tshark decodes every frame (IP defragmentation off, so only a first fragment
carries ports; TCP reassembly on, so a ClientHello or an HTTP request split
over segments is dissected whole in the frame that completes it, and
`tcp.segments` lists the frames it was joined from; heuristic dissectors are
tried before port-based ones, so TLS on 8080 is TLS). This script walks the
frames in order and applies the contract:

- DNS learning and local hosts are Contract A's (the helpers are imported
  from tshark_reference.py); besides the table "latest answer to anyone" it
  keeps, per client, the latest answer whose IP destination is that client.
- Every TCP/UDP packet with neither port 53 belongs to a flow: protocol plus
  the unordered pair of (address, port) ends. A flow ends on a gap strictly
  longer than the idle timeout; a TCP flow also after FIN from both ends or a
  RST, after which only a SYN without ACK starts a new flow on the same ends
  (late ACK/FIN/RST packets stay with the ended flow).
- The flow's first packet decides the endpoint side: exactly one local end ->
  the other end; else the receiver of that packet if it is a SYN without ACK;
  else the lower port; equal ports -> the receiver. The other end is the
  client; client->endpoint packets are sent, the others received. The DNS
  candidate (this client's table first, then everyone's) is read then too.
- The name, first that exists: `sni` (a ClientHello whose reassembled PDU
  starts at the client's first payload byte: the client SYN's sequence number
  + 1, or without a SYN the first client segment carrying payload), `quic`
  (the first ClientHello the client sends in a QUIC packet whose version is
  0x00000001 or 0x6b3343cf; one without server_name decides "no quic name"),
  `http` (a request starting at the client's first payload byte on TCP: its
  first Host header, port stripped, IPv6 brackets kept), `dns`, else "" with
  source `none`. Names are lower-cased without a trailing dot; the name
  applies to every packet of the flow.
- Packets of other IP protocols (and non-first fragments) count per packet as
  in Contract A: outbound only, named by the latest answer to anyone, source
  `dns` or `none`; they are not flows and carry no port, so --ports drops them.
- --ports keeps the flows whose endpoint port is listed.
- bytes = IPv4 total length, or 40 + IPv6 payload length; times are
  microseconds since the epoch; an endpoint's first/last seen cover every
  packet counted for it, sent or received.

Limits: the reference's flow table is unbounded and never stops waiting for
a name (the end of the input ends the wait); the 16 KiB bound on a ClientHello
is not checked; an HTTP request is what tshark's HTTP dissector calls one.

Usage: flow_reference.py CAPTURE [--local-net CIDR]... [--ports 80,443]
                         [--flow-idle-timeout S]
prints {"endpoints": [...], "flows": [...]} as JSON.
"""
import argparse
import ipaddress
import json
import subprocess
import sys

from tshark_reference import answers_of, as_list, canonical, damaged, first, outer_l4, parse_ports

SOURCES = ("sni", "quic", "http", "dns", "none")
QUIC_VERSIONS = {0x00000001, 0x6B3343CF}  # v1 (RFC 9000), v2 (RFC 9369)
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


def tshark_frames(path):
    cmd = [
        "tshark", "-r", path, "-T", "json", "--no-duplicate-keys",
        "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
        "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tcp.try_heuristic_first:TRUE",
        "-o", "tcp.check_checksum:FALSE", "-o", "udp.check_checksum:FALSE",
        "-J", "frame sll sll2 ip ipv6 tcp tcp.segments udp dns tls quic http "
              "_ws.malformed _ws.short _ws.unreassembled",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return json.loads(out)


def epoch_us(text):
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000 + int((frac + "000000")[:6])


def walk_dicts(obj):
    """Every dict in a tshark JSON tree, depth first in document order."""
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from walk_dicts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk_dicts(v)


def find_value(obj, key):
    for d in walk_dicts(obj):
        if key in d:
            return first(d[key])
    return None


def client_hellos(tree):
    """server_name (or None) of every ClientHello (handshake type 1) in a tree."""
    out = []
    for d in walk_dicts(tree):
        if first(d.get("tls.handshake.type")) == "1":
            out.append(find_value(d, "tls.handshake.extensions_server_name"))
    return out


def http_request_host(http):
    """(is a request, first Host value or None) for one HTTP layer dict."""
    if first(http.get("http.request")) != "1":
        return False, None
    for line in as_list(http.get("http.request.line")):
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "host":
            return True, value.strip()
    host = http.get("http.host")
    return True, first(host) if host is not None else None


def strip_port(host):
    """The host part of a Host header value (RFC 9110 §7.2: uri-host [":" port])."""
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def clean_name(name):
    return name.lower().rstrip(".") if name else ""


class Flow:
    def __init__(self, proto, client, cport, ep, eport, ts_us, dns_name):
        self.proto, self.client, self.cport, self.ep, self.eport = proto, client, cport, ep, eport
        self.first_us = self.last_us = ts_us
        self.dns_name = dns_name
        self.sent_pkts = self.sent_bytes = self.recv_pkts = self.recv_bytes = 0
        self.ended = False
        self.fin_client = self.fin_endpoint = False
        self.first_payload_seq = None  # client's first payload byte (raw sequence number)
        self.sni = self.http = None
        self.quic_decided = False
        self.quic = None

    def name_and_source(self):
        for source, name in (("sni", self.sni), ("quic", self.quic), ("http", self.http)):
            if name:
                return clean_name(name), source
        if self.dns_name:
            return self.dns_name, "dns"
        return "", "none"


def compute(path, local_nets=(), ports=None, idle_timeout=300):
    nets = [ipaddress.ip_network(n, strict=False) for n in local_nets]
    idle_us = int(round(float(idle_timeout) * 1_000_000))
    local = set()
    table = {}  # address -> name, latest answer to anyone (Contract A)
    per_client = {}  # client address -> {address -> name}, latest answer sent to it
    active = {}  # flow key -> Flow
    flows = []
    loose = []  # (name, bytes, ts_us) of outbound non-flow packets
    frame_seq = {}  # frame number -> tcp.seq_raw, for reassembled PDUs

    def is_local(addr, outgoing_src=None):
        if addr == outgoing_src:
            return True
        if nets:
            return any(ipaddress.ip_address(addr) in n for n in nets)
        return addr in local

    for pkt in tshark_frames(path):
        layers = pkt["_source"]["layers"]
        frame = layers["frame"]
        ts_us = epoch_us(frame["frame.time_epoch"])
        number = int(frame["frame.number"])
        ip_name, l4, _nxt, rest = outer_l4(frame.get("frame.protocols", ""))
        if ip_name is None:
            continue
        ipl = first(layers.get(ip_name))
        if not isinstance(ipl, dict):
            continue
        if ip_name == "ip":
            src, dst = ipl.get("ip.src"), ipl.get("ip.dst")
            length = int(ipl.get("ip.len", 0))
        else:
            src, dst = ipl.get("ipv6.src"), ipl.get("ipv6.dst")
            length = 40 + int(ipl.get("ipv6.plen", 0))
        if src is None or dst is None:
            continue
        src, dst = canonical(src), canonical(dst)
        sport = dport = None
        l4l = None
        if l4 in ("tcp", "udp") and l4 in layers:
            l4l = first(layers[l4])
            if f"{l4}.srcport" in l4l and f"{l4}.dstport" in l4l:  # a cut header has none
                sport = int(l4l[f"{l4}.srcport"])
                dport = int(l4l[f"{l4}.dstport"])

        if sport == 53 or dport == 53:
            if sport == 53 and "dns" in rest and "dns" in layers:
                for dns in as_list(layers["dns"]):
                    flags = dns.get("dns.flags_tree", {})
                    if flags.get("dns.flags.response") != "1":
                        continue
                    if not nets:
                        local.add(dst)
                    if flags.get("dns.flags.rcode") != "0" or damaged(layers):
                        continue
                    qname, addrs = answers_of(dns)
                    if not qname or qname == "<Root>":
                        continue
                    qname = clean_name(qname)
                    mine = per_client.setdefault(dst, {})
                    for a in addrs:
                        table[a] = qname
                        mine[a] = qname
            continue

        sll = layers.get("sll") or layers.get("sll2") or {}
        outgoing = sll.get("sll.pkttype") == "4" or sll.get("sll2.pkttype") == "4"
        outgoing_src = src if outgoing else None

        if sport is None:  # other IP protocols, non-first fragments: Contract A
            if not is_local(src, outgoing_src) or ports is not None:
                continue
            loose.append((table.get(dst, ""), length, ts_us))
            continue

        proto = 6 if l4 == "tcp" else 17
        flags = int(l4l.get("tcp.flags", "0"), 16) if proto == 6 else 0
        syn_only = (flags & TCP_SYN) and not (flags & TCP_ACK)
        key = (proto,) + tuple(sorted([(src, sport), (dst, dport)]))
        f = active.get(key)
        if f is not None and ts_us - f.last_us > idle_us:
            f = None
        if f is not None and f.ended and syn_only:
            f = None
        if f is None:
            src_local, dst_local = is_local(src, outgoing_src), is_local(dst, outgoing_src)
            if src_local != dst_local:
                to_endpoint = src_local
            elif syn_only:
                to_endpoint = True
            elif sport != dport:
                to_endpoint = dport < sport
            else:
                to_endpoint = True
            client, cport, ep, eport = (src, sport, dst, dport) if to_endpoint else (dst, dport, src, sport)
            dns_name = per_client.get(client, {}).get(ep) or table.get(ep, "")
            f = Flow(proto, client, cport, ep, eport, ts_us, dns_name)
            active[key] = f
            flows.append(f)

        from_client = src == f.client and sport == f.cport
        f.last_us = ts_us
        if from_client:
            f.sent_pkts += 1
            f.sent_bytes += length
        else:
            f.recv_pkts += 1
            f.recv_bytes += length

        if proto == 6:
            seq = int(l4l.get("tcp.seq_raw", "0"))
            frame_seq[number] = seq
            if flags & TCP_RST:
                f.ended = True
            if flags & TCP_FIN:
                if from_client:
                    f.fin_client = True
                else:
                    f.fin_endpoint = True
                if f.fin_client and f.fin_endpoint:
                    f.ended = True
            if from_client:
                if syn_only and f.first_payload_seq is None:
                    f.first_payload_seq = (seq + 1) % (1 << 32)
                elif int(l4l.get("tcp.len", "0")) > 0 and f.first_payload_seq is None:
                    f.first_payload_seq = seq
                # Where the PDU dissected in this frame began: the first
                # segment it was joined from, or this frame itself.
                segs = layers.get("tcp.segments")
                start = number
                if isinstance(segs, dict) and segs.get("tcp.segment") is not None:
                    start = int(first(segs["tcp.segment"]))
                at_first_payload = frame_seq.get(start) == f.first_payload_seq
                if at_first_payload and f.sni is None and f.http is None and "tls" in layers:
                    hellos = client_hellos(layers["tls"])
                    if hellos and hellos[0]:
                        f.sni = hellos[0]
                if at_first_payload and f.sni is None and f.http is None and "http" in layers:
                    is_req, host = http_request_host(first(layers["http"]))
                    if is_req and host:
                        f.http = strip_port(host)
        elif from_client and not f.quic_decided and "quic" in layers:
            for q in as_list(layers["quic"]):
                version = first(q.get("quic.version"))
                if version is None or int(version, 16) not in QUIC_VERSIONS:
                    continue
                hellos = client_hellos(q)
                if hellos:
                    f.quic_decided = True
                    f.quic = hellos[0]
                    break

    return summarize(flows, loose, ports)


def summarize(flows, loose, ports):
    endpoints = {}

    def entry(name, ts_us):
        e = endpoints.get(name)
        if e is None:
            e = endpoints[name] = {"endpoint": name, "packets": 0, "bytes": 0,
                                   "received_packets": 0, "received_bytes": 0,
                                   "first_seen": ts_us, "last_seen": ts_us,
                                   "names": {s: 0 for s in SOURCES}}
        return e

    out_flows = []
    for f in flows:
        if ports is not None and f.eport not in ports:
            continue
        name, source = f.name_and_source()
        e = entry(name, f.first_us)
        e["packets"] += f.sent_pkts
        e["bytes"] += f.sent_bytes
        e["received_packets"] += f.recv_pkts
        e["received_bytes"] += f.recv_bytes
        e["first_seen"] = min(e["first_seen"], f.first_us)
        e["last_seen"] = max(e["last_seen"], f.last_us)
        e["names"][source] += f.sent_pkts + f.recv_pkts
        out_flows.append({"client": f.client, "client_port": f.cport,
                          "endpoint_address": f.ep, "endpoint_port": f.eport,
                          "protocol": f.proto, "name": name, "source": source,
                          "sent_packets": f.sent_pkts, "sent_bytes": f.sent_bytes,
                          "received_packets": f.recv_pkts, "received_bytes": f.recv_bytes,
                          "first_seen": f.first_us, "last_seen": f.last_us})
    for name, length, ts_us in loose:
        e = entry(name, ts_us)
        e["packets"] += 1
        e["bytes"] += length
        e["first_seen"] = min(e["first_seen"], ts_us)
        e["last_seen"] = max(e["last_seen"], ts_us)
        e["names"]["dns" if name else "none"] += 1
    out_flows.sort(key=lambda r: (r["first_seen"], r["protocol"], r["client"], r["client_port"],
                                  r["endpoint_address"], r["endpoint_port"]))
    return {"endpoints": [endpoints[n] for n in sorted(endpoints)], "flows": out_flows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--local-net", action="append", default=[])
    ap.add_argument("--ports")
    ap.add_argument("--flow-idle-timeout", type=float, default=300)
    a = ap.parse_args()
    ports = parse_ports(a.ports) if a.ports else None
    json.dump(compute(a.capture, a.local_net, ports, a.flow_idle_timeout), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
