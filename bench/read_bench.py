#!/usr/bin/env python3
"""Read benchmark: on one generated capture, in one run, every reader:

  analyze --store none         the whole pipeline, nothing stored (flow naming, the default)
  analyze --store none, dns    the same with --naming dns (DNS-only naming)
  analyze (SQLite)             the whole pipeline into a fresh SQLite file (flow naming)
  analyze (SQLite), dns        the same with --naming dns
  tshark fields                the original system's parse (its -Y filter and -e fields)
  ndpiReader -i FILE           nDPI's demo reader: flow table and protocol detection
  tcpdump -w /dev/null         tcpdump reading the file and writing it out again
  pcap floor                   a minimal libpcap loop that only counts packets

Each runs pinned with taskset; the best of N runs (tshark: one) is reported
as packets/s, the ratio to tshark, the share of the floor, the ratio to
ndpiReader, and peak RSS (the child's ru_maxrss).

The capture's name carries a fingerprint of the generator's output (the
hash of a small capture generated with the same options), so a capture
written by an older generator is never reused.

  PACKETS=1000000  capture size
  BENCH_CORES=0    cores the readers may use (taskset list)
  RUNS=3           runs per reader (tshark: one)
  TA=PATH          the traffic-analyzer binary (default: build/src/app/traffic-analyzer)
"""
import hashlib
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TA = pathlib.Path(os.environ.get("TA", ROOT / "build/src/app/traffic-analyzer"))
FLOOR = ROOT / "build/bench/pcap_floor"
OUT = ROOT / "bench/out"
PACKETS = int(os.environ.get("PACKETS", "1000000"))
CORES = os.environ.get("BENCH_CORES", "0")
RUNS = int(os.environ.get("RUNS", "3"))
GENERATE = ["--endpoints", "50", "--seed", "42"]

TSHARK_FILTER = ("(dns.qry.type == 1 && dns.flags.rcode == 0) || ip.proto == 6 || "
                 "(ip.proto == 17 && dns.qry.type != 28)")
TSHARK_FIELDS = ["_ws.col.Time", "ip.proto", "ip.dst", "tcp.port", "udp.port", "dns.a",
                 "dns.resp.name", "dns.flags.rcode"]


def measure(cmd, before=None, stdout_path=None):
    """(seconds, peak RSS in KiB) of one run in its own process; its
    standard output goes to stdout_path (default: nowhere)."""
    if before:
        before()
    # ru_maxrss of RUSAGE_CHILDREN is the max over all waited-for children,
    # so each measurement runs under a fresh intermediate process.
    probe = ("import resource,subprocess,sys,time;"
             "o=open(sys.argv[1],'wb') if sys.argv[1] else subprocess.DEVNULL;"
             "t=time.perf_counter();"
             "r=subprocess.run(sys.argv[2:],stdout=o,stderr=subprocess.PIPE);"
             "d=time.perf_counter()-t;"
             "print(d, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode);"
             "sys.stderr.write(r.stderr.decode(errors='replace')[-2000:])")
    r = subprocess.run([sys.executable, "-c", probe, str(stdout_path or ""), "taskset", "-c", CORES,
                        *map(str, cmd)], capture_output=True, text=True)
    secs, rss, rc = r.stdout.split()
    if rc != "0":
        raise SystemExit(f"{cmd[0]} failed ({rc}): {r.stderr}")
    return float(secs), int(rss)


def generator_fingerprint():
    """Hash of what the generator writes for a small capture with the same
    options: changes whenever the generator's output does."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = pathlib.Path(tmp) / "probe.pcap"
        subprocess.run([TA, "generate", "--out", probe, "--packets", "20000", *GENERATE],
                       check=True, stdout=subprocess.DEVNULL)
        h = hashlib.sha256()
        for f in (probe, pathlib.Path(str(probe) + ".truth.json")):
            h.update(f.read_bytes())
        return h.hexdigest()[:12]


def summary(cmd):
    """The lines of analyze's summary that say what flow naming did."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    keep = ("frames ", "names ", "flows: ")
    return [line for line in out.splitlines() if line.startswith(keep)]


def main():
    sys.stdout.reconfigure(line_buffering=True)
    OUT.mkdir(parents=True, exist_ok=True)
    cap = OUT / f"bench-{PACKETS}-{generator_fingerprint()}.pcap"
    if not cap.exists():
        subprocess.run([TA, "generate", "--out", cap, "--packets", str(PACKETS), *GENERATE],
                       check=True)
    db = OUT / "bench.db"
    ndpi_out = OUT / "ndpiReader.txt"

    def fresh_db():
        for suffix in ("", "-wal", "-shm"):
            pathlib.Path(str(db) + suffix).unlink(missing_ok=True)

    def analyze(store, naming):
        return [TA, "analyze", "--quiet", "--store", store, "--naming", naming, cap]

    sqlite = f"sqlite:{db}"
    # (name, command, before each run, runs, stdout file)
    readers = [
        ("analyze --store none", analyze("none", "flow"), None, RUNS, None),
        ("analyze --store none, dns", analyze("none", "dns"), None, RUNS, None),
        ("analyze (SQLite)", analyze(sqlite, "flow"), fresh_db, RUNS, None),
        ("analyze (SQLite), dns", analyze(sqlite, "dns"), fresh_db, RUNS, None),
        ("pcap floor", [FLOOR, cap], None, RUNS, None),
        ("tcpdump -w /dev/null", ["tcpdump", "-r", cap, "-w", "/dev/null"], None, RUNS, None),
        # ndpiReader's default output is a summary of ~60 lines (no per-flow
        # lines without -v); -q would print nothing, and we want its count.
        ("ndpiReader -i", ["ndpiReader", "-i", cap], None, RUNS, ndpi_out),
        ("tshark fields", ["tshark", "-r", cap, "-t", "ad", "-Y", TSHARK_FILTER, "-T", "fields",
                           *sum((["-e", f] for f in TSHARK_FIELDS), [])], None, 1, None),
    ]
    print(f"capture: {cap.name}: {PACKETS:,} packets, {cap.stat().st_size:,} bytes; "
          f"cores: {CORES}; best of {RUNS} (tshark: 1); load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {}
    for name, cmd, before, runs, out in readers:
        best = min((measure(cmd, before, out) for _ in range(runs)), key=lambda x: x[0])
        results[name] = best
        print(f"  {name:26} {best[0]:8.3f} s", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    ndpi_text = ndpi_out.read_text(errors="replace")
    m = re.search(r"IP packets:\s+(\d+)\s+of\s+(\d+) packets total", ndpi_text)
    flows = re.search(r"Unique flows:\s+(\d+)", ndpi_text)
    print(f"ndpiReader: {m.group(1) if m else '?'} IP packets of {m.group(2) if m else '?'} total, "
          f"{flows.group(1) if flows else '?'} flows")
    for naming in ("flow", "dns"):
        lines = summary([TA, "analyze", "--store", "none", "--naming", naming, cap])
        print(f"analyze --naming {naming}: " + " | ".join(lines))

    tshark = results["tshark fields"][0]
    floor = results["pcap floor"][0]
    ndpi = results["ndpiReader -i"][0]
    print()
    print(f"{'reader':26} {'packets/s':>13} {'x tshark':>9} {'of floor':>9} {'x ndpi':>7} "
          f"{'peak RSS':>10}")
    for name, (secs, rss) in results.items():
        print(f"{name:26} {PACKETS / secs:13,.0f} {tshark / secs:9.1f} {100 * floor / secs:8.0f}% "
              f"{ndpi / secs:7.2f} {rss / 1024:7.1f} MB")


if __name__ == "__main__":
    main()
