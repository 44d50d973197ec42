#!/usr/bin/env python3
"""Flow-table flood (run by hand): a capture of N distinct flows, then the
time and peak RSS of `traffic-analyzer analyze --store none` on it at the
default bounds (--max-flows, --flow-idle-timeout), and the evictions the
summary reports ("flows: N, M evicted").

The capture is a port scan: one client (192.168.1.10, source port 40000)
sends one SYN to each of N distinct (address, port) pairs — 1,000 ports of
each of N/1,000 addresses in 10.0.0.0/8 — 10 microseconds apart, so every
packet opens a flow and no flow reaches the idle timeout. Each frame is the
smallest TCP SYN: Ethernet (14) + IPv4 (20, RFC 791) + TCP (20, RFC 9293)
= 54 bytes, plus the 16-byte pcap record header: 70 bytes a flow (10M flows:
700 MB). Checksums are real (RFC 1071, the TCP one over the RFC 9293
section 3.1 pseudo-header).

  python3 bench/flood_flows.py [--flows 10000000] [--out bench/out/flood-10000000.pcap]
                               [--keep] [--naming flow|dns ...]
  BENCH_CORES=0   the core analyze is pinned to (taskset list)
  TA=PATH         the traffic-analyzer binary (default: build/src/app/traffic-analyzer)
"""
import argparse
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TA = pathlib.Path(os.environ.get("TA", ROOT / "build/src/app/traffic-analyzer"))
CORES = os.environ.get("BENCH_CORES", "0")
RSS_TARGET_MB = 150

FRAME = 54
RECORD = 16 + FRAME
PORTS_PER_HOST = 1000
CLIENT = bytes([192, 168, 1, 10])
SPORT = 40000
SEQ = 0x12345678
WINDOW = 1024

# The whole record big-endian: a pcap file written in the writer's byte order
# may be either (the magic tells readers which), so one struct does it all.
# pcap record header: ts_sec, ts_usec, incl_len, orig_len; Ethernet: dst, src,
# type; IPv4: ver/ihl, tos, total length, id, flags/fragment, ttl, protocol,
# checksum, src, dst; TCP: sport, dport, seq, ack, offset, flags, window,
# checksum, urgent pointer.
REC = struct.Struct(">IIII 6s6sH BBHHHBBH4s4s HHIIBBHHH")
ETH_DST = bytes.fromhex("020000000002")
ETH_SRC = bytes.fromhex("020000000001")


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def words(b):
    return sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))


def write_capture(path, flows):
    # Sums of the fields that do not change from packet to packet; each
    # packet adds its destination address (and, for TCP, its port).
    ip_fixed = 0x4500 + (20 + 20) + 0 + 0x4000 + (64 << 8 | 6) + words(CLIENT)
    tcp_fixed = (words(CLIENT) + 6 + 20 +  # pseudo-header: src, zero/protocol, TCP length
                 SPORT + (SEQ >> 16) + (SEQ & 0xFFFF) + (5 << 12 | 0x02) + WINDOW)
    chunk_packets = 1 << 14
    buf = bytearray(chunk_packets * RECORD)
    with open(path, "wb") as f:
        # pcap global header: magic, version 2.4, thiszone, sigfigs, snaplen, Ethernet.
        f.write(struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        base_sec = 1_700_000_000
        n = 0
        for i in range(flows):
            host, port = divmod(i, PORTS_PER_HOST)
            addr = 0x0A000001 + host  # 10.0.0.1 upwards
            port += 1
            a_hi, a_lo = addr >> 16, addr & 0xFFFF
            ip_sum = 0xFFFF - fold(ip_fixed + a_hi + a_lo)
            tcp_sum = 0xFFFF - fold(tcp_fixed + a_hi + a_lo + port)
            usec = i * 10
            REC.pack_into(buf, n * RECORD, base_sec + usec // 1_000_000, usec % 1_000_000, FRAME,
                          FRAME, ETH_DST, ETH_SRC, 0x0800, 0x45, 0, 40, 0, 0x4000, 64, 6, ip_sum,
                          CLIENT, addr.to_bytes(4, "big"), SPORT, port, SEQ, 0, 5 << 4, 0x02,
                          WINDOW, tcp_sum, 0)
            n += 1
            if n == chunk_packets:
                f.write(buf)
                n = 0
        f.write(memoryview(buf)[:n * RECORD])


def measure(cmd):
    """(seconds, peak RSS in KiB, standard output) of one pinned run."""
    probe = ("import resource,subprocess,sys,time;t=time.perf_counter();"
             "r=subprocess.run(sys.argv[1:],capture_output=True);"
             "d=time.perf_counter()-t;"
             "sys.stderr.write(r.stdout.decode(errors='replace'));"
             "print(d, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    r = subprocess.run([sys.executable, "-c", probe, "taskset", "-c", CORES, *map(str, cmd)],
                       capture_output=True, text=True)
    secs, rss, rc = r.stdout.split()
    if rc != "0":
        raise SystemExit(f"{cmd[0]} failed ({rc}): {r.stderr[-2000:]}")
    return float(secs), int(rss), r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=10_000_000)
    ap.add_argument("--out", type=pathlib.Path)
    ap.add_argument("--keep", action="store_true", help="keep the capture (default: delete it)")
    ap.add_argument("--naming", nargs="+", default=["flow"], choices=["flow", "dns"])
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    out = args.out or ROOT / f"bench/out/flood-{args.flows}.pcap"
    out.parent.mkdir(parents=True, exist_ok=True)
    size = 24 + args.flows * RECORD
    if not (out.exists() and out.stat().st_size == size):
        free = shutil.disk_usage(out.parent).free
        if free < size + (1 << 30):
            raise SystemExit(f"{out.parent}: {free / 1e9:.1f} GB free, the capture needs "
                             f"{size / 1e9:.1f} GB (and 1 GB to spare)")
        print(f"writing {out} ({args.flows:,} SYNs, {size / 1e6:,.0f} MB)")
        write_capture(out, args.flows)
    print(f"capture: {out.name}: {args.flows:,} flows, {size:,} bytes; core {CORES}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        for naming in args.naming:
            secs, rss, text = measure([TA, "analyze", "--store", "none", "--naming", naming, out])
            m = re.search(r"^flows: (\d+), (\d+) evicted", text, re.M)
            flows = f"flows {int(m.group(1)):,}, evicted {int(m.group(2)):,}" if m else "no flows line"
            verdict = "met" if rss / 1024 <= RSS_TARGET_MB else "MISSED"
            print(f"analyze --store none --naming {naming}: {secs:.2f} s "
                  f"({args.flows / secs:,.0f} packets/s), peak RSS {rss / 1024:.1f} MB "
                  f"(target <= {RSS_TARGET_MB} MB: {verdict}); {flows}")
            for line in text.splitlines():
                if line.startswith(("frames ", "skipped:", "names ", "flows: ")):
                    print(f"  {line}")
    finally:
        if not args.keep:
            out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
