"""`run` killed with SIGKILL during live capture (needs root: the two-host
network of netns.py, in namespaces this test creates).

Known, bounded traffic (curl through a real DNS server) is captured by `run`
into SQLite and by tcpdump on the same interface. Once the store shows a
flush (it holds exactly what tcpdump saw), `run` is killed with SIGKILL: the
store still holds every record exactly once. `run` is started again on the
same store, more traffic is sent, and the totals are the sum of both rounds
as tcpdump counts them, with no packet row twice.
"""
import json
import signal
import time

import pytest

from netns import HOSTS, TwoHostNet, available
from test_golden import BIN, query_endpoints, ta
from test_live import by_endpoint, stop, tcpdump_counts, wait_for_line

REASON = available()
needs_netns = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def expected_counts(net, pcap):
    counts = tcpdump_counts(pcap)
    return {h: counts[net.addresses[h]] for h in HOSTS if counts[net.addresses[h]] > 0}


def wait_for_store(db, net, pcap, proc, timeout=60):
    """Waits until the store holds exactly what tcpdump saw, twice in a row
    a second apart (the producer is done, so the last packets of its
    connections have had time to reach both): a flush of everything sent.
    Returns that count per hostname."""
    deadline = time.time() + timeout
    got = want = last = None
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        want = expected_counts(net, pcap)
        got = by_endpoint(query_endpoints(db)) if db.exists() else {}
        if want and got == want and want == last:
            return want
        last = want if got == want else None
        time.sleep(1.0)
    raise AssertionError(f"the store never caught up with tcpdump: store {got}, tcpdump {want}")


def packet_rows(db):
    """Every stored packet row of every endpoint (as `query packets` prints it)."""
    rows = []
    for h in HOSTS:
        out = ta("query", "packets", "--store", f"sqlite:{db}", "--endpoint", h, "--limit", 0,
                 "--format", "json").stdout
        rows += [json.dumps(r, sort_keys=True) for r in json.loads(out)]
    return rows


def start_run(net, db):
    run = net.spawn(net.cli, BIN, "run", "--naming", "dns", "-i", net.cli_if, "--ports", "80", "--store",
                    f"sqlite:{db}", "--metrics-listen", "", "--flush-seconds", "0.2")
    wait_for_line(run, "capturing on")
    return run


@needs_netns
def test_run_killed_after_a_flush_keeps_every_record_once_and_goes_on(tmp_path):
    with TwoHostNet(tmp_path) as net:
        db = tmp_path / "run.db"
        ref = tmp_path / "tcpdump.pcap"
        tcpdump = net.spawn(net.cli, "tcpdump", "--immediate-mode", "-i", net.cli_if, "-U", "-w", ref, "tcp port 80 or port 53")
        wait_for_line(tcpdump, "listening on")

        run = start_run(net, db)
        truth1 = net.produce(rounds=3)
        first = wait_for_store(db, net, ref, run)
        assert set(first) == set(HOSTS)
        for h, n in truth1.items():
            assert first[h] >= 5 * n  # SYN, ACK, request, ACK, FIN per fetch at least
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        assert run.returncode == -signal.SIGKILL
        # Everything flushed before the kill is there, once.
        assert by_endpoint(query_endpoints(db)) == first
        rows = packet_rows(db)
        assert len(rows) == sum(first.values()) and len(set(rows)) == len(rows)

        # Started again on the same store, it goes on.
        run = start_run(net, db)
        truth2 = net.produce(rounds=2)
        both = wait_for_store(db, net, ref, run)
        stop(run)
        tcpdump.send_signal(signal.SIGTERM)
        tcpdump.communicate(timeout=10)
        assert expected_counts(net, ref) == both
        assert by_endpoint(query_endpoints(db)) == both
        for h in HOSTS:
            # The second round added at least its own fetches' packets.
            assert both[h] - first[h] >= 5 * truth2[h]
        rows = packet_rows(db)
        assert len(rows) == sum(both.values()) and len(set(rows)) == len(rows)
