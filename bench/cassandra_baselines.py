#!/usr/bin/env python3
"""The peers of the Cassandra write benchmark: how fast rows of the packet
table go into Cassandra by

  python-driver   the DataStax/Apache Python driver's
                  execute_concurrent_with_args with one prepared INSERT, at
                  each --concurrency (default 100 and 500); the best is
                  reported, every one is listed under "tried"
  cqlsh-per-row   the original system's way: one `cqlsh -e "INSERT ..."`
                  process per row, timed on a short sample (--cqlsh-sample,
                  default 20 rows) and extrapolated to rows/s

into KS.bench_packets (created if missing, truncated before each method).
Rows come from --input FILE.jsonl (one object per line with the table's
columns; at most --rows of them) or --generate N (deterministic rows).
One JSON object per method on stdout:
  {"method": ..., "rows": ..., "seconds": ..., "rows_per_s": ...}

  scripts/cassandra-node start
  bench/cassandra_baselines.py --contact 127.0.0.1:9042 --generate 100000
"""
import argparse
import ipaddress
import json
import random
import shutil
import subprocess
import sys
import time

COLUMNS = ["endpoint", "bucket", "ts_us", "agent", "source", "frame", "address", "port",
           "protocol", "bytes"]
TEXT = {"endpoint", "agent"}
TABLE = "bench_packets"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {ks}.bench_packets (endpoint text, bucket int, ts_us bigint, "
    "agent text, source bigint, frame bigint, address inet, port int, protocol int, bytes int, "
    "PRIMARY KEY ((endpoint, bucket), ts_us, agent, source, frame)) "
    "WITH CLUSTERING ORDER BY (ts_us DESC, agent ASC, source ASC, frame ASC)")
# One bucket per hour of capture time.
BUCKET_US = 3600 * 1_000_000


def generate(n, seed=42, endpoints=50):
    """n distinct rows: a capture of ~1,000 packets/s from one agent over
    `endpoints` endpoints (a few unresolved, as ""), TCP and UDP."""
    rnd = random.Random(seed)
    names = [""] + [f"host{i}.example.{rnd.choice(['com', 'net', 'org'])}"
                    for i in range(1, endpoints)]
    addrs = [str(ipaddress.IPv4Address(rnd.randrange(0x01000000, 0xDF000000)))
             for _ in range(endpoints)]
    ts = 1_700_000_000_000_000
    rows = []
    for frame in range(1, n + 1):
        ts += rnd.randrange(1, 2000)
        e = rnd.randrange(endpoints)
        proto = 6 if rnd.random() < 0.8 else 17
        port = rnd.choice([443, 80, 8080]) if proto == 6 else rnd.choice([53, 443, 123])
        rows.append((names[e], ts // BUCKET_US, ts, "agent-1", 1, frame, addrs[e], port, proto,
                     rnd.randrange(54, 1515)))
    return rows


def read_jsonl(path, limit):
    rows = []
    with open(path) as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            line = line.strip()
            if not line:
                continue
            o = json.loads(line)
            missing = [c for c in COLUMNS if c not in o]
            if missing:
                raise SystemExit(f"{path}: row {len(rows) + 1} lacks {', '.join(missing)}")
            rows.append(tuple(o[c] for c in COLUMNS))
    return rows


def cql_literal(column, value):
    if value is None:
        return "null"
    if column in TEXT or column == "address":
        return "'" + str(value).replace("'", "''") + "'"
    return str(int(value))


def insert_statement(ks, row):
    values = ", ".join(cql_literal(c, v) for c, v in zip(COLUMNS, row))
    return f"INSERT INTO {ks}.{TABLE} ({', '.join(COLUMNS)}) VALUES ({values})"


class Node:
    def __init__(self, args):
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy
        self.host, port = args.contact.rsplit(":", 1)
        self.port = int(port)
        profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=60)
        self.cluster = Cluster([self.host], port=self.port, protocol_version=5,
                               auth_provider=PlainTextAuthProvider(args.user, args.password),
                               execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                               connect_timeout=10)
        self.session = self.cluster.connect()
        self.ks = args.keyspace
        self.session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {self.ks} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        self.session.execute(SCHEMA.format(ks=self.ks))
        self.cluster.control_connection.wait_for_schema_agreement()

    def truncate(self):
        self.session.execute(f"TRUNCATE {self.ks}.{TABLE}", timeout=120)

    def count(self):
        return self.session.execute(f"SELECT COUNT(*) FROM {self.ks}.{TABLE}",
                                    timeout=300).one()[0]

    def close(self):
        self.cluster.shutdown()


def bench_driver(node, rows, concurrencies, verify, warmup):
    from cassandra.concurrent import execute_concurrent_with_args
    insert = node.session.prepare(
        f"INSERT INTO {node.ks}.{TABLE} ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(COLUMNS))})")
    if warmup:
        # The node's JIT and the driver's pools warm up first, untimed.
        node.truncate()
        for _ in execute_concurrent_with_args(node.session, insert, rows[:warmup],
                                              concurrency=max(concurrencies),
                                              raise_on_first_error=True, results_generator=True):
            pass
    tried = []
    for c in concurrencies:
        node.truncate()
        t0 = time.perf_counter()
        results = execute_concurrent_with_args(node.session, insert, rows, concurrency=c,
                                               raise_on_first_error=True, results_generator=True)
        for _ in results:
            pass
        secs = time.perf_counter() - t0
        run = {"concurrency": c, "seconds": round(secs, 3), "rows_per_s": round(len(rows) / secs)}
        if verify:
            run["stored"] = node.count()
        tried.append(run)
        print(f"python-driver concurrency {c}: {run['rows_per_s']} rows/s", file=sys.stderr)
    best = max(tried, key=lambda r: r["rows_per_s"])
    return {"method": "python-driver execute_concurrent_with_args", "rows": len(rows),
            "seconds": best["seconds"], "rows_per_s": best["rows_per_s"],
            "concurrency": best["concurrency"], "tried": tried,
            "connection_class": node.cluster.connection_class.__name__}


def bench_cqlsh(node, rows, args):
    cqlsh = shutil.which("cqlsh")
    if cqlsh is None:
        raise SystemExit("cqlsh not found (scripts/install-deps installs it)")
    sample = rows[:args.cqlsh_sample]
    node.truncate()
    base = [cqlsh, node.host, str(node.port), "-u", args.user, "-p", args.password]
    t0 = time.perf_counter()
    for row in sample:
        r = subprocess.run([*base, "-e", insert_statement(node.ks, row)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"cqlsh failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    secs = time.perf_counter() - t0
    out = {"method": "cqlsh -e per row", "rows": len(sample), "seconds": round(secs, 3),
           "rows_per_s": round(len(sample) / secs, 2), "extrapolated": True,
           "seconds_for_all_rows": round(len(rows) * secs / len(sample), 1)}
    if args.verify:
        out["stored"] = node.count()
    print(f"cqlsh per row: {out['rows_per_s']} rows/s", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contact", default="127.0.0.1:9042", help="HOST:PORT of the node")
    ap.add_argument("--user", default="cassandra")
    ap.add_argument("--password", default="cassandra")
    ap.add_argument("--keyspace", default="ta_bench")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--input", help="rows as JSON lines (the table's columns)")
    src.add_argument("--generate", type=int, metavar="N", help="generate N rows (default 100000)")
    ap.add_argument("--rows", type=int, metavar="N", help="use at most N rows of --input")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--concurrency", default="100,500",
                    help="comma-separated concurrencies for the driver (best is reported)")
    ap.add_argument("--cqlsh-sample", type=int, default=20, metavar="N",
                    help="rows written by cqlsh, one process each")
    ap.add_argument("--methods", default="python-driver,cqlsh",
                    help="comma-separated subset of python-driver,cqlsh")
    ap.add_argument("--warmup", type=int, default=20_000, metavar="N",
                    help="rows written (untimed, then truncated) before the driver's runs")
    ap.add_argument("--verify", action="store_true",
                    help="count the stored rows after each run (SELECT COUNT(*))")
    ap.add_argument("--keep", action="store_true", help="keep the rows of the last method")
    args = ap.parse_args()

    if args.input:
        rows = read_jsonl(args.input, args.rows)
    else:
        rows = generate(args.generate or args.rows or 100_000, seed=args.seed)
    if not rows:
        raise SystemExit("no rows")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - {"python-driver", "cqlsh"}
    if unknown:
        raise SystemExit(f"unknown method(s): {', '.join(sorted(unknown))}")
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    node = Node(args)
    try:
        for m in methods:
            if m == "python-driver":
                result = bench_driver(node, rows, concurrencies, args.verify, min(args.warmup, len(rows)))
            else:
                result = bench_cqlsh(node, rows, args)
            print(json.dumps(result), flush=True)
        if not args.keep:
            node.truncate()
    finally:
        node.close()


if __name__ == "__main__":
    main()
