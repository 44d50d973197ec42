"""Nothing lost under faults, on a real 3-node Cassandra cluster.

The cluster comes from scripts/cassandra-cluster (cassandra_cluster.py); the
keyspace has RF 3 (NetworkTopologyStrategy, datacenter1: 3) and every agent
writes at QUORUM. Three agents (a1, a2, a3) `watch` folders of their own,
each with its own spool and /metrics port. Each agent's generated capture
(and its truth) is cut into three files by frame ranges, handed over in
three waves as a rotating capture would be:
1. while wave 1 is being ingested, node 2 is killed (kill -9): ingest goes
   on (QUORUM holds with two of three), and wave 2 arrives and is stored
   with node 2 still down; node 2 is restarted;
2. once wave 3 is read into the spools, the agents are frozen (SIGSTOP)
   while nodes 2 and 3 are stopped, so the outage meets them mid-send
   (a file is only read while its ledger can be, at QUORUM too): node 1
   answers `unavailable`, and what was not acknowledged waits in the spools
   (stderr and /metrics say so); both nodes are restarted and the spools
   drain.
At the end the per-endpoint counts, read at ALL through our `query` and
through the Python driver, equal the sum of the generators' truths exactly,
and each agent's own rows (`query --agent-id`, and a2's through the driver) equal
its truth.
"""
import collections
import json
import os
import pathlib
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

import cassandra_cluster

HERE = pathlib.Path(__file__).resolve().parent
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))
PASSWORD_ENV = "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD"
AGENTS = ("a1", "a2", "a3")
# Frames of each agent's capture, and where it is cut into waves: waves 1
# and 3 give more records than one batch (65536), so each is sent in two and
# still being sent when the nodes go; wave 2 is short.
FRAMES = 255_000
CUTS = (0, 120_000, 135_000, FRAMES)
REPLICATION = "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}"


@pytest.fixture(scope="session")
def cluster():
    yield from cassandra_cluster.session_cluster()


def ta(*args, check=True, timeout=600):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **{PASSWORD_ENV: cassandra_cluster.CassandraCluster.password}))
    if check and r.returncode != 0:
        raise AssertionError(f"traffic-analyzer {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def metric(text, name):
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_for(what, predicate, timeout=300, step=0.5):
    """Polls predicate() until it is true; fails naming `what` after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def add(totals, endpoints):
    for e in endpoints:
        p, b = totals[e["endpoint"]]
        totals[e["endpoint"]] = (p + e["packets"], b + e["bytes"])


class Agent:
    """One `watch` with its folder, spool, stderr file and /metrics port."""

    def __init__(self, name, root, store):
        self.name = name
        self.folder = root / name
        self.staging = root / f"{name}-staging"
        self.folder.mkdir()
        self.staging.mkdir()
        self.spool = root / f"{name}-spool.db"
        self.stderr_path = root / f"{name}.stderr"
        self.port = free_port()
        self.store = store
        self.proc = None
        cap = self.staging / "capture.pcap"
        ta("generate", "--out", cap, "--packets", FRAMES, "--seed", 100 + AGENTS.index(self.name))
        truth = json.loads(cap.with_name(cap.name + ".truth.json").read_text())["endpoints"]
        self.records = sum(e["packets"] for e in truth)  # the generator's count
        self.totals = collections.defaultdict(lambda: (0, 0))
        add(self.totals, truth)
        self.waves = split_pcap(cap, CUTS)

    def hand_over(self, wave):
        # A rename inside one file system: the watcher sees a whole file.
        os.rename(self.waves[wave - 1], self.folder / self.waves[wave - 1].name)

    def ingested(self, wave):
        """The agent has read wave `wave` (its records are in the spool or
        acknowledged)."""
        return f"ingested {self.folder / self.waves[wave - 1].name} " in self.stderr()

    def start(self):
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [BIN, "watch", "--naming", "dns", self.folder, "--store", self.store, "--agent-id", self.name,
             "--consistency", "quorum", "--replication", REPLICATION, "--spool", self.spool,
             "--metrics-listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=self._err, stdin=subprocess.DEVNULL,
            env=dict(os.environ, **{PASSWORD_ENV: cassandra_cluster.CassandraCluster.password}))

    def metrics(self):
        assert self.proc.poll() is None, f"agent {self.name} exited:\n{self.stderr()}"
        text = scrape(self.port)
        return metric(text, "traffic_cassandra_records_sent_total"), metric(text, "traffic_cassandra_spool_records")

    def stored(self, wave):
        """Wave `wave` read and every record read so far acknowledged."""
        return self.ingested(wave) and self.metrics()[1] == 0

    def caught_up(self):
        return self.metrics() == (self.records, 0)

    def stderr(self):
        return self.stderr_path.read_text()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None:
            self._err.close()


def split_pcap(cap, cuts):
    """Cuts a pcap into files of frames [cuts[i], cuts[i+1]): wave1.pcap ...
    beside it (classic pcap: a 24-byte header, then a 16-byte header and
    incl_len bytes per frame)."""
    data = cap.read_bytes()
    header, off, frames = data[:24], 24, []
    while off < len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frames.append(data[off:off + 16 + incl])
        off += 16 + incl
    assert len(frames) == cuts[-1], (len(frames), cuts)
    out = []
    for i in range(len(cuts) - 1):
        part = cap.with_name(f"wave{i + 1}.pcap")
        part.write_bytes(header + b"".join(frames[cuts[i]:cuts[i + 1]]))
        out.append(part)
    return out


def empty_pcap(path):
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))


def make_schema(cluster, keyspace, tmp_path):
    """The keyspace and tables, made once before the agents start (three
    agents making them at once would race). Made through node 1 alone; the
    client waits for schema agreement after each statement (README "The
    cluster"), and the driver's wait here checks that it came."""
    pcap = tmp_path / "empty.pcap"
    empty_pcap(pcap)
    store = f"cassandra://{cluster.user}@{cluster.contacts[0]}/{keyspace}"
    for attempt in range(5):
        r = ta("analyze", "--naming", "dns", "--quiet", "--store", store, "--agent-id", "schema",
               "--replication", REPLICATION, "--consistency", "quorum", "--spool", tmp_path / f"schema{attempt}.db",
               pcap, check=False)
        with cluster.session() as s:
            assert s.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
        if r.returncode == 0:
            return
    raise AssertionError(f"could not make the schema:\n{r.stderr}")


def node1_says_unavailable(session, keyspace):
    """True once node 1 (the only node of `session`) refuses a QUORUM write
    with Unavailable: it knows two replicas are down."""
    from cassandra import ConsistencyLevel, OperationTimedOut, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable
    from cassandra.query import SimpleStatement
    st = SimpleStatement(f"INSERT INTO {keyspace}.probe (k) VALUES (1)", consistency_level=ConsistencyLevel.QUORUM)
    try:
        session.execute(st, timeout=20)
    except Unavailable:
        return True
    except NoHostAvailable as e:  # the driver's retry gave up: why?
        return any(isinstance(err, Unavailable) for err in e.errors.values())
    except (WriteTimeout, OperationTimedOut):
        pass
    return False


def driver_counts(cluster, keyspace):
    """Per-endpoint (packets, bytes), overall and per agent, read at ALL with
    the Python driver from the packet rows (not the roll-ups `query` uses)."""
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement
    all_ = collections.defaultdict(lambda: [0, 0])
    by_agent = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
    with cluster.session() as s:
        def run(cql, *params):
            return s.execute(SimpleStatement(cql, consistency_level=ConsistencyLevel.ALL, fetch_size=5000),
                             params, timeout=120)
        parts = set()
        for row in run(f"SELECT day FROM {keyspace}.days WHERE shard = 0"):
            for h in run(f"SELECT hour, endpoint FROM {keyspace}.endpoint_hours WHERE day = %s", row.day):
                parts.add((h.endpoint, h.hour))
        for endpoint, hour in parts:
            for p in run(f"SELECT agent, bytes FROM {keyspace}.packets WHERE endpoint = %s AND hour = %s",
                         endpoint, hour):
                for c in (all_[endpoint], by_agent[p.agent][endpoint]):
                    c[0] += 1
                    c[1] += p.bytes
    tup = lambda d: {e: tuple(v) for e, v in d.items()}  # noqa: E731
    return tup(all_), {a: tup(d) for a, d in by_agent.items()}


def query_endpoints(store, *extra):
    r = ta("query", "endpoints", "--store", store, "--format", "json", "--consistency", "all", *extra)
    return {e["endpoint"]: (e["packets"], e["bytes"]) for e in json.loads(r.stdout)}


def in_parallel(*calls):
    errors = []

    def run(f):
        try:
            f()
        except BaseException as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(f,)) for f in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_three_agents_lose_nothing_when_nodes_fail(cluster, tmp_path):
    keyspace = f"cl{os.getpid()}"
    store = f"cassandra://{cluster.user}@{cluster.spec_hosts}/{keyspace}"
    make_schema(cluster, keyspace, tmp_path)
    with cluster.session() as s:
        s.execute(f"CREATE TABLE IF NOT EXISTS {keyspace}.probe (k int PRIMARY KEY)")
    agents = [Agent(name, tmp_path, store) for name in AGENTS]
    probe = cluster.session(hosts=[1])
    try:
        for a in agents:
            a.start()
        for a in agents:
            a.hand_over(1)

        # 1. Node 2 killed while wave 1 is being stored.
        # (The event: records in a spool, read but not yet acknowledged.)
        wait_for("wave 1 in a spool", lambda: any((a.metrics()[1] or 0) > 0 for a in agents), step=0.1)
        cluster.kill(2)
        # Ingest goes on with two of three replicas: wave 1 and then wave 2
        # are stored while node 2 is down.
        wait_for("wave 1 stored with node 2 down", lambda: all(a.stored(1) for a in agents))
        for a in agents:
            a.hand_over(2)
        wait_for("wave 2 stored with node 2 down", lambda: all(a.stored(2) for a in agents))
        assert "running" not in cassandra_cluster.status()[1].splitlines()[1]
        cluster.restart(2)

        # 2. Two nodes stopped under wave 3: QUORUM cannot be met.
        for a in agents:
            a.hand_over(3)
        wait_for("wave 3 read", lambda: all(a.ingested(3) for a in agents), step=0.05)
        said = [len(a.stderr()) for a in agents]
        for a in agents:
            a.proc.send_signal(signal.SIGSTOP)
        try:
            in_parallel(lambda: cluster.stop_node(2), lambda: cluster.stop_node(3))
            wait_for("node 1 to answer unavailable", lambda: node1_says_unavailable(probe, keyspace), step=1)
        finally:
            for a in agents:
                a.proc.send_signal(signal.SIGCONT)
        # Every record read and not acknowledged waits in the spools, and
        # each agent says why.
        wait_for("`unavailable` said", lambda: all("unavailable" in a.stderr()[said[i]:] for i, a in enumerate(agents)))
        for i, a in enumerate(agents):
            sent, spooled = a.metrics()
            assert spooled > 0 and sent + spooled == a.records, (a.name, sent, spooled, a.records)
            assert "records wait in the spool" in a.stderr()[said[i]:], a.stderr()
        # Both back: the spools drain.
        in_parallel(lambda: cluster.restart(2), lambda: cluster.restart(3))
        wait_for("the spools to drain", lambda: all(a.caught_up() for a in agents))
    finally:
        probe.close()
        for a in agents:
            a.stop()
    for a in agents:
        assert a.proc.returncode == 0, a.stderr()

    # 3. Nothing lost, nothing counted twice: read at ALL.
    want = collections.defaultdict(lambda: (0, 0))
    for a in agents:
        add(want, [{"endpoint": e, "packets": p, "bytes": b} for e, (p, b) in a.totals.items()])
    assert query_endpoints(store) == dict(want)
    overall, by_agent = driver_counts(cluster, keyspace)
    assert overall == dict(want)
    assert by_agent["a2"] == dict(agents[1].totals)
    # `query --agent-id` reads one agent's rows only.
    for i, name in enumerate(AGENTS):
        assert query_endpoints(store, "--agent-id", name) == dict(agents[i].totals), name
    assert set(by_agent) == set(AGENTS)
    with cluster.session() as s:
        s.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
