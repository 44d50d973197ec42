"""Golden end-to-end tests of flow naming (the README's Contract B, the default):
traffic-analyzer against tests/e2e/flow_reference.py, an independent
implementation of the contract over tshark's dissection.

For every capture in tests/data, `analyze` into a fresh SQLite store; then
`query endpoints` (sent and received packets and bytes, first and last seen,
packets per name source) and `query flows` (ends, name, source, counts) must
equal the reference exactly, and analyzing the same file again must change
nothing.
"""
import json
import os
import pathlib
import subprocess

import pytest

from flow_reference import compute
from test_golden import us_to_rfc3339

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))

CAPTURES = sorted(p.name for p in DATA.iterdir() if p.suffix in (".pcap", ".pcapng"))


def ta(*args, check=True):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"traffic-analyzer {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


def endpoints_of(db, *extra):
    rows = json.loads(ta("query", "endpoints", "--store", f"sqlite:{db}", "--format", "json", *extra).stdout)
    return [{k: r[k] for k in ("endpoint", "packets", "bytes", "received_packets", "received_bytes",
                               "first_seen", "last_seen", "names")} for r in rows]


def flows_of(db):
    rows = json.loads(ta("query", "flows", "--store", f"sqlite:{db}", "--format", "json").stdout)
    return sorted((r["client"], r["client_port"], r["endpoint_address"], r["endpoint_port"], r["protocol"],
                   r["name"], r["name_source"], r["sent_packets"], r["sent_bytes"], r["received_packets"],
                   r["received_bytes"], r["first_seen"], r["last_seen"]) for r in rows)


def expected_endpoints(ref):
    return [{"endpoint": e["endpoint"], "packets": e["packets"], "bytes": e["bytes"],
             "received_packets": e["received_packets"], "received_bytes": e["received_bytes"],
             "first_seen": us_to_rfc3339(e["first_seen"]), "last_seen": us_to_rfc3339(e["last_seen"]),
             "names": e["names"]} for e in sorted(ref["endpoints"], key=lambda e: e["endpoint"])]


def expected_flows(ref):
    return sorted((f["client"], f["client_port"], f["endpoint_address"], f["endpoint_port"], f["protocol"],
                   f["name"], f["source"], f["sent_packets"], f["sent_bytes"], f["received_packets"],
                   f["received_bytes"], us_to_rfc3339(f["first_seen"]), us_to_rfc3339(f["last_seen"]))
                  for f in ref["flows"])


@pytest.mark.parametrize("capture", CAPTURES)
def test_capture_matches_the_reference(capture, tmp_path):
    db = tmp_path / "t.db"
    ta("analyze", "--store", f"sqlite:{db}", "--quiet", DATA / capture)
    ref = compute(str(DATA / capture))
    got = endpoints_of(db)
    assert got == expected_endpoints(ref)
    assert flows_of(db) == expected_flows(ref)
    # Analyzing it again changes nothing.
    ta("analyze", "--store", f"sqlite:{db}", "--quiet", DATA / capture)
    assert endpoints_of(db) == got


def test_ports_select_flows_by_the_endpoint_port(tmp_path):
    db = tmp_path / "t.db"
    capture = DATA / "ndpi_http_connect.pcap"
    ta("analyze", "--store", f"sqlite:{db}", "--quiet", "--ports", "443", capture)
    assert endpoints_of(db) == expected_endpoints(compute(str(capture), ports={443}))


def test_analyze_prints_the_share_of_each_name_source():
    r = ta("analyze", "--store", "none", DATA / "ndpi_http_connect.pcap")
    line = next(l for l in r.stdout.splitlines() if l.startswith("names "))
    ref = compute(str(DATA / "ndpi_http_connect.pcap"))
    total = sum(sum(e["names"].values()) for e in ref["endpoints"])
    sni = sum(e["names"]["sni"] for e in ref["endpoints"])
    assert f"of {total} counted packets" in line
    assert f"sni {100.0 * sni / total:.1f}%" in line
