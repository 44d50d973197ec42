"""A real Prometheus scraping traffic-analyzer, and the one-command demo.

`watch` ingests a known capture while Debian's prometheus scrapes /metrics
every second: the per-endpoint write counters Prometheus stored must equal
the capture's ground truth. The demo must run for a set time or until
SIGTERM, serve /metrics while it runs, keep going when its metrics port is
taken, and feed its own private Prometheus. Everything listens on 127.0.0.1;
every wait is bounded; every spawned process is stopped in `finally`.
"""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from prometheus_helper import PROMETHEUS, Prometheus, free_port, http_get, kill, wait_http
from test_golden import BIN, DATA, query_endpoints

needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed")

CAPTURE = DATA / "generated_small.pcap"
TRUTH = DATA / "generated_small.pcap.truth.json"


def label(endpoint):
    return "(unresolved)" if endpoint == "" else endpoint


def spawn(*args, env=None):
    return subprocess.Popen([BIN, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)


SLACK = datetime.timedelta(seconds=1)  # the store keeps microseconds; clocks are read apart


def metric_lines(text, name):
    return [l for l in text.splitlines() if l.startswith(name + "{")]


def writes_by_endpoint(body):
    """{endpoint label: value} of traffic_endpoint_writes_total (labels
    without escapes, as the demo's names are)."""
    out = {}
    for line in metric_lines(body, "traffic_endpoint_writes_total"):
        series, value = line.rsplit(" ", 1)
        out[series.split('endpoint="', 1)[1].rsplit('"', 1)[0]] = float(value)
    return out


@needs_prometheus
def test_prometheus_scrapes_exact_per_endpoint_writes(tmp_path):
    truth = json.loads(TRUTH.read_text())
    expected = {label(e["endpoint"]): e["packets"] for e in truth["endpoints"] if e["packets"] > 0}
    assert expected
    watched = tmp_path / "dump"
    watched.mkdir()
    db = tmp_path / "t.db"
    port = free_port()
    watch = spawn("watch", "--naming", "dns", watched, "--store", f"sqlite:{db}", "--metrics-listen",
                  f"127.0.0.1:{port}")
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", 20, watch)
        with Prometheus(tmp_path / "prom", [f"127.0.0.1:{port}"], job="ta-watch") as prom:
            # Prometheus sees the target up before any record exists.
            deadline = time.time() + 30
            while time.time() < deadline and not any(
                    v == 1 for _, v in prom.query('up{job="ta-watch"}')):
                time.sleep(0.5)
            assert any(v == 1 for _, v in prom.query('up{job="ta-watch"}')), prom.log_text()
            # Into place atomically (a rename, as a rotating writer does).
            shutil.copy(CAPTURE, watched / ".incoming.tmp")
            os.rename(watched / ".incoming.tmp", watched / CAPTURE.name)
            got, stable_since, previous = {}, None, None
            deadline = time.time() + 60
            while time.time() < deadline:
                got = {m["endpoint"]: int(v) for m, v in
                       prom.query('traffic_endpoint_writes_total{job="ta-watch"}')}
                if got and got == previous:
                    stable_since = stable_since or time.time()
                    # Stable for three scrape intervals, or already exact.
                    if got == expected or time.time() - stable_since >= 3:
                        break
                else:
                    stable_since = None
                previous = got
                time.sleep(0.5)
            assert got == expected, f"prometheus has {got}, truth {expected}"
        # And the store agrees with both.
        assert {label(r["endpoint"]): r["packets"] for r in query_endpoints(db)} == expected
    finally:
        kill(watch)


def test_demo_runs_for_its_duration_and_stores_records(tmp_path):
    db = tmp_path / "demo.db"
    started = datetime.datetime.now(datetime.timezone.utc)
    r = subprocess.run([BIN, "demo", "--naming", "dns", "--duration", "3", "--store", f"sqlite:{db}",
                        "--metrics-listen", f"127.0.0.1:{free_port()}", "--prometheus", "off",
                        "--rate", "2000", "--table-seconds", "1"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    # Live tables (not a terminal: appended blocks), then the final summary.
    assert r.stdout.count("WRITES/S") >= 2, r.stdout
    assert "FIRST SEEN" in r.stdout and "\nframes " in r.stdout, r.stdout
    assert "skipped:" in r.stdout and "dns:" in r.stdout
    assert "\033[" not in r.stdout  # no screen clearing into a pipe
    ended = datetime.datetime.now(datetime.timezone.utc)
    summary = r.stdout.split("\nframes ")[1].split("\n")[0]
    frames = int(summary.split(",")[0])
    counted = int(summary.split("counted ")[1].split(" ")[0])
    seconds = float(summary.split(", ")[-1].split(" s")[0])
    assert frames > 0 and seconds >= 2.9, summary  # ran its 3 s, however slowly
    rows = query_endpoints(db)
    # Everything counted is stored (DNS naming: sent packets only).
    assert sum(e["packets"] for e in rows) == counted > 0, (summary, rows)
    # Timestamps are the wall clock of emission: within the run.
    for e in rows:
        for t in (e["first_seen"], e["last_seen"]):
            when = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
            assert started - SLACK <= when <= ended + SLACK, (t, started, ended)


def test_demo_serves_metrics_while_running_and_stops_on_sigterm(tmp_path):
    db = tmp_path / "demo.db"
    port = free_port()
    demo = spawn("demo", "--naming", "dns", "--store", f"sqlite:{db}", "--metrics-listen", f"127.0.0.1:{port}",
                 "--prometheus", "off", "--rate", "1000")
    try:
        body = wait_http(f"http://127.0.0.1:{port}/metrics", 30, demo,
                         want="traffic_endpoint_writes_total{")
        scraped = writes_by_endpoint(body)
        assert sum(scraped.values()) > 0, body
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=30)
        assert demo.returncode == 0, err
        assert "\nframes " in out and "FIRST SEEN" in out, out
        # What /metrics called written is in the store (which has more since).
        stored = {label(r["endpoint"]): r["packets"] for r in query_endpoints(db)}
        assert all(n <= stored.get(e, 0) for e, n in scraped.items()), (scraped, stored)
    finally:
        kill(demo)


def test_demo_with_its_metrics_port_taken_says_so_once_and_runs(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([BIN, "demo", "--naming", "dns", "--duration", "2", "--store", f"sqlite:{tmp_path / 'd.db'}",
                            "--metrics-listen", f"127.0.0.1:{port}", "--prometheus", "auto",
                            "--prometheus-port", str(free_port()), "--rate", "500"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    about_port = [l for l in r.stderr.splitlines() if f":{port}" in l]
    assert len(about_port) == 1 and "already in use" in about_port[0], r.stderr
    assert "\nframes " in r.stdout
    assert query_endpoints(tmp_path / "d.db")


@needs_prometheus
def test_demo_feeds_its_own_prometheus(tmp_path):
    db = tmp_path / "demo.db"
    metrics_port, prom_port = free_port(), free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    demo = spawn("demo", "--naming", "dns", "--store", f"sqlite:{db}", "--metrics-listen",
                 f"127.0.0.1:{metrics_port}", "--prometheus-port", prom_port, "--rate", "1000",
                 env=env)
    try:
        base = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{base}/-/ready", 30, demo)
        query = f"{base}/api/v1/query?query=traffic_endpoint_writes_total"
        deadline = time.time() + 60
        result = []
        while time.time() < deadline and not result:
            _, body = http_get(query)
            result = json.loads(body)["data"]["result"]
            time.sleep(0.5)
        assert result, "prometheus never scraped traffic_endpoint_writes_total"
        scraped = {r["metric"]["endpoint"]: float(r["value"][1]) for r in result}
        # The advertised graph URL is served.
        status, _ = http_get(f"{base}/graph?g0.expr=traffic_endpoint_write_throughput&g0.tab=0")
        assert status == 200
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=40)
        assert demo.returncode == 0, err
        assert f"Prometheus at http://127.0.0.1:{prom_port}/graph?" in err, err
        assert "\nframes " in out
        # Every write Prometheus saw is in the store, under the same name.
        stored = {label(r["endpoint"]): r["packets"] for r in query_endpoints(db)}
        assert all(n <= stored.get(e, 0) for e, n in scraped.items()), (scraped, stored)
        # Its Prometheus is gone, and so is its temporary directory.
        with pytest.raises(OSError):
            http_get(f"{base}/-/ready", timeout=2)
        assert list(tmp.iterdir()) == []
    finally:
        kill(demo)


def test_demo_without_prometheus_installed_says_so_once_and_runs(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))  # no prometheus to be found
    r = subprocess.run([BIN, "demo", "--naming", "dns", "--duration", "2", "--store", f"sqlite:{tmp_path / 'd.db'}",
                        "--metrics-listen", f"127.0.0.1:{free_port()}", "--rate", "500"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       env=env)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if "not installed" in l]
    assert len(lines) == 1, r.stderr
    assert "\nframes " in r.stdout
