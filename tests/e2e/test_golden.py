"""Golden end-to-end tests: traffic-analyzer against tshark's dissection.

For every capture in tests/data (and generated ones written here with fixed
seeds), `analyze` into a fresh SQLite store, then `query endpoints` and
`query addresses` must equal tests/e2e/tshark_reference.py on the same file,
and analyzing the same file again must change nothing.
"""
import csv
import io
import json
import os
import pathlib
import struct
import subprocess

import pytest

from tshark_reference import compute

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))

CAPTURES = sorted(p.name for p in DATA.iterdir() if p.suffix in (".pcap", ".pcapng"))


def ta(*args, check=True):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"traffic-analyzer {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


# Flow naming's per-endpoint fields; the tshark reference counts sent
# traffic only (DNS-only naming), so the comparisons below leave them out.
FLOW_FIELDS = ("received_packets", "received_bytes", "names")


def query_endpoints(db, *extra):
    out = json.loads(ta("query", "endpoints", "--store", f"sqlite:{db}", "--format", "json", *extra).stdout)
    return [{k: v for k, v in e.items() if k not in FLOW_FIELDS} for e in out]


def query_addresses(db):
    rows = json.loads(ta("query", "addresses", "--store", f"sqlite:{db}", "--format", "json").stdout)
    return {r["address"]: r["name"] for r in rows}


def us_to_rfc3339(us):
    import datetime
    dt = datetime.datetime.fromtimestamp(us // 1_000_000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}Z"


def expected_rows(ref):
    return [{"endpoint": e["endpoint"], "packets": e["packets"], "bytes": e["bytes"],
             "first_seen": us_to_rfc3339(e["first_us"]), "last_seen": us_to_rfc3339(e["last_us"]),
             "addresses": e["addresses"]} for e in ref["endpoints"]]


def readable_prefix(data):
    """The leading complete records of a classic pcap, or the leading complete
    blocks of a pcapng: what a reader can use of a cut capture."""
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":  # pcapng: blocks of (type, total length, ..., total length)
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        off = 0
        while off + 12 <= len(data):
            (length,) = struct.unpack_from(order + "I", data, off + 4)
            if length < 12 or off + length > len(data):
                break
            off += length
        return data[:off]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise ValueError("not a pcap or pcapng file")
    off = 24  # file header, then records of (ts_sec, ts_frac, incl_len, orig_len, data)
    while off + 16 <= len(data):
        (incl,) = struct.unpack_from(order + "I", data, off + 8)
        if off + 16 + incl > len(data):
            break
        off += 16 + incl
    return data[:off]


def check_against_reference(capture, tmp_path, analyze_args=(), ref_kwargs=None):
    db = tmp_path / "t.db"
    ta("analyze", "--naming", "dns", "--store", f"sqlite:{db}", "--quiet", *analyze_args, capture)
    ref = compute(str(capture), **(ref_kwargs or {}))
    got = query_endpoints(db)
    assert got == expected_rows(ref)
    assert query_addresses(db) == ref["addresses"]
    # Idempotent: the same file again leaves every count unchanged.
    ta("analyze", "--naming", "dns", "--store", f"sqlite:{db}", "--quiet", *analyze_args, capture)
    assert query_endpoints(db) == got
    return got


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_matches_tshark(name, tmp_path):
    check_against_reference(DATA / name, tmp_path)


def test_ports_filter_matches_tshark(tmp_path):
    got = check_against_reference(DATA / "chrissanders_http_espn.pcapng", tmp_path,
                                   ("--ports", "80"), {"ports": {80}})
    assert got, "port 80 traffic expected"


def test_local_net_matches_tshark(tmp_path):
    check_against_reference(DATA / "ndpi_KakaoTalk_chat.pcap", tmp_path,
                            ("--local-net", "10.24.82.0/24"), {"local_nets": ["10.24.82.0/24"]})


@pytest.mark.parametrize("packets,endpoints,seed", [(20000, 30, 3), (3000, 5, 11)])
def test_generated_matches_tshark_and_truth(tmp_path, packets, endpoints, seed):
    cap = tmp_path / "gen.pcap"
    ta("generate", "--out", cap, "--packets", packets, "--endpoints", endpoints, "--seed", seed)
    got = check_against_reference(cap, tmp_path)
    truth = json.loads((tmp_path / "gen.pcap.truth.json").read_text())
    assert got == truth["endpoints"]
    assert truth["frames"] == packets


def test_committed_generated_capture_matches_its_truth(tmp_path):
    cap = DATA / "generated_small.pcap"
    db = tmp_path / "t.db"
    ta("analyze", "--naming", "dns", "--store", f"sqlite:{db}", "--quiet", cap)
    truth = json.loads((DATA / "generated_small.pcap.truth.json").read_text())
    assert query_endpoints(db) == truth["endpoints"]


def test_generate_is_deterministic(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    ta("generate", "--out", a, "--packets", 5000, "--seed", 5)
    ta("generate", "--out", b, "--packets", 5000, "--seed", 5)
    assert a.read_bytes() == b.read_bytes()


def test_time_range_is_exact(tmp_path):
    cap = DATA / "chrissanders_http_espn.pcapng"
    db = tmp_path / "t.db"
    ta("analyze", "--naming", "dns", "--store", f"sqlite:{db}", "--quiet", cap)
    full = query_endpoints(db)
    # Cut the span 1 µs after some packet, inside a second that has packets
    # on both sides: the two halves must add up to the whole, packet for packet.
    ref = compute(str(cap))
    times = sorted(t for e in ref["endpoints"] for t in (e["first_us"], e["last_us"]))
    cut = us_to_rfc3339(times[len(times) // 2] + 1)
    before = query_endpoints(db, "--until", cut)
    after = query_endpoints(db, "--since", cut)
    merged = {}
    for r in before + after:
        m = merged.setdefault(r["endpoint"], {"packets": 0, "bytes": 0, "first_seen": r["first_seen"],
                                               "last_seen": r["last_seen"], "addresses": set()})
        m["packets"] += r["packets"]
        m["bytes"] += r["bytes"]
        m["first_seen"] = min(m["first_seen"], r["first_seen"])
        m["last_seen"] = max(m["last_seen"], r["last_seen"])
        m["addresses"].update(r["addresses"])
    assert merged == {r["endpoint"]: {"packets": r["packets"], "bytes": r["bytes"], "first_seen": r["first_seen"],
                                      "last_seen": r["last_seen"], "addresses": set(r["addresses"])}
                      for r in full}
    assert before and after, "the cut must leave traffic on both sides"
    assert all(r["last_seen"] < cut for r in before)
    assert all(r["first_seen"] >= cut for r in after)


def test_not_a_capture_is_a_clear_error_and_others_still_run(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a capture\n")
    db = tmp_path / "t.db"
    r = ta("analyze", "--naming", "dns", "--store", f"sqlite:{db}", "--quiet", bogus, DATA / "arkime_v6.pcap", check=False)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and str(bogus) in lines[0]
    assert query_endpoints(db), "the good file after the bad one was still analyzed"


def test_truncated_capture_keeps_what_is_readable(tmp_path):
    src = (DATA / "arkime_v6.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src[: len(src) // 2 + 7])
    db = tmp_path / "t.db"
    r = ta("analyze", "--naming", "dns", "--store", f"sqlite:{db}", "--quiet", cut, check=False)
    assert r.returncode == 2
    assert str(cut) in r.stderr and "offset" in r.stderr
    # What was readable is exactly what tshark reads in the complete records
    # before the cut.
    readable = tmp_path / "readable.pcap"
    readable.write_bytes(readable_prefix(cut.read_bytes()))
    assert len(readable.read_bytes()) < len(src)
    ref = compute(str(readable))
    assert sum(e["packets"] for e in ref["endpoints"]) > 0
    assert query_endpoints(db) == expected_rows(ref)


def test_missing_file_and_bad_arguments(tmp_path):
    r = ta("analyze", "--naming", "dns", "--store", f"sqlite:{tmp_path / 't.db'}", tmp_path / "nope.pcap", check=False)
    assert r.returncode == 2 and "nope.pcap" in r.stderr
    r = ta("analyze", "--naming", "dns", "--ports", "80,99999", DATA / "arkime_v6.pcap", check=False)
    assert r.returncode == 2 and "--ports" in r.stderr
    r = ta("analyze", "--naming", "dns", "--local-net", "10.0.0.0/99", DATA / "arkime_v6.pcap", check=False)
    assert r.returncode == 2 and "--local-net" in r.stderr
    r = ta("query", "endpoints", "--since", "yesterday-ish", check=False)
    assert r.returncode == 2 and "--since" in r.stderr
    r = ta("frobnicate", check=False)
    assert r.returncode == 2


def test_store_none_runs_the_pipeline(tmp_path):
    r = ta("analyze", "--naming", "dns", "--store", "none", DATA / "chrissanders_http_espn.pcapng")
    assert "espn.go.com" in r.stdout
    assert "frames 956" in r.stdout


def test_query_packets_and_csv(tmp_path):
    db = tmp_path / "t.db"
    ta("analyze", "--naming", "dns", "--store", f"sqlite:{db}", "--quiet", DATA / "chrissanders_http_espn.pcapng")
    rows = json.loads(ta("query", "packets", "--store", f"sqlite:{db}", "--endpoint", "espn.go.com",
                         "--limit", 5, "--format", "json").stdout)
    assert len(rows) == 5
    assert rows == sorted(rows, key=lambda r: r["timestamp"], reverse=True)
    assert all(r["endpoint"] == "espn.go.com" for r in rows)
    text = ta("query", "endpoints", "--store", f"sqlite:{db}", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["endpoint", "packets", "bytes", "first_seen", "last_seen", "addresses",
                       "received_packets", "received_bytes"]
    # Every row as tshark's reference has it (DNS naming: nothing received).
    ref = compute(str(DATA / "chrissanders_http_espn.pcapng"))
    expected = [[e["endpoint"], str(e["packets"]), str(e["bytes"]), us_to_rfc3339(e["first_us"]),
                 us_to_rfc3339(e["last_us"]), " ".join(e["addresses"]), "0", "0"] for e in ref["endpoints"]]
    assert rows[1:] == expected
