"""Our CQL client's TLS and LZ4, proven from the server's side.

A second Cassandra node (scripts/cassandra-node, started once for this
module in a runtime directory of its own, on ports of its own) REQUIRES
client encryption (TA_CASSANDRA_CLIENT_TLS=required), so plaintext is
refused. Its certificate is signed by a throwaway CA made here with the
openssl command line and names IP 127.0.0.1 only. What is checked:
- plaintext is refused, one clear line;
- over TLS our client writes, and the node's system_views.clients shows
  our connections with ssl_enabled and a TLS protocol, COMPRESSION=lz4 in
  their STARTUP options when --cassandra-lz4 is given and none without;
- a certificate not signed by the CA we trust, or not naming the contact
  point we dialled ("localhost" resolves to 127.0.0.1 but is not in the
  certificate), is refused with the verifier's reason.
"""
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.request

import pytest

import cassandra_node
from test_cassandra import BIN, DATA, PASSWORD_ENV, query, sqlite_answers, ta


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """ca.pem/ca.key, node.pem (signed by ca, SAN IP:127.0.0.1 only),
    other-ca.pem (signs nothing of ours)."""
    for name in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=test {name}",
                "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=cassandra test node",
            "-keyout", "node.key", "-out", "node.csr", cwd=d)
    (d / "node.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-days", "2", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-extfile", "node.ext", "-out", "node.pem", cwd=d)


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory):
    reason = cassandra_node.available()
    if reason is not None:
        pytest.fail(reason)
    pki = tmp_path_factory.mktemp("pki")
    make_pki(pki)
    run = tmp_path_factory.mktemp("cassandra-tls")
    # The script uses a keystore already in place: ours, CA-signed.
    (run / "conf").mkdir()
    pw = secrets.token_hex(16)
    (run / "conf" / "keystore.password").write_text(pw)
    openssl("pkcs12", "-export", "-in", "node.pem", "-inkey", "node.key", "-certfile", "ca.pem",
            "-name", "node", "-out", run / "conf" / "node-keystore.p12", "-passout", f"pass:{pw}", cwd=pki)
    # node-cert.pem is what clients trust (CassandraNode.cluster(tls=True)):
    # here the CA.
    (run / "node-cert.pem").write_bytes((pki / "ca.pem").read_bytes())
    env = {"TA_CASSANDRA_DIR": str(run), "TA_CASSANDRA_CLIENT_TLS": "required",
           "TA_CASSANDRA_PORT": str(free_port()), "TA_CASSANDRA_STORAGE_PORT": str(free_port()),
           "TA_CASSANDRA_JMX_PORT": str(free_port()), "TA_CASSANDRA_HEAP_MAX": "768m"}
    node = cassandra_node.start_node(env)
    node.pki = pki
    try:
        yield node
    finally:
        node.stop()


_seq = [0]


@pytest.fixture
def keyspace(tls_node):
    _seq[0] += 1
    name = f"tls{os.getpid()}_{_seq[0]}"
    yield name
    try:
        with tls_node.session(tls=True) as s:
            s.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
    except Exception:  # the node may be down after a failed test
        pass


def spec(node, keyspace, host=None):
    return f"cassandra://{node.user}@{host or node.contact}/{keyspace}"


ENV = {PASSWORD_ENV: cassandra_node.CassandraNode.password}


def test_plaintext_is_refused(tls_node, keyspace, tmp_path):
    r = ta("analyze", "--naming", "dns", "--quiet", "--store", spec(tls_node, keyspace), "--spool", tmp_path / "s.db",
           DATA / "generated_small.pcap", env=ENV, check=False)
    assert r.returncode != 0
    assert tls_node.contact in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


@pytest.mark.parametrize("lz4", [True, False], ids=["lz4", "uncompressed"])
def test_tls_and_lz4_as_the_node_sees_them(tls_node, keyspace, tmp_path, lz4):
    capture = DATA / "generated_small.pcap"
    want, _, _ = sqlite_answers(tmp_path, capture)
    dump = tmp_path / "dump"
    dump.mkdir()
    subprocess.run(["cp", capture, dump / "a.pcap"], check=True)
    port = free_port()
    tls = ["--cassandra-tls-ca", tls_node.pki / "ca.pem"] + (["--cassandra-lz4"] if lz4 else [])
    store = spec(tls_node, keyspace)
    proc = subprocess.Popen([BIN, "watch", "--naming", "dns", dump, "--store", store, *tls, "--spool", tmp_path / "s.db",
                             "--metrics-listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, **ENV))
    try:
        # Written when the spool is empty again after records were sent.
        deadline = time.time() + 120
        text = ""
        while time.time() < deadline and proc.poll() is None:
            try:
                text = scrape(port)
            except OSError:
                text = ""
            sent = re.search(r"^traffic_cassandra_records_sent_total (\S+)$", text, re.M)
            if sent and float(sent.group(1)) > 0 and "traffic_cassandra_spool_records 0" in text:
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()
        sent = re.search(r"^traffic_cassandra_records_sent_total (\S+)$", text, re.M)
        assert sent and float(sent.group(1)) > 0, text
        ports = cassandra_node.local_ports_of(proc.pid, tls_node.port)
        assert ports, "no connection of ours to the node"
        with tls_node.session(tls=True) as s:
            view = cassandra_node.clients_view(s, ports)
        # Every connection of ours is known to the node, and each is TLS.
        assert set(view) == ports, (view, ports)
        for row in view.values():
            assert row.ssl_enabled is True, row
            assert row.ssl_protocol in ("TLSv1.2", "TLSv1.3"), row
            options = dict(row.client_options or {})
            if lz4:
                assert options.get("COMPRESSION") == "lz4", options
            else:
                assert "COMPRESSION" not in options, options
        # And the writes arrived: read back over TLS (and LZ4) by our client.
        assert query(store, "endpoints", ENV, *tls) == want
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_a_certificate_from_another_ca_is_refused(tls_node, keyspace, tmp_path):
    r = ta("analyze", "--naming", "dns", "--quiet", "--store", spec(tls_node, keyspace), "--spool", tmp_path / "s.db",
           "--cassandra-tls-ca", tls_node.pki / "other-ca.pem", DATA / "generated_small.pcap", env=ENV, check=False)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tls_node.contact in r.stderr and "certificate verify failed" in r.stderr, r.stderr
    # The node sends its chain up to its own CA, which we do not trust.
    assert "self-signed certificate in certificate chain" in r.stderr, r.stderr


def test_a_certificate_for_another_name_is_refused(tls_node, keyspace, tmp_path):
    # The right CA, but the certificate names 127.0.0.1, not localhost.
    host = f"localhost:{tls_node.port}"
    r = ta("analyze", "--naming", "dns", "--quiet", "--store", spec(tls_node, keyspace, host), "--spool", tmp_path / "s.db",
           "--cassandra-tls-ca", tls_node.pki / "ca.pem", DATA / "generated_small.pcap", env=ENV, check=False)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert host in r.stderr and "certificate verify failed" in r.stderr, r.stderr
    assert "hostname mismatch" in r.stderr, r.stderr
