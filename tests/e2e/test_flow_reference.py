"""Checks of the flow-naming oracle (flow_reference.py) itself, against facts
read by hand from tshark's output on the real captures (each comment names
the tshark command or fields a number came from) and against a small capture
written here whose packets make the expected values plain by construction.

All byte sums are IP lengths (ip.len, or 40 + ipv6.plen) summed per
direction, e.g. for ndpi_chrome.pcap:
  tshark -r F -Y tcp -T fields -e tcp.stream -e ip.src -e tcp.dstport -e ip.len
grouped by tcp.stream and by whether tcp.dstport is the server's port.
"""
import functools
import json
import pathlib
import struct
import subprocess
import sys

import pytest

import flow_reference
from flow_reference import compute, strip_port

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"


@functools.lru_cache(maxsize=None)
def ref(name, ports=None, idle=300):
    return compute(str(DATA / name), (), ports, idle)


def flows_by_client_port(result):
    return {f["client_port"]: f for f in result["flows"]}


def endpoint(result, name):
    matches = [e for e in result["endpoints"] if e["endpoint"] == name]
    assert len(matches) == 1, [e["endpoint"] for e in result["endpoints"]]
    return matches[0]


def counts(f):
    return (f["sent_packets"], f["sent_bytes"], f["received_packets"], f["received_bytes"])


def test_chrome_six_tls_flows_named_by_sni():
    r = ref("ndpi_chrome.pcap")
    # -z conv,tcp: six conversations 192.168.1.178:<port> <-> 146.48.58.18:443;
    # -Y tls.handshake.type==1 -e tls.handshake.extensions_server_name: one
    # ClientHello per tcp.stream at tcp.seq 1 (the first payload), all www.iit.cnr.it.
    # No DNS in the file, so no local host: the SYN's receiver is the endpoint.
    expected = {  # client port: (sent pkts, sent bytes, received pkts, received bytes)
        64393: (9, 1827, 11, 7652),
        64394: (10, 1964, 14, 12819),
        64408: (6, 1745, 6, 883),
        64409: (11, 2005, 15, 14311),
        64410: (13, 1991, 16, 15112),
        64411: (8, 1731, 8, 4313),
    }
    flows = flows_by_client_port(r)
    assert sorted(flows) == sorted(expected)
    for port, f in flows.items():
        assert (f["client"], f["endpoint_address"], f["endpoint_port"], f["protocol"]) == (
            "192.168.1.178", "146.48.58.18", 443, 6)
        assert (f["name"], f["source"]) == ("www.iit.cnr.it", "sni")
        assert counts(f) == expected[port]
    e = endpoint(r, "www.iit.cnr.it")
    assert len(r["endpoints"]) == 1
    # The client->server traffic counts now: 57 sent, 70 received = the file's 127 frames.
    assert (e["packets"], e["bytes"], e["received_packets"], e["received_bytes"]) == (57, 11263, 70, 55090)
    assert e["names"] == {"sni": 127, "quic": 0, "http": 0, "dns": 0, "none": 0}
    # frame.time_epoch of frame 1 (SYN of port 64393) and of frame 127.
    assert e["first_seen"] == 1620902507870345
    assert e["last_seen"] == 1620902509373854


def test_http_connect_named_by_http_and_tunnel_tls_ignored():
    r = ref("ndpi_http_connect.pcap")
    # Frame 4 (tcp.stream 0, tcp.seq 1): CONNECT apache.org:443, http.host
    # "apache.org:443". Frame 12 (same stream, tcp.seq 204) is a ClientHello
    # inside the tunnel: not the first payload, so no sni for that flow.
    # Frame 14 (tcp.stream 1, tcp.seq 1): the proxy's own ClientHello, SNI apache.org.
    # The DNS answer to 192.168.1.146 (frame 6, t=0.0033) makes it local only
    # after stream 0 began (t=0), so stream 0's side comes from its SYN.
    flows = flows_by_client_port(r)
    assert sorted(flows) == [1714, 35968]
    c = flows[1714]
    assert (c["client"], c["endpoint_address"], c["endpoint_port"]) == ("192.168.1.103", "192.168.1.146", 8080)
    assert (c["name"], c["source"]) == ("apache.org", "http")
    assert counts(c) == (18, 2636, 22, 23615)
    p = flows[35968]
    assert (p["client"], p["endpoint_address"], p["endpoint_port"]) == ("192.168.1.146", "151.101.2.132", 443)
    assert (p["name"], p["source"]) == ("apache.org", "sni")
    assert counts(p) == (28, 3165, 30, 32519)
    e = endpoint(r, "apache.org")
    # The two DNS frames (port 53) are not counted: 40 + 58 = 98 of 100 frames.
    assert e["names"] == {"sni": 58, "quic": 0, "http": 40, "dns": 0, "none": 0}
    assert (e["packets"], e["received_packets"]) == (46, 52)


@pytest.mark.parametrize("capture,client,endpoint_addr,name,expected", [
    # -Y tls.handshake.type==1 -e udp.srcport -e quic.version -e tls.handshake.extensions_server_name
    ("sv_quic-ietf.pcap", ("10.168.234.1", 56785), "138.91.188.147", "msquic.net", (5, 3372, 6, 5537)),
    # The ClientHello completes in frame 2 (CRYPTO frames over two Initials).
    ("sv_quic-frag.pcap", ("192.168.0.5", 42586), "34.107.141.31", "token.services.mozilla.com",
     (24, 21635, 5, 4823)),
    # Frame 2 holds the ClientHello; the Retry (frames 3-4) and the second
    # Initial with a new DCID (frame 5) stay in the same flow.
    ("sv_quic-retry.pcap", ("192.168.178.252", 60027), "192.0.73.2", "www.gravatar.com",
     (17, 6237, 21, 10719)),
])
def test_quic_v1_named_by_initial_sni(capture, client, endpoint_addr, name, expected):
    r = ref(capture)
    assert len(r["flows"]) == 1
    f = r["flows"][0]
    assert (f["client"], f["client_port"]) == client
    assert (f["endpoint_address"], f["endpoint_port"], f["protocol"]) == (endpoint_addr, 443, 17)
    assert (f["name"], f["source"]) == (name, "quic")
    assert counts(f) == expected
    assert endpoint(r, name)["names"]["quic"] == expected[0] + expected[2]


def test_quic_draft29_gives_no_name():
    r = ref("ndpi_quic-29.pcap")
    # quic.version 0xff00001d; tshark still decrypts it and shows SNI
    # "localhost" in frames 1 and 5, but drafts are not named.
    assert [(f["name"], f["source"]) for f in r["flows"]] == [("", "none")]
    f = r["flows"][0]
    assert (f["client"], f["client_port"], f["endpoint_address"], f["endpoint_port"]) == (
        "10.9.0.1", 36588, "10.9.0.2", 443)
    assert counts(f) == (6, 4471, 9, 4705)
    assert endpoint(r, "")["names"]["none"] == 15


def test_quic_v2_without_sni_falls_to_unresolved():
    r = ref("sv_quic-v2.pcap")
    # Frame 1: quic.version 0x6b3343cf, tls.handshake.type 1, no server_name;
    # no DNS in the file, so dns gives nothing either. Loopback: both ends
    # 127.0.0.1, the lower port (443) is the endpoint.
    assert len(r["flows"]) == 1
    f = r["flows"][0]
    assert (f["name"], f["source"]) == ("", "none")
    assert (f["client_port"], f["endpoint_port"]) == (64629, 443)
    assert counts(f) == (9, 3154, 6, 1988)


def test_http_espn_every_flow_named_by_its_first_request():
    r = ref("chrissanders_http_espn.pcapng")
    # -Y http.request -e tcp.stream -e tcp.seq -e http.host, first request per
    # stream: 25 streams, each first request starts at the first payload
    # byte; counted per host below. (tcp.stream count of non-DNS TCP is 25.)
    first_hosts = {"a.espncdn.com": 6, "a1.espncdn.com": 2, "a2.espncdn.com": 2,
                   "adsatt.espn.go.com": 2, "assets.espn.go.com": 3, "broadband.espn.go.com": 1,
                   "content.dl-rms.com": 1, "espn.go.com": 2, "games-ak.espn.go.com": 1,
                   "log.go.com": 1, "streak.espn.go.com": 1, "w88.go.com": 1, "www.espn.com": 1,
                   "www.masters.com": 1}
    got = {}
    for f in r["flows"]:
        assert f["source"] == "http"
        got[f["name"]] = got.get(f["name"], 0) + 1
    assert got == first_hosts
    # 928 frames are TCP/UDP with neither port 53, and there is nothing else.
    total = sum(e["packets"] + e["received_packets"] for e in r["endpoints"])
    assert total == 928
    assert sum(e["names"]["http"] for e in r["endpoints"]) == 928
    # tcp.stream 22: the GET to w88.go.com spans frames 854-855 (tcp.segments),
    # reassembled from tcp.seq 1.
    assert counts(endpoint_flow(r, "w88.go.com")) == (9, 4268, 6, 2577)
    assert counts(endpoint_flow(r, "www.espn.com")) == (4, 595, 2, 542)


def endpoint_flow(result, name):
    matches = [f for f in result["flows"] if f["name"] == name]
    assert len(matches) == 1
    return matches[0]


def test_esni_beside_plain_sni_uses_the_plain_name():
    r = ref("ndpi_tls_esni_sni_both.pcap")
    # Frames 4 and 24: tls.handshake.extensions_server_name, at tcp.seq 1.
    flows = flows_by_client_port(r)
    assert flows[55500]["name"] == "these-are-not-the-droids-youre-looking-for.com"
    assert flows[55514]["name"] == "you-think-thats-normal-tls-traffic-youre-seeing.com"
    assert {f["source"] for f in flows.values()} == {"sni"}
    assert counts(flows[55500]) == (11, 1307, 9, 7144)
    assert counts(flows[55514]) == (10, 1272, 8, 5644)


def test_v6_ssh_named_by_dns_and_icmp_per_packet():
    r = ref("arkime_v6.pcap")
    # Frame 15 (t=...918.263588): AAAA kiwi.itojun.org -> 3ffe:501:410:0:2c0:dfff:fe47:33e
    # sent to 3ffe:507:0:1:200:86ff:fe05:80da; frame 16 (t=...918.266121) is that
    # host's SYN to port 22. -Y tcp.port==22: 32 packets out (sum 40+plen 3191),
    # 30 back (5915).
    ssh = [f for f in r["flows"] if f["protocol"] == 6]
    assert len(ssh) == 1
    s = ssh[0]
    assert (s["client"], s["client_port"]) == ("3ffe:507:0:1:200:86ff:fe05:80da", 1022)
    assert (s["endpoint_address"], s["endpoint_port"]) == ("3ffe:501:410:0:2c0:dfff:fe47:33e", 22)
    assert (s["name"], s["source"]) == ("kiwi.itojun.org", "dns")
    assert counts(s) == (32, 3191, 30, 5915)
    # The traceroute probes to UDP 33435..33446, one per port (one flow each).
    probes = [f for f in r["flows"] if f["protocol"] == 17 and 33435 <= f["endpoint_port"] <= 33446]
    assert len(probes) == 12 and {f["name"] for f in probes} == {"kiwi.itojun.org"}
    # ICMPv6 from the local host, -e ipv6.dst -e ipv6.plen: echo requests
    # (frames 116, 120, 124; plen 16) to www.wide.ad.jp's address (frame 115)
    # and five to sh1.iijlab.net's (frames 140-156, after frame 136 named it).
    assert endpoint(r, "www.wide.ad.jp")["packets"] == 3
    assert endpoint(r, "www.wide.ad.jp")["bytes"] == 3 * 56
    assert endpoint(r, "www.wide.ad.jp")["names"]["dns"] == 3
    assert endpoint(r, "sh1.iijlab.net")["packets"] == 5
    # Unresolved: ICMPv6 frames 6, 9, 130, 138 (64+72+64+72), frame 137 (an
    # ICMPv6 error quoting DNS, 40+246) and the RIPng flow fe80::...:521 ->
    # ff02::9:521 (frames 13, 128; 2 x (40+1152)); equal ports: receiver is the endpoint.
    u = endpoint(r, "")
    assert (u["packets"], u["bytes"], u["received_packets"]) == (7, 272 + 286 + 2384, 0)
    assert u["names"]["none"] == 7


def test_idle_gap_strictly_longer_than_the_timeout_ends_a_flow():
    # -e frame.time_delta: the only gap over 1 s is before frame 37
    # (28.892957 s); frames 37 (server) and 38 (client, ip.len 83) follow it.
    assert len(ref("sv_quic-retry.pcap", None, 28.892957)["flows"]) == 1
    r = ref("sv_quic-retry.pcap", None, 28.892956)
    assert len(r["flows"]) == 2
    later = r["flows"][1]
    # The new flow sees no Initial: no quic name, no DNS, unresolved.
    assert (later["name"], later["source"]) == ("", "none")
    assert (later["endpoint_port"], later["client_port"]) == (443, 60027)
    assert counts(later) == (1, 83, 1, 70)
    assert counts(r["flows"][0]) == (16, 6237 - 83, 20, 10719 - 70)


def test_ports_select_flows_by_endpoint_port():
    assert ref("ndpi_chrome.pcap", frozenset({80}))["flows"] == []
    r = ref("ndpi_http_connect.pcap", frozenset({8080}))
    assert [f["client_port"] for f in r["flows"]] == [1714]
    assert endpoint(r, "apache.org")["names"]["http"] == 40
    assert endpoint(r, "apache.org")["names"]["sni"] == 0


def test_strip_port():
    assert strip_port("apache.org:443") == "apache.org"
    assert strip_port("[2001:db8::1]:8080") == "[2001:db8::1]"
    assert strip_port("[2001:db8::1]") == "[2001:db8::1]"
    assert strip_port("192.0.2.7") == "192.0.2.7"


# --- a capture written here: flow life, sides and the two DNS tables --------

BASE = 1_700_000_000


def ip4(text):
    return bytes(int(x) for x in text.split("."))


def ipv4_packet(src, dst, proto, payload):
    total = 20 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, proto, 0, ip4(src), ip4(dst))
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    hdr = hdr[:10] + struct.pack("!H", ~s & 0xFFFF) + hdr[12:]
    return hdr + payload


def tcp(src, sport, dst, dport, flags, seq=1000, ack=0):
    bits = {"F": 0x01, "S": 0x02, "R": 0x04, "A": 0x10}
    f = sum(bits[c] for c in flags)
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, f, 1024, 0, 0)
    return ipv4_packet(src, dst, 6, seg)


def udp(src, sport, dst, dport, data=b""):
    return ipv4_packet(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def dns_answer(server, client, qname, addr):
    """A response (RFC 1035 §4.1: QR=1, RCODE 0) with one A record for qname."""
    q = b"".join(bytes([len(p)]) + p.encode() for p in qname.rstrip(".").split(".")) + b"\0"
    msg = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0) + q + struct.pack("!HH", 1, 1)
    msg += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + ip4(addr)
    return udp(server, 53, client, 33000, msg)


def icmp_echo(src, dst):
    return ipv4_packet(src, dst, 1, struct.pack("!BBHHH", 8, 0, 0, 1, 1))


def write_pcap(path, packets):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, ip in packets:
            frame = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip
            out.write(struct.pack("<IIII", BASE + t, 0, len(frame), len(frame)) + frame)


A, B, C, SRV = "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    path = tmp_path_factory.mktemp("flows") / "crafted.pcap"
    write_pcap(path, [
        (0, dns_answer("10.0.0.53", A, "a.test", SRV)),  # A, then everyone: SRV is a.test
        (1, dns_answer("10.0.0.53", B, "B.Test.", SRV)),  # latest to anyone: b.test
        # TCP flow 1, A -> SRV:443: handshake, FIN both ways, a late ACK.
        (2, tcp(A, 40000, SRV, 443, "S")),
        (3, tcp(SRV, 443, A, 40000, "SA")),
        (4, tcp(A, 40000, SRV, 443, "A")),
        (5, tcp(A, 40000, SRV, 443, "FA")),
        (6, tcp(SRV, 443, A, 40000, "FA")),
        (7, tcp(A, 40000, SRV, 443, "A")),  # stays with the ended flow
        (8, tcp(A, 40000, SRV, 443, "S")),  # a new flow on the same ends
        (9, tcp(SRV, 443, A, 40000, "RA")),
        (10, tcp(SRV, 443, A, 40000, "A")),  # stays with the reset flow
        # C is not local and neither is SRV: the lower port is the endpoint,
        # though SRV sends first; C got no answer, so everyone's table names it.
        (11, udp(SRV, 443, C, 50000)),
        (12, udp(C, 50000, SRV, 443)),
        # Equal ports, no local end: the receiver of the first packet.
        (13, udp("10.0.0.4", 7000, "10.0.0.5", 7000)),
        # Not local, first packet no SYN: lower port (the sender) is the endpoint.
        (14, tcp("10.0.0.6", 443, "10.0.0.7", 50001, "A")),
        # Exactly one local end (A) beats the lower port: the other end is the endpoint.
        (15, udp("10.0.0.8", 61000, A, 1000)),
        (16, icmp_echo(A, SRV)),  # per packet, everyone's table: b.test
        (17, dns_answer("10.0.0.53", A, "c.test", SRV)),
        (18, udp(A, 40001, SRV, 443)),  # a new flow: c.test
        (19, udp(C, 50000, SRV, 443)),  # a running flow keeps b.test
    ])
    return compute(str(path))


def test_crafted_tcp_flow_life(crafted):
    tcp_flows = [f for f in crafted["flows"] if f["client"] == A and f["protocol"] == 6]
    assert len(tcp_flows) == 2
    first, second = tcp_flows
    # Sent: SYN, ACK, FIN, late ACK; received: SYN-ACK, FIN. 40-byte packets.
    assert counts(first) == (4, 160, 2, 80)
    assert (first["first_seen"], first["last_seen"]) == ((BASE + 2) * 10**6, (BASE + 7) * 10**6)
    assert counts(second) == (1, 40, 2, 80)
    # The answer sent to A wins over the later answer to B.
    assert {(f["name"], f["source"]) for f in tcp_flows} == {("a.test", "dns")}


def test_crafted_sides_and_names(crafted):
    by_client = {(f["client"], f["client_port"]): f for f in crafted["flows"]}
    c = by_client[(C, 50000)]
    assert (c["endpoint_address"], c["endpoint_port"], c["name"]) == (SRV, 443, "b.test")
    assert counts(c) == (2, 56, 1, 28)
    d = by_client[("10.0.0.4", 7000)]
    assert (d["endpoint_address"], d["name"], d["source"]) == ("10.0.0.5", "", "none")
    e = by_client[("10.0.0.7", 50001)]
    assert (e["endpoint_address"], e["endpoint_port"]) == ("10.0.0.6", 443)
    assert counts(e) == (0, 0, 1, 40)
    f = by_client[(A, 1000)]
    assert (f["endpoint_address"], f["endpoint_port"]) == ("10.0.0.8", 61000)
    assert counts(f) == (0, 0, 1, 28)
    g = by_client[(A, 40001)]
    assert (g["name"], g["source"]) == ("c.test", "dns")
    # DNS packets are in no flow.
    assert all(53 not in (x["client_port"], x["endpoint_port"]) for x in crafted["flows"])
    assert len(crafted["flows"]) == 7


def test_crafted_endpoint_totals(crafted):
    assert [e["endpoint"] for e in crafted["endpoints"]] == ["", "a.test", "b.test", "c.test"]
    a = endpoint(crafted, "a.test")
    assert (a["packets"], a["bytes"], a["received_packets"], a["received_bytes"]) == (5, 200, 4, 160)
    assert a["names"]["dns"] == 9
    b = endpoint(crafted, "b.test")  # flow C plus the ICMP echo (28 bytes)
    assert (b["packets"], b["bytes"], b["received_packets"], b["received_bytes"]) == (3, 84, 1, 28)
    assert b["names"] == {"sni": 0, "quic": 0, "http": 0, "dns": 4, "none": 0}
    assert (b["first_seen"], b["last_seen"]) == ((BASE + 11) * 10**6, (BASE + 19) * 10**6)
    u = endpoint(crafted, "")
    assert (u["packets"], u["bytes"], u["received_packets"], u["received_bytes"]) == (1, 28, 2, 68)
    assert u["names"]["none"] == 3


def test_command_line_prints_the_json():
    out = subprocess.run([sys.executable, flow_reference.__file__, str(DATA / "sv_quic-ietf.pcap"),
                          "--ports", "443", "--flow-idle-timeout", "300"],
                         check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    assert set(doc) == {"endpoints", "flows"}
    assert [e["endpoint"] for e in doc["endpoints"]] == ["msquic.net"]
    assert set(doc["flows"][0]) == {"client", "client_port", "endpoint_address", "endpoint_port",
                                    "protocol", "name", "source", "sent_packets", "sent_bytes",
                                    "received_packets", "received_bytes", "first_seen", "last_seen"}
