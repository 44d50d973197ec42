"""The Cassandra backend against a real Cassandra 5.0 node.

The node comes from scripts/cassandra-node (the `cassandra` fixture in
conftest.py). Each test writes into a keyspace of its own. What is checked:
- the same capture gives the same answers from Cassandra as from SQLite,
  read back with our client (`query`) and with the Python driver;
- replays (same file again, a lost spool, a second agent) never double count;
- the node stopped for 20 s in the middle of an ingest loses nothing;
- bad credentials, unreachable nodes and a keyspace that cannot be created
  are one clear line naming the host and the CQL error code.
"""
import collections
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))
PASSWORD_ENV = "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD"

FIXTURES = ["generated_small.pcap", "arkime_v6.pcap", "arkime_dns-tcp.pcap", "chrissanders_http_espn.pcapng"]


def ta(*args, env=None, check=True, timeout=600):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"traffic-analyzer {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


_keyspace_seq = [0]


@pytest.fixture
def keyspace(cassandra, request):
    _keyspace_seq[0] += 1
    name = f"t{os.getpid()}_{_keyspace_seq[0]}"
    yield name
    try:
        cassandra.drop_keyspace(name)
    except Exception:  # the node may be down after a failed test
        pass


def spec(cassandra, keyspace, hosts=None):
    return f"cassandra://{cassandra.user}@{hosts or cassandra.contact}/{keyspace}"


def env_ok(cassandra):
    return {PASSWORD_ENV: cassandra.password}


def query(store, what, env, *extra):
    r = ta("query", what, "--store", store, "--format", "json", *extra, env=env)
    return json.loads(r.stdout)


def sqlite_answers(tmp_path, capture):
    db = tmp_path / f"{capture.name}.db"
    ta("analyze", "--naming", "dns", "--quiet", "--store", f"sqlite:{db}", capture)
    return query(f"sqlite:{db}", "endpoints", {}), query(f"sqlite:{db}", "addresses", {}), db


def driver_counts(cassandra, keyspace):
    """Per-endpoint packets and bytes, read with the Python driver from the
    packet rows (not the roll-ups our queries use)."""
    s = cassandra.session()
    try:
        counts = collections.Counter()
        octets = collections.Counter()
        parts = set()
        for row in s.execute(f"SELECT day FROM {keyspace}.days WHERE shard = 0"):
            for h in s.execute(f"SELECT hour, endpoint FROM {keyspace}.endpoint_hours WHERE day = %s", (row.day,)):
                parts.add((h.endpoint, h.hour))
        for endpoint, hour in parts:
            for p in s.execute(f"SELECT bytes FROM {keyspace}.packets WHERE endpoint = %s AND hour = %s",
                               (endpoint, hour)):
                counts[endpoint] += 1
                octets[endpoint] += p.bytes
        return {e: (counts[e], octets[e]) for e in counts}
    finally:
        s.cluster.shutdown()


@pytest.mark.parametrize("name", FIXTURES)
def test_cassandra_answers_equal_sqlite_and_the_python_driver(cassandra, keyspace, tmp_path, name):
    capture = DATA / name
    want_endpoints, want_addresses, db = sqlite_answers(tmp_path, capture)
    store = spec(cassandra, keyspace)
    env = env_ok(cassandra)
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", tmp_path / "spool.db", capture, env=env)
    assert query(store, "endpoints", env) == want_endpoints
    assert query(store, "addresses", env) == want_addresses
    # An independent client sees the same packets per endpoint.
    assert driver_counts(cassandra, keyspace) == {e["endpoint"]: (e["packets"], e["bytes"]) for e in want_endpoints}
    # Packets of the busiest endpoint, newest first, equal to SQLite's.
    if want_endpoints:
        busiest = max(want_endpoints, key=lambda e: e["packets"])["endpoint"]
        got = query(store, "packets", env, "--endpoint", busiest, "--limit", 0)
        want = query(f"sqlite:{db}", "packets", {}, "--endpoint", busiest, "--limit", 0)
        assert got == want
    # The same file again: nothing changes.
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", tmp_path / "spool.db", capture, env=env)
    assert query(store, "endpoints", env) == want_endpoints


def test_time_ranges_inside_a_second_equal_sqlite(cassandra, keyspace, tmp_path):
    capture = DATA / "generated_small.pcap"
    _, _, db = sqlite_answers(tmp_path, capture)
    store = spec(cassandra, keyspace)
    env = env_ok(cassandra)
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", tmp_path / "spool.db", capture, env=env)
    for since, until in [("2024-01-01T00:00:00.5Z", "2024-01-01T00:00:01.25Z"),
                         ("2024-01-01T00:00:01.1Z", "2024-01-01T00:00:01.9Z"),
                         ("2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z")]:
        extra = ("--since", since, "--until", until)
        assert query(store, "endpoints", env, *extra) == query(f"sqlite:{db}", "endpoints", {}, *extra)


def test_lost_spool_and_second_agent_never_double_count(cassandra, keyspace, tmp_path):
    capture = DATA / "generated_small.pcap"
    want, _, _ = sqlite_answers(tmp_path, capture)
    store = spec(cassandra, keyspace)
    env = env_ok(cassandra)
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--agent-id", "a", "--spool", tmp_path / "a.db", capture, env=env)
    # The spool is lost: the cluster's ledger still knows the capture.
    (tmp_path / "a.db").unlink()
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--agent-id", "a", "--spool", tmp_path / "a2.db", capture, env=env)
    assert query(store, "endpoints", env) == want
    # Another agent with the same capture: its own records, counted beside.
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--agent-id", "b", "--spool", tmp_path / "b.db", capture, env=env)
    doubled = [dict(e, packets=2 * e["packets"], bytes=2 * e["bytes"],
                    received_packets=2 * e["received_packets"], received_bytes=2 * e["received_bytes"],
                    names={k: 2 * v for k, v in e["names"].items()}) for e in want]
    assert query(store, "endpoints", env) == doubled


def test_lz4_and_tls_give_the_same_answers(cassandra, keyspace, tmp_path):
    # The node here takes plaintext and TLS on one port; that TLS and LZ4
    # are really negotiated, and that plaintext can be refused, is shown
    # from the server's side by test_cassandra_tls.py (a node requiring TLS).
    capture = DATA / "generated_small.pcap"
    want, _, _ = sqlite_answers(tmp_path, capture)
    store = spec(cassandra, keyspace)
    env = env_ok(cassandra)
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--cassandra-lz4", "--spool", tmp_path / "s.db", capture, env=env)
    assert query(store, "endpoints", env, "--cassandra-lz4") == want
    assert cassandra.cert_pem.is_file(), cassandra.cert_pem
    assert query(store, "endpoints", env, "--cassandra-tls-ca", cassandra.cert_pem) == want
    assert query(store, "endpoints", env, "--cassandra-tls-ca", cassandra.cert_pem, "--cassandra-lz4") == want


def records_in_node(cassandra, keyspace):
    """Rows in our packets table, counted by the node (0 before the schema);
    for small tables only (the node's range timeout bounds a count)."""
    from cassandra import InvalidRequest
    with cassandra.session() as s:
        try:
            return s.execute(f"SELECT count(*) FROM {keyspace}.packets", timeout=60).one()[0]
        except InvalidRequest:  # the table is not there yet
            return 0


def node_stopped_mid_ingest_loses_nothing(cassandra, keyspace, tmp_path, frames, down_seconds):
    """An ingest of `frames` generated frames; once the node holds some of
    its records, the ingest is frozen (SIGSTOP), the node stopped, the
    ingest resumed; after `down_seconds` the node is started again.
    Nothing is lost or doubled: the store equals the generator's truth."""
    cap = tmp_path / "big.pcap"
    ta("generate", "--out", cap, "--packets", frames, "--seed", 21)
    truth = json.loads((tmp_path / "big.pcap.truth.json").read_text())
    store = spec(cassandra, keyspace)
    env = env_ok(cassandra)
    spool = tmp_path / "spool.db"
    # Create the schema first so the ingest starts at once.
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", spool, DATA / "arkime_v6.pcap", env=env)
    before = records_in_node(cassandra, keyspace)
    watcher = cassandra.session()
    e = dict(os.environ, **env)
    # A small spool makes the reader wait for the node (backpressure), so
    # the ingest cannot run far ahead of what the node acknowledges.
    proc = subprocess.Popen([BIN, "analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", spool,
                             "--spool-max-mb", "1", cap], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    try:
        # The event: the node holds some of this ingest's records.
        # (Reading before + 1 rows at most: quick however many there are.)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and \
                len(list(watcher.execute(f"SELECT frame FROM {keyspace}.packets LIMIT {before + 1}"))) <= before:
            time.sleep(0.05)
        watcher.close()
        # Frozen while the node stops, so it is stopped mid-ingest however
        # fast both are; then the ingest goes on against a stopped node.
        proc.send_signal(signal.SIGSTOP)
        assert proc.poll() is None, "ingest finished before the node could be stopped: use more frames"
        assert records_in_node(cassandra, keyspace) > before, "no record reached the node"
        cassandra.stop()
        proc.send_signal(signal.SIGCONT)
        time.sleep(down_seconds)
        assert proc.poll() is None, "ingest gave up while the node was down"
        cassandra.start()
        out, err = proc.communicate(timeout=900)
    finally:
        watcher.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
    assert proc.returncode == 0, err
    assert "records wait in the spool" in err and "127.0.0.1" in err, err
    got = {e["endpoint"]: (e["packets"], e["bytes"]) for e in query(store, "endpoints", env)}
    # Exactly the big capture's truth plus the small capture analyzed first.
    want = collections.defaultdict(lambda: (0, 0))
    small = sqlite_answers(tmp_path, DATA / "arkime_v6.pcap")[0]
    for e in truth["endpoints"] + small:
        p, b = want[e["endpoint"]]
        want[e["endpoint"]] = (p + e["packets"], b + e["bytes"])
    assert got == dict(want)
    # And the node's packet rows themselves, read with the Python driver:
    # exactly one per packet.
    assert driver_counts(cassandra, keyspace) == dict(want)


def test_node_stopped_for_20s_mid_ingest_loses_nothing(cassandra, keyspace, tmp_path):
    node_stopped_mid_ingest_loses_nothing(cassandra, keyspace, tmp_path, 1_500_000, 20)


def test_node_stopped_for_5s_mid_ingest_loses_nothing(cassandra, keyspace, tmp_path):
    # The short variant, which the sanitizer build runs too.
    node_stopped_mid_ingest_loses_nothing(cassandra, keyspace, tmp_path, 400_000, 5)


def test_wrong_password_is_a_clear_error_and_loses_nothing(cassandra, keyspace, tmp_path):
    capture = DATA / "generated_small.pcap"
    store = spec(cassandra, keyspace)
    spool = tmp_path / "spool.db"
    r = ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", spool, capture, env={PASSWORD_ENV: "wrong"}, check=False)
    assert r.returncode != 0
    assert cassandra.contact in r.stderr and "0x0100" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # With the right password, everything arrives.
    want, _, _ = sqlite_answers(tmp_path, capture)
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", spool, capture, env=env_ok(cassandra))
    assert query(store, "endpoints", env_ok(cassandra)) == want


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_contact_points_and_failover(cassandra, keyspace, tmp_path):
    capture = DATA / "generated_small.pcap"
    dead = f"127.0.0.1:{free_port()}"
    r = ta("analyze", "--naming", "dns", "--quiet", "--store", spec(cassandra, keyspace, dead), "--spool", tmp_path / "s.db",
           capture, env=env_ok(cassandra), check=False)
    assert r.returncode != 0 and dead in r.stderr, r.stderr
    # A dead first contact point is skipped.
    store = spec(cassandra, keyspace, f"{dead},{cassandra.contact}")
    ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--spool", tmp_path / "s2.db", capture, env=env_ok(cassandra))
    want, _, _ = sqlite_answers(tmp_path, capture)
    assert query(store, "endpoints", env_ok(cassandra)) == want


def test_bad_keyspace_and_password_in_spec_are_refused(cassandra, keyspace, tmp_path):
    capture = DATA / "generated_small.pcap"
    r = ta("analyze", "--naming", "dns", "--quiet", "--store", spec(cassandra, keyspace), "--spool", tmp_path / "s.db",
           "--replication", "{'class': 'NoSuchStrategy'}", capture, env=env_ok(cassandra), check=False)
    assert r.returncode != 0
    assert f"creating keyspace {keyspace}" in r.stderr and "0x2" in r.stderr, r.stderr
    with cassandra.session() as sess:
        assert sess.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                            (keyspace,)).one() is None
    r = ta("analyze", "--naming", "dns", "--store", f"cassandra://cassandra:secret@{cassandra.contact}/{keyspace}", capture, check=False)
    assert r.returncode == 2 and "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD" in r.stderr, r.stderr
    # Password from a file works too.
    pw = tmp_path / "pw"
    pw.write_text(cassandra.password + "\n")
    ta("analyze", "--naming", "dns", "--quiet", "--store", spec(cassandra, keyspace), "--cassandra-password-file", pw,
       "--spool", tmp_path / "s3.db", capture, env={PASSWORD_ENV: ""})
    want, _, _ = sqlite_answers(tmp_path, capture)
    got = json.loads(ta("query", "endpoints", "--store", spec(cassandra, keyspace), "--format", "json",
                        "--cassandra-password-file", pw, env={PASSWORD_ENV: ""}).stdout)
    assert got == want


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text, name, labels=""):
    """The value of one sample (labels as printed, e.g. '{node="x"}'), or None."""
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def node_table_writes(cassandra, keyspace, table):
    with cassandra.session() as s:
        row = s.execute("SELECT count FROM system_views.local_write_latency WHERE keyspace_name = %s AND table_name = %s",
                        (keyspace, table)).one()
    return row.count if row else None


def test_metrics_carry_the_nodes_view_and_the_clients(cassandra, keyspace, tmp_path):
    capture = DATA / "generated_small.pcap"
    truth = json.loads((DATA / "generated_small.pcap.truth.json").read_text())
    records = sum(e["packets"] for e in truth["endpoints"])
    dump = tmp_path / "dump"
    dump.mkdir()
    subprocess.run(["cp", capture, dump / "a.pcap"], check=True)
    port = free_port()
    e = dict(os.environ, **env_ok(cassandra))
    proc = subprocess.Popen([BIN, "watch", "--naming", "dns", dump, "--store", spec(cassandra, keyspace), "--spool", tmp_path / "s.db",
                             "--metrics-listen", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True, env=e)
    writes = f'{{keyspace="{keyspace}",table="packets"}}'
    node = f'{{node="{cassandra.contact}"}}'
    try:
        # Every record sent, and the node's count of our writes as the
        # metric shows it caught up with what the node says now.
        deadline = time.time() + 120
        text, want_writes = "", None
        while time.time() < deadline and proc.poll() is None:
            try:
                text = scrape(port)
            except OSError:
                text = ""
            if metric(text, "traffic_cassandra_records_sent_total") == records \
                    and metric(text, "traffic_cassandra_spool_records") == 0:
                want_writes = node_table_writes(cassandra, keyspace, "packets")
                if metric(text, "traffic_cassandra_table_writes_total", writes) == want_writes:
                    break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()
        # Packet records: the generator's count, all acknowledged.
        assert metric(text, "traffic_cassandra_records_sent_total") == records, text
        assert metric(text, "traffic_cassandra_spool_records") == 0, text
        assert metric(text, "traffic_cassandra_spool_batches") == 0, text
        assert metric(text, "traffic_cassandra_batches_sent_total") >= 1, text
        assert metric(text, "traffic_cassandra_send_failures_total") == 0, text
        assert metric(text, "traffic_cassandra_up") == 1, text
        # The node's own count of writes to our packets table.
        assert want_writes is not None and want_writes > 0
        assert metric(text, "traffic_cassandra_table_writes_total", writes) == want_writes, text
        # The client's view of the one node: up, idle, every request answered.
        assert metric(text, "traffic_cassandra_client_node_up", node) == 1, text
        assert metric(text, "traffic_cassandra_client_in_flight", node) == 0, text
        requests = metric(text, "traffic_cassandra_client_requests_total", node)
        assert requests is not None and requests >= 1, text
        count = metric(text, "traffic_cassandra_client_request_duration_seconds_count", node)
        inf = metric(text, "traffic_cassandra_client_request_duration_seconds_bucket", f'{{node="{cassandra.contact}",le="+Inf"}}')
        assert count == inf and count is not None and count >= 1, text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
