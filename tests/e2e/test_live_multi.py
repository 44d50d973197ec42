"""`run` on two interfaces (`-i c1 -i c2`) and on `-i any` under a load the
kernel must drop (needs root: namespaces this test creates).

    sender ns: s1 10.78.1.2/24 --veth-- c1 10.78.1.1/24 :capture ns
               s2 10.78.2.2/24 --veth-- c2 10.78.2.1/24

bench/udp_blast (built here with cc) sends a bounded number of UDP datagrams
to port 9 of each capture address. `run` has a 1 MiB capture buffer and is
stopped (SIGSTOP) while the blast runs, so the ring must overflow whatever
the machine's speed. Then /metrics must show kernel drops > 0, and its
received/dropped counters must equal what pcap_stats says (the per-interface
line `run` prints at exit), with received <= sent (libpcap on Linux counts
every packet that reached the socket, the dropped ones included) and the
frames the analyzer read (traffic_frames_total) = received - dropped.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from test_golden import BIN
from test_live import wait_for_line

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLAST_SRC = os.path.join(ROOT, "bench", "udp_blast.c")
PER_INTERFACE = 20_000  # datagrams sent to each capture address


def reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "cc", "curl"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


REASON = reason()
needs_netns = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def sh(*cmd, check=True):
    return subprocess.run(list(map(str, cmd)), check=check, capture_output=True, text=True)


class TwoLinkNet:
    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.snd, self.cap = f"ta-snd-{tag}", f"ta-cap-{tag}"
        self.links = [(f"tms1{tag}", f"tmc1{tag}", "10.78.1"), (f"tms2{tag}", f"tmc2{tag}", "10.78.2")]

    def __enter__(self):
        sh("ip", "netns", "add", self.snd)
        sh("ip", "netns", "add", self.cap)
        for s, c, net in self.links:
            sh("ip", "link", "add", s, "type", "veth", "peer", "name", c)
            sh("ip", "link", "set", s, "netns", self.snd)
            sh("ip", "link", "set", c, "netns", self.cap)
            self.run_in(self.snd, "ip", "addr", "add", f"{net}.2/24", "dev", s)
            self.run_in(self.cap, "ip", "addr", "add", f"{net}.1/24", "dev", c)
            self.run_in(self.snd, "ip", "link", "set", s, "up")
            self.run_in(self.cap, "ip", "link", "set", c, "up")
        for ns in (self.snd, self.cap):
            self.run_in(ns, "ip", "link", "set", "lo", "up")
        return self

    def run_in(self, ns, *cmd, check=True):
        return sh("ip", "netns", "exec", ns, *cmd, check=check)

    def __exit__(self, *exc):
        sh("ip", "netns", "del", self.snd, check=False)
        sh("ip", "netns", "del", self.cap, check=False)


def metric(text, name, iface):
    m = re.search(rf'^{name}\{{[^}}]*interface="{re.escape(iface)}"[^}}]*\}} (\S+)$', text, re.M)
    return int(float(m.group(1))) if m else None


def exit_stats(err):
    """{interface: (received, dropped)} from the lines `run` prints at exit."""
    out = {}
    for m in re.finditer(r"^(\S+): (\d+) packets received, (\d+) dropped by the kernel", err, re.M):
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


@needs_netns
@pytest.mark.parametrize("mode", ["two", "any"])
def test_kernel_drops_under_load_show_in_metrics(tmp_path, mode):
    blast = tmp_path / "udp_blast"
    sh("cc", "-O2", "-o", blast, BLAST_SRC)
    db = tmp_path / "run.db"
    with TwoLinkNet() as net:
        ifaces = [c for _, c, _ in net.links] if mode == "two" else ["any"]
        args = [a for i in ifaces for a in ("-i", i)]
        run = subprocess.Popen(["ip", "netns", "exec", net.cap, BIN, "run", *args, "--ports", "9", "--buffer-mib", "1",
                                "--store", f"sqlite:{db}", "--metrics-listen", "127.0.0.1:9100",
                                "--flush-seconds", "0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_line(run, "capturing on")

            def scrape():
                r = net.run_in(net.cap, "curl", "-s", "--max-time", "5", "http://127.0.0.1:9100/metrics", check=False)
                return r.stdout

            # Stopped, so nothing leaves the ring while the blast fills it.
            run.send_signal(signal.SIGSTOP)
            sent = 0
            try:
                blasts = [subprocess.Popen(["ip", "netns", "exec", net.snd, blast, f"{n}.1", "9",
                                            str(PER_INTERFACE), "1", "64"],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                          for _, _, n in net.links]
                for b in blasts:
                    out, err = b.communicate(timeout=60)
                    assert b.returncode == 0, err
                    sent += int(re.search(r"\d+", out).group(0))
            finally:
                run.send_signal(signal.SIGCONT)
            assert sent > 0
            # Wait until /metrics has the final counters: received and
            # dropped stop moving (nothing else matches the filter) and
            # every received packet not dropped was counted.
            deadline = time.time() + 60
            text, last = "", None
            while time.time() < deadline:
                text = scrape()
                frames = re.search(r"^traffic_frames_total (\S+)$", text, re.M)
                now = tuple((metric(text, "traffic_capture_received_total", i),
                             metric(text, "traffic_capture_dropped_total", i)) for i in ifaces) \
                    + ((frames.group(1) if frames else None),)
                if now == last and all(v is not None for v in now[-1:] + tuple(r for r, _ in now[:-1])):
                    break
                last = now
                time.sleep(1.0)
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, err
        stats = exit_stats(err)
        assert set(stats) == set(ifaces), err
        received = dropped = 0
        for i in ifaces:
            r, d = stats[i]
            assert metric(text, "traffic_capture_received_total", i) == r, (i, text, err)
            assert metric(text, "traffic_capture_dropped_total", i) == d, (i, text, err)
            received += r
            dropped += d
        assert dropped > 0, err
        assert dropped <= received <= sent, (received, dropped, sent)
        # What was not dropped reached the analyzer, frame by frame.
        frames = re.search(r"^traffic_frames_total (\S+)$", text, re.M)
        assert frames and int(float(frames.group(1))) == received - dropped, (text, received, dropped)
