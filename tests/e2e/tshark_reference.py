#!/usr/bin/env python3
"""The oracle for golden tests: per-endpoint traffic computed from tshark's
own dissection of a capture, under the attribution contract (README, "What is counted"),
independently of traffic-analyzer's code.

tshark decodes every frame (IP defragmentation off, so only a first fragment
carries ports; TCP reassembly on, so DNS over TCP is whole); this script
walks the frames in order and applies the contract:

- A DNS layer counts only when it is the frame's own (frame.protocols shows
  ip|ipv6 -> udp|tcp -> dns, so a DNS message quoted in an ICMP error does
  not), comes from port 53, and has the QR bit set. Its receiver (ip.dst)
  becomes a local host whatever the RCODE. With RCODE 0 and no sign of
  damage (_ws.malformed, _ws.short or _ws.unreassembled in the frame),
  every A/AAAA of the *Answers* tree maps to the first question's name,
  lower-cased, latest answer winning.
- A frame is outbound when the link layer says "outgoing" (sll.pkttype 4,
  sll2 likewise) or its source is a local host (or inside --local-net).
- An outbound frame counts unless a TCP/UDP port on either side is 53 or
  --ports excludes its destination port; bytes = ip.len, or 40 + ipv6.plen.

Usage: tshark_reference.py CAPTURE [--local-net CIDR]... [--ports 80,443]
prints {"endpoints": [...], "addresses": {addr: name}} as JSON.
"""
import argparse
import ipaddress
import json
import subprocess
import sys
from collections import OrderedDict


def tshark_frames(path):
    cmd = [
        "tshark", "-r", path, "-T", "json", "--no-duplicate-keys",
        "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
        "-o", "tcp.desegment_tcp_streams:TRUE",
        "-o", "tcp.check_checksum:FALSE", "-o", "udp.check_checksum:FALSE",
        # Only the layers the contract reads; _ws.* markers are always kept.
        "-J", "frame sll sll2 ip ipv6 tcp udp dns _ws.malformed _ws.short _ws.unreassembled",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return json.loads(out)


def first(v):
    return v[0] if isinstance(v, list) else v


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def canonical(addr):
    return str(ipaddress.ip_address(addr))


def outer_l4(protocols):
    """(ip layer name, l4 name, next after l4) from frame.protocols."""
    toks = protocols.split(":")
    for i, t in enumerate(toks):
        if t in ("ip", "ipv6"):
            j = i + 1
            while j < len(toks) and toks[j].startswith("ipv6."):
                j += 1
            l4 = toks[j] if j < len(toks) else None
            nxt = toks[j + 1] if j + 1 < len(toks) else None
            return t, l4, nxt, toks[j + 1:]
    return None, None, None, []


def damaged(layers):
    # _ws.unreassembled: the IP length promised more bytes than were captured
    # and a dissector ran past them ("BoundErrorUnreassembled").
    return any(k in layers for k in ("_ws.malformed", "_ws.short", "_ws.unreassembled"))


def answers_of(dns):
    """(qname, [addresses]) for one DNS message tree."""
    qname = None
    for key, q in (dns.get("Queries") or {}).items():
        qname = q.get("dns.qry.name")
        break
    addrs = []
    for key, rr in (dns.get("Answers") or {}).items():
        for field in ("dns.a", "dns.aaaa"):
            if field in rr:
                addrs.append(canonical(rr[field]))
    return qname, addrs


def compute(path, local_nets=(), ports=None):
    nets = [ipaddress.ip_network(n, strict=False) for n in local_nets]
    local = set()
    table = OrderedDict()
    endpoints = {}
    for pkt in tshark_frames(path):
        layers = pkt["_source"]["layers"]
        frame = layers["frame"]
        ts = frame["frame.time_epoch"]
        sec, _, frac = ts.partition(".")
        ts_us = int(sec) * 1_000_000 + int((frac + "000000")[:6])
        ip_name, l4, nxt, rest = outer_l4(frame.get("frame.protocols", ""))
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
        if l4 in ("tcp", "udp") and l4 in layers:
            l4l = first(layers[l4])
            sport = int(l4l.get(f"{l4}.srcport"))
            dport = int(l4l.get(f"{l4}.dstport"))
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
                    qname = qname.lower().rstrip(".")
                    for a in addrs:
                        table.pop(a, None)
                        table[a] = qname
            continue
        sll = layers.get("sll") or layers.get("sll2") or {}
        pkttype = sll.get("sll.pkttype")
        outgoing = pkttype == "4"
        src_ip = ipaddress.ip_address(src)
        is_local = any(src_ip in n for n in nets) if nets else src in local
        if not (outgoing or is_local):
            continue
        if ports is not None and (dport is None or dport not in ports):
            continue
        name = table.get(dst, "")
        e = endpoints.setdefault(name, {"endpoint": name, "packets": 0, "bytes": 0,
                                        "first_us": ts_us, "last_us": ts_us,
                                        "addresses": set()})
        e["packets"] += 1
        e["bytes"] += length
        e["first_us"] = min(e["first_us"], ts_us)
        e["last_us"] = max(e["last_us"], ts_us)
        e["addresses"].add(dst)
    result = []
    for name in sorted(endpoints):
        e = endpoints[name]
        e["addresses"] = sorted(e["addresses"])
        result.append(e)
    return {"endpoints": result, "addresses": dict(table)}


def parse_ports(text):
    out = set()
    for item in text.split(","):
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--local-net", action="append", default=[])
    ap.add_argument("--ports")
    a = ap.parse_args()
    ports = parse_ports(a.ports) if a.ports else None
    json.dump(compute(a.capture, a.local_net, ports), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
