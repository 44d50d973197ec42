#!/usr/bin/env python3
"""Writes fuzz/corpus/pipeline/ seeds from generated captures (see
fuzz/pipeline_fuzz.cpp for the input layout): for each link type, the first
frames of a capture (DNS over UDP, flows starting), a window around a DNS
exchange over TCP, and one around a fragmented response.

Usage: pipeline_seeds.py TRAFFIC_ANALYZER OUT_DIR
"""
import pathlib
import struct
import subprocess
import sys
import tempfile

LINKS = {"ethernet": 0, "sll": 1, "sll2": 2, "raw": 3, "null": 4}
HEAD = {"ethernet": 14, "sll": 16, "sll2": 20, "raw": 0, "null": 4}


def read_pcap(path):
    data = pathlib.Path(path).read_bytes()
    pos, frames = 24, []
    while pos + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, pos)
        frames.append((sec * 1_000_000 + usec, data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    return frames


def seed(mode, frames):
    out, prev = bytearray([mode]), frames[0][0]
    for ts, f in frames:
        step = min((ts - prev) // 1000, 254)
        prev = ts
        out += struct.pack(">HB", len(f), step) + f
    return bytes(out)


def ip_of(link, f):
    head = HEAD[link]
    if link in ("ethernet", "sll") and f[head - 2:head] == b"\x81\x00":
        head += 4
    if link == "sll2" and f[0:2] == b"\x81\x00":
        head += 4
    return f[head:]


def main():
    binary, out_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for link, index in LINKS.items():
            cap = pathlib.Path(tmp) / f"{link}.pcap"
            subprocess.run([binary, "generate", "--out", cap, "--packets", "3000", "--endpoints", "6",
                            "--seed", "9", "--link", link, "--dns-tcp", "--fragments"],
                           check=True, capture_output=True)
            frames = read_pcap(cap)
            (out_dir / f"{link}_start").write_bytes(seed(index, frames[:48]))
            (out_dir / f"{link}_start_dns_naming").write_bytes(seed(index | 0x08, frames[:48]))
            (out_dir / f"{link}_start_tiny_bounds").write_bytes(seed(index | 0x10, frames[:48]))
            for i, (_, f) in enumerate(frames):
                ip = ip_of(link, f)
                if ip[0] >> 4 == 4 and ip[9] == 6 and ip[20:22] == b"\x00\x35" and len(ip) > 40:
                    (out_dir / f"{link}_dns_over_tcp").write_bytes(seed(index, frames[i - 6:i + 8]))
                    break
            for i, (_, f) in enumerate(frames):
                ip = ip_of(link, f)
                if ip[0] >> 4 == 4 and ip[6] & 0x20:
                    (out_dir / f"{link}_fragments").write_bytes(seed(index, frames[i - 4:i + 6]))
                    break


if __name__ == "__main__":
    main()
