#!/usr/bin/env python3
"""Write benchmark on a local Cassandra cluster (skeleton): rows per second
of one generated capture, in one run:

  ours, 1 node     analyze into the single node (scripts/cassandra-node),
                   keyspace RF 1, --consistency one
  ours, 3 nodes    analyze into scripts/cassandra-cluster's 3 nodes, all
                   three as contact points, keyspace RF 3, --consistency quorum
  python driver    cassandra-driver, token-aware (TokenAwarePolicy over
                   round robin), execute_concurrent_with_args with one
                   prepared INSERT per packet row (the table of
                   bench/cassandra_baselines.py), RF 3 at QUORUM, same cluster

Rows are packet rows. The nodes share the machine's cores with the writer,
and the single node runs only while the cluster is stopped (the other way
round would give 4 JVMs to 2 cores), so only ratios inside one run mean
anything. Not measured yet: token-aware vs round robin for our client and
the share of writes that went to a replica (they need the client's own
routing and its counters). Results go to stdout and
bench/out/cassandra_cluster.json.

  PACKETS=300000 RUNS=1 bench/cassandra_cluster_bench.py
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import cassandra_baselines  # noqa: E402  (the driver's table and rows)

TA = ROOT / "build/src/app/traffic-analyzer"
OUT = ROOT / "bench/out"
PACKETS = int(os.environ.get("PACKETS", "300000"))
RUNS = int(os.environ.get("RUNS", "1"))
USER, PASSWORD = "bench", "bench-pw"
CLUSTER_ENV = {
    "TA_CASSANDRA_CLUSTER_DIR": str(ROOT / "build-cassandra-cluster-bench"),
    "TA_CASSANDRA_PORT": "29042",
    "TA_CASSANDRA_STORAGE_PORT": "27000",
    "TA_CASSANDRA_JMX_BASE": "27200",
    "TA_CASSANDRA_ROLE": USER,
    "TA_CASSANDRA_ROLE_PASSWORD": PASSWORD,
}
NODE_ENV = {"TA_CASSANDRA_ROLE": USER, "TA_CASSANDRA_ROLE_PASSWORD": PASSWORD}


def script(name, *args, env=None):
    r = subprocess.run([ROOT / "scripts" / name, *args], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})))
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
    finally:
        cluster.shutdown()


def ours(contacts, cap, rows, rf, consistency, label):
    best = None
    ks = f"bench_ours_rf{rf}"
    replication = f"{{'class': 'NetworkTopologyStrategy', 'datacenter1': {rf}}}"
    store = f"cassandra://{USER}@{','.join(contacts)}/{ks}"
    env = dict(os.environ, TRAFFIC_ANALYZER_CASSANDRA_PASSWORD=PASSWORD)
    for _ in range(RUNS):
        drop(contacts, ks)
        with tempfile.TemporaryDirectory() as tmp:
            # The schema is made outside the timed run, through one node (the
            # client does not wait for schema agreement yet), then agreed.
            subprocess.run([TA, "analyze", "--quiet", "--store", f"cassandra://{USER}@{contacts[0]}/{ks}",
                            "--replication", replication, "--consistency", consistency,
                            "--spool", f"{tmp}/warm.db", ROOT / "tests/data/arkime_v6.pcap"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cluster, _ = session(contacts)
            cluster.control_connection.wait_for_schema_agreement(wait_time=60)
            cluster.shutdown()
            t = time.perf_counter()
            r = subprocess.run([TA, "analyze", "--quiet", "--store", store, "--consistency", consistency,
                                "--spool", f"{tmp}/s.db", cap], env=env, capture_output=True, text=True)
            secs = time.perf_counter() - t
            if r.returncode != 0:
                raise SystemExit(f"analyze into Cassandra failed: {r.stderr}")
        best = secs if best is None else min(best, secs)
    drop(contacts, ks)
    return {"method": label, "rows": rows, "seconds": round(best, 3), "rows_per_s": round(rows / best)}


def python_driver(contacts, rows, concurrency=500):
    from cassandra import ConsistencyLevel
    from cassandra.concurrent import execute_concurrent_with_args
    data = cassandra_baselines.generate(rows)
    ks = "bench_peers_rf3"
    cluster, s = session(contacts, token_aware=True)
    try:
        s.execute(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
                  "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}")
        s.execute(cassandra_baselines.SCHEMA.format(ks=ks))
        cluster.control_connection.wait_for_schema_agreement()
        cols = cassandra_baselines.COLUMNS
        insert = s.prepare(f"INSERT INTO {ks}.{cassandra_baselines.TABLE} ({', '.join(cols)}) "
                           f"VALUES ({', '.join('?' * len(cols))})")
        insert.consistency_level = ConsistencyLevel.QUORUM
        t = time.perf_counter()
        for _ in execute_concurrent_with_args(s, insert, data, concurrency=concurrency,
                                              raise_on_first_error=True, results_generator=True):
            pass
        secs = time.perf_counter() - t
        s.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=120)
    finally:
        cluster.shutdown()
    return {"method": "python driver, token-aware, 3 nodes, QUORUM", "rows": len(data),
            "seconds": round(secs, 3), "rows_per_s": round(len(data) / secs)}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cap = OUT / f"cassandra-bench-{PACKETS}.pcap"
    if not cap.exists():
        subprocess.run([TA, "generate", "--out", cap, "--packets", str(PACKETS), "--endpoints", "50",
                        "--seed", "42"], check=True, stdout=subprocess.DEVNULL)
    truth = json.loads(pathlib.Path(f"{cap}.truth.json").read_text())
    rows = sum(e["packets"] for e in truth["endpoints"])
    results = []
    # One node (the cluster stopped meanwhile).
    script("cassandra-cluster", "stop", env=CLUSTER_ENV)
    was_running = subprocess.run([ROOT / "scripts/cassandra-node", "status"], capture_output=True).returncode == 0
    one = script("cassandra-node", "start", env=NODE_ENV)
    try:
        results.append(ours([one], cap, rows, 1, "one", "ours, 1 node, RF 1, ONE"))
    finally:
        if not was_running:
            script("cassandra-node", "stop")
    # Three nodes.
    contacts = script("cassandra-cluster", "start", "3", env=CLUSTER_ENV).split(",")
    try:
        results.append(ours(contacts, cap, rows, 3, "quorum", "ours, 3 nodes, RF 3, QUORUM"))
        results.append(python_driver(contacts, rows))
    finally:
        script("cassandra-cluster", "stop", env=CLUSTER_ENV)
    py = results[-1]["rows_per_s"]
    print(f"{'method':45} {'rows':>9} {'seconds':>9} {'rows/s':>10} {'vs python':>10}")
    for r in results:
        print(f"{r['method']:45} {r['rows']:>9} {r['seconds']:>9.2f} {r['rows_per_s']:>10} "
              f"{r['rows_per_s'] / py:>9.1f}x")
    (OUT / "cassandra_cluster.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
