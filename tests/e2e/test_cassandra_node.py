"""The test Cassandra node itself (scripts/cassandra-node): it starts, takes
the superuser's password and no other, stores and returns a row, reports
itself running, and speaks TLS on its native port with its exported
certificate as well as plaintext."""
import uuid

import pytest

import cassandra_node


@pytest.fixture
def keyspace(cassandra):
    name = "ta_smoke_" + uuid.uuid4().hex[:8]
    cassandra.create_keyspace(name)
    try:
        yield name
    finally:
        cassandra.drop_keyspace(name)


def test_contact_point_and_status(cassandra):
    assert cassandra.contact == f"{cassandra.host}:{cassandra.port}"
    assert cassandra.host == "127.0.0.1"
    running, line = cassandra.status()
    assert running, line
    assert line.startswith(f"running {cassandra.contact} (pid ")


def test_write_and_read_a_row(cassandra, keyspace):
    with cassandra.session(keyspace) as s:
        version = s.execute("SELECT release_version FROM system.local").one().release_version
        assert version.startswith("5.0")
        s.execute("CREATE TABLE t (k text, c int, v bigint, PRIMARY KEY (k, c))")
        insert = s.prepare("INSERT INTO t (k, c, v) VALUES (?, ?, ?)")
        for c in range(3):
            s.execute(insert, ("a", c, 10 * c))
        rows = s.execute("SELECT c, v FROM t WHERE k = 'a'").all()
        assert [(r.c, r.v) for r in rows] == [(0, 0), (1, 10), (2, 20)]


def test_wrong_password_is_refused(cassandra):
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable
    with pytest.raises(NoHostAvailable) as info:
        with cassandra.session(password="not-the-password"):
            pass
    errors = list(info.value.errors.values())
    assert errors and all(isinstance(e, AuthenticationFailed) for e in errors), errors


def test_tls_with_the_exported_certificate(cassandra):
    assert cassandra.cert_pem.is_file()
    import ssl
    with cassandra.session(tls=True) as s:
        assert s.execute("SELECT release_version FROM system.local").one()
        assert isinstance(s.cluster.control_connection._connection._socket, ssl.SSLSocket)
        clients = s.execute("SELECT ssl_enabled, ssl_protocol FROM system_views.clients").all()
        assert any(c.ssl_enabled and c.ssl_protocol.startswith("TLS") for c in clients), clients


def test_tls_with_another_certificate_is_refused(cassandra, tmp_path):
    import ssl
    from cassandra.cluster import NoHostAvailable
    # Trusting only the system CAs, the node's self-signed certificate fails.
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    with pytest.raises(NoHostAvailable):
        with cassandra.session(ssl_context=ctx, ssl_options={"server_hostname": "127.0.0.1"}):
            pass


def test_start_again_is_a_no_op(cassandra):
    again = cassandra_node.start_node()
    assert again.contact == cassandra.contact
    assert not again.started_here
