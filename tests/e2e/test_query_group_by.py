"""`query endpoints --group-by domain`: one row per registrable domain, the
sums of its endpoints' rows.

The store is made by `analyze` (schema and one endpoint, `a.test`), then
filled through SQLite with endpoints whose registrable domains are read off
the Public Suffix List by hand (co.uk is an ICANN suffix, github.io a
private one); the expected sums come from what was inserted.
"""
import json
import os
import pathlib
import sqlite3
import subprocess

from test_query_memory import SECOND, tiny_capture

HERE = pathlib.Path(__file__).resolve().parent
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))

# name -> (expected group, packets, bytes, received packets, address)
ENDPOINTS = {
    "rr1---sn-4g5e6nzz.googlevideo.com": ("googlevideo.com", 10, 1000, 1, [10, 1, 0, 1]),
    "rr5---sn-q4fl6nsy.googlevideo.com": ("googlevideo.com", 20, 2000, 2, [10, 1, 0, 2]),
    "www.example.co.uk": ("example.co.uk", 3, 300, 0, [10, 1, 0, 3]),
    "a.b.example.co.uk": ("example.co.uk", 4, 400, 0, [10, 1, 0, 3]),
    "foo.github.io": ("foo.github.io", 5, 500, 0, [10, 1, 0, 5]),
    "x.bar.github.io": ("bar.github.io", 6, 600, 0, [10, 1, 0, 6]),
    "co.uk": ("co.uk", 7, 700, 0, [10, 1, 0, 7]),
    "192.0.2.9": ("192.0.2.9", 8, 800, 0, [192, 0, 2, 9]),
}


def test_group_by_domain_sums_per_registrable_domain(tmp_path):
    cap = tmp_path / "tiny.pcap"
    tiny_capture(cap)
    db = tmp_path / "g.db"
    subprocess.run([BIN, "analyze", "-q", "--store", f"sqlite:{db}", str(cap)], check=True,
                   timeout=120)
    con = sqlite3.connect(db)
    with con:
        first_id = con.execute("SELECT coalesce(max(id), 0) + 1 FROM endpoints").fetchone()[0]
        for i, (name, (_, packets, nbytes, received, addr)) in enumerate(ENDPOINTS.items()):
            con.execute("INSERT INTO endpoints(id, name) VALUES(?, ?)", (first_id + i, name))
            con.execute(
                "INSERT INTO rollups(endpoint_id, second, address, packets, bytes, first_us, "
                "last_us, received_packets, received_bytes, names_none, names_sni, names_quic, "
                "names_http, names_dns) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, 0, 0, 0)",
                (first_id + i, SECOND, bytes(addr), packets, nbytes,
                 SECOND * 1_000_000 + i, SECOND * 1_000_000 + 100 + i, received, packets))
    con.close()

    expected = {}
    for i, (name, (group, packets, nbytes, received, addr)) in enumerate(ENDPOINTS.items()):
        g = expected.setdefault(group, {"packets": 0, "bytes": 0, "received_packets": 0,
                                        "sni": 0, "addresses": set(), "first": [], "last": []})
        g["packets"] += packets
        g["bytes"] += nbytes
        g["received_packets"] += received
        g["sni"] += packets
        g["addresses"].add(".".join(map(str, addr)))
        g["first"].append(SECOND * 1_000_000 + i)
        g["last"].append(SECOND * 1_000_000 + 100 + i)

    p = subprocess.run([BIN, "query", "endpoints", "--store", f"sqlite:{db}", "--group-by",
                        "domain", "--format", "json"], stdout=subprocess.PIPE, text=True,
                       timeout=120, check=True)
    rows = json.loads(p.stdout)
    names = [r["endpoint"] for r in rows]
    assert names == sorted(names)
    by_name = {r["endpoint"]: r for r in rows}
    assert set(by_name) == set(expected) | {"a.test"}
    for group, g in expected.items():
        r = by_name[group]
        assert (r["packets"], r["bytes"], r["received_packets"], r["names"]["sni"]) == (
            g["packets"], g["bytes"], g["received_packets"], g["sni"]), group
        assert r["addresses"] == sorted(g["addresses"]), group
    # The group's first and last seen are the earliest and latest of its rows.
    gv = by_name["googlevideo.com"]
    assert gv["first_seen"] == "2026-05-28T20:26:40.000000Z"  # SECOND + 0 us
    assert gv["last_seen"] == "2026-05-28T20:26:40.000101Z"   # SECOND + 101 us

    # The table: one line per group under the same header as host rows.
    t = subprocess.run([BIN, "query", "endpoints", "--store", f"sqlite:{db}", "--group-by",
                        "domain"], stdout=subprocess.PIPE, text=True, timeout=120, check=True)
    lines = t.stdout.splitlines()
    assert lines[0].startswith("ENDPOINT")
    assert [line.split()[0] for line in lines[1:]] == sorted(set(expected) | {"a.test"})
