"""Which program owns a flow, on live capture (needs root: it builds its own
two-host network in network namespaces, see netns.py; nothing leaves them).

`run -i VETH --store DB` captures in the client namespace while
  - a Python client there (its command name set to `ta-holder`) holds one
    TCP connection to a sink in the server namespace for about 3 s, sending
    known bytes: `query flows` must name its program and pid on that flow;
  - short clients connect, send and exit at once, well before the 1 s
    flush: their sockets are gone when the flow is looked up, so /metrics
    (scraped before stopping) counts them under no_socket.
Every flow is counted once, whatever the number of batches that carry it.
"""
import json
import re
import subprocess
import time

import pytest

from netns import TwoHostNet, available
from test_golden import BIN, ta
from test_live import stop

SINK_PORT = 9009
CHUNK = 1000
CHUNKS = 6
SHORT_CLIENTS = 3

# Reads every connection to its end; quits after a minute without one.
SINK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
s.settimeout(60)
for _ in range(100):
    try:
        c, _peer = s.accept()
    except socket.timeout:
        break
    c.settimeout(30)
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
    c.close()
"""

# Names itself, connects, prints "PID PORT", sends an HTTP request head (so
# the flow's name is decided at once and its packets reach the next batch;
# a flow waiting for its name is in no batch yet), then CHUNKS chunks of
# CHUNK bytes over about 3 s, and closes.
HOLDER = """
import os, socket, sys, time
with open("/proc/self/comm", "w") as f:
    f.write("ta-holder")
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print(os.getpid(), s.getsockname()[1], flush=True)
s.sendall(b"POST / HTTP/1.1\\r\\nHost: holder.test\\r\\n\\r\\n")
for _ in range(int(sys.argv[4])):
    s.sendall(b"x" * int(sys.argv[3]))
    time.sleep(0.5)
s.close()
"""

# Connects, sends, closes and exits at once.
SHORT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"y" * 100)
s.close()
"""


def process_counts(text):
    """{outcome: value} of traffic_process_flows_total in an exposition text."""
    out = {}
    for m in re.finditer(r'^traffic_process_flows_total\{outcome="(\w+)"\} (\S+)$', text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def test_a_held_connection_is_named_and_a_short_one_counted_unmapped(tmp_path):
    reason = available()
    if reason is not None:
        pytest.fail(reason)
    with TwoHostNet(tmp_path) as net:
        server = "10.77.0.1"
        net.spawn(net.srv, "python3", "-c", SINK, server, SINK_PORT)
        db = tmp_path / "run.db"
        run = net.spawn(net.cli, BIN, "run", "-i", net.cli_if, "--store", f"sqlite:{db}",
                        "--metrics-listen", "127.0.0.1:0")
        line = ""
        deadline = time.time() + 15
        while time.time() < deadline and "capturing on" not in line:
            line = run.stderr.readline()
            if not line and run.poll() is not None:
                break
        assert "capturing on" in line, line
        metrics_url = re.search(r"metrics at (http://\S+/metrics)", line).group(1)

        def scrape():
            r = net.run_in(net.cli, "curl", "-s", "--max-time", "5", metrics_url)
            return process_counts(r.stdout)

        # Every outcome is there from the start.
        assert scrape() == {"mapped": 0, "no_socket": 0, "other_namespace": 0,
                            "no_permission": 0}

        # The sink must be listening before anyone connects.
        deadline = time.time() + 15
        while time.time() < deadline:
            r = net.run_in(net.srv, "ss", "-Htln", f"sport = :{SINK_PORT}", check=False)
            if str(SINK_PORT) in r.stdout:
                break
            time.sleep(0.1)
        holder = net.spawn(net.cli, "python3", "-c", HOLDER, server, SINK_PORT, CHUNK, CHUNKS)
        pid, port = map(int, holder.stdout.readline().split())
        for _ in range(SHORT_CLIENTS):
            r = net.run_in(net.cli, "python3", "-c", SHORT, server, SINK_PORT, check=False)
            assert r.returncode == 0, r.stderr
        assert holder.wait(30) == 0

        # All flows counted (bounded wait: one flush after the last packet).
        flows_total = 1 + SHORT_CLIENTS
        deadline = time.time() + 15
        counts = scrape()
        while time.time() < deadline and sum(counts.values()) < flows_total:
            time.sleep(0.3)
            counts = scrape()
        stop(run)

        rows = json.loads(ta("query", "flows", "--store", f"sqlite:{db}", "--format",
                             "json").stdout)
        tcp = [f for f in rows if f["protocol"] == 6 and f["endpoint_port"] == SINK_PORT]
        assert len(tcp) == flows_total, rows
        held = [f for f in tcp if f["client_port"] == port]
        assert len(held) == 1, tcp
        assert held[0]["process"] == "ta-holder" and held[0]["pid"] == pid, held
        assert held[0]["name"] == "holder.test", held
        # It sent every chunk (IP bytes: payload plus headers).
        assert held[0]["sent_bytes"] > CHUNK * CHUNKS
        short = [f for f in tcp if f["client_port"] != port]
        for f in short:
            assert (f["pid"] is None) == (f["process"] is None), f
        named_short = sum(1 for f in short if f["process"] is not None)

        # Each flow once: the held one mapped across several batches counts
        # one. A short client races the flush only if a batch is sealed in
        # the few milliseconds it lives; the counts say which way each went.
        assert counts["mapped"] == 1 + named_short, (counts, short)
        assert counts["no_socket"] == SHORT_CLIENTS - named_short, (counts, short)
        assert counts["no_socket"] >= 1, counts
        assert counts["other_namespace"] == 0 and counts["no_permission"] == 0, counts

        # The table and CSV carry the same columns.
        csv = ta("query", "flows", "--store", f"sqlite:{db}", "--format", "csv").stdout
        header, *lines = csv.splitlines()
        assert header.endswith(",pid,process")
        assert any(line.endswith(f",{pid},ta-holder") for line in lines), csv
        table = ta("query", "flows", "--store", f"sqlite:{db}").stdout
        assert "PROCESS" in table.splitlines()[0] and "ta-holder" in table


def test_no_processes_maps_nothing(tmp_path):
    reason = available()
    if reason is not None:
        pytest.fail(reason)
    with TwoHostNet(tmp_path) as net:
        db = tmp_path / "run.db"
        run = net.spawn(net.cli, BIN, "run", "-i", net.cli_if, "--store", f"sqlite:{db}",
                        "--metrics-listen", "127.0.0.1:0", "--no-processes")
        line = ""
        deadline = time.time() + 15
        while time.time() < deadline and "capturing on" not in line:
            line = run.stderr.readline()
            if not line and run.poll() is not None:
                break
        assert "capturing on" in line, line
        metrics_url = re.search(r"metrics at (http://\S+/metrics)", line).group(1)
        r = net.run_in(net.cli, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                       "--max-time", "5", "http://10.77.0.1/", check=False)
        assert r.stdout == "200"
        time.sleep(1.5)  # past one flush
        text = net.run_in(net.cli, "curl", "-s", "--max-time", "5", metrics_url).stdout
        stop(run)
        assert "traffic_process_flows_total" not in text
        rows = json.loads(ta("query", "flows", "--store", f"sqlite:{db}", "--format",
                             "json").stdout)
        assert rows and all(f["process"] is None and f["pid"] is None for f in rows), rows
