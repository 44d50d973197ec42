"""`query` against Cassandra over many partitions (read in parallel, a bound
on reads in flight) and at the consistency `--consistency` asks for.

The capture is written here: 12 DNS-named endpoints, each sending 2 packets
in each of 30 hours that span a day boundary, so 360 (endpoint, hour)
partitions over two days: more than the 64 partition reads `query` keeps in
flight. Expected values: the packet counts from how the capture was built,
and SQLite's answers for the same capture; the Python driver reads the
packet rows independently. The single node of the `cassandra` fixture makes
consistency observable: with replication factor 2 on one node, ONE reads
succeed and ALL or QUORUM reads fail with unavailable (0x1000).
"""
import struct

from test_cassandra import driver_counts, env_ok, keyspace, query, spec, ta  # noqa: F401

ENDPOINTS = 12
HOURS = 30
DAY0 = 1_779_926_400  # a UTC midnight
START = DAY0 + 20 * 3600  # hours 20 .. 49: two days


def payload_len(i, h):
    return 10 + i + h


def many_partitions_capture(path):
    """DNS answers naming e<i>.test -> 10.0.0.<i+1>, then per hour h and
    endpoint i two TCP packets from 192.168.1.10 to it (Ethernet II, IPv4)."""

    def ip(src, dst, proto, payload):
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                          bytes(src), bytes(dst))
        return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + hdr + payload

    client, resolver = [192, 168, 1, 10], [192, 168, 1, 1]
    records = []  # (seconds, microseconds, frame)
    for i in range(ENDPOINTS):
        name = f"e{i}".encode()
        dns = struct.pack("!HHHHHH", i + 1, 0x8180, 1, 1, 0, 0)
        dns += bytes([len(name)]) + name + b"\x04test\x00\x00\x01\x00\x01"
        dns += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 7 * 86400, 4) + bytes([10, 0, 0, i + 1])
        udp = struct.pack("!HHHH", 53, 40000, 8 + len(dns), 0) + dns
        records.append((START - 10, i, ip(resolver, client, 17, udp)))
    for h in range(HOURS):
        for i in range(ENDPOINTS):
            for k, us in enumerate((250_000, 750_000)):
                tcp = struct.pack("!HHIIBBHHH", 41000 + i, 443, 1 + k, 1, 0x50, 0x18, 65535, 0, 0)
                frame = ip(client, [10, 0, 0, i + 1], 6, tcp + b"x" * payload_len(i, h))
                records.append((START + h * 3600 + i * 60 + k, us, frame))
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for sec, us, fr in records:
            f.write(struct.pack("<IIII", sec, us, len(fr), len(fr)) + fr)
    return {f"e{i}.test": 2 * HOURS for i in range(ENDPOINTS)}


def iso(seconds):
    import datetime
    whole = int(seconds)
    frac = seconds - whole
    t = datetime.datetime.fromtimestamp(whole, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return t + (f".{round(frac * 1e6):06d}" if frac else "") + "Z"


def test_many_partitions_equal_sqlite_at_every_consistency_that_holds(cassandra, keyspace, tmp_path):
    capture = tmp_path / "many.pcap"
    truth = many_partitions_capture(capture)
    db = tmp_path / "many.db"
    # Default naming (flow naming): flows are recorded too.
    ta("analyze", "--quiet", "--store", f"sqlite:{db}", capture)
    sqlite = f"sqlite:{db}"
    want = query(sqlite, "endpoints", {})
    assert {e["endpoint"]: e["packets"] for e in want} == truth
    store = spec(cassandra, keyspace)
    env = env_ok(cassandra)
    ta("analyze", "--quiet", "--store", store, "--spool", tmp_path / "s.db", capture, env=env)
    assert driver_counts(cassandra, keyspace) == {e["endpoint"]: (e["packets"], e["bytes"]) for e in want}
    for cl in ("one", "all", "local_quorum"):
        assert query(store, "endpoints", env, "--consistency", cl) == want, cl
    # Ranges cutting seconds at both ends (roll-ups and packet rows mixed).
    for since, until in [(START + 5 * 3600 + 0.5, START + 25 * 3600 + 60.5),
                         (START + 3 * 3600 + 30.25, START + 3 * 3600 + 4 * 60 + 1.5),
                         (DAY0 + 86400 - 0.5, DAY0 + 86400 + 3600.75)]:
        extra = ("--since", iso(since), "--until", iso(until))
        assert query(store, "endpoints", env, "--consistency", "all", *extra) == \
            query(sqlite, "endpoints", {}, *extra), extra
    # Flows over both days, and one endpoint's.
    flows = query(sqlite, "flows", {})
    assert {f["name"] for f in flows} == set(truth), flows
    assert query(store, "flows", env, "--consistency", "all") == flows
    assert query(store, "flows", env, "--endpoint", "e3.test") == query(sqlite, "flows", {}, "--endpoint", "e3.test")


def test_read_consistency_reaches_the_node(cassandra, keyspace, tmp_path):
    """Replication factor 2 on one node: writes and reads at ONE work, reads
    at ALL or QUORUM are refused by the node as unavailable (0x1000), in one
    line naming the host."""
    capture = tmp_path / "many.pcap"
    many_partitions_capture(capture)
    store = spec(cassandra, keyspace)
    env = env_ok(cassandra)
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", tmp_path / "s.db",
       "--consistency", "one", "--replication", "{'class': 'SimpleStrategy', 'replication_factor': 2}",
       capture, env=env)
    got = query(store, "endpoints", env, "--consistency", "one")
    assert len(got) == ENDPOINTS and all(e["packets"] == 2 * HOURS for e in got), got
    for cl in ("all", "quorum"):
        r = ta("query", "endpoints", "--store", store, "--consistency", cl, env=env, check=False)
        assert r.returncode != 0, (cl, r.stdout)
        assert "0x1000" in r.stderr and cassandra.contact in r.stderr, (cl, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_nodes_down_at_start_is_one_line_and_keeps_the_spool(cassandra, keyspace, tmp_path):
    """`watch` with every node down: one line naming each node, exit
    non-zero; a spool from an earlier run stays (its ledger too: the same
    capture is not counted twice afterwards), a spool this start would have
    created is not left behind. Spooled batches surviving such a start are
    covered by store_cassandra_test (AllNodesDownAtStartKeepsTheSpool)."""
    import os
    capture = tmp_path / "many.pcap"
    truth = many_partitions_capture(capture)
    spool = tmp_path / "s.db"
    env = env_ok(cassandra)
    store = spec(cassandra, keyspace)
    ta("analyze", "--quiet", "--agent-id", "a1", "--store", store, "--spool", spool, capture, env=env)
    assert spool.exists()
    dump = tmp_path / "dump"
    dump.mkdir()
    dead = f"127.0.0.1:{free_port()},127.0.0.2:{free_port()}"
    for spool_path in (spool, tmp_path / "fresh.db"):
        r = ta("watch", dump, "--agent-id", "a1", "--store", spec(cassandra, keyspace, dead), "--spool", spool_path,
               env=env, check=False, timeout=120)
        assert r.returncode != 0
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        for host in dead.split(","):
            assert host in r.stderr, r.stderr
    assert spool.exists() and not (tmp_path / "fresh.db").exists()
    # The kept ledger: the same capture again adds nothing.
    ta("analyze", "--quiet", "--agent-id", "a1", "--store", store, "--spool", spool, capture, env=env)
    assert {e["endpoint"]: e["packets"] for e in query(store, "endpoints", env)} == truth
