#!/usr/bin/env python3
"""Write benchmark on a local Cassandra cluster: rows per second of one
generated capture, in one run (scripts/cassandra-cluster, own folder and
ports, so it does not meet the e2e tests' cluster):

  ours, 1 node        analyze into a 1-node cluster, keyspace RF 1, ONE
  ours, 3 nodes       analyze into 3 nodes (all three as contact points),
                      keyspace RF 3, QUORUM, --cassandra-routing token-aware
                      and then round-robin (same capture, same cluster)
  routing share       a `watch` agent per routing mode on a smaller capture,
                      /metrics scraped once every packet record is
                      acknowledged: traffic_cassandra_client_routed_total
                      {to="replica"} / (replica + other), summed over nodes;
                      in the RF 3 keyspace (3 nodes: every node is a replica
                      of every partition, so the share is 1 by construction)
                      and in an RF 1 keyspace on the same 3 nodes (one
                      replica per partition: there the share says whether
                      routing works; round robin should give about 1/3)
  python driver       cassandra-driver, TokenAwarePolicy(RoundRobinPolicy),
                      execute_concurrent_with_args (concurrency 500), one
                      prepared INSERT per packet row into bench_packets (the
                      packet table's columns, bench/cassandra_baselines.py),
                      rows generated with the capture's shape (50 endpoints,
                      one agent), RF 3, QUORUM, same 3 nodes; PY_ROWS rows
                      (fewer than the capture: the rate is what is compared,
                      and all of them would take many minutes)

Before timing, an untimed warm-up (1 node) or the routing-share runs (3
nodes) warm the JIT; the two routing modes are then timed in ABBA order and
the best of each is kept (both times are listed).

The 1-node cluster and the 3-node cluster run one after the other on the
same ports (never 4 JVMs on 2 cores). Rows are packet rows; ours also writes
roll-ups and the partition catalog, which are not counted. The nodes share
the machine's cores with the writer, so only ratios inside one run mean
anything. Results go to stdout and bench/out/cassandra_cluster.json; every
cluster is stopped and wiped at the end.

  PACKETS=1000000 PY_ROWS=100000 SHARE_PACKETS=100000 bench/cassandra_cluster_bench.py
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import cassandra_baselines  # noqa: E402  (the driver's table and rows)

TA = ROOT / "build/src/app/traffic-analyzer"
OUT = ROOT / "bench/out"
PACKETS = int(os.environ.get("PACKETS", "1000000"))
PY_ROWS = int(os.environ.get("PY_ROWS", "100000"))
SHARE_PACKETS = int(os.environ.get("SHARE_PACKETS", "100000"))
METRICS_PORT = int(os.environ.get("METRICS_PORT", "29109"))
USER, PASSWORD = "bench", "bench-pw"
# Ports and folder of our own (the e2e tests use 19042/17000/17200).
BASE_ENV = {
    "TA_CASSANDRA_PORT": "29042",
    "TA_CASSANDRA_STORAGE_PORT": "27000",
    "TA_CASSANDRA_JMX_BASE": "27200",
    "TA_CASSANDRA_ROLE": USER,
    "TA_CASSANDRA_ROLE_PASSWORD": PASSWORD,
}
ONE_ENV = dict(BASE_ENV, TA_CASSANDRA_CLUSTER_DIR=str(OUT / "cassandra-cluster-1"))
THREE_ENV = dict(BASE_ENV, TA_CASSANDRA_CLUSTER_DIR=str(OUT / "cassandra-cluster-3"))
TA_ENV = dict(os.environ, TRAFFIC_ANALYZER_CASSANDRA_PASSWORD=PASSWORD)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def script(name, *args, env=None):
    r = subprocess.run([ROOT / "scripts" / name, *args], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})), timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"{name} {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""


def session(contacts, token_aware=False):
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy
    policy = TokenAwarePolicy(RoundRobinPolicy()) if token_aware else RoundRobinPolicy()
    hosts = [c.rsplit(":", 1)[0] for c in contacts]
    cluster = Cluster(hosts, port=int(contacts[0].rsplit(":", 1)[1]), protocol_version=5,
                      auth_provider=PlainTextAuthProvider(USER, PASSWORD), connect_timeout=10,
                      execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(
                          load_balancing_policy=policy, request_timeout=60)})
    return cluster, cluster.connect()


def drop(contacts, keyspace):
    cluster, s = session(contacts)
    try:
        s.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    finally:
        cluster.shutdown()


def make_schema(contacts, ks, rf, consistency, tmp):
    """Keyspace and tables made outside the timed run by a tiny analyze
    (the client waits for schema agreement after its DDL)."""
    drop(contacts, ks)
    replication = f"{{'class': 'NetworkTopologyStrategy', 'datacenter1': {rf}}}"
    # A few tries: on a fresh cluster a statement was once prepared on a node
    # that did not have the new table yet ("table sources does not exist");
    # the DDL is idempotent (IF NOT EXISTS), so trying again is safe.
    for attempt in range(1, 4):
        r = subprocess.run([TA, "analyze", "--quiet", "--store",
                            f"cassandra://{USER}@{','.join(contacts)}/{ks}", "--replication", replication,
                            "--consistency", consistency, "--spool", f"{tmp}/warm{attempt}.db",
                            ROOT / "tests/data/arkime_v6.pcap"],
                           env=TA_ENV, capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            return
        log(f"schema in {ks}, try {attempt}: {r.stderr.strip()}")
        time.sleep(5)
    raise SystemExit(f"schema in {ks} failed: {r.stderr}")


def ours(contacts, cap, rows, rf, consistency, routing, label):
    ks = f"bench_ours_rf{rf}"
    store = f"cassandra://{USER}@{','.join(contacts)}/{ks}"
    with tempfile.TemporaryDirectory() as tmp:
        make_schema(contacts, ks, rf, consistency, tmp)
        log(f"{label}: sending {rows} rows")
        t = time.perf_counter()
        r = subprocess.run([TA, "analyze", "--quiet", "--store", store, "--consistency", consistency,
                            "--cassandra-routing", routing, "--spool", f"{tmp}/s.db", cap],
                           env=TA_ENV, capture_output=True, text=True, timeout=900)
        secs = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(f"analyze into Cassandra failed: {r.stderr}")
    drop(contacts, ks)
    log(f"{label}: {secs:.1f} s")
    return {"method": label, "rows": rows, "seconds": round(secs, 3), "rows_per_s": round(rows / secs)}


def scrape():
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as r:
        return r.read().decode()


def value(text, name):
    m = re.search(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else None


def routing_share(contacts, cap, rows, rf, consistency, routing):
    """One `watch` agent over a folder holding the capture; /metrics read once
    every packet record is acknowledged."""
    ks = f"bench_share_rf{rf}"
    with tempfile.TemporaryDirectory() as tmp:
        make_schema(contacts, ks, rf, consistency, tmp)
        d = pathlib.Path(tmp, "in")
        d.mkdir()
        (d / cap.name).write_bytes(cap.read_bytes())
        os.utime(d / cap.name, (time.time() - 60, time.time() - 60))  # closed long ago
        p = subprocess.Popen([TA, "watch", "--store",
                              f"cassandra://{USER}@{','.join(contacts)}/{ks}", "--consistency", consistency,
                              "--cassandra-routing", routing, "--spool", f"{tmp}/s.db", "--settle", "0",
                              "--metrics-listen", f"127.0.0.1:{METRICS_PORT}", d],
                             env=TA_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        text = ""
        try:
            for _ in range(600):  # at most ~5 min
                time.sleep(0.5)
                if p.poll() is not None:
                    raise SystemExit(f"watch exited: {p.stderr.read()}")
                try:
                    text = scrape()
                except OSError:
                    continue
                if (value(text, "traffic_cassandra_records_sent_total") or 0) >= rows:
                    break
            else:
                raise SystemExit("watch did not send every record in time")
        finally:
            p.terminate()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    drop(contacts, ks)
    per_node = {}
    for node, to, v in re.findall(
            r'^traffic_cassandra_client_routed_total\{node="([^"]+)",to="(replica|other)"\} ([0-9.e+]+)$',
            text, re.M):
        per_node.setdefault(node, {"replica": 0, "other": 0})[to] += float(v)
    replica = sum(n["replica"] for n in per_node.values())
    total = replica + sum(n["other"] for n in per_node.values())
    share = replica / total if total else float("nan")
    log(f"share RF {rf} {routing}: {share:.3f} of {total:.0f} requests")
    return {"keyspace_rf": rf, "routing": routing, "requests_routed": int(total),
            "to_replica": int(replica), "share": round(share, 4),
            "per_node": {k: {t: int(c) for t, c in v.items()} for k, v in sorted(per_node.items())}}


def python_driver(contacts, rows, concurrency=500):
    from cassandra import ConsistencyLevel
    from cassandra.concurrent import execute_concurrent_with_args
    data = cassandra_baselines.generate(rows)
    ks = "bench_peers_rf3"
    cluster, s = session(contacts, token_aware=True)
    try:
        s.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=120)
        s.execute(f"CREATE KEYSPACE {ks} WITH replication = "
                  "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}")
        s.execute(cassandra_baselines.SCHEMA.format(ks=ks))
        cluster.control_connection.wait_for_schema_agreement(wait_time=60)
        cols = cassandra_baselines.COLUMNS
        insert = s.prepare(f"INSERT INTO {ks}.{cassandra_baselines.TABLE} ({', '.join(cols)}) "
                           f"VALUES ({', '.join('?' * len(cols))})")
        insert.consistency_level = ConsistencyLevel.QUORUM
        log(f"python driver: sending {rows} rows")
        t = time.perf_counter()
        for ok, res in execute_concurrent_with_args(s, insert, data, concurrency=concurrency,
                                                    raise_on_first_error=True, results_generator=True):
            pass
        secs = time.perf_counter() - t
        s.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=120)
    finally:
        cluster.shutdown()
    log(f"python driver: {secs:.1f} s")
    return {"method": "python driver, token-aware, 3 nodes, RF 3, QUORUM", "rows": len(data),
            "seconds": round(secs, 3), "rows_per_s": round(len(data) / secs)}


def capture(packets):
    cap = OUT / f"cassandra-bench-{packets}.pcap"
    if not cap.exists():
        subprocess.run([TA, "generate", "--out", cap, "--packets", str(packets), "--endpoints", "50",
                        "--seed", "42"], check=True, stdout=subprocess.DEVNULL)
    truth = json.loads(pathlib.Path(f"{cap}.truth.json").read_text())
    return cap, sum(e["packets"] for e in truth["endpoints"])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cap, rows = capture(PACKETS)
    share_cap, share_rows = capture(SHARE_PACKETS)
    results, shares = [], []
    load = os.getloadavg()[0]
    try:
        log("starting 1 node")
        one = script("cassandra-cluster", "start", "1", env=ONE_ENV).split(",")
        # Untimed warm-up: the first write after a node starts is slow (cold JIT).
        ours(one, share_cap, share_rows, 1, "one", "token-aware", "warm-up, 1 node")
        results.append(ours(one, cap, rows, 1, "one", "token-aware", "ours, 1 node, RF 1, ONE"))
        script("cassandra-cluster", "stop", "--wipe", env=ONE_ENV)
        log("starting 3 nodes")
        three = script("cassandra-cluster", "start", "3", env=THREE_ENV).split(",")
        # The routing-share runs come first and warm the 3 nodes up.
        for rf, cl in ((3, "quorum"), (1, "one")):
            for routing in ("token-aware", "round-robin"):
                shares.append(routing_share(three, share_cap, share_rows, rf, cl, routing))
        # ABBA order, best of two each: the machine's load drifts during a run.
        tried = {"token-aware": [], "round-robin": []}
        for routing in ("token-aware", "round-robin", "round-robin", "token-aware"):
            tried[routing].append(ours(three, cap, rows, 3, "quorum", routing,
                                       f"ours, 3 nodes, RF 3, QUORUM, {routing}"))
        for routing, runs in tried.items():
            best = dict(min(runs, key=lambda r: r["seconds"]))
            best["tried_seconds"] = [r["seconds"] for r in runs]
            results.append(best)
        results.append(python_driver(three, PY_ROWS))
    finally:
        script("cassandra-cluster", "stop", "--wipe", env=ONE_ENV)
        script("cassandra-cluster", "stop", "--wipe", env=THREE_ENV)
    rate = {r["method"]: r["rows_per_s"] for r in results}
    py = results[-1]["rows_per_s"]
    print(f"load average at start {load:.1f}; whole bench {time.perf_counter() - t0:.0f} s")
    print(f"{'method':45} {'rows':>9} {'seconds':>9} {'rows/s':>10} {'vs python':>10}")
    for r in results:
        print(f"{r['method']:45} {r['rows']:>9} {r['seconds']:>9.2f} {r['rows_per_s']:>10} "
              f"{r['rows_per_s'] / py:>9.1f}x")
    ta3 = rate["ours, 3 nodes, RF 3, QUORUM, token-aware"]
    rr3 = rate["ours, 3 nodes, RF 3, QUORUM, round-robin"]
    ratios = {"3 nodes / 1 node (token-aware)": round(ta3 / rate["ours, 1 node, RF 1, ONE"], 2),
              "token-aware / round-robin (3 nodes)": round(ta3 / rr3, 2),
              "ours 3 nodes token-aware / python": round(ta3 / py, 2),
              "ours 3 nodes round-robin / python": round(rr3 / py, 2)}
    for k, v in ratios.items():
        print(f"{k:45} {v:>9.2f}x")
    print(f"{'routing share (requests to a replica)':45} {'requests':>9} {'replica':>9} {'share':>10}")
    for s in shares:
        print(f"{'RF %d, %s' % (s['keyspace_rf'], s['routing']):45} {s['requests_routed']:>9} "
              f"{s['to_replica']:>9} {s['share']:>10.3f}")
    (OUT / "cassandra_cluster.json").write_text(json.dumps(
        {"load_average_at_start": load, "results": results, "ratios": ratios, "routing_share": shares},
        indent=2))


if __name__ == "__main__":
    main()
