"""End-to-end tests of the paths a plain Ethernet capture never takes, each
checked against both oracles: the generator's ground truth (written from what
it meant to send, not from the bytes) and the tshark references
(tshark_reference.py for DNS-only naming, flow_reference.py for flow naming).

- Link types: Linux cooked v1 and v2 (the clients' frames marked "outgoing",
  which makes their source local even before any DNS response), raw IP and
  BSD null/loopback, each with the same IP packets as the Ethernet file.
- DNS over TCP with every response split across two segments (`--dns-tcp`).
- IPv4 DNS responses in two fragments (`--fragments`): the first carries the
  UDP header and a cut message that teaches nothing but marks its receiver
  local; the second has no ports and is inbound.
- DNS-table eviction (`--dns-table-size`): more distinct answers than the
  table holds. The truth models the README's rule (least recently learnt
  evicted); the tshark references keep an unbounded table, so this case is
  checked against the truth only, and the same capture without the bound
  against both.
"""
import json
import os
import pathlib
import re
import subprocess

import pytest

import flow_reference
import tshark_reference
from test_flow_golden import endpoints_of, expected_endpoints, expected_flows, flows_of
from test_golden import expected_rows, query_addresses, query_endpoints

HERE = pathlib.Path(__file__).resolve().parent
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))

LINKS = {"ethernet": 1, "sll": 113, "sll2": 276, "raw": 101, "null": 0}


def ta(*args):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"traffic-analyzer {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


def generate(folder, *args, packets=4000, endpoints=12, seed=7):
    folder.mkdir(exist_ok=True)
    cap = folder / "gen.pcap"
    ta("generate", "--out", cap, "--packets", packets, "--endpoints", endpoints, "--seed", seed, *args)
    return cap, json.loads((folder / "gen.pcap.truth.json").read_text())


def link_type_of(cap):
    header = cap.read_bytes()[:24]
    assert header[:4] == b"\xd4\xc3\xb2\xa1", "little-endian classic pcap"
    return int.from_bytes(header[20:24], "little")


def tshark_count(cap, display_filter):
    out = subprocess.run(["tshark", "-r", str(cap), "-o", "ip.defragment:FALSE", "-Y", display_filter], check=True,
                         capture_output=True, text=True).stdout
    return len(out.splitlines())


def analyze(cap, db, *args):
    return ta("analyze", "--store", f"sqlite:{db}", *args, cap).stdout


@pytest.mark.parametrize("link", sorted(LINKS))
def test_every_path_matches_truth_and_tshark(tmp_path, link):
    cap, truth = generate(tmp_path / "gen", "--link", link, "--dns-tcp", "--fragments")
    assert link_type_of(cap) == LINKS[link]
    assert truth["frames"] == 4000
    # The paths are there, as tshark reads them: DNS responses reassembled
    # from TCP segments, and first fragments.
    assert tshark_count(cap, "tcp.srcport == 53 && dns.flags.response == 1") >= 2
    assert tshark_count(cap, "ip.flags.mf == 1 && udp.srcport == 53") >= 2

    # DNS-only naming: the truth, and tshark's dissection under Contract A.
    db = tmp_path / "dns.db"
    summary = analyze(cap, db, "--naming", "dns")
    got = query_endpoints(db)
    assert got == truth["endpoints"]
    ref = tshark_reference.compute(str(cap))
    assert got == expected_rows(ref)
    addresses = query_addresses(db)
    assert addresses == ref["addresses"]
    assert addresses == {a["address"]: a["name"] for a in truth["addresses"]}
    # The cut first fragments were DNS messages that did not parse.
    assert ", malformed:" in next(l for l in summary.splitlines() if l.startswith("dns: "))

    # Flow naming: the truth, and flow_reference.py.
    db = tmp_path / "flow.db"
    analyze(cap, db)
    got = endpoints_of(db)
    assert got == truth["flow_endpoints"]
    fref = flow_reference.compute(str(cap))
    assert got == expected_endpoints(fref)
    assert flows_of(db) == expected_flows(fref)


def test_link_types_carry_the_same_ip_packets(tmp_path):
    # Frame for frame, every link type's file holds the Ethernet file's IP
    # packets; only the cooked ones differ in truth (outgoing marks), and
    # only before the clients' first DNS responses.
    truths = {}
    for link in LINKS:
        _, truths[link] = generate(tmp_path / link, "--link", link, "--dns-tcp", "--fragments", packets=3000)
    for link in ("raw", "null"):
        assert truths[link] == truths["ethernet"]
    assert truths["sll"] == truths["sll2"]
    assert truths["sll"]["flow_endpoints"] == truths["ethernet"]["flow_endpoints"]


def test_dns_table_eviction_matches_truth(tmp_path):
    # 40 endpoints hold ~80 addresses; a table of 16 evicts all the time, so
    # traffic to an address whose answer was evicted counts as unresolved.
    cap, truth = generate(tmp_path / "bounded", "--dns-table-size", 16, "--dns-tcp", packets=12000,
                          endpoints=40, seed=3)
    ucap, unbounded = generate(tmp_path / "unbounded", "--dns-tcp", packets=12000, endpoints=40, seed=3)
    assert cap.read_bytes() == ucap.read_bytes(), "the bound is the truth's, not the capture's"
    assert truth["endpoints"] != unbounded["endpoints"], "the bound changes what is counted"

    db = tmp_path / "dns.db"
    summary = analyze(cap, db, "--naming", "dns", "--dns-table-size", 16)
    m = re.search(r"table (\d+) addresses \((\d+) evicted\)", summary)
    assert m and int(m.group(1)) == 16 and int(m.group(2)) > 0
    assert query_endpoints(db) == truth["endpoints"]

    db = tmp_path / "flow.db"
    analyze(cap, db, "--dns-table-size", 16)
    assert endpoints_of(db) == truth["flow_endpoints"]
