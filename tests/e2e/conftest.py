"""Shared fixtures of the end-to-end tests."""
import os

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


# Skips, xfails and deselections must show in the log, and under CI
# (CI=true) a skip or xfail fails the run: a missing tool or a non-root
# runner must not silently drop tests. Deselection (-k, as scripts/test does
# under the sanitizers) is on purpose: listed, never a failure.
_state = {"session": None, "deselected": []}


def pytest_sessionstart(session):
    _state["session"] = session


def pytest_deselected(items):
    _state["deselected"].extend(item.nodeid for item in items)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for nodeid in _state["deselected"]:
        terminalreporter.write_line(f"DESELECTED {nodeid}")
    dropped = {kind: len(terminalreporter.stats.get(kind, [])) for kind in ("skipped", "xfailed", "xpassed")}
    if os.environ.get("CI") == "true" and any(dropped.values()):
        summary = ", ".join(f"{n} {kind}" for kind, n in dropped.items() if n)
        terminalreporter.write_line(f"CI=true: {summary}: failing the run (every test must run here)", red=True)
        session = _state["session"]
        if session is not None and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
