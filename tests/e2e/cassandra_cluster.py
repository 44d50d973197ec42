"""A local 3-node Cassandra 5.0 cluster for tests: scripts/cassandra-cluster
on 127.0.0.1 ... 127.0.0.3, the superuser cassandra/cassandra, node 1 the
seed, and a superuser `traffic` (see ENV) that the tests use. Its ports differ from the single node's (cassandra_node.py), so both
can run at once. Every wait is bounded (the script's own limits, then ours).

    @pytest.fixture(scope="session")
    def cluster():
        yield from cassandra_cluster.session_cluster()

    cluster.contacts           # ["127.0.0.1:19042", "127.0.0.2:19042", ...]
    cluster.kill(2)            # kill -9 node 2
    cluster.stop_node(3)       # stop node 3 (TERM)
    cluster.restart(2)         # node 2 again, with its data
    with cluster.session() as s:   # a cassandra.cluster Session, all nodes
        ...
"""
import os
import pathlib
import subprocess

import pytest

import cassandra_node

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cassandra-cluster"
NODES = 3
# Three nodes start one after another, each up to the script's 180 s.
START_TIMEOUT = 900
ENV = {
    "TA_CASSANDRA_CLUSTER_DIR": os.environ.get("TA_CASSANDRA_CLUSTER_DIR", str(ROOT / "build-cassandra-cluster-e2e")),
    "TA_CASSANDRA_PORT": "19042",
    "TA_CASSANDRA_STORAGE_PORT": "17000",
    "TA_CASSANDRA_JMX_BASE": "17200",
    # The default superuser `cassandra` is read at QUORUM at each login and
    # permission check, so with two of three nodes down it can do nothing;
    # any other role is read at LOCAL_ONE. The tests use this one.
    "TA_CASSANDRA_ROLE": "traffic",
    "TA_CASSANDRA_ROLE_PASSWORD": "traffic-pw",
}


def _script(*args, timeout=300, check=True):
    proc = subprocess.run([str(SCRIPT), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=timeout, env=dict(os.environ, **ENV))
    if check and proc.returncode != 0:
        raise RuntimeError(f"scripts/cassandra-cluster {' '.join(map(str, args))} exited {proc.returncode}:\n"
                           f"{proc.stdout}{proc.stderr}")
    return proc


def status():
    """(every node running?, the script's status lines)."""
    proc = _script("status", check=False)
    return proc.returncode == 0, proc.stdout.strip()


def available():
    """None if the cluster can be started here, else the reason it can't."""
    if status()[0]:
        return None
    reason = cassandra_node.available()
    if reason is None and not any(os.access(pathlib.Path(d) / "cqlsh", os.X_OK)
                                  for d in os.environ.get("PATH", "").split(os.pathsep)):
        reason = "cqlsh is not installed (scripts/install-deps)"
    return reason


class CassandraCluster:
    user = ENV["TA_CASSANDRA_ROLE"]
    password = ENV["TA_CASSANDRA_ROLE_PASSWORD"]

    def __init__(self, contacts, started_here):
        self.contacts = contacts
        self.started_here = started_here
        self.port = int(contacts[0].rsplit(":", 1)[1])

    def __repr__(self):
        return f"CassandraCluster({','.join(self.contacts)}, started_here={self.started_here})"

    @property
    def spec_hosts(self):
        """The contact points as a store spec lists them."""
        return ",".join(self.contacts)

    def host(self, i):
        return self.contacts[i - 1].rsplit(":", 1)[0]

    # --- faults --------------------------------------------------------------
    def kill(self, i):
        _script("kill", i, timeout=60)

    def stop_node(self, i):
        _script("stop", i, timeout=120)

    def restart(self, i):
        _script("restart", i, timeout=START_TIMEOUT)

    def stop(self):
        _script("stop", timeout=180)

    # --- clients ---------------------------------------------------------------
    def session(self, keyspace=None, hosts=None, **kwargs):
        """A connected driver Session (close() or `with` shuts it down) to
        `hosts` (node numbers; default all), token-aware."""
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy, WhiteListRoundRobinPolicy
        hosts = [self.host(i) for i in (hosts or range(1, len(self.contacts) + 1))]
        policy = TokenAwarePolicy(RoundRobinPolicy()) if len(hosts) == len(self.contacts) \
            else WhiteListRoundRobinPolicy(hosts)
        kwargs.setdefault("execution_profiles", {EXEC_PROFILE_DEFAULT: ExecutionProfile(
            load_balancing_policy=policy, request_timeout=60)})
        cluster = Cluster(hosts, port=self.port, auth_provider=PlainTextAuthProvider(self.user, self.password),
                          protocol_version=5, connect_timeout=10, control_connection_timeout=10, **kwargs)
        try:
            s = cluster.connect(keyspace)
        except BaseException:
            cluster.shutdown()
            raise
        return cassandra_node.Session(cluster, s)


def start_cluster():
    was_running, _ = status()
    proc = _script("start", NODES, timeout=START_TIMEOUT)
    lines = proc.stdout.strip().splitlines()
    if not lines or ":" not in lines[-1]:
        raise RuntimeError(f"scripts/cassandra-cluster start printed no HOST:PORT list:\n{proc.stdout}{proc.stderr}")
    return CassandraCluster(lines[-1].strip().split(","), started_here=not was_running)


def session_cluster():
    """The body of a session fixture: starts the cluster (or finds it
    running), yields it, and stops it at the end if it started it here.
    Fails (never skips) where it cannot run, like the single node."""
    reason = available()
    if reason is not None:
        pytest.fail(reason)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        if cluster.started_here:
            cluster.stop()
