"""Hostile names from the client's own handshake (README "What is counted",
flow naming): ClientHellos with 0, 2 or 100 server names, an over-long name,
and names with bytes outside letters, digits and hyphens must come out of
`analyze` and `query` as valid JSON and CSV, and never crash anything.

The capture is written here, byte by byte, so every case is explicit.
"""
import csv
import io
import json
import os
import pathlib
import subprocess

from frames import client_hello, ipv4_tcp, write_pcap

HERE = pathlib.Path(__file__).resolve().parent
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))


def ta(*args, check=True):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True)
    if check and r.returncode != 0:
        raise AssertionError(f"traffic-analyzer {args} exited {r.returncode}:\n{r.stderr!r}")
    return r








CASES = [
    None,                                                   # no server_name extension
    [],                                                     # an empty list
    [b"first.example", b"second.example"],                  # two: the first wins
    [b"n%d.example" % i for i in range(100)],               # a hundred
    [b"x" * 9000 + b".example"],                            # over-long, split over records
    [b"esc\x1b[31mred.example"],                            # a terminal escape
    [b"quo\"te,comma\nnew.example"],                        # JSON and CSV specials
    [b"bad\xff\xfeutf8.example"],                           # not UTF-8
    [b"nul\x00byte.example"],                               # a NUL
    [b"UPPER.Example."],                                    # case and the trailing dot
]


def test_hostile_server_names_come_out_as_valid_json_and_csv(tmp_path):
    frames = []
    for i, names in enumerate(CASES):
        client, server = [10, 0, 0, 2], [192, 0, 2, 10 + i]
        sport = 40000 + i
        frames.append(ipv4_tcp(client, server, sport, 443, 0x02, 999, b""))
        frames.append(ipv4_tcp(server, client, 443, sport, 0x12, 5000, b""))
        hello = client_hello(names)
        for off in range(0, len(hello), 1400):  # MSS-sized segments, in order
            frames.append(ipv4_tcp(client, server, sport, 443, 0x18, 1000 + off, hello[off:off + 1400]))
    cap = tmp_path / "hostile.pcap"
    write_pcap(cap, frames)
    db = tmp_path / "h.db"
    ta("analyze", "--quiet", "--store", f"sqlite:{db}", cap)
    rows = json.loads(ta("query", "endpoints", "--store", f"sqlite:{db}", "--format", "json").stdout)
    names = {row["endpoint"] for row in rows}
    assert "first.example" in names and "second.example" not in names
    assert "n0.example" in names and "n1.example" not in names
    assert "upper.example" in names
    assert any(n.startswith("x" * 100) and n.endswith(".example") for n in names)
    assert any("red.example" in n for n in names)
    # Every packet counted once, each flow under one name.
    assert sum(row["packets"] + row["received_packets"] for row in rows) == len(frames)
    flows = json.loads(ta("query", "flows", "--store", f"sqlite:{db}", "--format", "json").stdout)
    assert len(flows) == len(CASES)
    assert sum(1 for f in flows if f["name_source"] == "sni") == len(CASES) - 2  # None and []: no SNI
    for fmt in ("csv",):
        for what in ("endpoints", "flows"):
            # CSV, like JSON, writes names escaped (README "Names in output").
            out = ta("query", what, "--store", f"sqlite:{db}", "--format", fmt).stdout
            text = out.decode("utf-8", errors="surrogateescape")
            parsed = list(csv.reader(io.StringIO(text)))
            assert len({len(row) for row in parsed}) == 1, parsed  # one column count throughout
