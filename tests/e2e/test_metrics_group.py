"""`--metrics-group domain`: the per-endpoint series of /metrics are per
registrable domain. `watch` ingests a capture of TLS flows whose server names
(SNI) are known; /metrics, scraped on 127.0.0.1, must hold per domain the sum
of the packets of its hosts, counted here from the frames written. The
domains are those the Public Suffix List gives, written out by hand below
(co.uk is an ICANN suffix, github.io a private one, .test is unknown to the
list and falls under its default rule "*"); unnamed traffic and an IP
literal keep their own series. Every wait is bounded."""
import os
import subprocess
import time

from frames import client_hello, ipv4_tcp, write_pcap
from prometheus_helper import free_port, http_get, kill
from test_golden import BIN

# server name -> (its series under --metrics-group domain, sent data segments)
FLOWS = {
    b"a.example.co.uk": ("example.co.uk", 1),
    b"b.example.co.uk": ("example.co.uk", 4),
    b"x.github.io": ("x.github.io", 2),
    b"deep.x.github.io": ("x.github.io", 3),
    b"y.github.io": ("y.github.io", 0),
    b"www.shop.test": ("shop.test", 5),
    b"api.shop.test": ("shop.test", 1),
    b"203.0.113.9": ("203.0.113.9", 2),
    None: ("(unresolved)", 3),  # a ClientHello without server_name
}


def capture(path):
    """Each flow: SYN, SYN-ACK, the ClientHello, then its data segments
    (client to server) and one server ACK. Returns {series: (sent, received)}
    packets counted from the frames written."""
    frames, expected = [], {}
    for i, (name, (series, extra)) in enumerate(FLOWS.items()):
        client, server, sport = [10, 0, 0, 2], [192, 0, 2, 10 + i], 42000 + i
        hello = client_hello(None if name is None else [name])
        # (sent, flags, sequence number, payload); the SYN takes one number.
        flow = [(True, 0x02, 999, b""), (False, 0x12, 5000, b""), (True, 0x18, 1000, hello)]
        flow += [(True, 0x18, 1000 + len(hello) + 100 * k, b"x" * 100) for k in range(extra)]
        flow += [(False, 0x10, 5001, b"")]
        for sent, flags, seq, payload in flow:
            if sent:
                frames.append(ipv4_tcp(client, server, sport, 443, flags, seq, payload))
            else:
                frames.append(ipv4_tcp(server, client, 443, sport, flags, seq, payload))
        s, r = expected.get(series, (0, 0))
        expected[series] = (s + sum(1 for f in flow if f[0]), r + sum(1 for f in flow if not f[0]))
    write_pcap(path, frames)
    return expected


def series(body, family):
    out = {}
    for line in body.splitlines():
        if line.startswith(family + "{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('endpoint="', 1)[1].rsplit('"', 1)[0]] = int(float(value))
    return out


def test_metrics_group_domain_sums_hosts_per_registrable_domain(tmp_path):
    watched = tmp_path / "dump"
    watched.mkdir()
    expected = capture(tmp_path / "flows.pcap")
    port = free_port()
    watch = subprocess.Popen(
        [BIN, "watch", watched, "--store", f"sqlite:{tmp_path / 'w.db'}", "--metrics-listen",
         f"127.0.0.1:{port}", "--metrics-group", "domain"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        os.rename(tmp_path / "flows.pcap", watched / "flows.pcap")
        url = f"http://127.0.0.1:{port}/metrics"
        want = {k: v[0] for k, v in expected.items()}
        got, body = {}, ""
        for _ in range(150):  # up to ~30 s
            assert watch.poll() is None, watch.communicate()
            try:
                _, body = http_get(url)
            except OSError:
                body = ""
            got = series(body, "traffic_endpoint_writes_total")
            if got == want:
                break
            time.sleep(0.2)
        assert got == want, body
        assert series(body, "traffic_endpoint_packets_total") == want
        assert series(body, "traffic_endpoint_received_packets_total") == \
            {k: v[1] for k, v in expected.items()}
        assert set(want) == {"example.co.uk", "x.github.io", "y.github.io", "shop.test",
                             "203.0.113.9", "(unresolved)"}
    finally:
        kill(watch)


def test_metrics_group_rejects_other_values():
    r = subprocess.run([BIN, "watch", "/nonexistent", "--metrics-group", "tld"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "--metrics-group" in r.stderr
