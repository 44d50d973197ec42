#!/usr/bin/env python3
"""Soak of `watch` under a random-subdomain flood (run by hand, not a test).

For --minutes (30) a producer writes a capture file every --every seconds
(--flood distinct flood names and --normal packets of 20 normal names each;
frames as in bench/name_flood.py) and moves it into a folder that
`traffic-analyzer watch --delete-after --dns-table-size 1000` ingests into a
fresh SQLite store. The watcher's RSS is sampled every 10 s and printed as
CSV (seconds,rss_kb,files_ingested); at the end: the minimum and maximum
after --warmup minutes, one sample every 60 s, and whether RSS stayed flat
(the maximum after warm-up at most --tolerance percent above the first
sample after warm-up).

  nice -n 10 python3 bench/soak_watch.py [--minutes 30] [--warmup 5] [--workdir bench/out/soak]
  TA=PATH   the traffic-analyzer binary (default: build/src/app/traffic-analyzer)
"""
import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from name_flood import TA, Traffic, rss_kb  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--every", type=float, default=2.0)
    ap.add_argument("--flood", type=int, default=5000)
    ap.add_argument("--normal", type=int, default=5000)
    ap.add_argument("--tolerance", type=float, default=10.0)
    ap.add_argument("--workdir", default=str(ROOT / "bench/out/soak"))
    args = ap.parse_args()
    work = pathlib.Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "in").mkdir(parents=True)
    (work / "stage").mkdir()
    log = open(work / "watch.log", "w")
    proc = subprocess.Popen(
        [str(TA), "watch", str(work / "in"), "--delete-after", "--settle", "0",
         "--store", f"sqlite:{work / 'soak.db'}", "--dns-table-size", "1000",
         "--metrics-listen", "127.0.0.1:0"], stderr=log)
    traffic = Traffic(seed=11)
    start = time.monotonic()
    end = start + args.minutes * 60
    next_file = start
    next_sample = start
    samples = []
    written = 0
    print("seconds,rss_kb,files_written,files_left", flush=True)
    try:
        while time.monotonic() < end and proc.poll() is None:
            now = time.monotonic()
            if now >= next_file:
                name = f"{written:06d}.pcap"
                traffic.write_file(work / "stage" / name, args.flood, args.normal)
                os.rename(work / "stage" / name, work / "in" / name)
                written += 1
                next_file += args.every
            if now >= next_sample:
                left = len(list((work / "in").iterdir()))
                rss = rss_kb(proc.pid)
                samples.append((now - start, rss))
                print(f"{now - start:.0f},{rss},{written},{left}", flush=True)
                next_sample += 10
            time.sleep(max(0.0, min(next_file, next_sample) - time.monotonic()))
        alive = proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    if not alive:
        sys.exit(f"watch exited early ({proc.returncode}); see {work / 'watch.log'}")
    after = [(t, r) for t, r in samples if t >= args.warmup * 60]
    if not after:
        sys.exit("no samples after warm-up")
    lo = min(r for _, r in after)
    hi = max(r for _, r in after)
    base = after[0][1]
    flat = hi <= base * (1 + args.tolerance / 100)
    names = written * args.flood
    print(f"\n{written} files, {names} flood names, {written * args.normal} normal packets "
          f"in {args.minutes:g} min; files left unread at the end: "
          f"{len(list((work / 'in').iterdir()))}")
    print(f"after {args.warmup:g} min warm-up: RSS min {lo / 1024:.1f} MiB, max {hi / 1024:.1f} MiB, "
          f"first {base / 1024:.1f} MiB")
    print("every 60 s (minute, MiB): " + ", ".join(
        f"{t / 60:.0f} {r / 1024:.1f}" for t, r in samples if round(t) % 60 < 10))
    print("flat after warm-up" if flat else
          f"NOT flat: grew more than {args.tolerance:g}% after warm-up")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
