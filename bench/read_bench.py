#!/usr/bin/env python3
"""Read benchmark: on one generated capture, in one run, every reader:

  analyze --store none   the whole pipeline, nothing stored
  analyze (SQLite)       the whole pipeline into a fresh SQLite file
  tshark fields          the original system's parse (its -Y filter and -e fields)
  tcpdump -w /dev/null   tcpdump reading the file and writing it out again
  pcap floor             a minimal libpcap loop that only counts packets

Each runs pinned with taskset; the best of N runs (tshark: one) is reported
as packets/s, the ratio to tshark, the share of the floor, and peak RSS
(the child's ru_maxrss).
"""
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TA = ROOT / "build/src/app/traffic-analyzer"
FLOOR = ROOT / "build/bench/pcap_floor"
OUT = ROOT / "bench/out"
PACKETS = int(os.environ.get("PACKETS", "1000000"))
CORES = os.environ.get("BENCH_CORES", "0")
RUNS = int(os.environ.get("RUNS", "3"))

TSHARK_FILTER = ("(dns.qry.type == 1 && dns.flags.rcode == 0) || ip.proto == 6 || "
                 "(ip.proto == 17 && dns.qry.type != 28)")
TSHARK_FIELDS = ["_ws.col.Time", "ip.proto", "ip.dst", "tcp.port", "udp.port", "dns.a",
                 "dns.resp.name", "dns.flags.rcode"]


def measure(cmd, before=None):
    """(seconds, peak RSS in KiB) of one run in its own process."""
    if before:
        before()
    # ru_maxrss of RUSAGE_CHILDREN is the max over all waited-for children,
    # so each measurement runs under a fresh intermediate process.
    probe = ("import resource,subprocess,sys,time;t=time.perf_counter();"
             "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE);"
             "d=time.perf_counter()-t;"
             "print(d, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode);"
             "sys.stderr.write(r.stderr.decode(errors='replace')[-2000:])")
    r = subprocess.run([sys.executable, "-c", probe, "taskset", "-c", CORES, *map(str, cmd)],
                       capture_output=True, text=True)
    secs, rss, rc = r.stdout.split()
    if rc != "0":
        raise SystemExit(f"{cmd[0]} failed ({rc}): {r.stderr}")
    return float(secs), int(rss)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cap = OUT / f"bench-{PACKETS}.pcap"
    if not cap.exists():
        subprocess.run([TA, "generate", "--out", cap, "--packets", str(PACKETS), "--endpoints",
                        "50", "--seed", "42"], check=True)
    db = OUT / "bench.db"

    def fresh_db():
        for suffix in ("", "-wal", "-shm"):
            pathlib.Path(str(db) + suffix).unlink(missing_ok=True)

    readers = [
        ("analyze --store none", [TA, "analyze", "--quiet", "--store", "none", cap], None, RUNS),
        ("analyze (SQLite)", [TA, "analyze", "--quiet", "--store", f"sqlite:{db}", cap], fresh_db, RUNS),
        ("pcap floor", [FLOOR, cap], None, RUNS),
        ("tcpdump -w /dev/null", ["tcpdump", "-r", cap, "-w", "/dev/null"], None, RUNS),
        ("tshark fields", ["tshark", "-r", cap, "-t", "ad", "-Y", TSHARK_FILTER, "-T", "fields",
                           *sum((["-e", f] for f in TSHARK_FIELDS), [])], None, 1),
    ]
    print(f"capture: {cap.name}: {PACKETS:,} packets, {cap.stat().st_size:,} bytes; "
          f"cores: {CORES}; best of {RUNS} (tshark: 1)")
    results = {}
    for name, cmd, before, runs in readers:
        best = min((measure(cmd, before) for _ in range(runs)), key=lambda x: x[0])
        results[name] = best
        print(f"  {name:24} {best[0]:8.3f} s", flush=True)
    tshark = results["tshark fields"][0]
    floor = results["pcap floor"][0]
    print()
    print(f"{'reader':24} {'packets/s':>13} {'x tshark':>9} {'of floor':>9} {'peak RSS':>10}")
    for name, (secs, rss) in results.items():
        print(f"{name:24} {PACKETS / secs:13,.0f} {tshark / secs:9.1f} {100 * floor / secs:8.0f}% "
              f"{rss / 1024:7.1f} MB")


if __name__ == "__main__":
    main()
