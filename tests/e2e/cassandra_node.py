"""A single-node Cassandra 5.0 for tests: scripts/cassandra-node on
127.0.0.1, the superuser cassandra/cassandra, TLS optional on the same native
port (the node's certificate in RUNTIME/node-cert.pem). Every wait is
bounded (the script's own start-up limit, then ours).

    node = start_node()          # starts it, or finds it running
    start_node({"TA_CASSANDRA_DIR": d, "TA_CASSANDRA_PORT": p, ...,
                "TA_CASSANDRA_CLIENT_TLS": "required"})   # another node, TLS only
    with node.session() as s:    # a cassandra.cluster Session
        s.execute("SELECT release_version FROM system.local")
    node.stop()                  # only if node.started_here, usually
"""
import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cassandra-node"
# The script's own start-up limit is 180 s; jars fetched on first use may
# take a while longer.
START_TIMEOUT = 600


def runtime_dir(env=None):
    return pathlib.Path(dict(os.environ, **(env or {})).get("TA_CASSANDRA_DIR", ROOT / "build-cassandra"))


def _script(*args, timeout=120, check=True, env=None):
    """Runs the script; `env` adds TA_CASSANDRA_* settings (another node:
    its own TA_CASSANDRA_DIR and ports) to ours."""
    proc = subprocess.run([str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    if check and proc.returncode != 0:
        raise RuntimeError(f"scripts/cassandra-node {' '.join(args)} exited {proc.returncode}:\n"
                           f"{proc.stdout}{proc.stderr}")
    return proc


def status(env=None):
    """(running?, the script's status line)."""
    proc = _script("status", check=False, env=env)
    return proc.returncode == 0, proc.stdout.strip()


def jar_cache():
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(os.environ.get("TA_CASSANDRA_CACHE",
                                       pathlib.Path(base) / "traffic-analyzer" / "cassandra-5.0.5"))


def available():
    """None if a node can be started here, else the reason it can't."""
    try:
        import cassandra  # noqa: F401
    except ImportError:
        return "the Cassandra Python driver is not installed (scripts/install-deps)"
    if status()[0]:
        return None
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "java is not installed (scripts/install-deps)"
    if shutil.which("mvn") is None and not (jar_cache() / ".complete").is_file():
        return "mvn is not installed and Cassandra's jars are not cached (scripts/install-deps)"
    return None


class Session:
    """A driver Session that shuts its Cluster down on exit (also usable
    without `with`: call close())."""

    def __init__(self, cluster, session):
        self.cluster = cluster
        self._session = session

    def __getattr__(self, name):
        return getattr(self._session, name)

    def close(self):
        self.cluster.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CassandraNode:
    user = "cassandra"
    password = "cassandra"

    def __init__(self, contact, started_here, env=None):
        self.env = dict(env or {})
        self.contact = contact
        self.host, port = contact.rsplit(":", 1)
        self.port = int(port)
        self.started_here = started_here
        self.dir = runtime_dir(self.env)
        self.cert_pem = self.dir / "node-cert.pem"

    def __repr__(self):
        return f"CassandraNode({self.contact}, started_here={self.started_here})"

    # --- lifecycle -------------------------------------------------------------
    def start(self):
        contact = _start(self.env)
        assert contact == self.contact, (contact, self.contact)
        return self

    def stop(self):
        _script("stop", timeout=90, env=self.env)

    def status(self):
        return status(self.env)

    # --- clients -------------------------------------------------------------
    def cluster(self, user=None, password=None, tls=False, **kwargs):
        """A cassandra.cluster.Cluster for this node (not yet connected)."""
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy
        if tls:
            import ssl
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.cert_pem))
            ctx.check_hostname = True
            kwargs["ssl_context"] = ctx
            kwargs.setdefault("ssl_options", {"server_hostname": self.host})
        kwargs.setdefault("connect_timeout", 10)
        kwargs.setdefault("control_connection_timeout", 10)
        kwargs.setdefault("execution_profiles", {EXEC_PROFILE_DEFAULT: ExecutionProfile(
            load_balancing_policy=RoundRobinPolicy(), request_timeout=30)})
        return Cluster([self.host], port=self.port,
                       auth_provider=PlainTextAuthProvider(user or self.user,
                                                           self.password if password is None
                                                           else password),
                       protocol_version=5, **kwargs)

    def session(self, keyspace=None, user=None, password=None, tls=False, **kwargs):
        """A connected Session (wrapped: close() or `with` shuts it down)."""
        cluster = self.cluster(user=user, password=password, tls=tls, **kwargs)
        try:
            s = cluster.connect(keyspace)
        except BaseException:
            cluster.shutdown()
            raise
        return Session(cluster, s)

    def create_keyspace(self, name, replication_factor=1):
        with self.session() as s:
            s.execute(f"CREATE KEYSPACE IF NOT EXISTS {name} WITH replication = "
                      f"{{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}")

    def drop_keyspace(self, name):
        with self.session() as s:
            s.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


def _start(env=None):
    proc = _script("start", timeout=START_TIMEOUT, env=env)
    lines = proc.stdout.strip().splitlines()
    if not lines or ":" not in lines[-1]:
        raise RuntimeError(f"scripts/cassandra-node start printed no HOST:PORT:\n"
                           f"{proc.stdout}{proc.stderr}")
    return lines[-1].strip()


def start_node(env=None):
    """Start the node (or find it running); a CassandraNode whose
    `started_here` says whether this call started it. `env`: TA_CASSANDRA_*
    settings of another node (e.g. TA_CASSANDRA_CLIENT_TLS=required with its
    own TA_CASSANDRA_DIR and ports)."""
    was_running, _ = status(env)
    return CassandraNode(_start(env), started_here=not was_running, env=env)


def local_ports_of(pid, node_port):
    """The local ports of process `pid`'s established TCP connections to
    127.0.0.1:node_port (from `ss`, which names each socket's process)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", "dst", f"127.0.0.1:{node_port}"],
                         capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[2]  # Recv-Q Send-Q Local Peer Process
            ports.add(int(local.rsplit(":", 1)[1]))
    return ports


def clients_view(session, ports):
    """The node's own view of the connections from `ports` on 127.0.0.1
    (Cassandra's system_views.clients): {port: row} with ssl_enabled,
    ssl_protocol and client_options (what the client's STARTUP asked for)."""
    rows = session.execute("SELECT address, port, ssl_enabled, ssl_protocol, client_options "
                           "FROM system_views.clients")
    return {r.port: r for r in rows if r.port in ports}
