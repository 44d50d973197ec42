#!/usr/bin/env python3
"""`top` beside `run` and tcpdump on live capture (needs root and tmux: it
builds its own two-host network in network namespaces, see
tests/e2e/netns.py; traffic never leaves them).

1. Rising packet rates: for each rate, udp_blast sends 64-byte UDP datagrams
   from the client namespace for SECONDS_PER_RATE while one capturer listens
   on the client's veth: `traffic-analyzer top` (full screen in a 200x50 tmux
   pane, group-by host, its counts read from its own header line), then
   `run --store none`, then `tcpdump -w /dev/null` (both as in
   bench/live_bench.py). Same namespaces, same schedule, one after the other.
   Reported: sent, received and kernel drops per capturer; the highest rate
   actually sent that each received whole with zero kernel drops; ratios.
2. What the refresh costs: the same steady traffic (CPU_RATE packets/s for
   CPU_SECONDS) and no traffic at all, measured as the process's CPU time
   (utime + stime of /proc/PID/stat, every thread) for: `top` full screen
   (redraw every second, keys polled every 100 ms); `top` without a terminal
   and `--interval 3600` (the same capture, engine and model fed every
   second, nothing drawn); the same with `--interval 1` (a plain table every
   second); and `run --store none`. Full screen minus no-refresh is the
   refresh's CPU per second.

Every loop is bounded (a list of rates, fixed durations, deadlines). Env:
RATES (comma list), SECONDS_PER_RATE (2), CPU_RATE (50000), CPU_SECONDS (10).
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
import live_bench  # noqa: E402
from live_bench import BLAST, TA, blast, wait_for  # noqa: E402
from netns import TwoHostNet, available  # noqa: E402

RATES = live_bench.RATES
SECONDS = live_bench.SECONDS
CPU_RATE = int(os.environ.get("CPU_RATE", "50000"))
CPU_SECONDS = float(os.environ.get("CPU_SECONDS", "10"))


def cpu_seconds(pid):
    """Time on a CPU of every live thread of the process, seconds, from
    /proc/PID/task/TID/schedstat (nanoseconds; utime/stime tick at 10 ms,
    too coarse for a process that spends a few ms a second)."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total / 1e9


class TopPane:
    """`top -i IF --ports 9999` alone in a private tmux server's 200x50 pane;
    `exec` makes the pane's process top itself."""

    def __init__(self, tmp, net):
        self.socket = str(tmp / "tmux.sock")
        cmd = f"exec ip netns exec {net.cli} {TA} top -i {net.cli_if} --ports 9999"
        self.tmux("new-session", "-d", "-s", "b", "-x", "200", "-y", "50", cmd)
        self.pid = int(self.tmux("display-message", "-p", "-t", "b", "#{pane_pid}").stdout)
        self.wait_for("NAME")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=10)

    def pane(self):
        return self.tmux("capture-pane", "-p", "-t", "b").stdout

    def wait_for(self, needle, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.pane():
                return
            time.sleep(0.2)
        raise SystemExit(f"top never showed {needle!r}:\n{self.pane()}")

    def counts(self, iface):
        """(received, dropped) of `iface` in the header line."""
        m = re.search(rf" {re.escape(iface)} (\d+) pkts, (\d+) dropped", self.pane())
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    def settled_counts(self, iface, timeout=10):
        """The header's counts once two redraws a second and a half apart
        agree (the header is redrawn once a second)."""
        last = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            now = self.counts(iface)
            if now == last:
                return now
            last = now
            time.sleep(1.5)
        return last

    def close(self):
        try:
            self.tmux("send-keys", "-t", "b", "q")
            deadline = time.time() + 10
            while time.time() < deadline and os.path.exists(f"/proc/{self.pid}"):
                time.sleep(0.1)
        finally:
            subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                           timeout=10)


def top_at(tmp, net, rate):
    pane = TopPane(tmp, net)
    try:
        sent = blast(net, rate)
        received, dropped = pane.settled_counts(net.cli_if)
    finally:
        pane.close()
    return sent, received, dropped


def rates(tmp, net):
    print(f"rising rates, {SECONDS:g} s each, 64-byte UDP on a veth:")
    print(f"{'rate/s':>9} | {'sent':>9} {'top rcvd':>9} {'top drop':>9} | {'sent':>9} "
          f"{'run rcvd':>9} {'run drop':>9} | {'sent':>9} {'tcpd rcvd':>9} {'tcpd drop':>9}")
    best = {"top": 0, "run": 0, "tcpdump": 0}
    dropped = {"top": False, "run": False, "tcpdump": False}
    rows = []
    for rate in RATES:
        results = {"top": top_at(tmp, net, rate), "run": live_bench.ours(net, rate),
                   "tcpdump": live_bench.tcpdump(net, rate)}
        cells = " | ".join(f"{s:9,} {r:9,} {d:9,}" for s, r, d in results.values())
        print(f"{rate:9,} | {cells}", flush=True)
        rows.append((rate, results))
        for who, (s, r, d) in results.items():
            # The rate actually sent: the sender shares the cores and falls
            # behind its schedule at the top rates.
            if d == 0 and r >= s:
                best[who] = max(best[who], int(s / SECONDS))
            else:
                dropped[who] = True
    # Without a drop at any rate the figure is only what the sender managed
    # in that capturer's turn: a lower bound (">=").
    shown = {w: (">=" if not dropped[w] else "") + f"{best[w]:,}/s" for w in best}
    print("highest rate sent and received whole with zero kernel drops: "
          f"top {shown['top']}, run --store none {shown['run']}, "
          f"tcpdump -w /dev/null {shown['tcpdump']}")
    if best["run"] and best["tcpdump"]:
        print(f"ratios: top/run {best['top'] / best['run']:.2f}, "
              f"top/tcpdump {best['top'] / best['tcpdump']:.2f}")
    return best


def measure(pid, rate, net):
    """CPU seconds of `pid` over CPU_SECONDS, with udp_blast at `rate` (0:
    no traffic) during that time; and the packets sent."""
    before = cpu_seconds(pid)
    t0 = time.perf_counter()
    sent = 0
    if rate:
        sent = blast_for(net, rate, CPU_SECONDS)
    remaining = CPU_SECONDS - (time.perf_counter() - t0)
    if remaining > 0:
        time.sleep(remaining)
    elapsed = time.perf_counter() - t0
    return (cpu_seconds(pid) - before) / elapsed, sent


def blast_for(net, rate, seconds):
    r = net.run_in(net.cli, BLAST, "10.77.0.1", "9999", rate, seconds)
    return int(r.stdout.strip())


def spawn_plain(net, *args, ready):
    """TA in the client namespace, its stdout (tables) discarded."""
    p = subprocess.Popen(["ip", "netns", "exec", net.cli, str(TA), *map(str, args)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    net.procs.append(p)
    wait_for(p, ready)
    time.sleep(1)  # past start-up work
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)


def cpu(tmp, net):
    print(f"\nCPU per second of wall time (all threads; 1.00 = one core), {CPU_SECONDS:g} s "
          f"each, with no traffic and with udp_blast asked for {CPU_RATE:,} packets/s:")
    common = ["-i", net.cli_if, "--ports", "9999"]
    results = {}
    for label in ("top full screen (tmux)", "top, no terminal, --interval 3600",
                  "top, no terminal, --interval 1", "run --store none"):
        row = []
        for rate in (0, CPU_RATE):
            if label.startswith("top full"):
                pane = TopPane(tmp, net)
                time.sleep(1)
                try:
                    row.append(measure(pane.pid, rate, net))
                finally:
                    pane.close()
                continue
            if label.startswith("run"):
                p = spawn_plain(net, "run", *common, "--store", "none", "--metrics-listen", "",
                                ready="capturing on")
            else:
                interval = "3600" if "3600" in label else "1"
                p = spawn_plain(net, "top", *common, "--interval", interval,
                                ready="capturing on")
            try:
                row.append(measure(p.pid, rate, net))
            finally:
                stop(p)
        (idle, _), (busy, sent) = row
        # CPU per packet: the increase over idle, over the packets sent.
        per_packet = (busy - idle) * CPU_SECONDS / sent * 1e9 if sent else 0
        results[label] = (idle, busy, sent)
        print(f"  {label:36} idle {idle:.4f}   with traffic {busy:.4f} "
              f"({sent / CPU_SECONDS:,.0f} packets/s sent, {per_packet:,.0f} ns/packet)",
              flush=True)
    full, quiet = results["top full screen (tmux)"], results["top, no terminal, --interval 3600"]
    plain = results["top, no terminal, --interval 1"]
    print(f"refresh cost, full screen minus no refresh: idle {full[0] - quiet[0]:+.4f} CPU-s/s, "
          f"with traffic {full[1] - quiet[1]:+.4f} CPU-s/s; a plain table a second instead: "
          f"idle {plain[0] - quiet[0]:+.4f}, with traffic {plain[1] - quiet[1]:+.4f}")
    run = results["run --store none"]
    if run[1] > 0:
        print(f"CPU with traffic, top full screen / run --store none: {full[1] / run[1]:.2f}")
    return results


def main():
    why = available()
    if why:
        raise SystemExit(f"top_bench: {why}")
    if shutil.which("tmux") is None:
        raise SystemExit("top_bench: needs tmux")
    for binary in (TA, BLAST):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"top_bench: needs {binary} (ninja -C build traffic-analyzer "
                             "udp_blast)")
    tmp = pathlib.Path(tempfile.mkdtemp())
    try:
        with TwoHostNet(tmp) as net:
            rates(tmp, net)
            cpu(tmp, net)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
