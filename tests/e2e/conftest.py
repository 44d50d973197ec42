"""Shared fixtures of the end-to-end tests."""
import pytest

import cassandra_node


@pytest.fixture(scope="session")
def cassandra():
    """A single-node Cassandra on 127.0.0.1 (scripts/cassandra-node): started
    once per session if not already running, and stopped at the end only if
    this session started it. Fails (never skips) where it cannot run: the
    suite installs the driver and Java itself (scripts/install-deps)."""
    reason = cassandra_node.available()
    if reason is not None:
        pytest.fail(reason)
    node = cassandra_node.start_node()
    try:
        yield node
    finally:
        if node.started_here:
            node.stop()
