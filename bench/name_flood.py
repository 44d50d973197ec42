#!/usr/bin/env python3
"""Random-subdomain flood (run by hand, not a test): memory of the
long-running modes must not grow with the names they see.

Writes rotated capture files of a name flood into a folder and runs
`traffic-analyzer watch --dns-table-size 1000` over them into a fresh SQLite
store, sampling its RSS; then the same with only normal traffic (the ingest
speed beside it); then `query endpoints --format json` over the flooded store
(one endpoint per flood name) under /usr/bin/time -v for its peak RSS and
time.

Flood: each flood name `r<hex>.flood.test` gets one DNS response (A record,
an address of its own in 10.128.0.0/9) to the client 192.168.1.10, then the
client sends one TCP packet with 8 bytes of payload to that address, port
80, so the endpoint is named by DNS and counted. Normal traffic: 20 names in
10.0.0.0/24, answered once per file, each then getting TCP packets with
payload. Frames: Ethernet II, IPv4 (RFC 791), UDP (RFC 768) or TCP (RFC
9293, checksum 0: the analyzer does not verify it), DNS (RFC 1035, one
question, one A answer with a compressed name pointer).

  python3 bench/name_flood.py [--names 2000000] [--per-file 50000] [--workdir bench/out/flood]
  TA=PATH   the traffic-analyzer binary (default: build/src/app/traffic-analyzer)
"""
import argparse
import os
import pathlib
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TA = pathlib.Path(os.environ.get("TA", ROOT / "build/src/app/traffic-analyzer"))
RSS_TARGET_MB = 150

CLIENT = bytes([192, 168, 1, 10])
RESOLVER = bytes([192, 168, 1, 1])
MAC_A = b"\x02\x00\x00\x00\x00\x01"
MAC_B = b"\x02\x00\x00\x00\x00\x02"
NORMAL_NAMES = [f"site{i}.normal.test" for i in range(20)]


def ipv4(src, dst, proto, payload):
    total = 20 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, proto, 0, src, dst)
    s = sum(struct.unpack("!10H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    hdr = hdr[:10] + struct.pack("!H", ~s & 0xFFFF) + hdr[12:]
    return MAC_B + MAC_A + b"\x08\x00" + hdr + payload


def udp(src, dst, sport, dport, payload):
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def tcp(src, dst, sport, dport, seq, payload):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, 0x18, 65535, 0, 0)
    return ipv4(src, dst, 6, h + payload)


def qname(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def dns_response(txid, name, addr):
    q = qname(name)
    msg = struct.pack("!HHHHHH", txid & 0xFFFF, 0x8180, 1, 1, 0, 0) + q + b"\x00\x01\x00\x01"
    msg += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + addr
    return udp(RESOLVER, CLIENT, 53, 40000 + (txid % 20000), msg)


class Pcap:
    """A classic pcap file (microsecond stamps, LINKTYPE_ETHERNET)."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.frames = 0

    def add(self, ts_us, frame):
        self.f.write(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)))
        self.f.write(frame)
        self.frames += 1

    def close(self):
        self.f.close()


class Traffic:
    """Endless traffic: `flood` distinct names per file plus normal packets."""

    def __init__(self, seed=1, start_us=1_780_000_000_000_000):
        self.rng = random.Random(seed)
        self.ts = start_us
        self.serial = 0
        self.seq = 1

    def write_file(self, path, flood, normal):
        p = Pcap(path)
        # Normal names answered at the start of every file: their addresses
        # stay learnt (latest answer wins) however much the flood evicts.
        for i, name in enumerate(NORMAL_NAMES):
            self.ts += 10
            p.add(self.ts, dns_response(i, name, bytes([10, 0, 0, 1 + i])))
        total = max(flood, normal)
        for k in range(total):
            if k < flood:
                self.serial += 1
                n = self.serial
                addr = bytes([10, 128 + ((n >> 16) & 0x7F), (n >> 8) & 0xFF, n & 0xFF])
                name = f"r{self.rng.getrandbits(48):012x}.flood.test"
                self.ts += 5
                p.add(self.ts, dns_response(n, name, addr))
                self.ts += 5
                p.add(self.ts, tcp(CLIENT, addr, 50000 + (n % 10000), 80, self.seq, b"flood-xx"))
            if k < normal:
                i = k % len(NORMAL_NAMES)
                self.ts += 5
                self.seq += 64
                p.add(self.ts, tcp(CLIENT, bytes([10, 0, 0, 1 + i]), 41000 + i, 80, self.seq, b"G" * 64))
        p.close()
        return p.frames


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_watch(folder, store, files, extra=()):
    """watch --delete-after over `folder` until `files` are ingested; returns
    (seconds from first to last ingest, max RSS KB, stderr lines)."""
    cmd = [str(TA), "watch", str(folder), "--delete-after", "--store", f"sqlite:{store}",
           "--dns-table-size", "1000", "--settle", "0", "--metrics-listen", "127.0.0.1:0", *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    lines, stamps = [], []

    def reader():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "ingested" in line:
                stamps.append(time.monotonic())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    peak = 0
    deadline = time.monotonic() + 3600
    try:
        while len(stamps) < files and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            peak = max(peak, rss_kb(proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    ingested = len(stamps)
    first, last = (stamps[0], stamps[-1]) if stamps else (None, None)
    if ingested < files:
        sys.exit(f"watch ingested {ingested} of {files} files: {lines[-5:]}")
    return (last - first) if first else 0.0, peak, lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--names", type=int, default=2_000_000)
    ap.add_argument("--per-file", type=int, default=50_000)
    ap.add_argument("--workdir", default=str(ROOT / "bench/out/flood"))
    ap.add_argument("--watch-arg", action="append", default=[],
                    help="an extra argument for watch (repeatable), e.g. --watch-arg=--max-flows=16384")
    args = ap.parse_args()
    work = pathlib.Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "in").mkdir(parents=True)
    files = (args.names + args.per_file - 1) // args.per_file
    results = {}
    for kind in ("normal", "flood"):
        staging = work / f"stage-{kind}"
        staging.mkdir()
        t = Traffic(seed=7)
        frames = 0
        for i in range(files):
            flood = args.per_file if kind == "flood" else 0
            frames += t.write_file(staging / f"{i:05d}.pcap", flood, args.per_file if kind == "normal" else args.per_file // 4)
        store = work / f"{kind}.db"
        # The files arrive as a rotating capture's would: moved in, one by one,
        # while watch runs; the first file's ingest starts the clock, so each
        # file's own frames are what is timed beyond the first.
        for f in sorted(staging.iterdir()):
            os.rename(f, work / "in" / f.name)
        secs, peak, _ = run_watch(work / "in", store, files, args.watch_arg)
        per_file = frames / files
        rate = per_file * (files - 1) / secs if secs > 0 else 0
        results[kind] = (frames, secs, peak, rate)
        print(f"{kind}: {files} files, {frames} frames, {secs:.1f} s after the first file, "
              f"{rate:,.0f} packets/s, peak RSS {peak / 1024:.1f} MB", flush=True)
    t0 = time.monotonic()
    q = subprocess.run(["/usr/bin/time", "-v", str(TA), "query", "endpoints", "--store",
                        f"sqlite:{work / 'flood.db'}", "--format", "json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
    secs = time.monotonic() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", q.stderr)
    rows = q.stdout.count('"endpoint":')
    print(f"query endpoints --format json: {rows} endpoints, {secs:.1f} s, "
          f"peak RSS {int(m.group(1)) / 1024:.1f} MB", flush=True)
    peak_mb = results["flood"][2] / 1024
    print(f"watch {' '.join(args.watch_arg)} through {args.names} names at --dns-table-size 1000: peak RSS {peak_mb:.1f} MB "
          f"({'under' if peak_mb < RSS_TARGET_MB else 'OVER'} {RSS_TARGET_MB} MB)")
    return 0 if peak_mb < RSS_TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
