"""Names that are not plain text (bytes outside UTF-8, control characters,
a backslash) come out of `query` lossless and the same in JSON, CSV and the
table (README "Names in output"): distinct names stay distinct, and the
README's decoding gives back the exact bytes of each name as sent."""
import csv
import io
import json
import re

from frames import client_hello, ipv4_tcp, write_pcap
from test_flow_hostile import ta

NAMES = [
    b"a\xfeb.example",            # not UTF-8 ...
    b"a\xffb.example",            # ... and must not merge with the one above
    b"lit\\xfeb.example",         # the escape's own text, literally
    b"back\\slash.example",
    b"nul\x00byte.example",
    b"esc\x1b[31mred.example",
    b"c1\xc2\x9bcsi.example",     # a C1 control, as UTF-8
    b"b\xc3\xbccher.example",     # valid UTF-8 (U+00FC) stays as it is
    b"plain.example",
]


def decode(text):
    """The README's decoding: every \\xNN is byte NN; the rest is UTF-8."""
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), text.encode("utf-8"))


def test_names_are_lossless_and_the_same_in_every_format(tmp_path):
    frames = []
    for i, name in enumerate(NAMES):
        client, server = [10, 0, 0, 2], [192, 0, 2, 10 + i]
        sport = 41000 + i
        frames.append(ipv4_tcp(client, server, sport, 443, 0x02, 999, b""))
        frames.append(ipv4_tcp(server, client, 443, sport, 0x12, 5000, b""))
        frames.append(ipv4_tcp(client, server, sport, 443, 0x18, 1000, client_hello([name])))
    cap = tmp_path / "names.pcap"
    write_pcap(cap, frames)
    db = tmp_path / "n.db"
    store = f"sqlite:{db}"
    ta("analyze", "--quiet", "--store", store, cap)

    out = ta("query", "endpoints", "--store", store, "--format", "json").stdout
    out.decode("utf-8")  # strict: valid UTF-8 throughout, nothing replaced
    assert b"\xef\xbf\xbd" not in out  # no U+FFFD
    rows = json.loads(out)
    texts = sorted(r["endpoint"] for r in rows)
    assert len(texts) == len(NAMES)
    assert sorted(decode(t) for t in texts) == sorted(NAMES)
    by_bytes = {decode(t): t for t in texts}
    assert by_bytes[b"a\xfeb.example"] == "a\\xfeb.example"
    assert by_bytes[b"a\xffb.example"] == "a\\xffb.example"
    assert by_bytes[b"lit\\xfeb.example"] == "lit\\x5cxfeb.example"
    assert by_bytes[b"b\xc3\xbccher.example"] == "b\u00fccher.example"
    for t in texts:
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in t), t

    flows = json.loads(ta("query", "flows", "--store", store, "--format", "json").stdout)
    assert sorted(f["name"] for f in flows) == texts

    for what, column in (("endpoints", 0), ("flows", 5)):
        text = ta("query", what, "--store", store, "--format", "csv").stdout.decode("utf-8")
        parsed = list(csv.reader(io.StringIO(text)))
        assert sorted(row[column] for row in parsed[1:]) == texts

    table = ta("query", "endpoints", "--store", store).stdout.decode("utf-8").splitlines()
    assert sorted(line.split()[0] for line in table[1:]) == texts

    # A name is given back to `query` in the form the output shows.
    for t in texts:
        pkts = json.loads(ta("query", "packets", "--store", store, "--endpoint", t, "--format", "json").stdout)
        assert pkts and all(p["endpoint"] == t for p in pkts), t
        fl = json.loads(ta("query", "flows", "--store", store, "--endpoint", t, "--format", "json").stdout)
        assert [f["name"] for f in fl] == [t]
