#!/usr/bin/env python3
"""Write benchmark into Cassandra: rows per second into the local node
(scripts/cassandra-node), on one generated capture, in one run:

  ours             analyze --store cassandra://...: decode, attribute, spool,
                   and our CQL client's pipelined UNLOGGED batches (packet
                   rows plus roll-ups and the partition catalog)
  python driver    cassandra-driver's execute_concurrent_with_args with one
                   prepared INSERT per packet row (bench/cassandra_baselines.py)
  cqlsh per row    the original system's method: one cqlsh process per
                   INSERT, on a short sample, extrapolated

Rows are packet rows. The node shares the machine's cores with the writer;
every method runs against the same node in the same run, so the ratios are
what is compared. Results go to stdout and bench/out/cassandra.json.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TA = ROOT / "build/src/app/traffic-analyzer"
OUT = ROOT / "bench/out"
PACKETS = int(os.environ.get("PACKETS", "300000"))
RUNS = int(os.environ.get("RUNS", "2"))
USER, PASSWORD = "cassandra", "cassandra"


def node_contact():
    r = subprocess.run([ROOT / "scripts/cassandra-node", "start"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"cassandra-node start failed:\n{r.stdout}{r.stderr}")
    return r.stdout.strip().splitlines()[-1]


def drop(contact, keyspace):
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster
    host, port = contact.rsplit(":", 1)
    c = Cluster([host], port=int(port), auth_provider=PlainTextAuthProvider(USER, PASSWORD))
    try:
        c.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        c.shutdown()


def ours(contact, cap, rows):
    best = None
    for i in range(RUNS):
        ks = "bench_ours"
        drop(contact, ks)
        # The schema is created outside the timed run, as for the peers.
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, TRAFFIC_ANALYZER_CASSANDRA_PASSWORD=PASSWORD)
            store = f"cassandra://{USER}@{contact}/{ks}"
            subprocess.run([TA, "analyze", "--quiet", "--store", store, "--spool", f"{tmp}/warm.db",
                            ROOT / "tests/data/arkime_v6.pcap"], check=True, env=env,
                           stdout=subprocess.DEVNULL)
            t = time.perf_counter()
            r = subprocess.run([TA, "analyze", "--quiet", "--store", store, "--spool", f"{tmp}/s.db", cap],
                               env=env, capture_output=True, text=True)
            secs = time.perf_counter() - t
            if r.returncode != 0:
                raise SystemExit(f"analyze into Cassandra failed: {r.stderr}")
        best = secs if best is None else min(best, secs)
    return {"method": "ours (analyze --store cassandra://)", "rows": rows, "seconds": best,
            "rows_per_s": rows / best}


def baselines(contact, rows):
    r = subprocess.run([sys.executable, ROOT / "bench/cassandra_baselines.py", "--contact", contact,
                        "--user", USER, "--password", PASSWORD, "--keyspace", "bench_peers",
                        "--generate", str(rows)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"baselines failed:\n{r.stdout}{r.stderr}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    contact = node_contact()
    cap = OUT / f"cassandra-bench-{PACKETS}.pcap"
    if not cap.exists():
        subprocess.run([TA, "generate", "--out", cap, "--packets", str(PACKETS), "--endpoints", "50",
                        "--seed", "42"], check=True, stdout=subprocess.DEVNULL)
    truth = json.loads(pathlib.Path(f"{cap}.truth.json").read_text())
    rows = sum(e["packets"] for e in truth["endpoints"])
    results = [ours(contact, cap, rows)] + baselines(contact, rows)
    drop(contact, "bench_ours")
    drop(contact, "bench_peers")
    py = next((r for r in results if r["method"].startswith("python")), None)
    print(f"{'method':45} {'rows':>9} {'seconds':>9} {'rows/s':>10} {'vs python':>10}")
    for r in results:
        ratio = r["rows_per_s"] / py["rows_per_s"] if py else float("nan")
        print(f"{r['method']:45} {r['rows']:>9} {r['seconds']:>9.2f} {r['rows_per_s']:>10.0f} {ratio:>9.1f}x")
    (OUT / "cassandra.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
