"""`watch` rides out a Cassandra outage for new files too.

Against the single node of scripts/cassandra-node (the `cassandra` fixture):
an agent watches a folder; the node is stopped; a new generated capture is
dropped in: the second half of a generated capture whose first half was
read before the outage. The agent cannot start the file's ledger entry (the
source ledger lives in the cluster), so the file waits: the agent stays up
and says so once, and /metrics counts the waiting file. The node is started
again; the file is read, and `query endpoints` equals the generator's truth
of the whole capture: nothing lost, nothing counted twice. Every wait is for an event,
with a bound.
"""
import collections
import json
import os
import pathlib
import queue
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))
PASSWORD_ENV = "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD"


def ta(*args, env=None):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})), timeout=600)
    assert r.returncode == 0, f"traffic-analyzer {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}"
    return r


@pytest.fixture
def keyspace(cassandra):
    name = f"defer{os.getpid()}"
    yield name
    try:
        cassandra.drop_keyspace(name)
    except Exception:  # the node may be down after a failed test
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port, name):
    """One unlabelled sample of the agent's /metrics, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class Lines:
    """The agent's stderr, line by line, from a reader thread."""

    def __init__(self, stream):
        self.seen = []
        self._q = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, needle, seconds):
        """The first line (new or already seen) containing `needle`; fails after `seconds`."""
        for line in self.seen:
            if needle in line:
                return line
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                line = self._q.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r}; stderr so far:\n" + "\n".join(self.seen))


FRAMES = 20_000


def rotated_capture(tmp_path):
    """One generated capture cut in two at the middle frame, as a rotating
    writer would leave it (classic pcap: a 24-byte header, then a 16-byte
    header and incl_len bytes per frame): the two parts, outside the watched
    folder, and the truth of the whole, which the parts read in order give."""
    cap = tmp_path / "capture.pcap"
    ta("generate", "--out", cap, "--packets", FRAMES, "--seed", 41)
    truth = json.loads((tmp_path / "capture.pcap.truth.json").read_text())
    data = cap.read_bytes()
    header, off, frames = data[:24], 24, []
    while off < len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frames.append(data[off:off + 16 + incl])
        off += 16 + incl
    assert len(frames) == FRAMES
    parts = []
    for name, chunk in (("a.pcap", frames[:FRAMES // 2]), ("b.pcap", frames[FRAMES // 2:])):
        parts.append(tmp_path / name)
        parts[-1].write_bytes(header + b"".join(chunk))
    return parts, truth


def truth_endpoints(truth):
    want = collections.defaultdict(lambda: [0, 0])
    for e in truth["endpoints"]:
        want[e["endpoint"]][0] += e["packets"]
        want[e["endpoint"]][1] += e["bytes"]
    return dict(want)


def stored_endpoints(cassandra, store):
    """Per-endpoint [packets, bytes] as our `query endpoints` reads them."""
    r = ta("query", "endpoints", "--store", store, "--format", "json", env={PASSWORD_ENV: cassandra.password})
    return {e["endpoint"]: [e["packets"], e["bytes"]] for e in json.loads(r.stdout)}


def test_a_new_file_waits_for_a_stopped_node_then_is_read_exactly_once(cassandra, keyspace, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    store = f"cassandra://{cassandra.user}@{cassandra.contact}/{keyspace}"
    env = dict(os.environ, **{PASSWORD_ENV: cassandra.password})
    (first, second), truth = rotated_capture(tmp_path)
    os.rename(first, dump / "a.pcap")
    port = free_port()
    proc = subprocess.Popen([BIN, "watch", "--naming", "dns", dump, "--store", store, "--spool", tmp_path / "s.db",
                             "--metrics-listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines = Lines(proc.stderr)
    node_stopped = False
    try:
        lines.wait_for(f"ingested {dump / 'a.pcap'}", 300)
        cassandra.stop()
        node_stopped = True
        # Renamed into place: the agent hears of it at once (MOVED_TO).
        os.rename(second, dump / "b.pcap")
        note = lines.wait_for(f"{dump / 'b.pcap'} waits: the store cannot start its ledger entry now", 300)
        assert note.endswith("; retrying"), note
        assert proc.poll() is None, "the agent ended while the node was down"
        deadline = time.time() + 60
        while time.time() < deadline and metric(port, "traffic_ingest_files_deferred") != 1:
            time.sleep(0.2)
        assert metric(port, "traffic_ingest_files_deferred") == 1
        assert metric(port, "traffic_ingest_file_deferrals_total") == 1
        cassandra.start()
        node_stopped = False
        # Retries back off to 30 s at most; the node may take a while to
        # take requests after it is up.
        lines.wait_for(f"ingested {dump / 'b.pcap'}", 600)
        deadline = time.time() + 300
        while time.time() < deadline and metric(port, "traffic_cassandra_spool_records") != 0:
            time.sleep(0.5)
        assert metric(port, "traffic_cassandra_spool_records") == 0
        assert metric(port, "traffic_ingest_files_deferred") == 0
        # One note for the whole outage, however many retries.
        assert sum("waits: the store cannot start" in line for line in lines.seen) == 1, lines.seen
        proc.terminate()
        assert proc.wait(timeout=120) == 0, "\n".join(lines.seen)
    finally:
        print("\n".join(lines.seen))  # shown when the test fails (or with -s)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if node_stopped:
            cassandra.start()
    assert stored_endpoints(cassandra, store) == truth_endpoints(truth)


def test_sigterm_while_a_file_waits_ends_the_agent_and_a_later_run_reads_it(cassandra, keyspace, tmp_path):
    """SIGTERM while the file waits: the agent ends (a bounded wait for its
    exit) without reading or deleting it; `watch --once` once the node is
    back reads it, and the store equals the whole capture's truth."""
    dump = tmp_path / "dump"
    dump.mkdir()
    store = f"cassandra://{cassandra.user}@{cassandra.contact}/{keyspace}"
    env = dict(os.environ, **{PASSWORD_ENV: cassandra.password})
    (first, second), truth = rotated_capture(tmp_path)
    os.rename(first, dump / "a.pcap")
    spool = tmp_path / "s.db"
    args = [BIN, "watch", "--naming", "dns", dump, "--store", store, "--spool", spool, "--delete-after"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines = Lines(proc.stderr)
    node_stopped = False
    try:
        lines.wait_for(f"ingested {dump / 'a.pcap'}", 300)
        # --delete-after: a.pcap goes once its records reached the node.
        deadline = time.time() + 300
        while time.time() < deadline and (dump / "a.pcap").exists():
            time.sleep(0.2)
        assert not (dump / "a.pcap").exists()
        cassandra.stop()
        node_stopped = True
        os.rename(second, dump / "b.pcap")
        lines.wait_for(f"{dump / 'b.pcap'} waits: the store cannot start its ledger entry now", 300)
        proc.terminate()
        assert proc.wait(timeout=120) == 0, "\n".join(lines.seen)
    finally:
        print("\n".join(lines.seen))  # shown when the test fails (or with -s)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if node_stopped:
            cassandra.start()
    assert (dump / "b.pcap").exists()
    assert not any(f"ingested {dump / 'b.pcap'}" in line for line in lines.seen), lines.seen
    r = ta("watch", "--once", "--naming", "dns", dump, "--store", store, "--spool", spool, "--delete-after",
           env={PASSWORD_ENV: cassandra.password})
    assert f"ingested {dump / 'b.pcap'}" in r.stderr, r.stderr
    assert not (dump / "b.pcap").exists()
    assert stored_endpoints(cassandra, store) == truth_endpoints(truth)
