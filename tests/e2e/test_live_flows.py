"""Flow naming on live traffic (needs root: it builds its own two-host network
in network namespaces, see netns.py; nothing leaves them).

DNS (dnsmasq in the server namespace) answers `a.test` with the server
address A. From the client namespace, while `traffic-analyzer run` captures
on the client's veth and tcpdump records the same interface:
  - a UDP exchange with A after resolving `a.test`: named `a.test` from DNS;
  - HTTPS to A with `b.test` in the ClientHello (curl --resolve, no DNS for
    it): named `b.test` from the SNI, although DNS says `a.test` for A;
  - plain HTTP to A with `Host: c.test`: named `c.test` from the Host header.
Every count is checked against tcpdump's reading of its own capture, the
received bytes of `b.test` against what curl downloaded, and `analyze` of
tcpdump's capture must name and count exactly as `run` did.
"""
import datetime
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from netns import TwoHostNet
from test_golden import BIN, ta
from test_live import stop, wait_for_line

TOOLS = ("ip", "dnsmasq", "curl", "tcpdump", "openssl", "python3")
CLIENT = "10.77.0.2"
UDP_PORT = 7777
UDP_ROUNDS = 5
TLS_BODY = 20000  # bytes: a dozen full-size segments back to the client
IP_PROTO = {"tcp": 6, "udp": 17}  # `query flows` gives the IP protocol number

# The TLS server: HTTP/1.0 over TLS on ADDR:443, one fixed body per GET.
TLS_SERVER = """
import http.server, ssl, sys
addr, cert, key, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"x" * size
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer((addr, 443), Handler)
srv.timeout = 60  # handle_request() gives up after a minute without a client
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
for _ in range(100):
    srv.handle_request()
"""

# The UDP echo server on ADDR:PORT; quits after a minute of silence.
UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(60)
for _ in range(1000):
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        break
    s.sendto(data, peer)
"""

# The UDP client: resolves the name through the namespace's resolver (one A
# query to dnsmasq), then sends ROUNDS datagrams and waits for each echo.
UDP_CLIENT = """
import socket, sys
addr = socket.gethostbyname(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for i in range(int(sys.argv[3])):
    s.sendto(b"ping %d" % i, (addr, int(sys.argv[2])))
    s.recvfrom(2048)
print(addr)
"""


def missing_prerequisite():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"needs {tool} in PATH (scripts/install-deps)"
    if not os.access(BIN, os.X_OK):
        return f"needs the built binary {BIN} (ninja -C build traffic-analyzer)"
    return None


class FlowNet(TwoHostNet):
    """TwoHostNet whose DNS knows only `a.test`, with IPv6 off (no router
    solicitations or MLD reports wandering into the counts), a TLS server
    and a UDP echo server on a.test's address. Cleans up also when coming
    up fails half-way."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.addresses = {"a.test": "10.77.0.11"}
        self.server = self.addresses["a.test"]

    def __enter__(self):
        try:
            super().__enter__()
            for ns in (self.cli, self.srv):
                self.run_in(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
                self.run_in(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            cert, key = self.tmp / "cert.pem", self.tmp / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-subj", "/CN=b.test", "-days", "1", "-keyout", str(key),
                            "-out", str(cert)], check=True, capture_output=True, timeout=60)
            self.spawn(self.srv, "python3", "-c", TLS_SERVER, self.server, cert, key, TLS_BODY)
            self.spawn(self.srv, "python3", "-c", UDP_ECHO, self.server, UDP_PORT)
            # Ready when TLS answers (the UDP server binds before that).
            deadline = time.time() + 15
            while time.time() < deadline:
                if self.https("b.test")[0] == TLS_BODY:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("TLS server did not come up")
            return self
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def https(self, name):
        """GET https://NAME/ with NAME pinned to the server address (no DNS).
        Returns curl's (size_download, size_header), (None, None) on failure."""
        r = self.run_in(self.cli, "curl", "--resolve", f"{name}:443:{self.server}", "-k", "-s",
                        "--max-time", "5", "-o", "/dev/null",
                        "-w", "%{size_download} %{size_header}", f"https://{name}/", check=False)
        try:
            down, header = map(int, r.stdout.split())
        except ValueError:
            return (None, None)
        return down, header


def query(db, what):
    r = ta("query", what, "--store", f"sqlite:{db}", "--format", "json")
    return json.loads(r.stdout)


def seconds(rfc3339):
    """2026-01-01T00:00:00.000001Z as seconds since the epoch."""
    return datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def tcpdump_count(pcap, bpf):
    """Packets and IP bytes of PCAP matching BPF, read by tcpdump (-v prints
    each IPv4 header's total length as `length N`)."""
    r = subprocess.run(["tcpdump", "-nn", "-v", "-r", str(pcap), bpf],
                       capture_output=True, text=True, check=True, timeout=30)
    packets = nbytes = 0
    for line in r.stdout.splitlines():
        # 12:00:00.000000 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 60)
        if " IP (" in line and ", length " in line:
            packets += 1
            nbytes += int(line.rsplit(", length ", 1)[1].split(")")[0])
    return packets, nbytes


def test_live_flows_named_by_sni_http_and_dns_as_analyze_names_them(tmp_path):
    reason = missing_prerequisite()
    if reason is not None:
        pytest.fail(reason)
    with FlowNet(tmp_path) as net:
        a = net.server
        db_run, db_offline = tmp_path / "run.db", tmp_path / "offline.db"
        pcap = tmp_path / "tcpdump.pcap"
        # tcpdump starts before `run` and stops after it: both see the traffic
        # below and nothing else (IPv6 is off, the servers were probed before).
        tcpdump = net.spawn(net.cli, "tcpdump", "-i", net.cli_if, "-U", "-w", pcap)
        wait_for_line(tcpdump, "listening on")
        # Flow naming is run's default (no --naming).
        run = net.spawn(net.cli, BIN, "run", "-i", net.cli_if, "--store", f"sqlite:{db_run}",
                        "--metrics-listen", "", "--flush-seconds", "0.2")
        wait_for_line(run, "capturing on")

        # 1. Resolve a.test (the answer is sent to this client), then UDP.
        r = net.run_in(net.cli, "python3", "-c", UDP_CLIENT, "a.test", UDP_PORT, UDP_ROUNDS,
                       check=False)
        assert r.returncode == 0 and r.stdout.strip() == a, f"UDP via a.test: {r.stdout} {r.stderr}"
        # 2. HTTPS naming b.test in its ClientHello, to the address DNS calls a.test.
        down, header = net.https("b.test")
        assert down == TLS_BODY, (down, header)
        # 3. Plain HTTP with Host: c.test to the same address.
        r = net.run_in(net.cli, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                       "--max-time", "5", "-H", "Host: c.test", f"http://{a}/", check=False)
        assert r.stdout == "200", f"curl Host: c.test: {r.stdout} {r.stderr}"

        time.sleep(1.0)  # past one flush and one 100 ms capture batch
        run_err = stop(run)
        time.sleep(0.5)
        tcpdump.send_signal(signal.SIGTERM)
        tcpdump.communicate(timeout=10)
        ta("analyze", "--quiet", "--store", f"sqlite:{db_offline}", pcap)

        # Truth per flow, from tcpdump's capture: (sent, received) packets/bytes.
        def truth(proto, port):
            out = tcpdump_count(pcap, f"src {CLIENT} and dst {a} and {proto} dst port {port}")
            back = tcpdump_count(pcap, f"src {a} and dst {CLIENT} and {proto} src port {port}")
            return out, back

        expected = {  # endpoint: (protocol, port, name_source)
            "a.test": ("udp", UDP_PORT, "dns"),
            "b.test": ("tcp", 443, "sni"),
            "c.test": ("tcp", 80, "http"),
        }
        endpoints = {e["endpoint"]: e for e in query(db_run, "endpoints")}
        assert set(endpoints) == set(expected), (endpoints, run_err)
        for name, (proto, port, source) in expected.items():
            (sent, sent_bytes), (recv, recv_bytes) = truth(proto, port)
            assert sent > 0 and recv > 0, (name, sent, recv)
            e = endpoints[name]
            assert (e["packets"], e["bytes"], e["received_packets"], e["received_bytes"]) == \
                (sent, sent_bytes, recv, recv_bytes), (name, e)
            # The name applies to every packet of the flow, both directions.
            assert {k: v for k, v in e["names"].items() if v} == {source: sent + recv}, (name, e)
        assert endpoints["a.test"]["packets"] == UDP_ROUNDS
        assert endpoints["a.test"]["received_packets"] == UDP_ROUNDS

        # What came back on the TLS flow: curl's body plus headers, framed by
        # (a) an IP and a TCP header per received packet, at most 20 + 60 = 80
        # bytes (no IP options here; TCP options included), and (b) the TLS
        # handshake and record framing: ServerHello, the ~800-byte self-signed
        # RSA-2048 certificate, CertificateVerify, Finished, session tickets,
        # close_notify, and per record 22 bytes in TLS 1.3 (RFC 8446 5.2: 5 of
        # header, 1 of inner type, 16 of AEAD tag; 29 for TLS 1.2 AES-GCM) on
        # the few records of headers and body: well under 8 KiB in all.
        # Encrypted data is never smaller than its plaintext, so the body alone
        # is a lower bound.
        b = endpoints["b.test"]
        assert b["received_bytes"] >= down, b
        assert b["received_bytes"] <= down + header + b["received_packets"] * 80 + 8192, b

        flows = query(db_run, "flows")
        got = sorted((f["client"], f["endpoint_address"], f["endpoint_port"], f["protocol"],
                      f["name"], f["name_source"], f["sent_packets"], f["sent_bytes"],
                      f["received_packets"], f["received_bytes"]) for f in flows)
        want = sorted((CLIENT, a, port, IP_PROTO[proto], name, source, endpoints[name]["packets"],
                       endpoints[name]["bytes"], endpoints[name]["received_packets"],
                       endpoints[name]["received_bytes"])
                      for name, (proto, port, source) in expected.items())
        assert got == want, flows
        assert all(f["client_port"] > 1024 for f in flows), flows

        # The same traffic analyzed from tcpdump's capture names and counts
        # alike: run names flows exactly as analyze does on a capture of it.
        def comparable(db):
            return sorted((e["endpoint"], e["packets"], e["bytes"], e["received_packets"],
                           e["received_bytes"], sorted((k, v) for k, v in e["names"].items() if v))
                          for e in query(db, "endpoints"))

        assert comparable(db_offline) == comparable(db_run)
        # Timestamps: each capture handle stamps its own copy of a packet, so
        # tcpdump's and run's may differ by a few microseconds.
        stamps = ("first_seen", "last_seen")

        def by_ends(rows):
            return {(f["client_port"], f["endpoint_port"]): f for f in rows}

        live, offline = by_ends(flows), by_ends(query(db_offline, "flows"))
        assert set(live) == set(offline), (flows, offline)
        for ends, f in live.items():
            g = offline[ends]
            assert {k: v for k, v in f.items() if k not in stamps} == \
                {k: v for k, v in g.items() if k not in stamps}, (f, g)
            for k in stamps:
                assert abs(seconds(f[k]) - seconds(g[k])) < 0.01, (k, f, g)
