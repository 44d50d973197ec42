"""`traffic-analyzer top` on live traffic (needs root: it builds its own
two-host network in network namespaces, see netns.py; nothing leaves them).

1. Batch mode: `top --once --duration 3 -i VETH` while curl fetches from the
   server namespace's HTTP server with `Host: top.test`; tcpdump records the
   same interface. The row of top.test must hold exactly the sent and
   received totals that `analyze` finds in tcpdump's capture, and those
   tcpdump itself counts.
   Its FLOWS and SOURCE are the three connections curl made (tcpdump's
   SYNs) and `http` (named by the Host header).
2. `--once --group-by domain`: hosts under one registrable domain are one
   row, with the totals of its hosts as `analyze` finds them.
3. Full screen, driven in tmux (when tmux is installed): the rows appear,
   `/` filters, `n` sorts by name, `p` pauses, a resize redraws to the new
   size, `q` quits; after `q` and after SIGTERM the process has exited with
   0, the pane left the alternate screen and the terminal modes are back
   (echo, icanon).
4. In tmux, a curl download through a rate limit on the server's link (tc
   tbf, 200 kbit/s: a connection of about 5 s): its row shows the program
   `curl` and a received rate near the limit; `g` shows the registrable
   domain's row, then the program's row.
"""
import shutil
import signal
import subprocess
import time

import pytest

from netns import TwoHostNet
from test_golden import BIN, ta
from test_live import wait_for_line
from test_live_flows import CLIENT, query, tcpdump_count

SERVER = "10.77.0.11"


def missing_prerequisite(*tools):
    import os
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "dnsmasq", "curl", "tcpdump", *tools):
        if shutil.which(tool) is None:
            return f"needs {tool} in PATH (scripts/install-deps)"
    if not os.access(BIN, os.X_OK):
        return f"needs the built binary {BIN} (ninja -C build traffic-analyzer)"
    return None


class QuietNet(TwoHostNet):
    """TwoHostNet with IPv6 off (no router solicitations or MLD reports in
    the counts)."""

    def __enter__(self):
        try:
            super().__enter__()
            for ns in (self.cli, self.srv):
                self.run_in(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
                self.run_in(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            return self
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def fetch(self, host):
        r = self.run_in(self.cli, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "--max-time", "5", "-H", f"Host: {host}", f"http://{SERVER}/",
                        check=False)
        assert r.stdout == "200", f"curl Host: {host}: {r.stdout} {r.stderr}"


def table_rows(text):
    """The rows of top's plain table: {name: {column: value}}."""
    rows = {}
    header = None
    for line in text.splitlines():
        if line.startswith("NAME "):
            header = line.split()
            continue
        if header is None or not line.strip():
            continue
        cells = line.split()
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def test_top_once_counts_as_analyze_of_the_same_traffic(tmp_path):
    reason = missing_prerequisite()
    if reason is not None:
        pytest.fail(reason)
    with QuietNet(tmp_path) as net:
        pcap, db = tmp_path / "tcpdump.pcap", tmp_path / "offline.db"
        tcpdump = net.spawn(net.cli, "tcpdump", "-i", net.cli_if, "-U", "-w", pcap)
        wait_for_line(tcpdump, "listening on")
        top = net.spawn(net.cli, BIN, "top", "--once", "--duration", "3", "-i", net.cli_if)
        wait_for_line(top, "capturing on")
        for _ in range(3):
            net.fetch("top.test")
        out, err = top.communicate(timeout=30)
        assert top.returncode == 0, err
        time.sleep(0.5)
        tcpdump.send_signal(signal.SIGTERM)
        tcpdump.communicate(timeout=10)

        assert "\033" not in out
        rows = table_rows(out)
        assert "top.test" in rows, out
        row = rows["top.test"]
        got = (int(row["PKTS_OUT"]), int(row["SENT"]), int(row["PKTS_IN"]), int(row["RECEIVED"]))

        ta("analyze", "--quiet", "--store", f"sqlite:{db}", pcap)
        offline = {e["endpoint"]: e for e in query(db, "endpoints")}
        e = offline["top.test"]
        assert got == (e["packets"], e["bytes"], e["received_packets"], e["received_bytes"]), \
            (out, e)
        # And tcpdump's own reading of the capture: the three HTTP flows.
        sent = tcpdump_count(pcap, f"src {CLIENT} and dst {SERVER} and tcp dst port 80")
        received = tcpdump_count(pcap, f"src {SERVER} and dst {CLIENT} and tcp src port 80")
        assert got == (*sent, *received), (out, sent, received)
        assert sent[0] >= 3 * 4  # three connections: at least SYN, ACK, GET, FIN each
        syns = tcpdump_count(pcap, f"src {CLIENT} and dst {SERVER} and tcp dst port 80 "
                             "and tcp[tcpflags] & tcp-syn != 0")
        assert syns[0] == 3
        assert (row["FLOWS"], row["SOURCE"]) == ("3", "http"), out
        assert "by host" in out.splitlines()[0], out


def test_top_once_groups_by_registrable_domain(tmp_path):
    reason = missing_prerequisite()
    if reason is not None:
        pytest.fail(reason)
    with QuietNet(tmp_path) as net:
        pcap, db = tmp_path / "tcpdump.pcap", tmp_path / "offline.db"
        tcpdump = net.spawn(net.cli, "tcpdump", "-i", net.cli_if, "-U", "-w", pcap)
        wait_for_line(tcpdump, "listening on")
        top = net.spawn(net.cli, BIN, "top", "--once", "--duration", "3", "--group-by", "domain",
                        "-i", net.cli_if)
        wait_for_line(top, "capturing on")
        for host in ("a.grp.test", "b.grp.test", "a.grp.test", "solo.test"):
            net.fetch(host)
        out, err = top.communicate(timeout=30)
        assert top.returncode == 0, err
        time.sleep(0.5)
        tcpdump.send_signal(signal.SIGTERM)
        tcpdump.communicate(timeout=10)

        assert "\033" not in out
        assert "by domain" in out.splitlines()[0], out
        rows = table_rows(out)
        # ".test" is no public suffix: the list's default rule makes the
        # registrable domain the last two labels.
        assert "grp.test" in rows and "solo.test" in rows, out
        assert "a.grp.test" not in rows and "b.grp.test" not in rows, out
        ta("analyze", "--quiet", "--store", f"sqlite:{db}", pcap)
        offline = {e["endpoint"]: e for e in query(db, "endpoints")}
        want = [0, 0, 0, 0]
        for name in ("a.grp.test", "b.grp.test"):
            e = offline[name]
            for i, k in enumerate(("packets", "bytes", "received_packets", "received_bytes")):
                want[i] += e[k]
        row = rows["grp.test"]
        got = [int(row["PKTS_OUT"]), int(row["SENT"]), int(row["PKTS_IN"]), int(row["RECEIVED"])]
        assert got == want, (out, want)
        assert (row["FLOWS"], row["SOURCE"]) == ("3", "http"), out
        assert rows["solo.test"]["FLOWS"] == "1", out


class Tmux:
    """A private tmux server (own socket) with one 200x50 pane running CMD
    in a shell that, after CMD, prints its exit status and the terminal
    modes, then waits."""

    def __init__(self, tmp, cmd):
        self.socket = str(tmp / "tmux.sock")
        shell = (f"{cmd}; echo EXITED $?; stty -a | tr ' ;' '\\n\\n' | "
                 "grep -x -e echo -e icanon | tr '\\n' ' '; echo MODES; sleep 120")
        self.tmux("new-session", "-d", "-s", "ta", "-x", "200", "-y", "50", shell)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              text=True, check=True, timeout=10)

    def pane(self):
        return self.tmux("capture-pane", "-p", "-t", "ta").stdout

    def value(self, fmt):
        return self.tmux("display-message", "-p", "-t", "ta", fmt).stdout.strip()

    def wait_for(self, needle, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.pane()
            if needle in text:
                return text
            time.sleep(0.2)
        raise AssertionError(f"never saw {needle!r} in the pane:\n{self.pane()}")

    def close(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=10)


def rate(text):
    """top's short form of a rate ("20.5k") as a number."""
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}
    if text[-1] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return float(text)


def check_restored(tmux):
    """The program exited 0 and gave the terminal back."""
    text = tmux.wait_for("MODES")
    assert "EXITED 0" in text, text
    modes = next(line for line in text.splitlines() if line.endswith("MODES")).split()
    assert {"echo", "icanon"} <= set(modes), text
    assert tmux.value("#{alternate_on}") == "0"
    return text


@pytest.mark.parametrize("how", ["q", "sigterm"])
def test_top_in_tmux_keys_and_restored_terminal(tmp_path, how):
    reason = missing_prerequisite("tmux")
    if reason is not None:
        pytest.skip(reason)
    with QuietNet(tmp_path) as net:
        tmux = Tmux(tmp_path, f"ip netns exec {net.cli} {BIN} top -i {net.cli_if}")
        try:
            tmux.wait_for("NAME")
            assert tmux.value("#{alternate_on}") == "1"
            # Rows appear within a few refreshes of the traffic.
            deadline = time.time() + 20
            while "tmux.test" not in tmux.pane() and time.time() < deadline:
                net.fetch("tmux.test")
                net.fetch("other.test")
                time.sleep(1)
            text = tmux.wait_for("tmux.test")
            assert "other.test" in text, text
            # `/` filters by substring: only tmux.test is left.
            tmux.tmux("send-keys", "-t", "ta", "/", "t", "m", "u", "x", "Enter")
            tmux.wait_for("filter 'tmux'")
            deadline = time.time() + 10
            while "other.test" in tmux.pane() and time.time() < deadline:
                time.sleep(0.2)
            text = tmux.pane()
            assert "tmux.test" in text and "other.test" not in text, text
            # Sort by name (`n`) is shown in the status line.
            tmux.tmux("send-keys", "-t", "ta", "n")
            tmux.wait_for("sort name")
            # `p` pauses the screen (said in the status line), `p` again resumes.
            tmux.tmux("send-keys", "-t", "ta", "p")
            tmux.wait_for("PAUSED")
            tmux.tmux("send-keys", "-t", "ta", "p")
            deadline = time.time() + 10
            while "PAUSED" in tmux.pane() and time.time() < deadline:
                time.sleep(0.2)
            assert "PAUSED" not in tmux.pane()
            # A smaller window: the view is redrawn to fit it (the status
            # line cut at 100 columns loses its end).
            tmux.tmux("resize-window", "-t", "ta", "-x", "100", "-y", "20")
            deadline = time.time() + 10
            while "q quit" in tmux.pane() and time.time() < deadline:
                time.sleep(0.2)
            text = tmux.pane()
            assert "q quit" not in text and "tmux.test" in text, text
            assert max(len(line) for line in text.splitlines()) <= 100, text
            if how == "q":
                tmux.tmux("send-keys", "-t", "ta", "q")
            else:
                shell = int(tmux.value("#{pane_pid}"))
                child = subprocess.run(["pgrep", "-P", str(shell)], capture_output=True,
                                       text=True, timeout=10).stdout.split()
                assert len(child) == 1, child
                subprocess.run(["kill", "-TERM", child[0]], check=True, timeout=10)
            check_restored(tmux)
        finally:
            tmux.close()


def test_top_in_tmux_names_the_program_and_groups(tmp_path):
    reason = missing_prerequisite("tmux", "tc")
    if reason is not None:
        pytest.skip(reason)
    with QuietNet(tmp_path) as net:
        # 120 KiB at 200 kbit/s (25 kB/s with the link headers): about 5 s.
        (tmp_path / "www" / "big.bin").write_bytes(b"x" * (120 * 1024))
        net.run_in(net.srv, "tc", "qdisc", "add", "dev", net.srv_if, "root", "tbf", "rate",
                   "200kbit", "burst", "4kb", "latency", "400ms")
        tmux = Tmux(tmp_path, f"ip netns exec {net.cli} {BIN} top -i {net.cli_if}")
        try:
            tmux.tmux("resize-window", "-t", "ta", "-x", "200", "-y", "50")
            tmux.wait_for("NAME")
            slow = net.spawn(net.cli, "curl", "-s", "-o", "/dev/null", "--max-time", "30",
                             "-H", "Host: slow.grp.test", f"http://{SERVER}/big.bin")
            # The row shows curl as its program, and, once curl has run a few
            # seconds, a received rate over the last 2 s near the link's
            # limit (25 kB/s of frames, a little less of IP packets).
            started = time.time()
            deadline = started + 20
            row = {}
            while time.time() < deadline:
                row = table_rows(tmux.pane()).get("slow.grp.test", {})
                if (row.get("PROGRAM") == "curl" and time.time() - started > 2.5
                        and rate(row.get("IN/2s", "0")) > 15e3):
                    break
                time.sleep(0.3)
            assert row.get("PROGRAM") == "curl", tmux.pane()
            assert 15e3 < rate(row["IN/2s"]) < 30e3, tmux.pane()
            assert row["SOURCE"] == "http", tmux.pane()
            # `g`: rows per registrable domain, then per program.
            tmux.tmux("send-keys", "-t", "ta", "g")
            tmux.wait_for("group domain")
            text = tmux.wait_for("grp.test ")
            rows = table_rows(text)
            assert "grp.test" in rows and "slow.grp.test" not in rows, text
            assert rows["grp.test"]["PROGRAM"] == "curl", text
            tmux.tmux("send-keys", "-t", "ta", "g")
            tmux.wait_for("group process")
            deadline = time.time() + 10
            while "curl" not in table_rows(tmux.pane()) and time.time() < deadline:
                time.sleep(0.2)
            rows = table_rows(tmux.pane())
            assert "curl" in rows and int(rows["curl"]["FLOWS"]) >= 1, tmux.pane()
            tmux.tmux("send-keys", "-t", "ta", "g")
            tmux.wait_for("group host")
            slow.wait(timeout=40)
            tmux.tmux("send-keys", "-t", "ta", "q")
            check_restored(tmux)
        finally:
            tmux.close()
